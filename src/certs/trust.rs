//! Installing the local CA into the system trust store, and removing it again
//! (`gen-cert --install` / `--uninstall`). Debian's store: a file in
//! `/usr/local/share/ca-certificates`, then `update-ca-certificates`, which adds it to
//! `/etc/ssl/certs` (the directory and the `ca-certificates.crt` bundle that OpenSSL,
//! curl, Python and Go read). Fedora's and RHEL's, when Debian's tool is not there: a file
//! in `/etc/pki/ca-trust/source/anchors`, then `update-ca-trust extract`. The file's name
//! comes from the CA's fingerprint, so `--uninstall` removes exactly what `--install`
//! added. Decisions are in `docs/gen-cert.md`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::issue::CertAuthority;
use super::write_atomic;

/// Debian's directory for local CA certificates.
pub const DEBIAN_LOCAL_CA_DIR: &str = "/usr/local/share/ca-certificates";
/// The bundle `update-ca-certificates` writes.
pub const DEBIAN_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Where `update-ca-certificates` links the certificates.
pub const DEBIAN_CERTS_DIR: &str = "/etc/ssl/certs";

/// Fedora's and RHEL's directory for local trust anchors (`update-ca-trust`).
pub const FEDORA_ANCHORS_DIR: &str = "/etc/pki/ca-trust/source/anchors";

/// Where `update-ca-trust extract` writes the bundles clients read.
pub const FEDORA_EXTRACTED_DIR: &str = "/etc/pki/ca-trust/extracted";

/// The system store of this machine: where the CA's file goes and the tool that
/// rebuilds the store from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemStore {
    /// The directory of local CA files ([`DEBIAN_LOCAL_CA_DIR`] or [`FEDORA_ANCHORS_DIR`]).
    pub dir: PathBuf,
    /// The tool: `update-ca-certificates`, or `update-ca-trust` (run as `update-ca-trust
    /// extract`).
    pub tool: PathBuf,
    /// Fedora's layout (`update-ca-trust`), else Debian's.
    pub fedora: bool,
}

impl SystemStore {
    /// The file for `ca` in this store: `streamtool-local-ca-HEX16.crt` (Debian reads only
    /// `.crt`) or `.pem` (Fedora), HEX16 the first 8 bytes of the certificate's SHA-256.
    pub fn file(&self, ca: &CertAuthority) -> PathBuf {
        let digest = crate::streams::tls::sha256(ca.cert_der().as_ref());
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        let ext = if self.fedora { "pem" } else { "crt" };
        self.dir.join(format!("streamtool-local-ca-{hex}.{ext}"))
    }

    /// The command that rebuilds the store, as a user types it.
    pub fn update_command(&self) -> &'static str {
        if self.fedora { "update-ca-trust extract" } else { "update-ca-certificates" }
    }
}

/// `update-ca-trust` on PATH, else in /usr/bin.
fn update_ca_trust() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join("update-ca-trust"))
        .find(|p| p.is_file())
}

/// Detects the system store: Debian's when `update-ca-certificates` is in /usr/sbin or
/// /sbin, else Fedora's when [`FEDORA_ANCHORS_DIR`] is a directory and `update-ca-trust`
/// is on PATH (or in /usr/bin).
///
/// # Errors
/// One line naming both tools, when neither store is there.
pub fn system_store() -> Result<SystemStore, String> {
    if let Some(by_hand) = by_hand_elsewhere() {
        return Err(by_hand);
    }
    let debian = ["/usr/sbin/update-ca-certificates", "/sbin/update-ca-certificates"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file());
    let anchors = Path::new(FEDORA_ANCHORS_DIR).is_dir();
    choose_store(debian, anchors.then(update_ca_trust).flatten())
}

/// Off Linux, the system store is not one of those two: the line that refuses
/// `--install`, with the platform's own command for doing it by hand.
fn by_hand_elsewhere() -> Option<String> {
    let how = match std::env::consts::OS {
        "linux" => return None,
        "macos" => {
            "sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain CA.pem"
        }
        "windows" => "certutil -addstore -f Root CA.pem (as Administrator)",
        "freebsd" => "cp CA.pem /usr/local/etc/ssl/certs/ && certctl rehash (as root)",
        _ => "add CA.pem to the system's trust store by hand",
    };
    Some(format!(
        "the system trust store (--install): not available on {} in this version; by hand: {how} (`gen-cert --ca-only` prints CA.pem's path)",
        crate::platform::name()
    ))
}

