//! A TLS server run as a service: several certificates, chosen by the name a client asks
//! for (SNI), and reloaded without a restart (SIGHUP, `--reload-on-change`).
//!
//! The certificates come from `--cert`/`--key` pairs (in order) and `--cert-dir` (every
//! `X.pem` with its `X-key.pem`, as `gen-cert` writes them, by file name). A handshake
//! gets the certificate one of whose DNS names is the SNI name (exact first, then a
//! wildcard `*.example.test` for one label), else the default: the first one given. A
//! reload builds the whole server configuration again (certificates, keys, client CAs)
//! and swaps it in ([`LiveConfig`]): handshakes from then on use it, open connections
//! keep theirs; a reload that fails keeps the old one. docs/tls.md, "Several
//! certificates and reload".

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::certs::{self, CertError};
use crate::endpoint::EndpointOptions;
use crate::event::{Event, PinChange, Report};
use crate::stack::options::{OptionsError, Spelling};
use crate::streams::StreamError;
use crate::streams::tls::{ClientAllow, Pin, ServerOptions};

/// How often `--reload-on-change` looks at the files.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// The flags of a TLS server run as a service (`serve`; `pipe`'s `tls-listen:` takes them
/// as options: `cert-dir=DIR`, `reload-on-change`, `keep-pin`).
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "TLS service: several certificates, reload (SIGHUP reloads)")]
pub struct ReloadArgs {
    /// Serve every X.pem with its X-key.pem in DIR (gen-cert's files), after the --cert
    /// ones, by file name; chosen by SNI like repeated --cert. Needs --tls.
    #[arg(long, value_name = "DIR", requires = "tls")]
    pub cert_dir: Option<PathBuf>,

    /// Reload the certificates, keys and --client-ca when one of their files changes
    /// (checked every 2 s), as SIGHUP does. Needs --tls.
    #[arg(long, requires = "tls")]
    pub reload_on_change: bool,

    /// Refuse a reload that changes a certificate's public key (its key pin, which clients
    /// may have pinned): the old certificates stay. Needs --tls.
    #[arg(long, requires = "tls")]
    pub keep_pin: bool,

    /// Admit only client certificates whose subject common name is NAME (exact;
    /// repeatable; any --allow-* match admits). With an allow-list, a client without a
    /// certificate, or whose certificate matches none, is refused in the handshake (and
    /// logged with the identity it presented). Needs --client-ca; kept across reloads.
    #[arg(long, value_name = "NAME", requires = "client_ca", help_heading = "Client allow-list (mTLS)")]
    pub allow_cn: Vec<String>,

    /// Admit client certificates with this subject alternative name: a DNS name or email
    /// (any case), a URI (exact) or an IP address. Repeatable. Needs --client-ca.
    #[arg(long, value_name = "VALUE", requires = "client_ca", help_heading = "Client allow-list (mTLS)")]
    pub allow_san: Vec<String>,

    /// Admit client certificates whose public key has this pin (sha256:HEX, the "key pin"
    /// gen-cert and --show-cert print). Repeatable. Needs --client-ca.
    #[arg(
        long,
        value_name = "sha256:HEX",
        requires = "client_ca",
        help_heading = "Client allow-list (mTLS)"
    )]
    pub allow_spki: Vec<Pin>,
}

impl ReloadArgs {
    /// The options these flags ask for.
    pub fn options(&self) -> ReloadOptions {
        ReloadOptions {
            cert_dir: self.cert_dir.clone(),
            reload_on_change: self.reload_on_change,
            keep_pin: self.keep_pin,
            allow: ClientAllow {
                cns: self.allow_cn.clone(),
                sans: self.allow_san.clone(),
                spki: self.allow_spki.clone(),
            },
        }
    }
}

/// A TLS server's service options (`--cert-dir`, `--reload-on-change`, `--keep-pin`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadOptions {
    /// `--cert-dir DIR`, `cert-dir=DIR`.
    pub cert_dir: Option<PathBuf>,
    /// `--reload-on-change`, `reload-on-change`.
    pub reload_on_change: bool,
    /// `--keep-pin`, `keep-pin`.
    pub keep_pin: bool,
    /// The client allow-list: `--allow-cn`, `--allow-san`, `--allow-spki` (`allow-cn=`,
    /// `allow-san=`, `allow-spki=` of `tls-listen:`); needs client CAs.
    pub allow: ClientAllow,
}

