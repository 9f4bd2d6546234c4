//! `connect --require EXPR`: checks of a finished TLS handshake that a script can trust.
//!
//! A requirement is one clause, `KEY OP VALUE`, parsed into a typed [`Check`] and
//! evaluated against what was negotiated ([`Negotiated`]) into an [`Outcome`]: whether it
//! holds, and the expected and actual values in words. The grammar (docs/tls.md, "Checks
//! for scripts"):
//!
//! | clause | operators | holds when |
//! |---|---|---|
//! | `tls OP 1.2\|1.3` | `= >= > <= <` | the negotiated version compares so |
//! | `cipher=NAME` | `=` | the cipher suite is NAME (rustls' `TLS13_AES_128_GCM_SHA256` or the IANA `TLS_AES_128_GCM_SHA256`; any case) |
//! | `group=NAME` | `=` | the key-exchange group is NAME (`X25519`, `secp256r1` alias `P-256`, `X25519MLKEM768`, ...) |
//! | `alpn=PROTO` | `=` | the ALPN protocol agreed on is PROTO |
//! | `expires>PERIOD` | `>` | the leaf certificate's not-after is more than PERIOD from now (`30d`, `2w`, `12h`) |
//! | `key=rsa\|ec\|ed25519\|ed448` | `=` | the leaf's public key is of that kind |
//! | `key-bits OP N` | `= >= > <= <` | the leaf's key size compares so (RSA: the modulus; EC: the curve, 256/384/521; Ed25519 256, Ed448 456) |
//! | `san=NAME` | `=` | the leaf lists NAME among its subject alternative names (a DNS name, any case, or an IP address; a wildcard entry only when written as that wildcard) |
//! | `chain OP N` | `= >= > <= <` | the peer sent that many certificates |
//! | `ocsp` (or `ocsp=stapled`) | | the server stapled an OCSP response to its certificate (not checked: see [`Check::Ocsp`]) |

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;

use crate::certs::{format_time, inspect};
use crate::streams::tls::{TlsStream, TlsVersion};

/// The keys a clause may start with, as the errors list them.
pub const KEYS: &str = "tls, cipher, group, alpn, expires, key, key-bits, san, chain, ocsp";

/// The key-exchange groups `group=` knows (lowercase; `P-256` and the like are aliases).
const GROUPS: [&str; 14] = [
    "x25519",
    "x448",
    "secp256r1",
    "secp384r1",
    "secp521r1",
    "x25519mlkem768",
    "secp256r1mlkem768",
    "mlkem512",
    "mlkem768",
    "mlkem1024",
    "ffdhe2048",
    "ffdhe3072",
    "ffdhe4096",
    "ffdhe8192",
];

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// `=`
    Eq,
    /// `>=`
    Ge,
    /// `>`
    Gt,
    /// `<=`
    Le,
    /// `<`
    Lt,
}

impl Cmp {
    fn holds<T: Ord>(self, actual: T, wanted: T) -> bool {
        match self {
            Cmp::Eq => actual == wanted,
            Cmp::Ge => actual >= wanted,
            Cmp::Gt => actual > wanted,
            Cmp::Le => actual <= wanted,
            Cmp::Lt => actual < wanted,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Cmp::Eq => "=",
            Cmp::Ge => ">=",
            Cmp::Gt => ">",
            Cmp::Le => "<=",
            Cmp::Lt => "<",
        }
    }

    /// `at least 2 certificates`, `exactly 1 certificate`.
    fn phrase<N: fmt::Display + Into<u64> + Copy>(self, n: N, unit: &str) -> String {
        let plural = if n.into() == 1 { "" } else { "s" };
        let how = match self {
            Cmp::Eq => "exactly",
            Cmp::Ge => "at least",
            Cmp::Gt => "more than",
            Cmp::Le => "at most",
            Cmp::Lt => "fewer than",
        };
        format!("{how} {n} {unit}{plural}")
    }
}

/// The kinds of public key `key=` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA.
    Rsa,
    /// ECDSA on any curve.
    Ec,
    /// Ed25519.
    Ed25519,
    /// Ed448.
    Ed448,
}

