//! What `streamtool gen-cert` does, without the command line: open or create the local CA,
//! make a leaf (signed by the CA, or self-signed) and write its files as one set, removed
//! again if a step fails. Warnings and notes for the user go to a `note` callback when
//! they arise (the library prints nothing); the reports of the results
//! ([`Report`](super::Report)) are built beside it. Defaults and decisions are in `docs/gen-cert.md`.

use std::path::PathBuf;

use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;

use super::constraints::Constraints;
use super::files::{CERT_MODE, FileSet, KEY_MODE, LeafFiles, load_ca_dir, save_ca_dir};
use super::issue::{CaSpec, CertAuthority, KeyType, LeafSpec, pkcs12, self_signed_leaf};
use super::names::{NameError, SubjectName, parse_names, wildcard_note};
use super::{CertError, GeneratedCert, format_time};

/// Days of validity for leaves and self-signed certificates.
pub const DEFAULT_LEAF_DAYS: u32 = 90;
/// Days of validity for a new CA.
pub const DEFAULT_CA_DAYS: u32 = 3650;
/// The longest validity TLS clients accept for a server certificate (Apple, browsers).
pub const MAX_ACCEPTED_LEAF_DAYS: u32 = 398;
/// The PKCS#12 password when $STREAMTOOL_P12_PASSWORD is not set (mkcert's).
pub const DEFAULT_P12_PASSWORD: &str = "changeit";

/// What `gen-cert` is asked to make (its flags, checked by the command line).
#[derive(Debug, Clone, Default)]
pub struct CertRequest {
    /// The names a leaf is for, as given.
    pub names: Vec<String>,
    /// A lone self-signed leaf instead of one signed by the local CA.
    pub self_signed: bool,
    /// The local CA's directory ([`super::ca_dir_from`]); `None` when there is none to use.
    pub ca_dir: Option<PathBuf>,
    /// The key type; the default when not given.
    pub key_type: Option<KeyType>,
    /// Days of validity; the defaults when not given.
    pub days: Option<u32>,
    /// Also for client authentication (mTLS).
    pub client: bool,
    /// The subject common name.
    pub cn: Option<String>,
    /// Where to write the certificate, if not the default.
    pub cert_file: Option<PathBuf>,
    /// Where to write the key, if not the default.
    pub key_file: Option<PathBuf>,
    /// The CA certificate after the leaf in the certificate file.
    pub bundle: bool,
    /// Also a PKCS#12 file.
    pub pkcs12: bool,
    /// Where to write the PKCS#12 file, if not the default.
    pub p12_file: Option<PathBuf>,
    /// PKCS#12 with 3DES and SHA-1.
    pub p12_legacy: bool,
    /// Replace existing files (with `ca_only`: make a new CA).
    pub force: bool,
    /// The names a new CA may sign for (`--permit`); empty: the defaults
    /// ([`super::DEFAULT_PERMITS`]).
    pub permit: Vec<String>,
    /// A new CA without name constraints (`--any-name`).
    pub any_name: bool,
    /// Sign this certificate signing request (PEM) instead of making a key (`--csr`).
    pub csr: Option<PathBuf>,
}

