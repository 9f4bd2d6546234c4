//! Error text from dependencies put into words for a one-line message: rustls and
//! x509-parser show some causes in Rust's Debug shapes (`Other(OtherError(CaUsedAsEndEntity))`,
//! `IPAddress(7f:00:00:01)`, `DnsName("x")`, `InvalidCharacter(0)`), which a user should
//! read as "ca used as end entity", `127.0.0.1`, `x` and "the byte 0x00".

/// Rust Debug shapes that a dependency's error text carries, put into words: rustls's
/// `Other(OtherError(CaUsedAsEndEntity))` becomes "ca used as end entity", its names and
/// x509-parser's `IpAddress(..)`, `IPAddress(7f:00:00:01)`, `DnsName("x")` become
/// `127.0.0.1` and `x`.
pub fn plain_words(text: &str) -> String {
    let mut out = text.to_string();
    for (open, kind) in [
        ("Other(OtherError(", Shape::Words),
        ("OtherError(", Shape::Words),
        ("Other(", Shape::Words),
        ("IpAddress(", Shape::Ip),
        ("IPAddress(", Shape::Ip),
        ("DnsName(", Shape::Name),
        ("DNSName(", Shape::Name),
        ("InvalidCharacter(", Shape::Character),
    ] {
        while let Some(start) = out.find(open) {
            let inner_start = start + open.len();
            let closers = open.matches('(').count();
            let Some(len) = out[inner_start..].find(&")".repeat(closers)) else { break };
            let inner = out[inner_start..inner_start + len].to_string();
            let replacement = match kind {
                Shape::Words => camel_to_words(&inner),
                Shape::Ip => ip_words(&inner),
                Shape::Name => inner.trim_matches('"').to_string(),
                Shape::Character => match inner.parse::<u8>() {
                    Ok(byte) if byte.is_ascii_graphic() => format!("the character '{}'", byte as char),
                    Ok(byte) => format!("the byte 0x{byte:02x}"),
                    Err(_) => format!("the character {inner}"),
                },
            };
            out.replace_range(start..inner_start + len + closers, &replacement);
        }
    }
    out
}

#[derive(Clone, Copy)]
enum Shape {
    Words,
    Ip,
    Name,
    Character,
}

