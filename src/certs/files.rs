//! Writing certificates and keys safely, and where the local CA lives.
//!
//! Every file is written to a temporary file in the same directory, created with its final
//! mode (so a key is never readable by others, not even for a moment), synced, and then
//! moved into place: with `overwrite`, by `rename` (atomic replacement); without, by a hard
//! link, which fails if the name exists, so an existing file is never replaced even when
//! two runs race (docs/design.md §4.10).

use crate::platform::fs::{DirBuilderExt, OpenOptionsExt};
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::CertError;
use super::issue::CertAuthority;
use super::names::{SubjectName, default_file_stem};

/// The mode of private keys.
pub const KEY_MODE: u32 = 0o600;
/// The mode of the CA's private key (mkcert's): read-only, for the owner.
pub const CA_KEY_MODE: u32 = 0o400;
/// The mode of certificates.
pub const CERT_MODE: u32 = 0o644;
/// The mode of the CA directory (XDG's for data directories).
pub const CA_DIR_MODE: u32 = 0o700;
/// The CA certificate's file name in the CA directory.
pub const CA_CERT_FILE: &str = "ca.pem";
/// The CA key's file name in the CA directory: the key that signs leaves (the
/// intermediate's in the two-level layout, the root's otherwise).
pub const CA_KEY_FILE: &str = "ca-key.pem";
/// The intermediate CA's certificate in the two-level layout (signed by `ca.pem`, whose
/// key was discarded); absent in the single-root layout.
pub const CA_INTERMEDIATE_FILE: &str = "ca-intermediate.pem";

/// Writes `contents` to `path` atomically, the file created with `mode` (less the umask).
/// Without `overwrite`, an existing `path` is left alone and [`CertError::Exists`] returned.
///
/// # Errors
/// [`CertError::Exists`], or [`CertError::Write`] naming the file.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32, overwrite: bool) -> Result<(), CertError> {
    let write_error = |e: io::Error| CertError::Write(path.to_path_buf(), e);
    let Some(name) = path.file_name() else {
        return Err(write_error(io::Error::new(io::ErrorKind::InvalidInput, "not a file name")));
    };
    if !overwrite && fs::symlink_metadata(path).is_ok() {
        return Err(CertError::Exists(path.to_path_buf()));
    }
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let (temp, mut file) = create_temp(dir, name, mode).map_err(write_error)?;
    let result = (|| {
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        if overwrite {
            return fs::rename(&temp, path);
        }
        match fs::hard_link(&temp, path) {
            Ok(()) => {
                fs::remove_file(&temp)?;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
            // A file system without hard links: check, then rename (a narrow race).
            Err(_) if fs::symlink_metadata(path).is_err() => fs::rename(&temp, path),
            Err(e) => Err(e),
        }
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&temp);
        return Err(if e.kind() == io::ErrorKind::AlreadyExists {
            CertError::Exists(path.to_path_buf())
        } else {
            write_error(e)
        });
    }
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// A new file `.NAME.RANDOM.tmp` in `dir`, created with `mode`.
fn create_temp(dir: &Path, name: &std::ffi::OsStr, mode: u32) -> io::Result<(PathBuf, File)> {
    for _ in 0..16 {
        let mut random = [0u8; 6];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random)
            .map_err(|_| io::Error::other("the system's random source failed"))?;
        let mut temp_name = OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".{}.tmp", crate::streams::tls::hex(&random)));
        let temp = dir.join(temp_name);
        match OpenOptions::new().write(true).create_new(true).mode(mode).open(&temp) {
            Ok(file) => return Ok((temp, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(io::ErrorKind::AlreadyExists, "cannot find a free temporary file name"))
}

/// A group of files written together: if one fails, [`FileSet::rollback`] removes those
/// this run created (files replaced under `overwrite` cannot be restored).
#[derive(Debug, Default)]
pub struct FileSet {
    overwrite: bool,
    created: Vec<PathBuf>,
    written: Vec<(PathBuf, u32)>,
}

impl FileSet {
    /// A set that replaces existing files only with `overwrite`.
    pub fn new(overwrite: bool) -> FileSet {
        FileSet { overwrite, ..FileSet::default() }
    }

    /// Refuses early, before anything is written, if one of `paths` exists and may not be
    /// replaced, or two of them are the same.
    ///
    /// # Errors
    /// [`CertError::Exists`] for the first such file.
    pub fn check_free<'a>(&self, paths: impl IntoIterator<Item = &'a Path>) -> Result<(), CertError> {
        let mut seen: Vec<&Path> = Vec::new();
        for path in paths {
            if seen.contains(&path) {
                return Err(CertError::Write(
                    path.to_path_buf(),
                    io::Error::new(io::ErrorKind::InvalidInput, "the same file is named twice"),
                ));
            }
            seen.push(path);
            if !self.overwrite && fs::symlink_metadata(path).is_ok() {
                return Err(CertError::Exists(path.to_path_buf()));
            }
        }
        Ok(())
    }

    /// Writes one file (see [`write_atomic`]).
    ///
    /// # Errors
    /// As [`write_atomic`].
    pub fn write(&mut self, path: &Path, contents: &[u8], mode: u32) -> Result<(), CertError> {
        let existed = fs::symlink_metadata(path).is_ok();
        write_atomic(path, contents, mode, self.overwrite)?;
        if !existed {
            self.created.push(path.to_path_buf());
        }
        self.written.push((path.to_path_buf(), mode));
        Ok(())
    }

    /// The files written so far, with their modes.
    pub fn written(&self) -> &[(PathBuf, u32)] {
        &self.written
    }

    /// Removes the files this set created.
    pub fn rollback(&mut self) {
        for path in self.created.drain(..) {
            let _ = fs::remove_file(path);
        }
        self.written.clear();
    }
}