/// Why `gen-cert` failed: each message is what the command line prints.
#[derive(Debug)]
#[non_exhaustive]
pub enum MakeError {
    /// A name that is not a certificate name (a usage error).
    Names(NameError),
    /// No directory for the local CA (a usage error).
    NoCaDir,
    /// A file that exists and may not be replaced.
    Exists(PathBuf),
    /// The local CA has expired.
    CaExpired {
        /// The CA's directory.
        dir: PathBuf,
        /// When it expired.
        not_after: OffsetDateTime,
    },
    /// A step ("cannot make the certificate") and why it failed.
    Step(&'static str, Box<MakeError>),
    /// A certificate or file error, as it is.
    Cert(CertError),
    /// A wrong flag or flag combination, with its message (a usage error).
    Usage(String),
    /// A name the CA may not sign for (a usage error).
    Outside {
        /// The name.
        name: String,
        /// The names the CA may sign for.
        permitted: String,
    },
    /// A certificate signing request that cannot be signed: the file and why.
    Csr(PathBuf, String),
    /// The trust store could not be changed (nothing was left half-done).
    Trust(String),
}

impl std::fmt::Display for MakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MakeError::Names(err) => write!(f, "{err}"),
            MakeError::NoCaDir => f.write_str(
                "cannot find the user's data directory for the local CA (no home directory): give --ca-dir DIR",
            ),
            MakeError::Exists(path) => {
                write!(f, "{}: already exists; not replaced (use --force to replace it)", path.display())
            }
            MakeError::CaExpired { dir, not_after } => write!(
                f,
                "the local CA in {} expired on {}; make a new one with: streamtool gen-cert --ca-only --force",
                dir.display(),
                format_time(*not_after)
            ),
            MakeError::Step(what, _) => f.write_str(what),
            MakeError::Cert(err) => write!(f, "{err}"),
            MakeError::Usage(text) => f.write_str(text),
            MakeError::Outside { name, permitted } => write!(
                f,
                "{name} is outside the names the local CA may sign for ({permitted}); make a CA for it with: streamtool gen-cert --ca-only --force --permit NAME (or --any-name)"
            ),
            MakeError::Csr(path, why) => write!(f, "{}: {why}", path.display()),
            MakeError::Trust(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for MakeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MakeError::Step(_, cause) => Some(cause.as_ref()),
            // Transparent: the certificate error's own cause comes next.
            MakeError::Cert(err) => err.source(),
            _ => None,
        }
    }
}

impl From<CertError> for MakeError {
    fn from(err: CertError) -> Self {
        MakeError::Cert(err)
    }
}

impl MakeError {
    /// Whether the command line was wrong (exit code 2) rather than the work failing.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            MakeError::Names(_) | MakeError::NoCaDir | MakeError::Usage(_) | MakeError::Outside { .. }
        )
    }
}

/// A file in the way is named with the flag that replaces it.
fn force_hint(err: CertError) -> MakeError {
    match err {
        CertError::Exists(path) => MakeError::Exists(path),
        other => MakeError::Cert(other),
    }
}

/// Context for a failed step.
fn step<T, E: Into<MakeError>>(result: Result<T, E>, what: &'static str) -> Result<T, MakeError> {
    result.map_err(|e| MakeError::Step(what, Box::new(e.into())))
}

/// The local CA, opened or made by [`ca_only`].
#[derive(Debug)]
pub struct CaMade {
    /// Its directory.
    pub dir: PathBuf,
    /// The CA.
    pub ca: CertAuthority,
    /// Whether it was made now.
    pub created: bool,
    /// The files written (none when it existed).
    pub files: FileSet,
    /// The kind of each file written, in order (`ca_key`, `ca_certificate`).
    pub kinds: Vec<&'static str>,
    /// When this run looked.
    pub now: OffsetDateTime,
}