impl KeyKind {
    fn words(self) -> &'static str {
        match self {
            KeyKind::Rsa => "an RSA key",
            KeyKind::Ec => "an EC key",
            KeyKind::Ed25519 => "an Ed25519 key",
            KeyKind::Ed448 => "an Ed448 key",
        }
    }

    /// Whether `key_type`, as [`crate::certs::CertInfo`] names it (`RSA 2048`,
    /// `ECDSA P-256`, `EC (...)`, `Ed25519`), is of this kind.
    fn matches(self, key_type: &str) -> bool {
        match self {
            KeyKind::Rsa => key_type.starts_with("RSA"),
            KeyKind::Ec => key_type.starts_with("EC"),
            KeyKind::Ed25519 => key_type == "Ed25519",
            KeyKind::Ed448 => key_type == "Ed448",
        }
    }
}

/// What one clause checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// `tls OP VERSION`.
    Tls(Cmp, TlsVersion),
    /// `cipher=NAME`.
    Cipher(String),
    /// `group=NAME`.
    Group(String),
    /// `alpn=PROTO`.
    Alpn(String),
    /// `expires>PERIOD`: the leaf is valid for more than this long from now.
    Expires(Duration),
    /// `key=KIND`.
    Key(KeyKind),
    /// `key-bits OP N`.
    KeyBits(Cmp, u32),
    /// `san=NAME`.
    San(String),
    /// `chain OP N`.
    Chain(Cmp, usize),
    /// `ocsp`: the server stapled an OCSP response. Only its presence: rustls hands the
    /// response over unchecked, and its status read without verifying the responder's
    /// signature would be the server's own word, so there is no `ocsp=good`.
    Ocsp,
}

/// One `--require` clause: its text as given and what it checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// The clause as given (trimmed), to name it in messages and events.
    pub text: String,
    /// What it checks.
    pub check: Check,
}

/// The facts of a finished handshake that clauses are checked against.
#[derive(Debug, Clone, Default)]
pub struct Negotiated {
    /// The TLS version.
    pub version: Option<TlsVersion>,
    /// The cipher suite, as rustls names it (`TLS13_AES_256_GCM_SHA384`).
    pub cipher: Option<String>,
    /// The key-exchange group, as rustls names it (`X25519`, `secp256r1`).
    pub group: Option<String>,
    /// The ALPN protocol agreed on.
    pub alpn: Option<Vec<u8>>,
    /// The certificates the peer sent, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The OCSP response the server stapled, if any.
    pub stapled_ocsp: Option<Vec<u8>>,
}

impl Negotiated {
    /// What `tls` negotiated.
    pub fn of<IO>(tls: &TlsStream<IO>) -> Negotiated
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
    {
        Negotiated {
            version: tls.protocol_version(),
            cipher: tls.cipher_suite(),
            group: tls.key_exchange_group(),
            alpn: tls.alpn_protocol(),
            chain: tls.peer_certificates(),
            stapled_ocsp: tls.stapled_ocsp().map(<[u8]>::to_vec),
        }
    }
}

/// The result of one clause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The clause as given.
    pub clause: String,
    /// Whether it holds.
    pub ok: bool,
    /// What it asks for, in words (`TLS 1.3 or newer`).
    pub expected: String,
    /// What was found (`TLSv1.2`).
    pub actual: String,
}

impl Outcome {
    /// The line that reports a failed clause:
    /// `--require tls>=1.3 failed: expected TLS 1.3 or newer, got TLSv1.2`.
    pub fn failure_line(&self) -> String {
        format!("--require {} failed: expected {}, got {}", self.clause, self.expected, self.actual)
    }
}

fn version_number(v: TlsVersion) -> &'static str {
    match v {
        TlsVersion::V1_2 => "1.2",
        TlsVersion::V1_3 => "1.3",
    }
}

/// `p-256` and `prime256v1` are `secp256r1`; other names lowercased.
fn group_name(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    match lower.as_str() {
        "p-256" | "p256" | "prime256v1" => "secp256r1".into(),
        "p-384" | "p384" => "secp384r1".into(),
        "p-521" | "p521" => "secp521r1".into(),
        _ => lower,
    }
}

/// Whether the rustls cipher name `actual` is `wanted` (rustls' or the IANA name, any
/// case).
fn same_cipher(wanted: &str, actual: &str) -> bool {
    let (wanted, actual) = (wanted.to_ascii_uppercase(), actual.to_ascii_uppercase());
    if wanted == actual {
        return true;
    }
    // TLS 1.3 suites: IANA `TLS_AES_128_GCM_SHA256` is rustls' `TLS13_AES_128_GCM_SHA256`.
    match (wanted.strip_prefix("TLS_"), actual.strip_prefix("TLS13_")) {
        (Some(w), Some(a)) => w == a,
        _ => false,
    }
}

