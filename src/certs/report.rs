//! What `streamtool gen-cert` tells the user on stdout about what it made or inspected:
//! aligned text with the `serve` and `connect` commands that use the files, or one JSON
//! object instead (`--json`). Built here, written by the command line.

use std::path::Path;

use serde_json::json;
use time::OffsetDateTime;

use super::files::{CA_CERT_FILE, CA_KEY_FILE, LeafFiles};
use super::make::{CaMade, DEFAULT_P12_PASSWORD, LeafMade, MakeError};
use super::names::SubjectName;
use super::{expiry_phrase, format_time, inspect, inspect_file, rfc3339};
use crate::streams::tls::Pin;

/// The port the printed `serve`/`connect` commands use.
pub const EXAMPLE_PORT: u16 = 8443;

/// What goes to stdout: the text, or with `--json` the JSON object instead.
#[derive(Debug, Default)]
pub struct Report {
    /// The text, one `\n` after each line.
    pub text: String,
    /// The JSON object, when asked for; printed instead of the text.
    pub json: Option<serde_json::Value>,
}

impl Report {
    fn line(&mut self, line: impl AsRef<str>) {
        self.text.push_str(line.as_ref());
        self.text.push('\n');
    }

    fn field(&mut self, label: &str, value: impl AsRef<str>) {
        self.line(format!("{label:<14}{}", value.as_ref()));
    }
}

/// `gen-cert --inspect FILE`: what each certificate in the file says, and a note (to
/// `note`, text only) when the first has no subject alternative names or has expired.
///
/// # Errors
/// "cannot inspect" and why.
pub fn inspect_report(path: &Path, as_json: bool, note: &mut dyn FnMut(&str)) -> Result<Report, MakeError> {
    let infos = inspect_file(path).map_err(|e| MakeError::Step("cannot inspect", Box::new(e.into())))?;
    let now = OffsetDateTime::now_utc();
    let mut out = Report::default();
    if as_json {
        out.json = Some(json!({
            "file": path.display().to_string(),
            "certificates": infos.iter().map(|i| i.to_json(now)).collect::<Vec<_>>(),
        }));
        return Ok(out);
    }
    for (n, info) in infos.iter().enumerate() {
        if infos.len() > 1 {
            if n > 0 {
                out.line("");
            }
            out.line(format!("Certificate {} of {} in {}:", n + 1, infos.len(), path.display()));
            out.text.push_str(&info.to_text("  ", now));
        } else {
            out.text.push_str(&info.to_text("", now));
        }
    }
    if let Some(leaf) = infos.first() {
        let signs_certificates = leaf.is_ca && leaf.key_usage.iter().any(|u| u == "Certificate Sign");
        if leaf.names.is_empty() && !signs_certificates {
            note(&format!(
                "note: {} has no subject alternative names; TLS clients match names only there (streamtool connect \
                 still accepts it for its CN when it is the very certificate given with --ca)",
                path.display()
            ));
        }
        if leaf.not_after < now {
            note(&format!("warning: {} has expired", path.display()));
        }
    }
    Ok(out)
}

/// `gen-cert --inspect FILE --check PERIOD`: one line for each certificate in the file
/// that expires within `period` of `now` (or has expired), naming it and its not-after;
/// none when every certificate is valid for longer.
///
/// # Errors
/// "cannot inspect" and why (an unreadable file, no certificate in it).
pub fn expiring_within(
    path: &Path,
    period: std::time::Duration,
    now: OffsetDateTime,
) -> Result<Vec<String>, MakeError> {
    let infos = inspect_file(path).map_err(|e| MakeError::Step("cannot inspect", Box::new(e.into())))?;
    let limit = now + period;
    let period = super::describe_period(period);
    let count = infos.len();
    Ok(infos
        .iter()
        .enumerate()
        .filter(|(_, info)| info.not_after <= limit)
        .map(|(n, info)| {
            let which =
                if count > 1 { format!("certificate {} of {count}", n + 1) } else { "certificate".into() };
            let what = if info.not_after <= now {
                "has expired".to_string()
            } else {
                format!("expires within {period}")
            };
            format!(
                "{}: {which} ({}) {what}: not after {} ({})",
                path.display(),
                info.subject,
                format_time(info.not_after),
                expiry_phrase(info.not_after, now)
            )
        })
        .collect())
}