/// `gen-cert --ca-only`: the local CA, made if there is none (or with `force`).
///
/// # Errors
/// [`MakeError`]; files written before a failure are removed.
pub fn ca_only(req: &CertRequest, note: &mut dyn FnMut(&str)) -> Result<CaMade, MakeError> {
    let dir = req.ca_dir.clone().ok_or(MakeError::NoCaDir)?;
    let now = OffsetDateTime::now_utc();
    let existing = step(load_ca_dir(&dir), "cannot use the local CA")?;
    let mut files = FileSet::new(req.force);
    let (ca, created) = match existing {
        Some(_) if !req.force && (req.any_name || !req.permit.is_empty()) => {
            return Err(MakeError::Usage(format!(
                "the local CA in {} exists; --permit and --any-name apply only when it is made (add --force to make a new one)",
                dir.display()
            )));
        }
        Some(ca) if !req.force => {
            if ca.not_after() <= now {
                note(
                    "warning: the local CA has expired; make a new one with: streamtool gen-cert --ca-only --force",
                );
            } else {
                expiry_warning(&dir, &ca, now, note);
            }
            if req.key_type.is_some() || req.days.is_some() || req.cn.is_some() {
                note(
                    "note: the CA exists; --key-type, --days and --cn apply only when it is created (--force makes a new one)",
                );
            }
            (ca, false)
        }
        existing => {
            if existing.is_some() {
                note(
                    "warning: replacing the local CA: certificates signed by the old one no longer verify against it",
                );
            }
            let mut spec =
                CaSpec::for_this_user(req.key_type.unwrap_or_default(), req.days.unwrap_or(DEFAULT_CA_DAYS));
            if let Some(cn) = &req.cn {
                spec.common_name = cn.clone();
            }
            spec.constraints = new_ca_constraints(req)?;
            spec.intermediate = spec.constraints.is_some();
            let ca = step(CertAuthority::generate(&spec), "cannot make the CA")?;
            if let Err(err) = save_ca_dir(&dir, &ca, &mut files) {
                files.rollback();
                return Err(MakeError::Step("cannot save the CA", Box::new(force_hint(err))));
            }
            (ca, true)
        }
    };
    let kinds = if created { ca_kinds(&ca) } else { Vec::new() };
    Ok(CaMade { dir, ca, created, files, kinds, now })
}

pub use super::stores::StoreChoice;

impl StoreChoice {
    /// `--trust-stores LIST` parsed, or the default for `home`; `java_keystore`:
    /// `--java-keystore` (only with `java` among the stores).
    ///
    /// # Errors
    /// [`MakeError::Usage`] for a word that is not a store, or `--java-keystore` without
    /// `java`.
    pub fn new(
        list: Option<&str>,
        home: Option<PathBuf>,
        java_keystore: Option<PathBuf>,
    ) -> Result<StoreChoice, MakeError> {
        let (stores, explicit) = match list {
            Some(list) => (
                super::stores::parse_stores(list)
                    .map_err(|e| MakeError::Usage(format!("--trust-stores {e}")))?,
                true,
            ),
            None => (super::stores::default_stores(home.as_deref()), false),
        };
        if java_keystore.is_some() && !stores.contains(&super::stores::Store::Java) {
            return Err(MakeError::Usage("--java-keystore: only with --trust-stores naming java".into()));
        }
        Ok(StoreChoice { stores, explicit, home, java_keystore })
    }
}

/// `gen-cert --install`: the local CA (made first if there is none) put into the chosen
/// trust stores ([`super::stores::change_stores`]: all checked first, a failure undoes
/// this run's changes). A CA made by this run is removed again if the install fails.
///
/// # Errors
/// [`MakeError`]; [`MakeError::Trust`] when a store cannot be changed.
pub fn install(
    req: &CertRequest,
    choice: &StoreChoice,
    note: &mut dyn FnMut(&str),
) -> Result<(CaMade, Vec<super::stores::StoreChange>), MakeError> {
    let mut made = ca_only(req, note)?;
    let ca_file = made.dir.join(super::CA_CERT_FILE);
    match super::stores::change_stores(&made.ca, &ca_file, choice, true, note) {
        Ok(changes) => Ok((made, changes)),
        Err(why) => {
            made.files.rollback();
            Err(MakeError::Trust(why))
        }
    }
}

/// `gen-cert --uninstall`: the local CA taken out of the chosen trust stores again.
///
/// # Errors
/// [`MakeError`]; [`MakeError::Trust`] when there is no CA or a store cannot be changed.
pub fn uninstall(
    req: &CertRequest,
    choice: &StoreChoice,
    note: &mut dyn FnMut(&str),
) -> Result<(PathBuf, Vec<super::stores::StoreChange>), MakeError> {
    let dir = req.ca_dir.clone().ok_or(MakeError::NoCaDir)?;
    let ca = step(load_ca_dir(&dir), "cannot use the local CA")?.ok_or_else(|| {
        MakeError::Trust(format!("there is no local CA in {}: nothing to uninstall", dir.display()))
    })?;
    let ca_file = dir.join(super::CA_CERT_FILE);
    let changes =
        super::stores::change_stores(&ca, &ca_file, choice, false, note).map_err(MakeError::Trust)?;
    Ok((dir, changes))
}