/// `CaUsedAsEndEntity` -> "ca used as end entity"; an all-capitals word (`BadDER`) keeps
/// its capitals: "bad DER".
fn camel_to_words(name: &str) -> String {
    let mut words: Vec<String> = Vec::new();
    for c in name.chars() {
        let boundary = c.is_ascii_uppercase()
            && words.last().is_some_and(|w| w.chars().last().is_some_and(|l| !l.is_ascii_uppercase()));
        if words.is_empty() || boundary {
            words.push(String::new());
        }
        words.last_mut().unwrap().push(c);
    }
    words
        .iter()
        .map(|w| {
            if w.len() > 1 && w.chars().all(|c| c.is_ascii_uppercase()) {
                w.clone()
            } else {
                w.to_lowercase()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `7f:00:00:01` (x509-parser's bytes), `127.0.0.1`, `V4(..)`: the address as usually written.
fn ip_words(inner: &str) -> String {
    let hex: Vec<u8> = inner.split(':').filter_map(|b| u8::from_str_radix(b, 16).ok()).collect();
    let from_bytes = match hex.len() {
        4 if inner.len() == 11 => <[u8; 4]>::try_from(hex.as_slice()).ok().map(std::net::IpAddr::from),
        16 if inner.len() == 47 => <[u8; 16]>::try_from(hex.as_slice()).ok().map(std::net::IpAddr::from),
        _ => None,
    };
    match from_bytes.or_else(|| inner.parse::<std::net::IpAddr>().ok()) {
        Some(ip) => ip.to_string(),
        None => inner.to_string(),
    }
}

/// Advice for the TLS failures users meet most: what to do, naming the flags.
pub fn tls_hint(tls: &rustls::Error) -> Option<&'static str> {
    use rustls::{AlertDescription, CertificateError, Error as Tls};
    if let Tls::InvalidCertificate(CertificateError::Other(other)) = tls
        && format!("{other:?}").contains("CaUsedAsEndEntity")
    {
        return Some(
            "the server presents a CA certificate (CA:TRUE) as its own, as a self-signed certificate made \
             with `openssl req -x509` is: trust it as itself by passing the file with --ca FILE, or pin it with --pin",
        );
    }
    Some(match tls {
        Tls::InvalidCertificate(CertificateError::UnknownIssuer | CertificateError::BadSignature)
        | Tls::InvalidCertificate(CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext {
            ..
        }) => {
            "the certificate is not signed by a CA you trust: give its CA (or the certificate itself) with --ca FILE, \
             or pin it with --pin (see it with: streamtool connect -z --tls -k --show-cert ADDR)"
        }
        Tls::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => {
            "the certificate is for other names: connect by one of them, or verify another name with --sni NAME"
        }
        Tls::InvalidCertificate(CertificateError::Expired | CertificateError::ExpiredContext { .. }) => {
            "the certificate has expired; renew it (streamtool gen-cert) or check the clock"
        }
        Tls::AlertReceived(AlertDescription::CertificateRequired) => {
            "the server requires a client certificate: add --cert FILE --key FILE"
        }
        Tls::AlertReceived(AlertDescription::ProtocolVersion) | Tls::PeerIncompatible(_) => {
            "no TLS version or cipher in common: check --tls-min/--tls-max (TLS 1.2 is the oldest supported)"
        }
        Tls::InvalidMessage(_)
        | Tls::InappropriateMessage { .. }
        | Tls::InappropriateHandshakeMessage { .. } => "the peer does not seem to speak TLS on this port",
        _ => return None,
    })
}

/// A usage error from clap as one line, as every other error is: the message, clap's tip
/// if it has one, and which `--help` to read. (`say` escapes control characters of the
/// offending argument, which the message echoes.) `args` are the command line's, after
/// the program's name.
pub fn usage_line(err: &clap::Error, command: &clap::Command, args: impl Iterator<Item = String>) -> String {
    let text = err.render().to_string();
    let mut message = String::new();
    let mut tips = Vec::new();
    let mut in_message = false;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("error: ") {
            message = rest.trim().to_string();
            in_message = true;
        } else if in_message && line.starts_with("  ") {
            // "the following required arguments were not provided:" and its list.
            let separator = if message.ends_with(':') { " " } else { ", " };
            message = format!("{message}{separator}{}", line.trim());
        } else {
            in_message = false;
            if let Some(rest) = line.trim().strip_prefix("tip: ") {
                tips.push(rest.to_string());
            }
        }
    }
    // The subcommand's own help, if one was named.
    let args: Vec<String> = args.collect();
    let command = command
        .get_subcommands()
        .map(|sub| sub.get_name().to_string())
        .find(|name| args.iter().any(|arg| arg == name))
        .map_or("streamtool".to_string(), |name| format!("streamtool {name}"));
    if message.is_empty() {
        message = text.lines().next().unwrap_or_default().to_string();
    }
    let message = message.trim_end_matches('.').to_string();
    let tips: String = tips.iter().map(|tip| format!(" ({tip})")).collect();
    // A value echoed back may hold a proxy URL: never show its credentials.
    format!("{message}{tips}; see `{command} --help`")
}

/// An error and its causes on one line, repeats dropped, in plain words.
pub fn one_line(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    crate::words::plain_words(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rustls_other_errors_become_words() {
        assert_eq!(
            plain_words("invalid peer certificate: Other(OtherError(CaUsedAsEndEntity))"),
            "invalid peer certificate: ca used as end entity"
        );
        assert_eq!(plain_words("x: OtherError(UnsupportedCertVersion)"), "x: unsupported cert version");
        assert_eq!(plain_words("Other(NoCertificatesPresented)"), "no certificates presented");
    }

    #[test]
    fn names_and_addresses_are_written_as_usual() {
        assert_eq!(plain_words("not valid for IPAddress(7f:00:00:01)"), "not valid for 127.0.0.1");
        assert_eq!(plain_words("not valid for IpAddress(::1)"), "not valid for ::1");
        assert_eq!(
            plain_words("for DnsName(\"example.com\") and DNSName(\"a.test\")"),
            "for example.com and a.test"
        );
        let v6 = ["00"; 15].join(":") + ":01";
        assert_eq!(plain_words(&format!("IPAddress({v6})")), "::1");
        // What is not an address stays as it was.
        assert_eq!(plain_words("IpAddress(nowhere)"), "nowhere");
    }

    #[test]
    fn invalid_characters_are_shown_or_given_as_bytes() {
        assert_eq!(plain_words("InvalidCharacter(65)"), "the character 'A'");
        assert_eq!(plain_words("InvalidCharacter(0)"), "the byte 0x00");
        assert_eq!(plain_words("InvalidCharacter(x)"), "the character x");
    }

    #[test]
    fn camel_case_splits_into_lower_case_words_keeping_acronyms() {
        assert_eq!(camel_to_words("CaUsedAsEndEntity"), "ca used as end entity");
        assert_eq!(camel_to_words("BadDER"), "bad DER");
        assert_eq!(ip_words("V4"), "V4");
    }

    #[test]
    fn text_without_shapes_and_unclosed_shapes_stay_as_they_are() {
        assert_eq!(plain_words("connection refused"), "connection refused");
        assert_eq!(plain_words("Other(OtherError(cut"), "Other(OtherError(cut");
    }
}