/// The store from what was found: Debian's tool first, else Fedora's (`fedora_tool` found
/// with the anchors directory there), else the error naming both.
fn choose_store(debian_tool: Option<PathBuf>, fedora_tool: Option<PathBuf>) -> Result<SystemStore, String> {
    if let Some(tool) = debian_tool {
        return Ok(SystemStore { dir: PathBuf::from(DEBIAN_LOCAL_CA_DIR), tool, fedora: false });
    }
    if let Some(tool) = fedora_tool {
        return Ok(SystemStore { dir: PathBuf::from(FEDORA_ANCHORS_DIR), tool, fedora: true });
    }
    Err("no system trust store this version can change: neither update-ca-certificates (Debian, Ubuntu: apt install ca-certificates) nor update-ca-trust with /etc/pki/ca-trust/source/anchors (Fedora, RHEL: dnf install ca-certificates) was found".to_string())
}

/// Removes the symbolic links in `dir` that are dangling and point at `file` or at
/// `dir/STEM.pem` (the link update-ca-certificates made for it): two passes, since hash
/// links point at the `.pem` link.
fn remove_dangling_links(dir: &Path, file: &Path) {
    let Some(stem) = file.file_stem().and_then(|s| s.to_str()) else { return };
    let pem_link = dir.join(format!("{stem}.pem"));
    for _ in 0..2 {
        let Ok(entries) = fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(target) = fs::read_link(&path) else { continue };
            let target = if target.is_absolute() { target } else { dir.join(target) };
            let ours = target == file || target == pem_link;
            if ours && fs::metadata(&path).is_err() {
                let _ = fs::remove_file(&path);
            }
        }
    }
}

/// What `--install` or `--uninstall` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustChange {
    /// The CA's file was written and the store updated.
    Installed(PathBuf),
    /// The CA's file was removed and the store rebuilt.
    Removed(PathBuf),
    /// It was already so: nothing changed.
    Unchanged(PathBuf),
}

/// Rebuilds the store (`update-ca-certificates`, or `update-ca-trust extract`).
fn run_update(store: &SystemStore) -> Result<(), String> {
    let tool = &store.tool;
    let mut command = Command::new(tool);
    if store.fedora {
        command.arg("extract");
    }
    let out = command.output().map_err(|e| format!("cannot run {}: {e}", tool.display()))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message");
    Err(format!("{} failed ({}): {last}", tool.display(), out.status))
}

fn needs_root(path: &Path, e: &io::Error, how: &str) -> String {
    if e.kind() == io::ErrorKind::PermissionDenied {
        format!(
            "cannot change the system trust store ({}: permission denied): it needs root; {how}",
            path.display()
        )
    } else {
        format!("cannot change the system trust store ({}: {e})", path.display())
    }
}

/// Checks, before any store is changed, that the system store can be: its tool is there
/// and, when a change is needed (`installing` and not there yet, or uninstalling and
/// there), that this process may write its directory.
///
/// # Errors
/// The line [`install_system`] or [`uninstall_system`] would fail with.
pub fn check_system(ca: &CertAuthority, ca_file: &Path, installing: bool) -> Result<(), String> {
    let store = system_store()?;
    let file = store.file(ca);
    let update = store.update_command();
    let present = if installing {
        fs::read(&file).is_ok_and(|bytes| bytes == ca.cert_pem().as_bytes())
    } else {
        fs::symlink_metadata(&file).is_ok()
    };
    if present == installing {
        return Ok(());
    }
    let how = if installing {
        format!("as root: install -m 0644 {} {} && {update}", ca_file.display(), file.display())
    } else {
        format!("as root: rm {} && {update}", file.display())
    };
    match crate::platform::writable(&store.dir) {
        Ok(()) => Ok(()),
        Err(err) => Err(needs_root(&file, &err, &how)),
    }
}