impl CaMade {
    /// The report of `gen-cert --ca-only`: the CA, how to trust it, how to use it.
    ///
    /// # Errors
    /// Why the CA's certificate could not be read back.
    pub fn report(&self, as_json: bool) -> Result<Report, String> {
        let mut out = Report::default();
        out.line(if self.created {
            format!("Created a new local CA in {}", self.dir.display())
        } else {
            format!("The local CA in {}", self.dir.display())
        });
        let ca_json = self.describe(&mut out)?;
        let ca_file = shell_quote(&self.dir.join(CA_CERT_FILE).display().to_string());
        out.line("");
        out.line("Trust it when connecting:");
        out.line(format!("  streamtool connect --tls --ca {ca_file} localhost:{EXAMPLE_PORT}"));
        out.line("Make certificates signed by it:");
        out.line("  streamtool gen-cert localhost 127.0.0.1 ::1");
        if as_json {
            let mut value = ca_json;
            value["created"] = json!(self.created);
            out.json = Some(json!({ "ca": value }));
        }
        Ok(out)
    }

    fn describe(&self, out: &mut Report) -> Result<serde_json::Value, String> {
        let (dir, now) = (&self.dir, self.now);
        let info = inspect(self.ca.cert_der().as_ref())?;
        let cert = dir.join(CA_CERT_FILE);
        let inter = self.ca.intermediate().map(|_| dir.join(super::files::CA_INTERMEDIATE_FILE));
        match &inter {
            Some(inter) => {
                out.field(
                    "CA:",
                    format!("{} (the root clients trust; its key was discarded)", cert.display()),
                );
                out.field("Intermediate:", format!("{} (signs the certificates)", inter.display()));
                out.field(
                    "CA key:",
                    format!("{} (the intermediate's, mode 0400)", dir.join(CA_KEY_FILE).display()),
                );
            }
            None => {
                out.field("CA:", cert.display().to_string());
                out.field("CA key:", format!("{} (mode 0400)", dir.join(CA_KEY_FILE).display()));
            }
        }
        out.field("Subject:", &info.subject);
        out.field("Key type:", &info.key_type);
        out.field(
            "Expires:",
            format!("{} ({})", format_time(info.not_after), expiry_phrase(info.not_after, now)),
        );
        out.field("SHA-256:", info.sha256.to_string());
        let permitted =
            self.ca.constraints().map(|c| c.permitted.iter().map(ToString::to_string).collect::<Vec<_>>());
        out.field(
            "Signs for:",
            match &permitted {
                Some(names) => format!("only {} (name constraints)", names.join(", ")),
                None => "any name (no name constraints)".to_string(),
            },
        );
        Ok(json!({
            "permitted": permitted,
            "dir": dir.display().to_string(),
            "cert": cert.display().to_string(),
            "key": dir.join(CA_KEY_FILE).display().to_string(),
            "intermediate": inter.map(|p| p.display().to_string()),
            "subject": info.subject,
            "key_type": info.key_type,
            "not_after": rfc3339(info.not_after),
            "sha256": info.sha256.to_string(),
        }))
    }
}

