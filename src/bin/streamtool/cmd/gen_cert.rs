//! `streamtool gen-cert`: a local CA and certificates signed by it (mkcert-style names),
//! lone self-signed certificates, and `--inspect`. Defaults and decisions are in
//! `docs/gen-cert.md`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;
use streamtool::certs::{
    self, CA_CERT_FILE, CA_KEY_FILE, CERT_MODE, CaSpec, CertAuthority, CertError, FileSet, KEY_MODE, KeyType,
    LeafSpec, SubjectName,
};
use streamtool::streams::tls::Pin;
use time::OffsetDateTime;

use crate::exit_codes::Usage;
use crate::ui::Ui;

const EXAMPLES: &str = "\
Examples:
  streamtool gen-cert localhost 127.0.0.1 ::1     # localhost+2.pem, localhost+2-key.pem
  streamtool gen-cert --ca-only                   # create or show the local CA (its ca.pem)
  streamtool gen-cert --client alice@example.com  # a client certificate for mTLS
  streamtool gen-cert --self-signed --days 30 --key-type rsa-2048 myhost.test
  streamtool gen-cert --inspect cert.pem --json

The local CA lives in --ca-dir, else $STREAMTOOL_CA_DIR, else streamtool/ca in the user's
data directory ($XDG_DATA_HOME or ~/.local/share). Keys are written 0600 (the CA key 0400);
an existing file is never replaced without --force.

Exit codes: see `streamtool --help`.";

/// The port the printed `serve`/`connect` commands use.
const EXAMPLE_PORT: u16 = 8443;
/// Days of validity for leaves and self-signed certificates.
const DEFAULT_LEAF_DAYS: u32 = 90;
/// Days of validity for a new CA.
const DEFAULT_CA_DAYS: u32 = 3650;
/// The longest validity TLS clients accept for a server certificate (Apple, browsers).
const MAX_ACCEPTED_LEAF_DAYS: u32 = 398;
/// The PKCS#12 password when $STREAMTOOL_P12_PASSWORD is not set (mkcert's).
const DEFAULT_P12_PASSWORD: &str = "changeit";

/// Arguments of `gen-cert`.
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct GenCertArgs {
    /// Names the certificate is for: DNS names, IP addresses (v4 or v6), one-level
    /// wildcards (*.example.com) or email addresses; the kind is detected from the form.
    #[arg(value_name = "NAME", required_unless_present_any = ["ca_only", "inspect"])]
    pub names: Vec<String>,

    /// Make a lone self-signed certificate instead of one signed by the local CA (clients
    /// then trust the certificate itself: connect --tls --ca CERT).
    #[arg(long, conflicts_with_all = ["ca_only", "ca_dir", "bundle"])]
    pub self_signed: bool,

    /// Only create the local CA (if there is none yet) and show it.
    #[arg(long, conflicts_with_all = ["names", "cert_file", "key_file", "bundle", "client", "pkcs12"])]
    pub ca_only: bool,

    /// The local CA's directory (ca.pem and ca-key.pem). Default: $STREAMTOOL_CA_DIR, else
    /// streamtool/ca in the user's data directory (~/.local/share/streamtool/ca).
    #[arg(long, value_name = "DIR")]
    pub ca_dir: Option<PathBuf>,

    /// Key type: ecdsa-p256 (default), ecdsa-p384, ed25519, rsa-2048, rsa-3072 or rsa-4096.
    /// A CA created implicitly is always ecdsa-p256; use --ca-only --key-type for another.
    #[arg(long, value_name = "TYPE", value_parser = parse_key_type)]
    pub key_type: Option<KeyType>,

    /// Days of validity. Default: 90 for certificates, 3650 for a new CA. Clients refuse
    /// server certificates valid for more than 398 days (a warning says so).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub days: Option<u32>,

    /// Also for client authentication (mTLS): adds the clientAuth extended key usage.
    #[arg(long)]
    pub client: bool,

    /// Subject common name. Default: the first name (for a new CA with --ca-only:
    /// "streamtool local CA USER@HOST").
    #[arg(long, value_name = "NAME")]
    pub cn: Option<String>,

    /// Where to write the certificate. Default: NAME[+N].pem in the current directory
    /// (the first name, "*" as "_wildcard", "+N" for N more names).
    #[arg(long, value_name = "FILE")]
    pub cert_file: Option<PathBuf>,

    /// Where to write the private key (0600). Default: NAME[+N]-key.pem. The same path as
    /// --cert-file writes both into one file.
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,

    /// Write the CA certificate after the leaf in the certificate file (a full chain).
    #[arg(long)]
    pub bundle: bool,

    /// Also write a PKCS#12 file (key, certificate and CA) for browsers, Java and Windows;
    /// password from $STREAMTOOL_P12_PASSWORD, else "changeit".
    #[arg(long)]
    pub pkcs12: bool,

    /// Where to write the PKCS#12 file. Default: NAME[+N].p12.
    #[arg(long, value_name = "FILE", requires = "pkcs12")]
    pub p12_file: Option<PathBuf>,

    /// Encrypt the PKCS#12 file with 3DES and SHA-1 (for older macOS, Windows and Java)
    /// instead of AES-256 and SHA-256.
    #[arg(long, requires = "pkcs12")]
    pub p12_legacy: bool,

    /// Replace existing files (atomically). With --ca-only, make a new CA: certificates
    /// signed by the old one stop verifying against it.
    #[arg(long)]
    pub force: bool,

    /// Show what the certificates in FILE say (subject, names, validity, key type,
    /// fingerprint, issuer) instead of making one.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = [
            "names", "self_signed", "ca_only", "ca_dir", "key_type", "days", "client", "cn",
            "cert_file", "key_file", "bundle", "pkcs12", "force",
        ]
    )]
    pub inspect: Option<PathBuf>,

    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