/// The local CA's default directory: `streamtool/ca` in the user's data directory
/// (`$XDG_DATA_HOME`, else `~/.local/share` on Linux; `~/Library/Application Support` on
/// macOS). `None` if there is no home directory.
pub fn user_ca_dir() -> Option<PathBuf> {
    dirs::data_dir().map(|d| d.join("streamtool").join("ca"))
}

/// The local CA's directory: `explicit` (`--ca-dir`), else `$STREAMTOOL_CA_DIR` when set
/// and not empty, else [`user_ca_dir`]. `None` if there is no home directory.
pub fn ca_dir_from(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(dir) = explicit {
        return Some(dir.to_path_buf());
    }
    if let Some(dir) = std::env::var_os("STREAMTOOL_CA_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    user_ca_dir()
}

/// The files a leaf certificate goes into: those given, else `NAME[+N].pem`,
/// `NAME[+N]-key.pem` and (for PKCS#12) `NAME[+N].p12` in the current directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafFiles {
    /// The certificate (and the key too when [`LeafFiles::combined`]).
    pub cert: PathBuf,
    /// The private key.
    pub key: PathBuf,
    /// The PKCS#12 file, when one is wanted.
    pub p12: Option<PathBuf>,
}

impl LeafFiles {
    /// The files for a leaf for `names`: `cert`, `key` and `p12` where given, else the
    /// default names; a PKCS#12 file only with `pkcs12`.
    pub fn new(
        names: &[SubjectName],
        client: bool,
        cert: Option<&Path>,
        key: Option<&Path>,
        pkcs12: bool,
        p12: Option<&Path>,
    ) -> LeafFiles {
        let stem = default_file_stem(names, client);
        LeafFiles {
            cert: cert.map_or_else(|| PathBuf::from(format!("{stem}.pem")), Path::to_path_buf),
            key: key.map_or_else(|| PathBuf::from(format!("{stem}-key.pem")), Path::to_path_buf),
            p12: pkcs12.then(|| p12.map_or_else(|| PathBuf::from(format!("{stem}.p12")), Path::to_path_buf)),
        }
    }

    /// Whether the certificate and the key go into one file.
    pub fn combined(&self) -> bool {
        self.cert == self.key
    }