/// One certificate served.
#[derive(Debug)]
struct Served {
    /// Its certificate file.
    file: PathBuf,
    /// Its DNS names (subject alternative names), lower case.
    names: Vec<String>,
    /// Its key pin, if it parses.
    key_pin: Option<Pin>,
    /// The chain and the key, as rustls signs with them.
    key: Arc<CertifiedKey>,
}

/// The certificates of a server, the default (for no or an unknown SNI name) first.
#[derive(Debug)]
pub struct CertSet {
    served: Vec<Served>,
    /// The first certificate's chain and key.
    default: crate::streams::tls::Identity,
}

/// The certificate and key files an endpoint's options name, in order: the `cert`/`key`
/// pairs (a `cert` without `key` holds its key), then the pairs of `cert-dir`.
///
/// # Errors
/// [`OptionsError::Usage`] for more keys than certificates, [`OptionsError::Setting`] for a
/// `cert-dir` that cannot be read or holds no pair.
pub fn pairs(options: &EndpointOptions, spelling: Spelling) -> Result<Vec<(PathBuf, PathBuf)>, OptionsError> {
    let (certs, keys) = (&options.cert, &options.key);
    if !keys.is_empty() && keys.len() != certs.len() {
        return Err(OptionsError::Usage(format!(
            "{} {} but {} {}: give one {} per {}, in order, or none (each certificate file then \
             holds its key)",
            certs.len(),
            spelling.name("cert"),
            keys.len(),
            spelling.name("key"),
            spelling.name("key"),
            spelling.name("cert")
        )));
    }
    let mut pairs: Vec<(PathBuf, PathBuf)> =
        certs.iter().enumerate().map(|(i, c)| (c.clone(), keys.get(i).unwrap_or(c).clone())).collect();
    if let Some(dir) = &options.reload.cert_dir {
        let found = dir_pairs(dir).map_err(|e| {
            OptionsError::Setting(format!("{} {}: {e}", spelling.name("cert-dir"), dir.display()))
        })?;
        if found.is_empty() {
            return Err(OptionsError::Setting(format!(
                "{} {}: no certificate in it (X.pem with its key in X-key.pem, as gen-cert writes them)",
                spelling.name("cert-dir"),
                dir.display()
            )));
        }
        pairs.extend(found);
    }
    Ok(pairs)
}

/// Every `X.pem` in `dir` with an `X-key.pem` next to it (not the CA's `ca.pem`), by name.
fn dir_pairs(dir: &Path) -> std::io::Result<Vec<(PathBuf, PathBuf)>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".pem") && !name.ends_with("-key.pem") && !name.starts_with('.'))
        .collect();
    names.sort();
    Ok(names
        .into_iter()
        .filter(|name| name != "ca.pem")
        .filter_map(|name| {
            let key = dir.join(format!("{}-key.pem", name.trim_end_matches(".pem")));
            key.is_file().then(|| (dir.join(&name), key))
        })
        .collect())
}