fn parse_key_type(s: &str) -> Result<KeyType, String> {
    s.parse()
}

/// Runs `gen-cert`.
pub fn run(args: GenCertArgs, ui: Ui) -> Result<()> {
    if let Some(cn) = &args.cn
        && (cn.is_empty() || cn.chars().count() > 64 || cn.chars().any(char::is_control))
    {
        return Err(Usage(format!("--cn {cn:?}: a common name has 1 to 64 characters")).into());
    }
    let mut out = Output { ui: ui.clone(), ..Output::default() };
    let result = match &args.inspect {
        Some(path) => inspect(path, args.json, &mut out),
        None if args.ca_only => ca_only(&args, &ui, &mut out),
        None => leaf(&args, &ui, &mut out),
    };
    result?;
    out.flush()
}

/// Text or JSON for stdout, written at the end; a closed stdout is not an error.
#[derive(Default)]
struct Output {
    ui: Ui,
    text: String,
    json: Option<serde_json::Value>,
}

impl Output {
    fn line(&mut self, line: impl AsRef<str>) {
        self.text.push_str(line.as_ref());
        self.text.push('\n');
    }

    /// A note on stderr, unless --quiet.
    fn note(&self, text: &str) {
        self.ui.notice(text);
    }

    fn field(&mut self, label: &str, value: impl AsRef<str>) {
        self.line(format!("{label:<14}{}", value.as_ref()));
    }

    fn flush(&mut self) -> Result<()> {
        let text = match self.json.take() {
            Some(value) => format!("{}\n", serde_json::to_string_pretty(&value)?),
            None => std::mem::take(&mut self.text),
        };
        let mut stdout = std::io::stdout().lock();
        match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("cannot write to stdout"),
            _ => Ok(()),
        }
    }
}

fn inspect(path: &Path, as_json: bool, out: &mut Output) -> Result<()> {
    let infos = certs::inspect_file(path).context("cannot inspect")?;
    let now = OffsetDateTime::now_utc();
    if as_json {
        out.json = Some(json!({
            "file": path.display().to_string(),
            "certificates": infos.iter().map(|i| i.to_json(now)).collect::<Vec<_>>(),
        }));
        return Ok(());
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
            out.note(&format!(
                "note: {} has no subject alternative names; TLS clients match names only there (streamtool connect \
                 still accepts it for its CN when it is the very certificate given with --ca)",
                path.display()
            ));
        }
        if leaf.not_after < now {
            out.note(&format!("warning: {} has expired", path.display()));
        }
    }
    Ok(())
}

/// The CA directory: --ca-dir, $STREAMTOOL_CA_DIR, or the user's data directory.
fn ca_dir(args: &GenCertArgs) -> Result<PathBuf> {
    if let Some(dir) = &args.ca_dir {
        return Ok(dir.clone());
    }
    if let Some(dir) = std::env::var_os("STREAMTOOL_CA_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    certs::user_ca_dir().ok_or_else(|| {
        Usage(
            "cannot find the user's data directory for the local CA (no home directory): give --ca-dir DIR"
                .into(),
        )
        .into()
    })
}