    /// Every file to be written, once each.
    pub fn paths(&self) -> Vec<&Path> {
        let mut paths = vec![self.cert.as_path()];
        if !self.combined() {
            paths.push(&self.key);
        }
        paths.extend(self.p12.as_deref());
        paths
    }
}

/// The CA in `dir`, or `None` if none of its files exists: `ca.pem` and `ca-key.pem`
/// (one root), or those and `ca-intermediate.pem` (a root and the intermediate CA whose
/// key `ca-key.pem` is).
///
/// # Errors
/// [`CertError::IncompleteCa`] naming a missing file when some but not all of a layout's
/// files exist; otherwise as [`CertAuthority::from_files`].
pub fn load_ca_dir(dir: &Path) -> Result<Option<CertAuthority>, CertError> {
    check_ca_dir(dir)?;
    let (cert, key, inter) = (dir.join(CA_CERT_FILE), dir.join(CA_KEY_FILE), dir.join(CA_INTERMEDIATE_FILE));
    let exists = |path: &Path| fs::symlink_metadata(path).is_ok();
    let incomplete =
        |missing: &Path| CertError::IncompleteCa { dir: dir.to_path_buf(), missing: missing.to_path_buf() };
    match (exists(&cert), exists(&key), exists(&inter)) {
        (false, false, false) => Ok(None),
        (true, true, false) => match CertAuthority::from_files(&cert, None, &key) {
            // A root that may have a CA below it, and a key that is not its own: the
            // two-level layout without its intermediate.
            Err(CertError::KeyMismatch { .. }) if allows_a_ca_below(&cert) => Err(incomplete(&inter)),
            other => other.map(Some),
        },
        (true, true, true) => CertAuthority::from_files(&cert, Some(&inter), &key).map(Some),
        (false, _, _) => Err(incomplete(&cert)),
        (true, false, _) => Err(incomplete(&key)),
    }
}

/// Whether the CA certificate in `path` allows a CA below it (no path length of 0).
fn allows_a_ca_below(path: &Path) -> bool {
    let Some(der) = super::load_certs(path).ok().and_then(|mut certs| certs.drain(..).next()) else {
        return false;
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der.as_ref()) else {
        return false;
    };
    matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca && bc.value.path_len_constraint != Some(0))
}

/// An existing CA directory must be this user's and writable by nobody else, and its key,
/// if there, a regular file (not a symbolic link) of this user that nobody else can read
/// or write: otherwise another user could have planted the CA, or could read its key. A
/// missing directory passes (it is created 0700).
///
/// # Errors
/// [`CertError::Unsafe`] naming the directory or the key and the rule broken.
pub fn check_ca_dir(dir: &Path) -> Result<(), CertError> {
    use crate::platform::fs::MetadataExt;
    let me = crate::platform::euid();
    let meta = match fs::metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(CertError::Read(dir.to_path_buf(), e)),
    };
    let unsafe_ = |path: &Path, why: String| Err(CertError::Unsafe(path.to_path_buf(), why));
    if !meta.is_dir() {
        return unsafe_(dir, "the CA directory is not a directory".into());
    }
    if meta.uid() != me {
        return unsafe_(
            dir,
            format!("the CA directory is owned by uid {}, not by you (uid {me})", meta.uid()),
        );
    }
    if meta.mode() & 0o022 != 0 {
        return unsafe_(
            dir,
            format!(
                "the CA directory's mode {:04o} lets group or others write; chmod 700 it",
                meta.mode() & 0o777
            ),
        );
    }
    let key = dir.join(CA_KEY_FILE);
    match fs::symlink_metadata(&key) {
        Ok(meta) if meta.file_type().is_symlink() => unsafe_(&key, "the CA key is a symbolic link".into()),
        Ok(meta) if !meta.is_file() => unsafe_(&key, "the CA key is not a regular file".into()),
        Ok(meta) if meta.uid() != me => {
            unsafe_(&key, format!("the CA key is owned by uid {}, not by you (uid {me})", meta.uid()))
        }
        Ok(meta) if meta.mode() & 0o077 != 0 => unsafe_(
            &key,
            format!("the CA key's mode {:04o} lets group or others in; chmod 400 it", meta.mode() & 0o777),
        ),
        _ => Ok(()),
    }
}