/// A leaf made and written by [`leaf`].
#[derive(Debug)]
pub struct LeafMade {
    /// The names it is for.
    pub names: Vec<SubjectName>,
    /// Its files.
    pub paths: LeafFiles,
    /// The certificate and key.
    pub generated: GeneratedCert,
    /// The signing CA: its directory, the CA, and whether it was made now; `None` when
    /// self-signed.
    pub ca: Option<(PathBuf, CertAuthority, bool)>,
    /// The files written.
    pub files: FileSet,
    /// The kind of each file written, in order (`ca_key`, `key`, `certificate`, …).
    pub kinds: Vec<&'static str>,
    /// The key type.
    pub key_type: KeyType,
    /// Whether it is also for client authentication.
    pub client: bool,
    /// When it was made.
    pub now: OffsetDateTime,
    /// The certificate signing request it was made for (its key was not written).
    pub from_csr: Option<PathBuf>,
}

/// `gen-cert NAME...`: a leaf for the names, signed by the local CA (made first if there
/// is none) or self-signed, written to its files.
///
/// # Errors
/// [`MakeError`]; files written before a failure are removed (the CA's too).
pub fn leaf(req: &CertRequest, note: &mut dyn FnMut(&str)) -> Result<LeafMade, MakeError> {
    let csr = req.csr.as_deref().map(read_csr).transpose()?;
    let names = match &csr {
        Some(csr) => csr.names.clone(),
        None => parse_names(&req.names).map_err(MakeError::Names)?,
    };
    for name in &names {
        if let SubjectName::Wildcard(w) = name
            && let Some(text) = wildcard_note(w)
        {
            note(&format!("note: {text}"));
        }
    }
    let days = req.days.unwrap_or(DEFAULT_LEAF_DAYS);
    let key_type = csr.as_ref().map_or(req.key_type.unwrap_or_default(), |csr| csr.key_type);
    let (cert, key, p12) = (req.cert_file.as_deref(), req.key_file.as_deref(), req.p12_file.as_deref());
    let mut paths = LeafFiles::new(&names, req.client, cert, key, req.pkcs12, p12);
    let mut files = FileSet::new(req.force);
    if csr.is_some() {
        // The key stays with the request's owner: only the certificate is written, and
        // the commands shown name the key as KEY.pem.
        files.check_free(vec![paths.cert.as_path()]).map_err(force_hint)?;
        paths.key = PathBuf::from("KEY.pem");
    } else {
        files.check_free(paths.paths()).map_err(force_hint)?;
    }
    if days > MAX_ACCEPTED_LEAF_DAYS {
        note(&format!(
            "warning: {days} days is longer than the {MAX_ACCEPTED_LEAF_DAYS} days that browsers and Apple platforms accept for TLS server certificates"
        ));
    }
    let mut spec = LeafSpec::new(names.clone(), key_type, days);
    spec.common_name = req.cn.clone();
    spec.client = req.client;
    let now = OffsetDateTime::now_utc();
    let mut kinds = Vec::new();
    let made = sign(req, csr.as_ref(), &mut spec, &mut files, &mut kinds, now, note).and_then(
        |(generated, chain, ca)| {
            write_leaf(req, &names, &paths, &generated, &chain, ca.as_ref(), &mut files, &mut kinds)?;
            Ok((generated, ca))
        },
    );
    match made {
        Ok((generated, ca)) => {
            let from_csr = req.csr.clone();
            Ok(LeafMade {
                names,
                paths,
                generated,
                ca,
                files,
                kinds,
                key_type,
                client: req.client,
                now,
                from_csr,
            })
        }
        Err(err) => {
            files.rollback();
            Err(err)
        }
    }
}