/// Installs `ca` (its certificate at `ca_file`) into the system store ([`system_store`]):
/// writes its file (0644) and runs `update-ca-certificates` (or `update-ca-trust
/// extract`); if that fails the file is removed again and
/// the store updated back (which may fail too, for the same reason: the message says so). A second install changes nothing.
///
/// # Errors
/// One line: no supported store, no permission (with the commands to run as root), or the
/// update failing (rolled back).
pub fn install_system(ca: &CertAuthority, ca_file: &Path) -> Result<TrustChange, String> {
    let store = system_store()?;
    let file = store.file(ca);
    if fs::read(&file).is_ok_and(|bytes| bytes == ca.cert_pem().as_bytes()) {
        return Ok(TrustChange::Unchanged(file));
    }
    let how = format!(
        "as root: install -m 0644 {} {} && {}",
        ca_file.display(),
        file.display(),
        store.update_command()
    );
    write_atomic(&file, ca.cert_pem().as_bytes(), 0o644, true).map_err(|e| match e {
        super::CertError::Write(path, io) => needs_root(&path, &io, &how),
        other => other.to_string(),
    })?;
    if let Err(why) = run_update(&store) {
        let _ = fs::remove_file(&file);
        let undone = match run_update(&store) {
            Ok(()) => {
                if !store.fedora {
                    remove_dangling_links(Path::new(DEBIAN_CERTS_DIR), &file);
                }
                "removed again".to_string()
            }
            Err(e) => format!("removed again, but the store could not be rebuilt: {e}"),
        };
        return Err(format!("{why}; {} {undone}", file.display()));
    }
    Ok(TrustChange::Installed(file))
}

/// Removes `ca` from the system store: deletes its file, runs `update-ca-certificates`
/// (which takes it out of the bundle) and removes the links to it that this leaves
/// dangling in `/etc/ssl/certs` (its `.pem` link and hash links to that), and nothing
/// else: `--fresh` would also rebuild every other link. On Fedora: deletes its file and
/// runs `update-ca-trust extract` (which rewrites every extracted bundle). Nothing
/// installed: nothing changes.
///
/// # Errors
/// One line: no supported store, no permission, or the rebuild failing.
pub fn uninstall_system(ca: &CertAuthority) -> Result<TrustChange, String> {
    let store = system_store()?;
    let file = store.file(ca);
    if fs::symlink_metadata(&file).is_err() {
        return Ok(TrustChange::Unchanged(file));
    }
    let how = format!("as root: rm {} && {}", file.display(), store.update_command());
    fs::remove_file(&file).map_err(|e| needs_root(&file, &e, &how))?;
    run_update(&store)?;
    if !store.fedora {
        remove_dangling_links(Path::new(DEBIAN_CERTS_DIR), &file);
    }
    Ok(TrustChange::Removed(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_first_then_fedora_then_an_error_naming_both() {
        let deb = PathBuf::from("/usr/sbin/update-ca-certificates");
        let fed = PathBuf::from("/usr/bin/update-ca-trust");
        let store = choose_store(Some(deb.clone()), Some(fed.clone())).unwrap();
        assert_eq!(store, SystemStore { dir: DEBIAN_LOCAL_CA_DIR.into(), tool: deb, fedora: false });
        assert_eq!(store.update_command(), "update-ca-certificates");
        let store = choose_store(None, Some(fed.clone())).unwrap();
        assert_eq!(store, SystemStore { dir: FEDORA_ANCHORS_DIR.into(), tool: fed, fedora: true });
        assert_eq!(store.update_command(), "update-ca-trust extract");
        let err = choose_store(None, None).unwrap_err();
        assert!(err.contains("update-ca-certificates") && err.contains("update-ca-trust"), "{err}");
    }

    #[test]
    fn the_file_is_named_by_the_fingerprint_with_each_layouts_extension() {
        let spec = crate::certs::issue::CaSpec::for_this_user(crate::certs::KeyType::EcdsaP256, 30);
        let ca = CertAuthority::generate(&spec).unwrap();
        let deb = SystemStore { dir: DEBIAN_LOCAL_CA_DIR.into(), tool: PathBuf::new(), fedora: false };
        let fed = SystemStore { dir: FEDORA_ANCHORS_DIR.into(), tool: PathBuf::new(), fedora: true };
        let (d, f) = (deb.file(&ca), fed.file(&ca));
        assert_eq!(d.parent(), Some(Path::new(DEBIAN_LOCAL_CA_DIR)));
        assert_eq!(f.parent(), Some(Path::new(FEDORA_ANCHORS_DIR)));
        assert_eq!(d.extension().unwrap(), "crt");
        assert_eq!(f.extension().unwrap(), "pem");
        assert_eq!(d.file_stem(), f.file_stem());
        let stem = d.file_stem().unwrap().to_str().unwrap().to_string();
        assert_eq!(stem.len(), "streamtool-local-ca-".len() + 16, "{stem}");
    }
}