impl LeafMade {
    /// The report of `gen-cert NAME...`: the files, what the certificate says, who signed
    /// it, and the commands that use it.
    ///
    /// # Errors
    /// Why the certificate could not be read back.
    pub fn report(&self, as_json: bool) -> Result<Report, String> {
        let mut out = Report::default();
        let info = inspect(self.generated.cert_der.as_ref())?;
        let paths = &self.paths;
        let cert_file = paths.cert.display().to_string();
        let key_file = paths.key.display().to_string();
        if let Some((dir, _, true)) = &self.ca {
            out.line(format!(
                "Created a new local CA in {} (clients trust its {CA_CERT_FILE})",
                dir.display()
            ));
        }
        if let Some(csr) = &self.from_csr {
            out.field("Certificate:", &cert_file);
            out.field("Key:", format!("the key of {} (not written here; KEY.pem below)", csr.display()));
        } else if paths.combined() {
            out.field("Certificate:", format!("{cert_file} (with the key, mode 0600)"));
        } else {
            out.field("Certificate:", &cert_file);
            out.field("Key:", format!("{key_file} (mode 0600)"));
        }
        let password_note = if std::env::var_os("STREAMTOOL_P12_PASSWORD").is_some() {
            "password from $STREAMTOOL_P12_PASSWORD".to_string()
        } else {
            format!("password \"{DEFAULT_P12_PASSWORD}\"")
        };
        if let Some(p12) = &paths.p12 {
            out.field("PKCS#12:", format!("{} ({password_note}, mode 0600)", p12.display()));
        }
        out.field("Names:", info.names.join(", "));
        out.field("Key type:", self.key_type.description());
        out.field("Usages:", info.extended_key_usage.join(", "));
        let (not_after, now) = (info.not_after, self.now);
        out.field("Expires:", format!("{} ({})", format_time(not_after), expiry_phrase(not_after, now)));
        out.field("SHA-256:", info.sha256.to_string());
        let (ca_file, ca_json) = self.signer(&mut out, &info.issuer, &cert_file);
        let commands = commands(&self.names, paths, &ca_file, self.client);
        if !commands.is_empty() {
            out.line("");
        }
        for (heading, lines) in &commands {
            out.line(heading);
            for line in lines {
                out.line(format!("  {line}"));
            }
        }
        if as_json {
            let mut files = vec![
                json!({ "path": cert_file, "kind": if paths.combined() { "certificate_and_key" } else { "certificate" } }),
            ];
            if !paths.combined() && self.from_csr.is_none() {
                files.push(json!({ "path": key_file, "kind": "key" }));
            }
            if let Some(p12) = &paths.p12 {
                files.push(json!({ "path": p12.display().to_string(), "kind": "pkcs12" }));
            }
            out.json = Some(json!({
                "files": files,
                "sans": info.names,
                "key_type": self.key_type.name(),
                "extended_key_usage": info.extended_key_usage,
                "not_before": rfc3339(info.not_before),
                "not_after": rfc3339(info.not_after),
                "sha256": info.sha256.to_string(),
                "self_signed": self.ca.is_none(),
                "ca": ca_json,
                "commands": commands.iter().flat_map(|(_, lines)| lines.clone()).collect::<Vec<_>>(),
            }));
        }
        Ok(out)
    }

    /// The "Signed by:" line; the file clients trust and the CA's JSON.
    fn signer(&self, out: &mut Report, issuer: &str, cert_file: &str) -> (String, serde_json::Value) {
        match &self.ca {
            Some((dir, ca, created)) => {
                let ca_path = dir.join(CA_CERT_FILE);
                match ca.intermediate() {
                    Some(_) => out.field(
                        "Signed by:",
                        format!(
                            "{issuer} ({}, below {}, which clients trust; {cert_file} holds both certificates)",
                            dir.join(super::files::CA_INTERMEDIATE_FILE).display(),
                            ca_path.display()
                        ),
                    ),
                    None => out.field("Signed by:", format!("{} ({})", issuer, ca_path.display())),
                }
                let ca_json = json!({
                    "dir": dir.display().to_string(),
                    "cert": ca_path.display().to_string(),
                    "intermediate": ca.intermediate().map(|_| dir.join(super::files::CA_INTERMEDIATE_FILE).display().to_string()),
                    "created": created,
                    "not_after": rfc3339(ca.not_after()),
                    "sha256": Pin::of_certificate(ca.cert_der().as_ref()).to_string(),
                });
                (ca_path.display().to_string(), ca_json)
            }
            None => {
                out.field("Signed by:", "itself (self-signed: clients trust the certificate itself)");
                (cert_file.to_string(), serde_json::Value::Null)
            }
        }
    }
}