/// The key's size in bits, from [`crate::certs::CertInfo::key_type`].
fn key_bits(key_type: &str) -> Option<u32> {
    if let Some(bits) = key_type.strip_prefix("RSA ") {
        return bits.parse().ok().filter(|b| *b > 0);
    }
    match key_type {
        "ECDSA P-256" => Some(256),
        "ECDSA P-384" => Some(384),
        "ECDSA P-521" => Some(521),
        "Ed25519" => Some(256),
        "Ed448" => Some(456),
        _ => None,
    }
}

/// The article for a key type (`an RSA 2048 key`, `an ECDSA P-256 key`, `an Ed25519 key`).
fn a_key(key_type: &str) -> String {
    format!("an {key_type} key")
}

impl FromStr for Requirement {
    type Err = String;

    /// Parses `KEY OP VALUE` (see the module's table).
    fn from_str(s: &str) -> Result<Self, String> {
        let text = s.trim().to_string();
        if text.eq_ignore_ascii_case("ocsp") {
            return Ok(Requirement { text, check: Check::Ocsp });
        }
        let Some(at) = text.find(['<', '>', '=']) else {
            return Err(format!(
                "{text:?} is not a clause: write KEY OP VALUE, e.g. tls>=1.3 (keys: {KEYS})"
            ));
        };
        let key = text[..at].trim().to_ascii_lowercase();
        let rest = &text[at..];
        let op = if rest.starts_with(">=") {
            Cmp::Ge
        } else if rest.starts_with("<=") {
            Cmp::Le
        } else if rest.starts_with('>') {
            Cmp::Gt
        } else if rest.starts_with('<') {
            Cmp::Lt
        } else {
            Cmp::Eq
        };
        let value = rest[op.symbol().len()..].trim();
        if value.is_empty() {
            return Err(format!("{text:?} has no value after {}", op.symbol()));
        }
        let only = |allowed: &[Cmp], form: &str| -> Result<(), String> {
            if allowed.contains(&op) {
                Ok(())
            } else {
                Err(format!("{text:?}: {key} does not take {} (write {form})", op.symbol()))
            }
        };
        let number = |what: &str| -> Result<u32, String> {
            value.parse().map_err(|_| format!("{text:?}: {value:?} is not a number of {what}"))
        };
        let check = match key.as_str() {
            "tls" => Check::Tls(op, value.parse().map_err(|e: String| format!("{text:?}: {e}"))?),
            "cipher" => {
                only(&[Cmp::Eq], "cipher=NAME")?;
                Check::Cipher(value.to_string())
            }
            "group" => {
                only(&[Cmp::Eq], "group=NAME")?;
                if !GROUPS.contains(&group_name(value).as_str()) {
                    return Err(format!(
                        "{text:?}: {value:?} is not a key-exchange group (X25519, secp256r1 or P-256, secp384r1, \
                         secp521r1, X25519MLKEM768, ...)"
                    ));
                }
                Check::Group(value.to_string())
            }
            "alpn" => {
                only(&[Cmp::Eq], "alpn=PROTOCOL")?;
                Check::Alpn(value.to_string())
            }
            "expires" => {
                only(&[Cmp::Gt], "expires>PERIOD, e.g. expires>30d")?;
                Check::Expires(crate::values::parse_period(value).map_err(|e| format!("{text:?}: {e}"))?)
            }
            "key" => {
                only(&[Cmp::Eq], "key=rsa, key=ec, key=ed25519 or key=ed448")?;
                Check::Key(match value.to_ascii_lowercase().as_str() {
                    "rsa" => KeyKind::Rsa,
                    "ec" | "ecdsa" => KeyKind::Ec,
                    "ed25519" => KeyKind::Ed25519,
                    "ed448" => KeyKind::Ed448,
                    _ => {
                        return Err(format!(
                            "{text:?}: {value:?} is not a key kind (rsa, ec, ed25519 or ed448)"
                        ));
                    }
                })
            }
            "key-bits" => Check::KeyBits(op, number("bits")?),
            "san" => {
                only(&[Cmp::Eq], "san=NAME")?;
                Check::San(value.to_string())
            }
            "chain" => Check::Chain(op, number("certificates")? as usize),
            "ocsp" => {
                only(&[Cmp::Eq], "ocsp")?;
                match value.to_ascii_lowercase().as_str() {
                    "stapled" => Check::Ocsp,
                    "good" => {
                        return Err(format!(
                            "{text:?}: the stapled OCSP response is not verified (rustls hands it over unchecked), so \
                             its status would be the server's own word; write ocsp (a response was stapled)"
                        ));
                    }
                    _ => return Err(format!("{text:?}: write ocsp or ocsp=stapled")),
                }
            }
            _ => return Err(format!("{text:?}: unknown key {key:?} (keys: {KEYS})")),
        };
        Ok(Requirement { text, check })
    }
}

