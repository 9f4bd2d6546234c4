//! Installing the local CA into the system trust store, and removing it again
//! (`gen-cert --install` / `--uninstall`). Only Debian's store is supported: a file in
//! `/usr/local/share/ca-certificates`, then `update-ca-certificates`, which adds it to
//! `/etc/ssl/certs` (the directory and the `ca-certificates.crt` bundle that OpenSSL,
//! curl, Python and Go read). The file's name comes from the CA's fingerprint, so
//! `--uninstall` removes exactly what `--install` added. Decisions are in
//! `docs/gen-cert.md`.

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

/// The system store's file for `ca`: `streamtool-local-ca-HEX16.crt`.
pub fn system_store_file(ca: &CertAuthority) -> PathBuf {
    let digest = crate::streams::tls::sha256(ca.cert_der().as_ref());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    Path::new(DEBIAN_LOCAL_CA_DIR).join(format!("streamtool-local-ca-{hex}.crt"))
}

fn update_tool() -> Result<PathBuf, String> {
    ["/usr/sbin/update-ca-certificates", "/sbin/update-ca-certificates"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            "no system trust store this version can change: update-ca-certificates (Debian, Ubuntu: apt install ca-certificates) was not found".to_string()
        })
}

fn run_update(tool: &Path, fresh: bool) -> Result<(), String> {
    let mut command = Command::new(tool);
    if fresh {
        command.arg("--fresh");
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
    update_tool()?;
    let file = system_store_file(ca);
    let present = if installing {
        fs::read(&file).is_ok_and(|bytes| bytes == ca.cert_pem().as_bytes())
    } else {
        fs::symlink_metadata(&file).is_ok()
    };
    if present == installing {
        return Ok(());
    }
    let how = if installing {
        format!("as root: install -m 0644 {} {} && update-ca-certificates", ca_file.display(), file.display())
    } else {
        format!("as root: rm {} && update-ca-certificates", file.display())
    };
    match nix::unistd::access(Path::new(DEBIAN_LOCAL_CA_DIR), nix::unistd::AccessFlags::W_OK) {
        Ok(()) => Ok(()),
        Err(errno) => Err(needs_root(&file, &io::Error::from(errno), &how)),
    }
}

/// Installs `ca` (its certificate at `ca_file`) into the system store: writes its file
/// (0644) and runs `update-ca-certificates`; if that fails the file is removed again and
/// the store updated back (which may fail too, for the same reason: the message says so). A second install changes nothing.
///
/// # Errors
/// One line: no supported store, no permission (with the commands to run as root), or the
/// update failing (rolled back).
pub fn install_system(ca: &CertAuthority, ca_file: &Path) -> Result<TrustChange, String> {
    let tool = update_tool()?;
    let file = system_store_file(ca);
    if fs::read(&file).is_ok_and(|bytes| bytes == ca.cert_pem().as_bytes()) {
        return Ok(TrustChange::Unchanged(file));
    }
    let how = format!(
        "as root: install -m 0644 {} {} && update-ca-certificates",
        ca_file.display(),
        file.display()
    );
    write_atomic(&file, ca.cert_pem().as_bytes(), 0o644, true).map_err(|e| match e {
        super::CertError::Write(path, io) => needs_root(&path, &io, &how),
        other => other.to_string(),
    })?;
    if let Err(why) = run_update(&tool, false) {
        let _ = fs::remove_file(&file);
        let undone = match run_update(&tool, false) {
            Ok(()) => {
                remove_dangling_links(Path::new(DEBIAN_CERTS_DIR), &file);
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
/// else: `--fresh` would also rebuild every other link. Nothing installed: nothing
/// changes.
///
/// # Errors
/// One line: no supported store, no permission, or the rebuild failing.
pub fn uninstall_system(ca: &CertAuthority) -> Result<TrustChange, String> {
    let tool = update_tool()?;
    let file = system_store_file(ca);
    if fs::symlink_metadata(&file).is_err() {
        return Ok(TrustChange::Unchanged(file));
    }
    let how = format!("as root: rm {} && update-ca-certificates", file.display());
    fs::remove_file(&file).map_err(|e| needs_root(&file, &e, &how))?;
    run_update(&tool, false)?;
    remove_dangling_links(Path::new(DEBIAN_CERTS_DIR), &file);
    Ok(TrustChange::Removed(file))
}