/// The `serve` and `connect` commands that use the files, by heading.
fn commands(
    names: &[SubjectName],
    paths: &LeafFiles,
    ca_file: &str,
    client: bool,
) -> Vec<(String, Vec<String>)> {
    let cert = shell_quote(&paths.cert.display().to_string());
    let key_flags = if paths.combined() {
        String::new()
    } else {
        format!(" --key {}", shell_quote(&paths.key.display().to_string()))
    };
    let ca = shell_quote(ca_file);
    let mut out = Vec::new();
    let Some((listen, host)) = endpoints(names) else {
        if client {
            out.push((
                "Use it as a client certificate (mTLS):".to_string(),
                vec![format!(
                    "streamtool connect --tls --ca SERVER-CA.pem --cert {cert}{key_flags} HOST:PORT"
                )],
            ));
        }
        return out;
    };
    out.push((
        "Serve and connect with them:".to_string(),
        vec![
            format!("streamtool serve --tls --cert {cert}{key_flags} {listen}"),
            format!("streamtool connect --tls --ca {ca} {host}"),
        ],
    ));
    if client {
        out.push((
            "Or with client certificates too (mTLS):".to_string(),
            vec![
                format!("streamtool serve --tls --cert {cert}{key_flags} --client-ca {ca} --require-client-cert {listen}"),
                format!("streamtool connect --tls --ca {ca} --cert {cert}{key_flags} {host}"),
            ],
        ));
    }
    out
}

/// Where the example server listens and what the client connects to: loopback when a
/// name is local (a bare port binds loopback), else the name's own address or all
/// interfaces.
fn endpoints(names: &[SubjectName]) -> Option<(String, String)> {
    let host_port = |name: &SubjectName| match name {
        SubjectName::Ip(ip) if ip.is_ipv6() => format!("[{ip}]:{EXAMPLE_PORT}"),
        SubjectName::Wildcard(w) => format!("{}:{EXAMPLE_PORT}", w.replacen('*', "www", 1)),
        other => format!("{}:{EXAMPLE_PORT}", other.as_text()),
    };
    let local = names
        .iter()
        .find(|n| matches!(n, SubjectName::Dns(d) if d == "localhost"))
        .or_else(|| names.iter().find(|n| n.is_loopback() && matches!(n, SubjectName::Ip(_))))
        .or_else(|| names.iter().find(|n| n.is_loopback()));
    if let Some(name) = local {
        let listen = match name {
            SubjectName::Ip(ip) if ip.is_ipv6() => format!("[{ip}]:{EXAMPLE_PORT}"),
            SubjectName::Ip(ip) => format!("{ip}:{EXAMPLE_PORT}"),
            _ => EXAMPLE_PORT.to_string(),
        };
        return Some((listen, host_port(name)));
    }
    let name = names.iter().find(|n| n.is_host())?;
    let listen = match name {
        SubjectName::Ip(_) => host_port(name),
        _ => format!("0.0.0.0:{EXAMPLE_PORT}"),
    };
    Some((listen, host_port(name)))
}

/// `s` as one shell word.
pub fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-[]".contains(c))
        && !s.starts_with('-');
    if safe { s.to_string() } else { format!("'{}'", s.replace('\'', r"'\''")) }
}

/// The report's line for the system store: what `change` did at `at` (Debian's or
/// Fedora's layout, told by the path), for the CA `ca_text`.
fn system_line(ca_text: &str, at: &str, change: &super::trust::TrustChange, installing: bool) -> String {
    use super::trust::{DEBIAN_BUNDLE, FEDORA_ANCHORS_DIR, FEDORA_EXTRACTED_DIR, TrustChange};
    let fedora = at.starts_with(FEDORA_ANCHORS_DIR);
    match change {
        TrustChange::Installed(_) if fedora => format!(
            "Installed the local CA ({ca_text}) into the system trust store: wrote {at} and ran update-ca-trust extract (it is now in {FEDORA_EXTRACTED_DIR}).\n\
             curl, OpenSSL, Python and Go trust it with no flag.\n"
        ),
        TrustChange::Removed(_) if fedora => format!(
            "Removed the local CA ({ca_text}) from the system trust store: deleted {at} and ran update-ca-trust extract.\n"
        ),
        TrustChange::Installed(_) => format!(
            "Installed the local CA ({ca_text}) into the system trust store: wrote {at} and ran update-ca-certificates (it is now in {DEBIAN_BUNDLE}).\n\
             curl, OpenSSL, Python and Go trust it with no flag.\n"
        ),
        TrustChange::Removed(_) => format!(
            "Removed the local CA ({ca_text}) from the system trust store: deleted {at}, ran update-ca-certificates and removed the links to it it left in /etc/ssl/certs.\n"
        ),
        TrustChange::Unchanged(_) if installing => format!(
            "The local CA ({ca_text}) is already in the system trust store ({at}): nothing changed.\n"
        ),
        TrustChange::Unchanged(_) => {
            format!("The local CA ({ca_text}) is not in the system trust store (no {at}): nothing changed.\n")
        }
    }
}