fn describe_ca(
    out: &mut Output,
    dir: &Path,
    ca: &CertAuthority,
    now: OffsetDateTime,
) -> Result<serde_json::Value> {
    let info = certs::inspect(ca.cert_der().as_ref()).map_err(|e| anyhow::anyhow!(e))?;
    let cert = dir.join(CA_CERT_FILE);
    out.field("CA:", cert.display().to_string());
    out.field("CA key:", format!("{} (mode 0400)", dir.join(CA_KEY_FILE).display()));
    out.field("Subject:", &info.subject);
    out.field("Key type:", &info.key_type);
    out.field(
        "Expires:",
        format!("{} ({})", certs::format_time(info.not_after), certs::expiry_phrase(info.not_after, now)),
    );
    out.field("SHA-256:", info.sha256.to_string());
    Ok(json!({
        "dir": dir.display().to_string(),
        "cert": cert.display().to_string(),
        "key": dir.join(CA_KEY_FILE).display().to_string(),
        "subject": info.subject,
        "key_type": info.key_type,
        "not_after": certs::rfc3339(info.not_after),
        "sha256": info.sha256.to_string(),
    }))
}

fn ca_only(args: &GenCertArgs, ui: &Ui, out: &mut Output) -> Result<()> {
    let dir = ca_dir(args)?;
    let now = OffsetDateTime::now_utc();
    let existing = certs::load_ca_dir(&dir).context("cannot use the local CA")?;
    let (ca, created) = match existing {
        Some(ca) if !args.force => {
            if ca.not_after() <= now {
                out.note(
                    "warning: the local CA has expired; make a new one with: streamtool gen-cert --ca-only --force",
                );
            }
            if args.key_type.is_some() || args.days.is_some() || args.cn.is_some() {
                out.note(
                    "note: the CA exists; --key-type, --days and --cn apply only when it is created (--force makes a new one)",
                );
            }
            (ca, false)
        }
        existing => {
            if existing.is_some() {
                out.note(
                    "warning: replacing the local CA: certificates signed by the old one no longer verify against it",
                );
            }
            let mut spec = CaSpec::for_this_user(
                args.key_type.unwrap_or_default(),
                args.days.unwrap_or(DEFAULT_CA_DAYS),
            );
            if let Some(cn) = &args.cn {
                spec.common_name = cn.clone();
            }
            let ca = CertAuthority::generate(&spec).context("cannot make the CA")?;
            let mut files = FileSet::new(args.force);
            if let Err(err) = certs::save_ca_dir(&dir, &ca, &mut files) {
                files.rollback();
                return Err(with_force_hint(err)).context("cannot save the CA");
            }
            emit_files(ui, &files, &["ca_key", "ca_certificate"]);
            (ca, true)
        }
    };
    out.line(if created {
        format!("Created a new local CA in {}", dir.display())
    } else {
        format!("The local CA in {}", dir.display())
    });
    let ca_json = describe_ca(out, &dir, &ca, now)?;
    let ca_file = shell_quote(&dir.join(CA_CERT_FILE).display().to_string());
    out.line("");
    out.line("Trust it when connecting:");
    out.line(format!("  streamtool connect --tls --ca {ca_file} localhost:{EXAMPLE_PORT}"));
    out.line("Make certificates signed by it:");
    out.line("  streamtool gen-cert localhost 127.0.0.1 ::1");
    if args.json {
        let mut value = ca_json;
        value["created"] = json!(created);
        out.json = Some(json!({ "ca": value }));
    }
    Ok(())
}

/// Adds "use --force" to an "already exists" error.
fn with_force_hint(err: CertError) -> anyhow::Error {
    match err {
        CertError::Exists(path) => {
            anyhow::anyhow!("{}: already exists; not replaced (use --force to replace it)", path.display())
        }
        other => anyhow::Error::new(other),
    }
}

/// Emits one `file_written` event per file, with its kind.
fn emit_files(ui: &Ui, files: &FileSet, kinds: &[&str]) {
    for ((path, mode), kind) in files.written().iter().zip(kinds) {
        ui.emit(|| streamtool::event::Event::FileWritten {
            path: path.display().to_string(),
            kind: kind.to_string(),
            mode: format!("{mode:04o}"),
        });
    }
}