/// Saves `ca` in `dir` (created 0700 if missing): the key 0400 first, then the
/// intermediate's certificate if there is one (else an old one is removed), then `ca.pem`.
///
/// # Errors
/// [`CertError::Write`] or [`CertError::Exists`].
pub fn save_ca_dir(dir: &Path, ca: &CertAuthority, files: &mut FileSet) -> Result<(), CertError> {
    check_ca_dir(dir)?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(CA_DIR_MODE)
        .create(dir)
        .map_err(|e| CertError::Write(dir.to_path_buf(), e))?;
    files.write(&dir.join(CA_KEY_FILE), ca.key_pem().as_bytes(), CA_KEY_MODE)?;
    let inter = dir.join(CA_INTERMEDIATE_FILE);
    match ca.intermediate() {
        Some((_, pem)) => files.write(&inter, pem.as_bytes(), CERT_MODE)?,
        // A single root replacing a two-level CA (--force): the old intermediate goes.
        None => match fs::remove_file(&inter) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(CertError::Write(inter, e)),
            _ => {}
        },
    }
    // ca.pem last: a run stopped half-way leaves a directory without it, which is an
    // error ("incomplete"), never a root paired with the wrong key.
    files.write(&dir.join(CA_CERT_FILE), ca.cert_pem().as_bytes(), CERT_MODE)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn files_are_created_with_their_mode_and_never_replaced_without_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        write_atomic(&path, b"one", 0o600, false).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let err = write_atomic(&path, b"two", 0o600, false).unwrap_err();
        assert!(matches!(err, CertError::Exists(_)), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"one");
        write_atomic(&path, b"three", 0o400, true).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"three");
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o400);
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["key.pem"], "no temporary file is left behind");
    }

    fn new_ca(intermediate: bool) -> CertAuthority {
        use super::super::constraints::Constraints;
        use super::super::issue::{CaSpec, KeyType};
        let mut spec = CaSpec::for_this_user(KeyType::EcdsaP256, 30);
        spec.constraints = Some(Constraints::permitting::<&str>(&[]).unwrap());
        spec.intermediate = intermediate;
        CertAuthority::generate(&spec).unwrap()
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_two_level_ca_keeps_only_the_intermediates_key_and_loads_back() {
        use x509_parser::prelude::parse_x509_certificate;
        let dir = tempfile::tempdir().unwrap();
        let ca_dir = dir.path().join("ca");
        let ca = new_ca(true);
        save_ca_dir(&ca_dir, &ca, &mut FileSet::new(false)).unwrap();
        assert_eq!(listing(&ca_dir), [CA_INTERMEDIATE_FILE, CA_KEY_FILE, CA_CERT_FILE]);
        let loaded = load_ca_dir(&ca_dir).unwrap().unwrap();
        assert_eq!(loaded.cert_der(), ca.cert_der());
        assert_eq!(loaded.intermediate().unwrap().0, ca.intermediate().unwrap().0);
        assert!(loaded.constraints().is_some());
        let (_, root) = parse_x509_certificate(ca.cert_der()).unwrap();
        let (_, inter) = parse_x509_certificate(ca.intermediate().unwrap().0).unwrap();
        // The root signed the intermediate; the key kept is the intermediate's, not the root's.
        inter.verify_signature(Some(root.public_key())).unwrap();
        let key = spki_of_pem(&ca.key_pem());
        assert_eq!(key, inter.public_key().raw);
        assert_ne!(key, root.public_key().raw);
        assert_eq!(root.basic_constraints().unwrap().unwrap().value.path_len_constraint, Some(1));
        assert_eq!(inter.basic_constraints().unwrap().unwrap().value.path_len_constraint, Some(0));
        assert!(inter.name_constraints().unwrap().unwrap().critical);
        assert!(root.name_constraints().unwrap().unwrap().critical);
        assert_ne!(inter.subject(), root.subject());
        // A leaf is signed by the intermediate.
        let names = super::super::names::parse_names(&["localhost"]).unwrap();
        let spec = super::super::issue::LeafSpec::new(names, Default::default(), 1);
        let leaf = loaded.issue(&spec).unwrap();
        let (_, leaf) = parse_x509_certificate(&leaf.cert_der).unwrap();
        leaf.verify_signature(Some(inter.public_key())).unwrap();
        assert_eq!(loaded.chain_pem(), ca.intermediate().unwrap().1);
    }

    /// The SubjectPublicKeyInfo of a PKCS#8 PEM key.
    fn spki_of_pem(pem: &str) -> Vec<u8> {
        rcgen::PublicKeyData::subject_public_key_info(&rcgen::KeyPair::from_pem(pem).unwrap())
    }

    #[test]
    fn a_half_written_or_mixed_up_two_level_ca_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let ca_dir = dir.path().join("ca");
        save_ca_dir(&ca_dir, &new_ca(true), &mut FileSet::new(false)).unwrap();
        let saved = |name: &str| fs::read(ca_dir.join(name)).unwrap();
        let (cert, inter) = (saved(CA_CERT_FILE), saved(CA_INTERMEDIATE_FILE));
        for missing in [CA_CERT_FILE, CA_KEY_FILE] {
            let kept = saved(missing);
            fs::remove_file(ca_dir.join(missing)).unwrap();
            let err = load_ca_dir(&ca_dir).unwrap_err();
            assert!(
                matches!(&err, CertError::IncompleteCa { missing: m, .. } if m.ends_with(missing)),
                "{err}"
            );
            write_atomic(
                &ca_dir.join(missing),
                &kept,
                if missing == CA_KEY_FILE { 0o400 } else { 0o644 },
                false,
            )
            .unwrap();
        }
        // Without the intermediate (the key is not the root's, which allows a CA below).
        fs::remove_file(ca_dir.join(CA_INTERMEDIATE_FILE)).unwrap();
        let err = load_ca_dir(&ca_dir).unwrap_err();
        assert!(
            matches!(&err, CertError::IncompleteCa { missing, .. } if missing.ends_with(CA_INTERMEDIATE_FILE)),
            "{err}"
        );
        // Another CA's intermediate: not signed by this root.
        let other = new_ca(true);
        write_atomic(
            &ca_dir.join(CA_INTERMEDIATE_FILE),
            other.intermediate().unwrap().1.as_bytes(),
            0o644,
            false,
        )
        .unwrap();
        let err = load_ca_dir(&ca_dir).unwrap_err().to_string();
        assert!(err.contains("not signed by the key of"), "{err}");
        // Put back: it loads; a single root replacing it (--force) removes the intermediate.
        write_atomic(&ca_dir.join(CA_INTERMEDIATE_FILE), &inter, 0o644, true).unwrap();
        assert_eq!(load_ca_dir(&ca_dir).unwrap().unwrap().cert_pem().as_bytes(), &cert[..]);
        save_ca_dir(&ca_dir, &new_ca(false), &mut FileSet::new(true)).unwrap();
        assert_eq!(listing(&ca_dir), [CA_KEY_FILE, CA_CERT_FILE]);
        assert!(load_ca_dir(&ca_dir).unwrap().unwrap().intermediate().is_none());
    }

    #[test]
    fn a_file_set_rolls_back_only_what_it_created() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old.pem");
        fs::write(&old, "old").unwrap();
        let mut files = FileSet::new(true);
        files.write(&old, b"new", 0o644).unwrap();
        files.write(&dir.path().join("fresh.pem"), b"x", 0o644).unwrap();
        files.rollback();
        assert!(old.exists());
        assert!(!dir.path().join("fresh.pem").exists());
    }
}