/// The DNS names of a certificate (its subject alternative names), lower case.
fn dns_names(der: &[u8]) -> Vec<String> {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else { return Vec::new() };
    let Ok(Some(san)) = cert.subject_alternative_name() else { return Vec::new() };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            x509_parser::extensions::GeneralName::DNSName(dns) => Some(dns.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

impl CertSet {
    /// Loads every pair ([`pairs`]): each key checked against its certificate, each error
    /// naming the file. Two certificates for one name: the first is served for it, and a
    /// warning names both. `None` when the options name no certificate.
    ///
    /// # Errors
    /// [`OptionsError`] naming the option and, in its source, the file.
    pub fn load(options: &EndpointOptions, spelling: Spelling) -> Result<Option<CertSet>, OptionsError> {
        let pairs = pairs(options, spelling)?;
        if pairs.is_empty() {
            return Ok(None);
        }
        let what = format!("{}/{}", spelling.name("cert"), spelling.name("key"));
        let provider = crate::streams::tls::provider();
        let mut served: Vec<Served> = Vec::new();
        let mut default = None;
        for (cert, key) in pairs {
            let file_error = |source| OptionsError::File { what: what.clone(), source };
            let identity = certs::load_identity(&cert, &key).map_err(file_error)?;
            let leaf = identity.chain.first().map(|c| c.as_ref().to_vec()).unwrap_or_default();
            let certified =
                CertifiedKey::from_der(identity.chain.clone(), identity.key.clone_key(), &provider)
                    .map_err(|e| file_error(CertError::UnusableKey(key.clone(), e.to_string())))?;
            let names = dns_names(&leaf);
            for name in &names {
                if let Some(first) = served.iter().find(|s| s.names.contains(name)) {
                    tracing::warn!(
                        "{name} is named by both {} and {}: {} (given first) is served for it",
                        first.file.display(),
                        cert.display(),
                        first.file.display()
                    );
                }
            }
            let key_pin = Pin::of_public_key(&leaf).ok();
            served.push(Served { file: cert, names, key_pin, key: Arc::new(certified) });
            default.get_or_insert(identity);
        }
        Ok(default.map(|default| CertSet { served, default }))
    }

    /// The default certificate's chain and key, as the server's identity.
    pub fn default_identity(&self) -> crate::streams::tls::Identity {
        self.default.clone()
    }

    /// How many certificates.
    pub fn len(&self) -> usize {
        self.served.len()
    }

    /// Whether there is none (never, once loaded).
    pub fn is_empty(&self) -> bool {
        self.served.is_empty()
    }

    /// The index of the certificate for `sni`: one with that DNS name, else one whose
    /// wildcard covers it (one label), else the first.
    pub fn pick(&self, sni: Option<&str>) -> usize {
        let Some(sni) = sni.map(|s| s.trim_end_matches('.').to_ascii_lowercase()) else { return 0 };
        if let Some(i) = self.served.iter().position(|s| s.names.contains(&sni)) {
            return i;
        }
        let wildcard = match sni.split_once('.') {
            Some((label, rest)) if !label.is_empty() && !rest.is_empty() => format!("*.{rest}"),
            _ => return 0,
        };
        self.served.iter().position(|s| s.names.contains(&wildcard)).unwrap_or(0)
    }

    /// The key pins that differ between `old` and this set, for the certificate files in
    /// both.
    fn pin_changes(&self, old: &CertSet) -> Vec<PinChange> {
        self.served
            .iter()
            .filter_map(|new| {
                let before = old.served.iter().find(|o| o.file == new.file)?;
                (before.key_pin != new.key_pin).then(|| PinChange {
                    name: new.file.display().to_string(),
                    old_key_sha256: before.key_pin.map(|p| p.to_string()).unwrap_or_default(),
                    new_key_sha256: new.key_pin.map(|p| p.to_string()).unwrap_or_default(),
                })
            })
            .collect()
    }
}

/// Picks a certificate by SNI for each handshake ([`CertSet::pick`]).
#[derive(Debug)]
struct SniResolver(Arc<CertSet>);

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let i = self.0.pick(hello.server_name());
        Some(Arc::clone(&self.0.served[i].key))
    }
}

/// The rustls configuration of `server`, its certificate chosen from `set` by SNI.
///
/// # Errors
/// [`StreamError::TlsConfig`] as [`ServerOptions::build`].
pub fn server_config(
    server: &ServerOptions,
    set: Option<&Arc<CertSet>>,
) -> Result<Arc<ServerConfig>, StreamError> {
    let config = server.build()?;
    let Some(set) = set else { return Ok(config) };
    let mut config = Arc::unwrap_or_clone(config);
    config.cert_resolver = Arc::new(SniResolver(Arc::clone(set)));
    Ok(Arc::new(config))
}

/// A server's rustls configuration, read by each handshake, replaced by a reload.
#[derive(Clone)]
pub struct LiveConfig(Arc<RwLock<Arc<ServerConfig>>>);

impl LiveConfig {
    /// A configuration to start with.
    pub fn new(config: Arc<ServerConfig>) -> Self {
        LiveConfig(Arc::new(RwLock::new(config)))
    }

    /// The configuration for a handshake starting now.
    pub fn current(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Replaces it: handshakes from now on use `config`.
    fn swap(&self, config: Arc<ServerConfig>) {
        *self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner) = config;
    }
}

impl std::fmt::Debug for LiveConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LiveConfig")
    }
}

/// Loads a server's certificates again on request (SIGHUP, a file change).
pub struct Reloader {
    options: EndpointOptions,
    spelling: Spelling,
    live: LiveConfig,
    set: Mutex<Arc<CertSet>>,
    report: Option<Arc<dyn Report>>,
}