impl Requirement {
    /// Checks the clause against what was negotiated, at `now`.
    pub fn evaluate(&self, facts: &Negotiated, now: OffsetDateTime) -> Outcome {
        let leaf = facts.chain.first().map(|der| inspect(der.as_ref()));
        let leaf_problem = || match &leaf {
            None => "no certificate".to_string(),
            Some(Err(_)) => "a certificate that does not parse".to_string(),
            Some(Ok(_)) => unreachable!("only called without a parsed leaf"),
        };
        let (ok, expected, actual) = match &self.check {
            Check::Tls(op, wanted) => {
                let n = version_number(*wanted);
                let expected = match op {
                    Cmp::Eq => format!("TLS {n}"),
                    Cmp::Ge => format!("TLS {n} or newer"),
                    Cmp::Gt => format!("newer than TLS {n}"),
                    Cmp::Le => format!("TLS {n} or older"),
                    Cmp::Lt => format!("older than TLS {n}"),
                };
                let ok = facts.version.is_some_and(|v| op.holds(v, *wanted));
                (ok, expected, facts.version.map_or("no TLS version".into(), |v| v.to_string()))
            }
            Check::Cipher(name) => {
                let ok = facts.cipher.as_deref().is_some_and(|c| same_cipher(name, c));
                (ok, name.clone(), facts.cipher.clone().unwrap_or_else(|| "none".into()))
            }
            Check::Group(name) => {
                let ok = facts.group.as_deref().is_some_and(|g| group_name(g) == group_name(name));
                (ok, format!("key exchange {name}"), facts.group.clone().unwrap_or_else(|| "none".into()))
            }
            Check::Alpn(proto) => {
                let ok = facts.alpn.as_deref() == Some(proto.as_bytes());
                let actual = facts
                    .alpn
                    .as_deref()
                    .map_or("no ALPN protocol".into(), |p| String::from_utf8_lossy(p).into());
                (ok, format!("ALPN {proto}"), actual)
            }
            Check::Expires(period) => {
                let value = self.text[self.text.find('>').map_or(0, |i| i + 1)..].trim();
                let expected = format!("a leaf certificate valid for more than {value}");
                match &leaf {
                    Some(Ok(info)) => {
                        let until = now + *period;
                        let left = crate::certs::expiry_phrase(info.not_after, now);
                        (
                            info.not_after > until,
                            expected,
                            format!("one valid until {} ({left})", format_time(info.not_after)),
                        )
                    }
                    _ => (false, expected, leaf_problem()),
                }
            }
            Check::Key(kind) => match &leaf {
                Some(Ok(info)) => (kind.matches(&info.key_type), kind.words().into(), a_key(&info.key_type)),
                _ => (false, kind.words().into(), leaf_problem()),
            },
            Check::KeyBits(op, bits) => {
                let expected = format!("a key of {}", op.phrase(*bits, "bit"));
                match &leaf {
                    Some(Ok(info)) => match key_bits(&info.key_type) {
                        Some(actual) => (
                            op.holds(actual, *bits),
                            expected,
                            format!("{} ({actual} bits)", a_key(&info.key_type)),
                        ),
                        None => (false, expected, format!("{} of unknown size", a_key(&info.key_type))),
                    },
                    _ => (false, expected, leaf_problem()),
                }
            }
            Check::San(name) => {
                let expected = format!("a leaf certificate naming {name}");
                match &leaf {
                    Some(Ok(info)) => {
                        let wanted_ip: Option<IpAddr> = name.trim_matches(['[', ']']).parse().ok();
                        let ok = info.names.iter().any(|san| {
                            if let Some(dns) = san.strip_prefix("DNS:") {
                                dns.eq_ignore_ascii_case(name)
                            } else if let Some(ip) = san.strip_prefix("IP Address:") {
                                wanted_ip.is_some() && ip.parse::<IpAddr>().ok() == wanted_ip
                            } else {
                                false
                            }
                        });
                        let actual = if info.names.is_empty() {
                            "one with no subject alternative names".to_string()
                        } else {
                            format!("one naming {}", info.names.join(", "))
                        };
                        (ok, expected, actual)
                    }
                    _ => (false, expected, leaf_problem()),
                }
            }
            Check::Chain(op, n) => {
                let count = facts.chain.len();
                let actual = format!("{count} certificate{}", if count == 1 { "" } else { "s" });
                (
                    op.holds(count, *n),
                    format!("{} from the peer", op.phrase(*n as u64, "certificate")),
                    actual,
                )
            }
            Check::Ocsp => {
                let actual = match &facts.stapled_ocsp {
                    None => "none".to_string(),
                    Some(der) => format!("one of {} bytes", der.len()),
                };
                (facts.stapled_ocsp.is_some(), "a stapled OCSP response".into(), actual)
            }
        };
        Outcome { clause: self.text.clone(), ok, expected, actual }
    }
}