/// The files a leaf goes into.
struct LeafFiles {
    cert: PathBuf,
    key: PathBuf,
    p12: Option<PathBuf>,
}

impl LeafFiles {
    fn new(args: &GenCertArgs, names: &[SubjectName]) -> LeafFiles {
        let stem = certs::names::default_file_stem(names, args.client);
        LeafFiles {
            cert: args.cert_file.clone().unwrap_or_else(|| PathBuf::from(format!("{stem}.pem"))),
            key: args.key_file.clone().unwrap_or_else(|| PathBuf::from(format!("{stem}-key.pem"))),
            p12: args
                .pkcs12
                .then(|| args.p12_file.clone().unwrap_or_else(|| PathBuf::from(format!("{stem}.p12")))),
        }
    }

    fn combined(&self) -> bool {
        self.cert == self.key
    }

    fn paths(&self) -> Vec<&Path> {
        let mut paths = vec![self.cert.as_path()];
        if !self.combined() {
            paths.push(&self.key);
        }
        paths.extend(self.p12.as_deref());
        paths
    }
}

fn leaf(args: &GenCertArgs, ui: &Ui, out: &mut Output) -> Result<()> {
    let names = certs::parse_names(&args.names).map_err(|e| Usage(e.to_string()))?;
    for name in &names {
        if let SubjectName::Wildcard(w) = name
            && let Some(text) = certs::names::wildcard_note(w)
        {
            out.note(&format!("note: {text}"));
        }
    }
    let days = args.days.unwrap_or(DEFAULT_LEAF_DAYS);
    let key_type = args.key_type.unwrap_or_default();
    let paths = LeafFiles::new(args, &names);
    let mut files = FileSet::new(args.force);
    files.check_free(paths.paths()).map_err(with_force_hint)?;
    if days > MAX_ACCEPTED_LEAF_DAYS {
        out.note(&format!(
            "warning: {days} days is longer than the {MAX_ACCEPTED_LEAF_DAYS} days that browsers and Apple platforms accept for TLS server certificates"
        ));
    }
    let mut spec = LeafSpec::new(names.clone(), key_type, days);
    spec.common_name = args.cn.clone();
    spec.client = args.client;
    let now = OffsetDateTime::now_utc();

    let mut kinds: Vec<&str> = Vec::new();
    let result = (|| -> Result<Summary> {
        let mut ca_info = None;
        let (generated, chain) = if args.self_signed {
            (certs::self_signed_leaf(&spec).context("cannot make the certificate")?, Vec::new())
        } else {
            let dir = ca_dir(args)?;
            let (ca, created) = match certs::load_ca_dir(&dir).context("cannot use the local CA")? {
                Some(ca) => (ca, false),
                None => {
                    let ca =
                        CertAuthority::generate(&CaSpec::for_this_user(KeyType::EcdsaP256, DEFAULT_CA_DAYS))
                            .context("cannot make the local CA")?;
                    certs::save_ca_dir(&dir, &ca, &mut files)
                        .map_err(with_force_hint)
                        .context("cannot save the local CA")?;
                    kinds.extend(["ca_key", "ca_certificate"]);
                    (ca, true)
                }
            };
            if ca.not_after() <= now {
                return Err(anyhow::anyhow!(
                    "the local CA in {} expired on {}; make a new one with: streamtool gen-cert --ca-only --force",
                    dir.display(),
                    certs::format_time(ca.not_after())
                ));
            }
            if spec.not_after > ca.not_after() {
                out.note(&format!(
                    "warning: the CA expires on {}, before {days} days are up; the certificate ends then too",
                    certs::format_time(ca.not_after())
                ));
                spec.not_after = ca.not_after();
            }
            let generated = ca.issue(&spec).context("cannot make the certificate")?;
            let chain = vec![ca.cert_der().clone()];
            ca_info = Some((dir, ca, created));
            (generated, chain)
        };

        let mut cert_text = generated.cert_pem.clone();
        if args.bundle
            && let Some((_, ca, _)) = &ca_info
        {
            cert_text.push_str(ca.cert_pem());
        }
        if paths.combined() {
            cert_text.push_str(&generated.key_pem);
            files.write(&paths.cert, cert_text.as_bytes(), KEY_MODE).map_err(with_force_hint)?;
            kinds.push("certificate_and_key");
        } else {
            files.write(&paths.key, generated.key_pem.as_bytes(), KEY_MODE).map_err(with_force_hint)?;
            kinds.push("key");
            files.write(&paths.cert, cert_text.as_bytes(), CERT_MODE).map_err(with_force_hint)?;
            kinds.push("certificate");
        }
        if let Some(p12_path) = &paths.p12 {
            let password =
                std::env::var("STREAMTOOL_P12_PASSWORD").unwrap_or_else(|_| DEFAULT_P12_PASSWORD.into());
            let alias = names.first().map(SubjectName::as_text).unwrap_or_default();
            let p12 = certs::pkcs12(&generated, &chain, &alias, &password, args.p12_legacy)?;
            files.write(p12_path, &p12, KEY_MODE).map_err(with_force_hint)?;
            kinds.push("pkcs12");
        }
        Ok(Summary { generated, ca: ca_info })
    })();
    let summary = match result {
        Ok(summary) => summary,
        Err(err) => {
            files.rollback();
            return Err(err);
        }
    };
    emit_files(ui, &files, &kinds);
    report_leaf(args, &names, &paths, &summary, now, out)
}