/// The report's line for one store's change (`at`: where), for the CA `ca_text`.
fn store_line(change: &super::stores::StoreChange, ca_text: &str, at: &str, installing: bool) -> String {
    use super::stores::Store;
    use super::trust::TrustChange;
    let nick = change.nickname.as_deref().unwrap_or_default();
    match (change.store, &change.change) {
        (Store::System, change) => system_line(ca_text, at, change, installing),
        (Store::Nss, TrustChange::Installed(_)) => format!(
            "Added the local CA ({ca_text}) to the NSS database {at} as \"{nick}\" (certutil -A, trusted for TLS servers); restart Firefox or Chromium to use it.\n"
        ),
        (Store::Nss, TrustChange::Removed(_)) => {
            format!(
                "Removed the local CA ({ca_text}) from the NSS database {at}: deleted \"{nick}\" (certutil -D).\n"
            )
        }
        (Store::Nss, TrustChange::Unchanged(_)) if installing => format!(
            "The local CA ({ca_text}) is already in the NSS database {at} as \"{nick}\": nothing changed.\n"
        ),
        (Store::Nss, TrustChange::Unchanged(_)) => format!(
            "The local CA ({ca_text}) is not in the NSS database {at} (no \"{nick}\"): nothing changed.\n"
        ),
        (Store::Java, TrustChange::Installed(_)) => format!(
            "Added the local CA ({ca_text}) to the Java keystore {at} as alias {nick} (keytool -importcert); restart Java programs to use it.\n"
        ),
        (Store::Java, TrustChange::Removed(_)) => {
            format!(
                "Removed the local CA ({ca_text}) from the Java keystore {at}: deleted alias {nick} (keytool -delete).\n"
            )
        }
        (Store::Java, TrustChange::Unchanged(_)) if installing => format!(
            "The local CA ({ca_text}) is already in the Java keystore {at} as alias {nick}: nothing changed.\n"
        ),
        (Store::Java, TrustChange::Unchanged(_)) => format!(
            "The local CA ({ca_text}) is not in the Java keystore {at} (no alias {nick}): nothing changed.\n"
        ),
    }
}