type Signed = (GeneratedCert, Vec<CertificateDer<'static>>, Option<(PathBuf, CertAuthority, bool)>);

/// The leaf, self-signed or signed by the local CA (made and saved first if there is
/// none), with the chain above it.
fn sign(
    req: &CertRequest,
    csr: Option<&CsrRequest>,
    spec: &mut LeafSpec,
    files: &mut FileSet,
    kinds: &mut Vec<&'static str>,
    now: OffsetDateTime,
    note: &mut dyn FnMut(&str),
) -> Result<Signed, MakeError> {
    if req.self_signed {
        return Ok((step(self_signed_leaf(spec), "cannot make the certificate")?, Vec::new(), None));
    }
    let dir = req.ca_dir.clone().ok_or(MakeError::NoCaDir)?;
    let (ca, created) = match step(load_ca_dir(&dir), "cannot use the local CA")? {
        Some(ca) => (ca, false),
        None => {
            let mut ca_spec = CaSpec::for_this_user(KeyType::EcdsaP256, DEFAULT_CA_DAYS);
            ca_spec.constraints = new_ca_constraints(req)?;
            ca_spec.intermediate = ca_spec.constraints.is_some();
            let ca = step(CertAuthority::generate(&ca_spec), "cannot make the local CA")?;
            // Checked before the new CA is saved: a refused name writes nothing.
            check_constraints(&ca, &spec.names)?;
            step(save_ca_dir(&dir, &ca, files).map_err(force_hint), "cannot save the local CA")?;
            kinds.extend(ca_kinds(&ca));
            (ca, true)
        }
    };
    check_constraints(&ca, &spec.names)?;
    spec.no_ip_common_name = ca.constraints().is_some();
    if ca.not_after() <= now {
        return Err(MakeError::CaExpired { dir, not_after: ca.not_after() });
    }
    if !created {
        expiry_warning(&dir, &ca, now, note);
    }
    if spec.not_after > ca.not_after() {
        note(&format!(
            "warning: the CA expires on {}, before {} days are up; the certificate ends then too",
            format_time(ca.not_after()),
            req.days.unwrap_or(DEFAULT_LEAF_DAYS)
        ));
        spec.not_after = ca.not_after();
    }
    let generated = match csr {
        Some(csr) => step(ca.issue_for_key(spec, &csr.public_key), "cannot make the certificate")?,
        None => step(ca.issue(spec), "cannot make the certificate")?,
    };
    // The PKCS#12 file holds the intermediate (if any) and the root after the leaf.
    let mut chain: Vec<CertificateDer<'static>> =
        ca.intermediate().map(|(der, _)| der.clone()).into_iter().collect();
    chain.push(ca.cert_der().clone());
    Ok((generated, chain, Some((dir, ca, created))))
}

/// Writes the leaf's files: the certificate (with the CA after it with `bundle`, and the
/// key in the same file when both paths are one), the key, the PKCS#12 file.
#[allow(clippy::too_many_arguments)]
fn write_leaf(
    req: &CertRequest,
    names: &[SubjectName],
    paths: &LeafFiles,
    generated: &GeneratedCert,
    chain: &[CertificateDer<'static>],
    ca: Option<&(PathBuf, CertAuthority, bool)>,
    files: &mut FileSet,
    kinds: &mut Vec<&'static str>,
) -> Result<(), MakeError> {
    let mut cert_text = generated.cert_pem.clone();
    // A leaf of an intermediate always comes with it (servers must send it, clients
    // trust only the root): that is already the bundle. Otherwise `--bundle` adds the CA.
    match ca {
        Some((_, ca, _)) if ca.intermediate().is_some() => cert_text.push_str(ca.chain_pem()),
        Some((_, ca, _)) if req.bundle => cert_text.push_str(ca.cert_pem()),
        _ => {}
    }
    if req.csr.is_some() {
        files.write(&paths.cert, cert_text.as_bytes(), CERT_MODE).map_err(force_hint)?;
        kinds.push("certificate");
    } else if paths.combined() {
        cert_text.push_str(&generated.key_pem);
        files.write(&paths.cert, cert_text.as_bytes(), KEY_MODE).map_err(force_hint)?;
        kinds.push("certificate_and_key");
    } else {
        files.write(&paths.key, generated.key_pem.as_bytes(), KEY_MODE).map_err(force_hint)?;
        kinds.push("key");
        files.write(&paths.cert, cert_text.as_bytes(), CERT_MODE).map_err(force_hint)?;
        kinds.push("certificate");
    }
    if let Some(p12_path) = &paths.p12 {
        let alias = names.first().map(SubjectName::as_text).unwrap_or_default();
        let p12 = pkcs12(generated, chain, &alias, &p12_password(), req.p12_legacy)?;
        files.write(p12_path, &p12, KEY_MODE).map_err(force_hint)?;
        kinds.push("pkcs12");
    }
    Ok(())
}

/// The kinds of the files [`save_ca_dir`] writes for `ca`, in order.
fn ca_kinds(ca: &CertAuthority) -> Vec<&'static str> {
    match ca.intermediate() {
        Some(_) => vec!["ca_key", "ca_certificate", "ca_certificate"],
        None => vec!["ca_key", "ca_certificate"],
    }
}

/// Days before a CA's end from which every use warns.
pub const CA_EXPIRY_WARNING_DAYS: i64 = 30;

/// A warning when the CA ends within [`CA_EXPIRY_WARNING_DAYS`].
fn expiry_warning(
    dir: &std::path::Path,
    ca: &CertAuthority,
    now: OffsetDateTime,
    note: &mut dyn FnMut(&str),
) {
    let left = ca.not_after() - now;
    if left > time::Duration::ZERO && left < time::Duration::days(CA_EXPIRY_WARNING_DAYS) {
        note(&format!(
            "warning: the local CA in {} expires on {} (in {} days); make a new one with: streamtool gen-cert --ca-only --force",
            dir.display(),
            format_time(ca.not_after()),
            left.whole_days()
        ));
    }
}

/// The name constraints of a new CA: none with `--any-name`, else `--permit`'s or the
/// defaults.
fn new_ca_constraints(req: &CertRequest) -> Result<Option<Constraints>, MakeError> {
    if req.any_name {
        return Ok(None);
    }
    Constraints::permitting(&req.permit).map(Some).map_err(MakeError::Usage)
}

/// Refuses the first name the CA may not sign for.
fn check_constraints(ca: &CertAuthority, names: &[SubjectName]) -> Result<(), MakeError> {
    let Some(constraints) = ca.constraints() else {
        return Ok(());
    };
    match names.iter().find(|name| !constraints.allows(name)) {
        Some(name) => {
            Err(MakeError::Outside { name: name.as_text(), permitted: constraints.permitted_text() })
        }
        None => Ok(()),
    }
}

/// A certificate signing request, read and checked: its names and its key.
pub struct CsrRequest {
    /// The names it asks for (its subject alternative names).
    pub names: Vec<SubjectName>,
    /// Its public key, which the certificate certifies.
    pub public_key: rcgen::PublicKey,
    /// The type of that key.
    pub key_type: KeyType,
}

/// Reads a PEM certificate signing request, checks its self-signature and its names.
///
/// # Errors
/// [`MakeError::Cert`] for an unreadable file, [`MakeError::Csr`] for a request that is
/// not one, whose signature does not verify, or whose names or key gen-cert cannot use.
pub fn read_csr(path: &std::path::Path) -> Result<CsrRequest, MakeError> {
    let bad = |why: String| MakeError::Csr(path.to_path_buf(), why);
    let text =
        std::fs::read_to_string(path).map_err(|e| MakeError::Cert(CertError::Read(path.to_path_buf(), e)))?;
    let parsed = rcgen::CertificateSigningRequestParams::from_pem(&text).map_err(|e| match e {
        rcgen::Error::InvalidCertificationRequestSignature => bad(
            "the request's signature does not verify (it was changed after signing, or signed by another key); not signed".into(),
        ),
        rcgen::Error::CouldNotParseCertificationRequest => {
            bad("not a PEM certificate signing request (BEGIN CERTIFICATE REQUEST)".into())
        }
        other => bad(format!("cannot use the request: {other}")),
    })?;
    let mut texts = Vec::new();
    for san in &parsed.params.subject_alt_names {
        match san {
            rcgen::SanType::DnsName(name) | rcgen::SanType::Rfc822Name(name) => {
                texts.push(name.as_str().to_string())
            }
            rcgen::SanType::IpAddress(ip) => texts.push(ip.to_string()),
            other => return Err(bad(format!("it asks for a name gen-cert does not issue ({other:?})"))),
        }
    }
    if texts.is_empty() {
        return Err(bad(
            "the request has no subject alternative names (clients match names only there); make it with openssl req -new ... -addext \"subjectAltName=DNS:NAME\"".into(),
        ));
    }
    let names = parse_names(&texts).map_err(|e| bad(e.to_string()))?;
    let key_type = csr_key_type(&parsed.public_key).map_err(bad)?;
    Ok(CsrRequest { names, public_key: parsed.public_key, key_type })
}

/// The type of a CSR's key, among those gen-cert makes.
fn csr_key_type(key: &rcgen::PublicKey) -> Result<KeyType, String> {
    use rcgen::PublicKeyData;
    use x509_parser::prelude::FromDer;
    use x509_parser::public_key::PublicKey;
    let spki = key.subject_public_key_info();
    let (_, info) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&spki).map_err(|e| e.to_string())?;
    if key.algorithm() == &rcgen::PKCS_ED25519 {
        return Ok(KeyType::Ed25519);
    }
    match info.parsed() {
        Ok(PublicKey::RSA(rsa)) => match rsa.key_size() {
            2048 => Ok(KeyType::Rsa2048),
            3072 => Ok(KeyType::Rsa3072),
            4096 => Ok(KeyType::Rsa4096),
            bits => {
                Err(format!("an RSA key of {bits} bits (gen-cert signs RSA keys of 2048, 3072 or 4096 bits)"))
            }
        },
        Ok(PublicKey::EC(point)) => match point.key_size() {
            256 => Ok(KeyType::EcdsaP256),
            384 => Ok(KeyType::EcdsaP384),
            bits => Err(format!("an EC key of {bits} bits (gen-cert signs P-256 and P-384 keys)")),
        },
        _ => Err("a key type gen-cert does not sign (ECDSA P-256/P-384, Ed25519 and RSA are signed)".into()),
    }
}