struct Summary {
    generated: certs::GeneratedCert,
    /// The CA's directory, the CA, and whether it was made now.
    ca: Option<(PathBuf, CertAuthority, bool)>,
}

fn report_leaf(
    args: &GenCertArgs,
    names: &[SubjectName],
    paths: &LeafFiles,
    summary: &Summary,
    now: OffsetDateTime,
    out: &mut Output,
) -> Result<()> {
    let info = certs::inspect(summary.generated.cert_der.as_ref()).map_err(|e| anyhow::anyhow!(e))?;
    let cert_file = paths.cert.display().to_string();
    let key_file = paths.key.display().to_string();
    let mut ca_json = serde_json::Value::Null;
    if let Some((dir, _, true)) = &summary.ca {
        out.line(format!("Created a new local CA in {} (clients trust its {CA_CERT_FILE})", dir.display()));
    }
    if paths.combined() {
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
    out.field("Key type:", KeyType::description(args.key_type.unwrap_or_default()));
    out.field("Usages:", info.extended_key_usage.join(", "));
    out.field(
        "Expires:",
        format!("{} ({})", certs::format_time(info.not_after), certs::expiry_phrase(info.not_after, now)),
    );
    out.field("SHA-256:", info.sha256.to_string());
    let ca_file = match &summary.ca {
        Some((dir, ca, created)) => {
            let ca_path = dir.join(CA_CERT_FILE);
            out.field("Signed by:", format!("{} ({})", info.issuer, ca_path.display()));
            ca_json = json!({
                "dir": dir.display().to_string(),
                "cert": ca_path.display().to_string(),
                "created": created,
                "not_after": certs::rfc3339(ca.not_after()),
                "sha256": Pin::of_certificate(ca.cert_der().as_ref()).to_string(),
            });
            ca_path.display().to_string()
        }
        None => {
            out.field("Signed by:", "itself (self-signed: clients trust the certificate itself)");
            cert_file.clone()
        }
    };
    let commands = commands(names, paths, &ca_file, args.client);
    if !commands.is_empty() {
        out.line("");
    }
    for (heading, lines) in &commands {
        out.line(heading);
        for line in lines {
            out.line(format!("  {line}"));
        }
    }
    if args.json {
        let mut files = vec![
            json!({ "path": cert_file, "kind": if paths.combined() { "certificate_and_key" } else { "certificate" } }),
        ];
        if !paths.combined() {
            files.push(json!({ "path": key_file, "kind": "key" }));
        }
        if let Some(p12) = &paths.p12 {
            files.push(json!({ "path": p12.display().to_string(), "kind": "pkcs12" }));
        }
        out.json = Some(json!({
            "files": files,
            "sans": info.names,
            "key_type": args.key_type.unwrap_or_default().name(),
            "extended_key_usage": info.extended_key_usage,
            "not_before": certs::rfc3339(info.not_before),
            "not_after": certs::rfc3339(info.not_after),
            "sha256": info.sha256.to_string(),
            "self_signed": summary.ca.is_none(),
            "ca": ca_json,
            "commands": commands.iter().flat_map(|(_, lines)| lines.clone()).collect::<Vec<_>>(),
        }));
    }
    Ok(())
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
fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-[]".contains(c))
        && !s.starts_with('-');
    if safe { s.to_string() } else { format!("'{}'", s.replace('\'', r"'\''")) }
}

#[cfg(test)]
mod tests {
    use super::*;

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
