//! Trust on first use (`connect --tls --tofu`), as SSH's known-hosts file: the first
//! contact with `host:port` records the server's key pin (SHA-256 of its public key, the
//! SubjectPublicKeyInfo), later contacts must present the same key.
//!
//! The file (`$XDG_DATA_HOME/streamtool/known_hosts`, else
//! `~/.local/share/streamtool/known_hosts`) has one `host:port sha256:HEX` line per server;
//! blank lines and `#` comments are kept. It is mode 0600 in a 0700 directory, and is only
//! ever replaced whole (written to a temporary file, then renamed), under an exclusive
//! lock on `known_hosts.lock` beside it, so that concurrent first contacts each add their
//! line and never corrupt the file.
//!
//! The handshake itself: without `--ca`, the chain is not checked
//! ([`client_options`]), but the handshake's signature is, so the server proves it holds
//! the key whose pin is compared here, before any data is sent. With `--ca`, the chain is
//! verified as usual and the pin is checked too.

use crate::platform::fs::{DirBuilderExt, OpenOptionsExt};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::streams::tls::{ClientOptions, Pin, Trust};

/// The client settings for a TOFU connection: without `--ca` (the system store), the chain
/// is left to the pin ([`KnownHosts::check`]); the handshake signature is still verified.
pub fn client_options(mut options: ClientOptions) -> ClientOptions {
    if matches!(options.trust, Trust::System) {
        options.insecure = true;
    }
    options
}

/// What the known-hosts file said about a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The server presented the recorded key (the entry is on this line, from 1).
    Known {
        /// The entry's line.
        line: usize,
    },
    /// No entry: the key was recorded on this line.
    Recorded {
        /// The new entry's line.
        line: usize,
    },
    /// The server presented another key than the recorded one.
    Changed {
        /// The recorded pin.
        known: Pin,
        /// Its line.
        line: usize,
    },
}

/// What went wrong with the known-hosts file.
#[derive(Debug)]
pub enum TofuError {
    /// No data directory (no `$XDG_DATA_HOME` and no home).
    NoDataDir,
    /// The file or its directory could not be read or written.
    Io(PathBuf, std::io::Error),
    /// A line that is not `host:port sha256:HEX`.
    Malformed {
        /// The file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// Why.
        why: String,
    },
}

impl fmt::Display for TofuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TofuError::NoDataDir => {
                f.write_str("--tofu: no place for the known-hosts file (set XDG_DATA_HOME or HOME)")
            }
            TofuError::Io(path, err) => write!(f, "known-hosts file {}: {err}", path.display()),
            TofuError::Malformed { path, line, why } => {
                write!(
                    f,
                    "known-hosts file {} line {line}: {why} (expected `host:port sha256:HEX`)",
                    path.display()
                )
            }
        }
    }
}

impl std::error::Error for TofuError {}

/// A known-hosts file.
#[derive(Debug, Clone)]
pub struct KnownHosts {
    /// Its path.
    pub path: PathBuf,
}

impl KnownHosts {
    /// The user's file: `$XDG_DATA_HOME/streamtool/known_hosts`, else
    /// `~/.local/share/streamtool/known_hosts`.
    ///
    /// # Errors
    /// [`TofuError::NoDataDir`].
    pub fn for_user() -> Result<KnownHosts, TofuError> {
        let dir = std::env::var_os("XDG_DATA_HOME")
            .filter(|d| !d.is_empty() && Path::new(d).is_absolute())
            .map(PathBuf::from)
            .or_else(dirs::data_dir)
            .ok_or(TofuError::NoDataDir)?;
        Ok(KnownHosts { path: dir.join("streamtool").join("known_hosts") })
    }

    /// Checks `pin` for `host` (`host:port`), recording it when the host is new.
    ///
    /// # Errors
    /// [`TofuError`]: the file cannot be read, locked or written, or has a malformed line.
    pub fn check(&self, host: &str, pin: &Pin) -> Result<Verdict, TofuError> {
        let io = |e: std::io::Error| TofuError::Io(self.path.clone(), e);
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(dir.join("known_hosts.lock"))
            .map_err(io)?;
        // flock(2); Windows has no such call in std before Rust 1.89: unlocked there.
        #[cfg(unix)]
        let _lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, errno)| io(std::io::Error::from(errno)))?;
        #[cfg(not(unix))]
        let _lock = lock;
        let mut text = String::new();
        match File::open(&self.path) {
            Ok(mut file) => {
                file.read_to_string(&mut text).map_err(io)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        let mut lines = 0;
        for (n, line) in text.lines().enumerate() {
            lines = n + 1;
            let entry = line.trim();
            if entry.is_empty() || entry.starts_with('#') {
                continue;
            }
            let malformed = |why: String| TofuError::Malformed { path: self.path.clone(), line: n + 1, why };
            let mut words = entry.split_whitespace();
            let (Some(name), Some(recorded), None) = (words.next(), words.next(), words.next()) else {
                return Err(malformed("not two words".into()));
            };
            if name != host {
                continue;
            }
            let known: Pin = recorded.parse().map_err(|e: String| malformed(e))?;
            return Ok(if known == *pin {
                Verdict::Known { line: n + 1 }
            } else {
                Verdict::Changed { known, line: n + 1 }
            });
        }
        let mut new = text;
        if !new.is_empty() && !new.ends_with('\n') {
            new.push('\n');
        }
        new.push_str(&format!("{host} {pin}\n"));
        crate::certs::write_atomic(&self.path, new.as_bytes(), 0o600, true)
            .map_err(|e| io(std::io::Error::other(e.to_string())))?;
        Ok(Verdict::Recorded { line: lines + 1 })
    }
}