/// The servers SIGHUP reloads, and whether a server with a self-signed certificate runs.
static RELOADERS: Mutex<Vec<Arc<Reloader>>> = Mutex::new(Vec::new());
static SELF_SIGNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Marks a TLS server with a self-signed certificate made at start: SIGHUP then says it
/// has nothing to reload.
pub fn note_self_signed() {
    SELF_SIGNED.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// What SIGHUP does: every registered server reloads; a self-signed one says it has
/// nothing to reload. Returns false when there is no TLS server (the caller says SIGHUP is
/// ignored).
pub fn on_sighup() -> bool {
    let reloaders = RELOADERS.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    for reloader in &reloaders {
        reloader.reload("SIGHUP");
    }
    if SELF_SIGNED.load(std::sync::atomic::Ordering::SeqCst) {
        tracing::warn!(
            "SIGHUP: nothing to reload for the self-signed certificate made at start (no --cert, no cert=)"
        );
        return true;
    }
    !reloaders.is_empty()
}

impl Reloader {
    /// Registers a server whose certificates `set` were loaded from `options`, its
    /// configuration in `live`, for SIGHUP; with `reload-on-change`, also watches the
    /// files (a task of the current tokio runtime). Reload events go to `report`.
    pub fn register(
        options: &EndpointOptions,
        spelling: Spelling,
        live: LiveConfig,
        set: Arc<CertSet>,
        report: Option<Arc<dyn Report>>,
    ) -> Arc<Reloader> {
        let reloader =
            Arc::new(Reloader { options: options.clone(), spelling, live, set: Mutex::new(set), report });
        RELOADERS.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(Arc::clone(&reloader));
        if options.reload.reload_on_change {
            let watched = Arc::clone(&reloader);
            tokio::spawn(async move { watched.watch().await });
        }
        reloader
    }

    /// Loads the files again and swaps the new set in, unless a file fails (the old set
    /// stays, a line says why) or, with `keep-pin`, a key changed. Emits a `reload` event.
    pub fn reload(&self, why: &str) {
        let (config, set) = match self.load() {
            Ok(loaded) => loaded,
            Err(error) => {
                tracing::warn!(
                    "reload ({why}) failed, still serving the certificates loaded before: {error}"
                );
                return self.emit(false, Some(error), Vec::new());
            }
        };
        let mut current = self.set.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let changes = set.pin_changes(&current);
        if self.options.reload.keep_pin && !changes.is_empty() {
            let error = format!(
                "{} refused: the key of {} changed (key pin {} -> {}); still serving the certificates \
                 loaded before",
                self.spelling.bare("keep-pin"),
                changes[0].name,
                changes[0].old_key_sha256,
                changes[0].new_key_sha256
            );
            tracing::warn!("reload ({why}): {error}");
            drop(current);
            return self.emit(false, Some(error), changes);
        }
        for change in &changes {
            tracing::warn!(
                "reload ({why}): THE KEY PIN OF {} CHANGED: {} -> {}; clients that pin the old one \
                 (--pin) will refuse this server",
                change.name,
                change.old_key_sha256,
                change.new_key_sha256
            );
        }
        let count = set.len();
        *current = set;
        self.live.swap(config);
        drop(current);
        let line = format!("reloaded {count} certificate{} ({why})", if count == 1 { "" } else { "s" });
        match &self.report {
            Some(report) => report.notice(&line),
            None => tracing::info!("{line}"),
        }
        self.emit(true, None, changes);
    }

    fn emit(&self, ok: bool, error: Option<String>, changes: Vec<PinChange>) {
        if let Some(report) = &self.report {
            let report: &dyn Report = report.as_ref();
            report.emit(|| Event::Reload { ok, error, changes });
        }
    }

    /// The configuration and certificates the files hold now; on failure, why in a line.
    fn load(&self) -> Result<(Arc<ServerConfig>, Arc<CertSet>), String> {
        let (server, _, set) = self.options.server_options(self.spelling).map_err(|e| one_line(&e))?;
        let set = set.ok_or("no certificate")?;
        let config = server_config(&server, Some(&set)).map_err(|e| one_line(&e))?;
        let mut config = Arc::unwrap_or_clone(config);
        // The key log stays the one opened at start.
        config.key_log = Arc::clone(&self.live.current().key_log);
        Ok((Arc::new(config), set))
    }

    /// Every file the configuration is read from: the certificates, keys and client CAs,
    /// and the certificate directory (its own stamp changes when a file is added).
    fn files(&self) -> Vec<PathBuf> {
        let o = &self.options;
        let mut files: Vec<PathBuf> = o.cert.iter().chain(&o.key).chain(&o.client_ca).cloned().collect();
        if let Some(dir) = &o.reload.cert_dir {
            files.push(dir.clone());
            files.extend(dir_pairs(dir).unwrap_or_default().into_iter().flat_map(|(c, k)| [c, k]));
        }
        files
    }

    /// Polls the files every [`POLL_INTERVAL`] and reloads when one changed (its
    /// modification time, size or inode: a rename over it changes the inode).
    async fn watch(self: Arc<Self>) {
        let mut last = stamps(&self.files());
        loop {
            tokio::time::sleep(POLL_INTERVAL).await;
            let now = stamps(&self.files());
            if now != last {
                last = now;
                self.reload("a file changed");
            }
        }
    }
}

/// What identifies a file's content cheaply: (modified, size, inode), or nothing.
type Stamp = Option<(std::time::SystemTime, u64, u64)>;

fn stamps(files: &[PathBuf]) -> Vec<(PathBuf, Stamp)> {
    use crate::platform::fs::MetadataExt;
    files
        .iter()
        .map(|f| {
            let meta = std::fs::metadata(f).ok();
            (f.clone(), meta.and_then(|m| Some((m.modified().ok()?, m.len(), m.ino()))))
        })
        .collect()
}

/// An error and its sources on one line.
fn one_line(err: &dyn std::error::Error) -> String {
    let mut line = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    crate::words::plain_words(&line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_of(names: &[&[&str]]) -> CertSet {
        let mut default = None;
        let served = names
            .iter()
            .enumerate()
            .map(|(i, names)| {
                let made = certs::self_signed(names, 1).unwrap();
                let identity = made.identity();
                default.get_or_insert(identity.clone());
                let key =
                    CertifiedKey::from_der(identity.chain, identity.key, &crate::streams::tls::provider())
                        .unwrap();
                Served {
                    file: PathBuf::from(format!("{i}.pem")),
                    names: names.iter().map(|n| n.to_ascii_lowercase()).collect(),
                    key_pin: None,
                    key: Arc::new(key),
                }
            })
            .collect();
        CertSet { served, default: default.unwrap() }
    }

    #[test]
    fn sni_picks_exact_then_wildcard_then_the_first() {
        let set = set_of(&[&["a.example.test"], &["*.example.test"], &["b.example.test", "c.other.test"]]);
        assert_eq!(set.pick(None), 0);
        assert_eq!(set.pick(Some("a.example.test")), 0);
        assert_eq!(set.pick(Some("B.Example.Test")), 2, "exact before wildcard, any case");
        assert_eq!(set.pick(Some("x.example.test")), 1, "wildcard");
        assert_eq!(set.pick(Some("y.x.example.test")), 0, "a wildcard covers one label");
        assert_eq!(set.pick(Some("unknown.test")), 0);
        assert_eq!(set.pick(Some("c.other.test.")), 2, "a trailing dot");
    }

    #[test]
    fn names_are_read_from_the_certificate() {
        let made = certs::self_signed(&["Web.Example.Test", "127.0.0.1"], 1).unwrap();
        assert_eq!(dns_names(made.cert_der.as_ref()), ["web.example.test"]);
    }

    #[test]
    fn a_directory_pairs_each_certificate_with_its_key_file() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.pem", "b-key.pem", "a.pem", "a-key.pem", "ca.pem", "ca-key.pem", "lone.pem"] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        let found: Vec<String> = dir_pairs(dir.path())
            .unwrap()
            .iter()
            .map(|(c, k)| {
                format!(
                    "{}+{}",
                    c.file_name().unwrap().to_str().unwrap(),
                    k.file_name().unwrap().to_str().unwrap()
                )
            })
            .collect();
        assert_eq!(found, ["a.pem+a-key.pem", "b.pem+b-key.pem"]);
    }

    #[test]
    fn keys_must_match_the_certificates_in_number() {
        let options = EndpointOptions {
            cert: vec!["a.pem".into(), "b.pem".into()],
            key: vec!["a-key.pem".into()],
            ..EndpointOptions::default()
        };
        let err = pairs(&options, Spelling::Flags).unwrap_err().to_string();
        assert!(err.starts_with("2 --cert but 1 --key: give one --key per --cert"), "{err}");
        let options = EndpointOptions { key: Vec::new(), ..options };
        assert_eq!(pairs(&options, Spelling::Flags).unwrap()[1], ("b.pem".into(), "b.pem".into()));
    }
}