/// The PKCS#12 password: $STREAMTOOL_P12_PASSWORD, else [`DEFAULT_P12_PASSWORD`].
pub fn p12_password() -> String {
    std::env::var("STREAMTOOL_P12_PASSWORD").unwrap_or_else(|_| DEFAULT_P12_PASSWORD.into())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn usage_errors_are_told_apart() {
        assert!(MakeError::NoCaDir.is_usage());
        let names = parse_names(&["not a name!"]).unwrap_err();
        assert!(MakeError::Names(names).is_usage());
        assert!(!MakeError::Exists(PathBuf::from("x.pem")).is_usage());
    }

    #[test]
    fn a_step_names_itself_then_its_cause() {
        let err = step::<(), _>(Err(force_hint(CertError::Exists(PathBuf::from("a.pem")))), "cannot save")
            .unwrap_err();
        assert_eq!(err.to_string(), "cannot save");
        let cause = std::error::Error::source(&err).unwrap().to_string();
        assert_eq!(cause, "a.pem: already exists; not replaced (use --force to replace it)");
    }

    #[test]
    fn default_files_follow_the_first_name() {
        let names = parse_names(&["localhost", "127.0.0.1"]).unwrap();
        let paths = LeafFiles::new(&names, false, None, None, true, None);
        assert!(paths.paths().contains(&Path::new("localhost+1.pem")));
        assert!(paths.paths().contains(&Path::new("localhost+1-key.pem")));
        assert!(paths.paths().contains(&Path::new("localhost+1.p12")));
        let same =
            LeafFiles::new(&names, false, Some(Path::new("x.pem")), Some(Path::new("x.pem")), false, None);
        assert!(same.combined());
        assert_eq!(same.paths(), vec![Path::new("x.pem")]);
    }
}