/// `--tofu` after a handshake: the server's key pin against the known-hosts file, before
/// any data (a `tofu` event either way). A new host is recorded and said so (a notice the
/// user always sees: trusting a new key is never silent); a known one is logged.
///
/// Returns `Ok(Err(line))` when the connection must be refused: a changed key (both pins,
/// the file and the line to delete), no certificate, or a key with no usable pin.
///
/// # Errors
/// [`TofuError`]: the known-hosts file cannot be read, locked or written.
pub fn check<IO>(
    tls: &crate::streams::tls::TlsStream<IO>,
    known_hosts: &KnownHosts,
    target: &str,
    spelling: super::Spelling,
    report: &dyn crate::event::Report,
) -> Result<Result<(), String>, TofuError>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let tofu = spelling.bare("tofu");
    let certificates = tls.peer_certificates();
    let Some(leaf) = certificates.first() else {
        return Ok(Err(format!("{tofu}: {target} sent no certificate")));
    };
    let pin = match Pin::of_public_key(leaf.as_ref()) {
        Ok(pin) => pin,
        Err(why) => {
            return Ok(Err(format!("{tofu}: {target}'s certificate has no usable public key: {why}")));
        }
    };
    let file = known_hosts.path.display();
    let verdict = known_hosts.check(target, &pin)?;
    let (result, known, line) = match &verdict {
        Verdict::Known { line } => ("known", None, *line),
        Verdict::Recorded { line } => ("recorded", None, *line),
        Verdict::Changed { known, line } => ("changed", Some(known.to_string()), *line),
    };
    report.emit(|| crate::event::Event::Tofu {
        target: target.to_string(),
        result: result.to_string(),
        key_sha256: pin.to_string(),
        known_sha256: known,
        file: file.to_string(),
        line: line as u64,
    });
    Ok(match verdict {
        Verdict::Known { line } => {
            tracing::info!("{target}: key pin {pin} matches {file} line {line}");
            Ok(())
        }
        Verdict::Recorded { line } => {
            report.say(&format!(
                "{tofu}: {target} is a new host: trusted its key on first use and recorded its key pin {pin} in \
                 {file} line {line}"
            ));
            Ok(())
        }
        Verdict::Changed { known, line } => Err(format!(
            "{tofu}: the key of {target} changed: {file} line {line} has {known}, the server presented {pin}; \
             if the change is expected, delete that line"
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin(byte: u8) -> Pin {
        Pin::of_certificate(&[byte])
    }

    #[test]
    fn records_then_knows_then_refuses_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let hosts = KnownHosts { path: dir.path().join("sub").join("known_hosts") };
        assert_eq!(hosts.check("a:1", &pin(1)).unwrap(), Verdict::Recorded { line: 1 });
        assert_eq!(hosts.check("b:2", &pin(2)).unwrap(), Verdict::Recorded { line: 2 });
        assert_eq!(hosts.check("a:1", &pin(1)).unwrap(), Verdict::Known { line: 1 });
        assert_eq!(hosts.check("b:2", &pin(3)).unwrap(), Verdict::Changed { known: pin(2), line: 2 });
        let text = fs::read_to_string(&hosts.path).unwrap();
        assert_eq!(text, format!("a:1 {}\nb:2 {}\n", pin(1), pin(2)));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(&hosts.path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(hosts.path.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
    }

    #[test]
    fn a_malformed_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let hosts = KnownHosts { path: dir.path().join("known_hosts") };
        fs::write(&hosts.path, "# comment\n\na:1 sha256:nothex\n").unwrap();
        let err = hosts.check("a:1", &pin(1)).unwrap_err().to_string();
        assert!(err.starts_with(&format!("known-hosts file {} line 3: ", hosts.path.display())), "{err}");
        fs::write(&hosts.path, "a:1\n").unwrap();
        let err = hosts.check("b:1", &pin(1)).unwrap_err().to_string();
        assert!(err.contains(" line 1: not two words"), "{err}");
    }
}