/// What --install (`installing`) or --uninstall changed in each store, as text or JSON.
pub fn trust_report(
    dir: &std::path::Path,
    changes: &[super::stores::StoreChange],
    installing: bool,
    json: bool,
) -> Report {
    use super::stores::Store;
    use super::trust::TrustChange;
    let ca = dir.join(super::CA_CERT_FILE);
    let ca_text = ca.display();
    let mut text = String::new();
    let mut stores = Vec::new();
    for change in changes {
        let (what, place) = match &change.change {
            TrustChange::Installed(p) => ("installed", p),
            TrustChange::Removed(p) => ("removed", p),
            TrustChange::Unchanged(p) => ("unchanged", p),
        };
        let at = place.display();
        let line = store_line(change, &ca_text.to_string(), &at.to_string(), installing);
        text.push_str(&line);
        let mut entry = serde_json::json!({
            "store": change.store.name(),
            "change": what,
            "where": place.display().to_string(),
        });
        if let Some(nick) = &change.nickname {
            entry["nickname"] = serde_json::Value::from(nick.as_str());
        }
        stores.push(entry);
    }
    let chosen = |store| changes.iter().any(|c| c.store == store);
    if changes.is_empty() {
        text.push_str(&format!(
            "No trust store was changed for the local CA ({ca_text}): no NSS database found.\n"
        ));
    }
    if installing {
        match (chosen(Store::Nss), chosen(Store::Java)) {
            (false, false) => text.push_str("Firefox, Chromium (NSS) and Java stores were not changed.\n"),
            (false, true) => text.push_str("Firefox and Chromium (NSS) stores were not changed.\n"),
            (true, false) => text.push_str("Java stores were not changed.\n"),
            (true, true) => {}
        }
        if changes.iter().any(|c| matches!(c.change, TrustChange::Installed(_))) {
            let mut names: Vec<&str> = changes.iter().map(|c| c.store.name()).collect();
            names.dedup();
            match names.as_slice() {
                ["system"] => text.push_str("Undo with: streamtool gen-cert --uninstall\n"),
                _ => {
                    let keystore = changes.iter().find(|c| c.store == Store::Java).map(|c| match &c.change {
                        TrustChange::Installed(p) | TrustChange::Removed(p) | TrustChange::Unchanged(p) => {
                            format!(" --java-keystore {}", shell_quote(&p.display().to_string()))
                        }
                    });
                    text.push_str(&format!(
                        "Undo with: streamtool gen-cert --uninstall --trust-stores {}{}\n",
                        names.join(","),
                        keystore.unwrap_or_default()
                    ));
                }
            }
        }
    }
    let json = json.then(|| serde_json::json!({ "ca": ca.display().to_string(), "stores": stores }));
    Report { text: if json.is_some() { String::new() } else { text }, json }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs;

    #[test]
    fn expiring_within_names_each_certificate_that_expires_in_the_period() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("two.pem");
        let short = certs::self_signed(&["short.test"], 10).unwrap();
        let long = certs::self_signed(&["long.test"], 100).unwrap();
        std::fs::write(&path, format!("{}{}", short.cert_pem, long.cert_pem)).unwrap();
        let now = OffsetDateTime::now_utc();
        let day = std::time::Duration::from_secs(86_400);
        assert_eq!(expiring_within(&path, 9 * day, now).unwrap(), Vec::<String>::new());
        let lines = expiring_within(&path, 30 * day, now).unwrap();
        assert_eq!(lines.len(), 1, "{lines:?}");
        let start = format!(
            "{}: certificate 1 of 2 (CN=short.test) expires within 30 days: not after ",
            path.display()
        );
        assert!(lines[0].starts_with(&start) && lines[0].ends_with(" UTC (in 10 days)"), "{lines:?}");
        assert_eq!(expiring_within(&path, 101 * day, now).unwrap().len(), 2);
        let later = now + 11 * day;
        let lines = expiring_within(&path, day, later).unwrap();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].contains(" certificate 1 of 2 (CN=short.test) has expired: not after ")
                && lines[0].ends_with(" UTC (expired 24 hours ago)"),
            "{lines:?}"
        );
        assert_eq!(certs::describe_period(14 * day), "2 weeks");
        assert_eq!(certs::describe_period(30 * day), "30 days");
        assert_eq!(certs::describe_period(std::time::Duration::from_secs(3600)), "1 hour");
        assert_eq!(certs::describe_period(std::time::Duration::from_secs(90)), "90 seconds");
    }

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_quote("localhost+2.pem"), "localhost+2.pem");
        assert_eq!(shell_quote("/tmp/my dir/ca.pem"), "'/tmp/my dir/ca.pem'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn example_endpoints_prefer_loopback() {
        let names = certs::parse_names(&["example.com", "127.0.0.1", "localhost"]).unwrap();
        assert_eq!(endpoints(&names), Some(("8443".into(), "localhost:8443".into())));
        let names = certs::parse_names(&["::1"]).unwrap();
        assert_eq!(endpoints(&names), Some(("[::1]:8443".into(), "[::1]:8443".into())));
        let names = certs::parse_names(&["*.example.com"]).unwrap();
        assert_eq!(endpoints(&names), Some(("0.0.0.0:8443".into(), "www.example.com:8443".into())));
        let names = certs::parse_names(&["me@example.com"]).unwrap();
        assert_eq!(endpoints(&names), None);
    }
}