/// Checks every clause against a finished handshake, in the order given (a `require`
/// event each), and returns the lines of those that failed
/// (`--require CLAUSE failed: expected X, got Y`).
pub fn check_all<IO>(
    tls: &crate::streams::tls::TlsStream<IO>,
    require: &[Requirement],
    report: &dyn crate::event::Report,
) -> Vec<String>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    if require.is_empty() {
        return Vec::new();
    }
    let facts = Negotiated::of(tls);
    let now = OffsetDateTime::now_utc();
    let mut failed = Vec::new();
    for requirement in require {
        let outcome = requirement.evaluate(&facts, now);
        report.emit(|| crate::event::Event::Require {
            clause: outcome.clause.clone(),
            ok: outcome.ok,
            expected: outcome.expected.clone(),
            actual: outcome.actual.clone(),
        });
        if !outcome.ok {
            failed.push(outcome.failure_line());
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::self_signed;

    fn req(s: &str) -> Requirement {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn facts(days: u32) -> Negotiated {
        let cert = self_signed(&["localhost", "127.0.0.1"], days).unwrap();
        Negotiated {
            version: Some(TlsVersion::V1_2),
            cipher: Some("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".into()),
            group: Some("secp256r1".into()),
            alpn: Some(b"h2".to_vec()),
            chain: vec![cert.cert_der],
            stapled_ocsp: None,
        }
    }

    fn line(s: &str, facts: &Negotiated) -> (bool, String) {
        let outcome = req(s).evaluate(facts, OffsetDateTime::now_utc());
        (outcome.ok, outcome.failure_line())
    }

    #[test]
    fn clauses_parse_into_checks() {
        assert_eq!(req(" tls>=1.3 ").check, Check::Tls(Cmp::Ge, TlsVersion::V1_3));
        assert_eq!(req("tls=TLSv1.2").check, Check::Tls(Cmp::Eq, TlsVersion::V1_2));
        assert_eq!(req("expires>30d").check, Check::Expires(Duration::from_secs(30 * 86_400)));
        assert_eq!(req("key=ECDSA").check, Check::Key(KeyKind::Ec));
        assert_eq!(req("key-bits>=2048").check, Check::KeyBits(Cmp::Ge, 2048));
        assert_eq!(req("chain<3").check, Check::Chain(Cmp::Lt, 3));
        assert_eq!(req("group=P-256").check, Check::Group("P-256".into()));
        assert_eq!(req("tls>=1.3").text, "tls>=1.3");
    }

    #[test]
    fn bad_clauses_are_named_with_the_reason() {
        let err = |s: &str| s.parse::<Requirement>().unwrap_err();
        assert_eq!(
            err("tls"),
            format!("\"tls\" is not a clause: write KEY OP VALUE, e.g. tls>=1.3 (keys: {KEYS})")
        );
        assert_eq!(err("color=red"), format!("\"color=red\": unknown key \"color\" (keys: {KEYS})"));
        assert_eq!(err("cipher>=x"), "\"cipher>=x\": cipher does not take >= (write cipher=NAME)");
        assert_eq!(
            err("expires<30d"),
            "\"expires<30d\": expires does not take < (write expires>PERIOD, e.g. expires>30d)"
        );
        assert_eq!(err("tls>="), "\"tls>=\" has no value after >=");
        assert!(err("tls>=1.4").starts_with("\"tls>=1.4\": "), "{}", err("tls>=1.4"));
        assert!(err("group=X25520").contains("is not a key-exchange group"));
        assert!(err("key=dsa").contains("is not a key kind"));
        assert!(err("chain>=two").contains("\"two\" is not a number of certificates"));
        assert!(err("expires>30").contains("needs a unit"));
    }

    #[test]
    fn each_clause_passes_and_fails_with_expected_and_actual() {
        let f = facts(10);
        assert_eq!(
            line("tls>=1.3", &f),
            (false, "--require tls>=1.3 failed: expected TLS 1.3 or newer, got TLSv1.2".into())
        );
        assert!(line("tls=1.2", &f).0 && line("tls<=1.2", &f).0 && !line("tls<1.2", &f).0);
        assert!(line("cipher=tls_ecdhe_ecdsa_with_aes_128_gcm_sha256", &f).0);
        assert_eq!(
            line("cipher=TLS_AES_128_GCM_SHA256", &f).1,
            "--require cipher=TLS_AES_128_GCM_SHA256 failed: expected TLS_AES_128_GCM_SHA256, got \
             TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
        );
        assert!(line("group=P-256", &f).0 && line("group=secp256r1", &f).0);
        assert_eq!(
            line("group=X25519", &f).1,
            "--require group=X25519 failed: expected key exchange X25519, got secp256r1"
        );
        assert!(line("alpn=h2", &f).0);
        assert_eq!(
            line("alpn=http/1.1", &f).1,
            "--require alpn=http/1.1 failed: expected ALPN http/1.1, got h2"
        );
        assert!(line("expires>9d", &f).0);
        let (ok, msg) = line("expires>30d", &f);
        assert!(!ok);
        assert!(
            msg.starts_with("--require expires>30d failed: expected a leaf certificate valid for more than 30d, got one valid until ")
                && msg.ends_with(" UTC (in 10 days)"),
            "{msg}"
        );
        assert!(line("key=ec", &f).0);
        assert_eq!(
            line("key=rsa", &f).1,
            "--require key=rsa failed: expected an RSA key, got an ECDSA P-256 key"
        );
        assert!(line("key-bits>=256", &f).0);
        assert_eq!(
            line("key-bits>=2048", &f).1,
            "--require key-bits>=2048 failed: expected a key of at least 2048 bits, got an ECDSA P-256 key (256 bits)"
        );
        assert!(line("san=LOCALHOST", &f).0 && line("san=127.0.0.1", &f).0);
        assert_eq!(
            line("san=example.com", &f).1,
            "--require san=example.com failed: expected a leaf certificate naming example.com, got one naming \
             DNS:localhost, IP Address:127.0.0.1"
        );
        assert!(line("chain=1", &f).0);
        assert_eq!(
            line("chain>=2", &f).1,
            "--require chain>=2 failed: expected at least 2 certificates from the peer, got 1 certificate"
        );
    }

    #[test]
    fn ocsp_holds_when_a_response_was_stapled() {
        assert_eq!(req("OCSP").check, Check::Ocsp);
        assert_eq!(req("ocsp=stapled").check, Check::Ocsp);
        let err = "ocsp=good".parse::<Requirement>().unwrap_err();
        assert!(err.contains("not verified"), "{err}");
        assert!("ocsp=yes".parse::<Requirement>().is_err());
        let mut f = facts(10);
        assert_eq!(
            line("ocsp", &f),
            (false, "--require ocsp failed: expected a stapled OCSP response, got none".into())
        );
        f.stapled_ocsp = Some(vec![0x30, 0x03, 0x0a, 0x01, 0x00]);
        assert!(line("ocsp", &f).0);
    }

    #[test]
    fn certificate_clauses_fail_without_a_certificate() {
        let f = Negotiated { version: Some(TlsVersion::V1_3), ..Negotiated::default() };
        assert_eq!(
            line("expires>1d", &f).1,
            "--require expires>1d failed: expected a leaf certificate valid for more than 1d, got no certificate"
        );
        assert_eq!(line("key=ec", &f).1, "--require key=ec failed: expected an EC key, got no certificate");
        assert_eq!(line("alpn=h2", &f).1, "--require alpn=h2 failed: expected ALPN h2, got no ALPN protocol");
    }
}
