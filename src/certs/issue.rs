//! Making keys and certificates with rcgen: key types, a local CA, leaves signed by it,
//! lone self-signed leaves, and PKCS#12 bundles.
//!
//! rcgen on ring cannot generate RSA keys (only aws-lc-rs can), so RSA keys come from the
//! RustCrypto `rsa` crate and are handed to rcgen (and to rustls) as PKCS#8. Signing
//! always goes through ring.

use std::fmt;
use std::str::FromStr;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;

use super::constraints::Constraints;
use super::names::SubjectName;
use super::{CertError, GeneratedCert};

/// The kinds of key gen-cert makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KeyType {
    /// ECDSA on P-256 with SHA-256: small, fast, accepted everywhere (the default).
    #[default]
    EcdsaP256,
    /// ECDSA on P-384 with SHA-384.
    EcdsaP384,
    /// Ed25519 (not accepted by browsers).
    Ed25519,
    /// RSA, 2048 bits.
    Rsa2048,
    /// RSA, 3072 bits.
    Rsa3072,
    /// RSA, 4096 bits (slow to generate).
    Rsa4096,
}

impl KeyType {
    /// Every key type, in the order the help lists them.
    pub const ALL: [KeyType; 6] = [
        KeyType::EcdsaP256,
        KeyType::EcdsaP384,
        KeyType::Ed25519,
        KeyType::Rsa2048,
        KeyType::Rsa3072,
        KeyType::Rsa4096,
    ];

    /// The name `--key-type` takes (`ecdsa-p256`).
    pub fn name(self) -> &'static str {
        match self {
            KeyType::EcdsaP256 => "ecdsa-p256",
            KeyType::EcdsaP384 => "ecdsa-p384",
            KeyType::Ed25519 => "ed25519",
            KeyType::Rsa2048 => "rsa-2048",
            KeyType::Rsa3072 => "rsa-3072",
            KeyType::Rsa4096 => "rsa-4096",
        }
    }

    /// A description for people (`ECDSA P-256`, `RSA 2048`).
    pub fn description(self) -> &'static str {
        match self {
            KeyType::EcdsaP256 => "ECDSA P-256",
            KeyType::EcdsaP384 => "ECDSA P-384",
            KeyType::Ed25519 => "Ed25519",
            KeyType::Rsa2048 => "RSA 2048",
            KeyType::Rsa3072 => "RSA 3072",
            KeyType::Rsa4096 => "RSA 4096",
        }
    }

    fn rsa_bits(self) -> Option<usize> {
        match self {
            KeyType::Rsa2048 => Some(2048),
            KeyType::Rsa3072 => Some(3072),
            KeyType::Rsa4096 => Some(4096),
            _ => None,
        }
    }

    /// Whether this is an RSA key type.
    pub fn is_rsa(self) -> bool {
        self.rsa_bits().is_some()
    }

    /// A fresh key pair of this type.
    ///
    /// # Errors
    /// [`CertError::Generate`] if the system's random source fails.
    pub fn generate(self) -> Result<KeyPair, CertError> {
        let generate_error = |e: &dyn fmt::Display| CertError::Generate(format!("{} key: {e}", self.name()));
        let alg = match self {
            KeyType::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyType::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeyType::Ed25519 => &rcgen::PKCS_ED25519,
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => {
                use rsa::pkcs8::EncodePrivateKey;
                let bits = self.rsa_bits().unwrap_or(2048);
                let key = rsa::PrivateKey::new(&mut SystemRng, bits).map_err(|e| generate_error(&e))?;
                let der = key.to_pkcs8_der().map_err(|e| generate_error(&e))?;
                let pkcs8 = PrivatePkcs8KeyDer::from(der.as_bytes());
                return KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, &rcgen::PKCS_RSA_SHA256)
                    .map_err(|e| generate_error(&e));
            }
        };
        let key = KeyPair::generate_for(alg).map_err(|e| generate_error(&e))?;
        if self == KeyType::Ed25519 {
            return ed25519_pkcs8_v1(&key).map_err(|e| generate_error(&e));
        }
        Ok(key)
    }
}

/// The same Ed25519 key, written as PKCS#8 v1 (RFC 8410 without the optional public key):
/// ring makes v2 (RFC 5958, with the public key), which OpenSSL 3.0, GnuTLS 3.7 and
/// Python's `ssl` refuse to read.
fn ed25519_pkcs8_v1(key: &KeyPair) -> Result<KeyPair, String> {
    // SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.112 }, OCTET STRING { OCTET STRING seed } }
    const V1_PREFIX: [u8; 16] =
        [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
    // The same up to the version (1) and the outer length; the seed follows at offset 16.
    let v2 = key.serialize_der();
    let seed = v2
        .get(16..48)
        .filter(|_| v2.len() > 48 && v2[5..16] == V1_PREFIX[5..16])
        .ok_or("unexpected PKCS#8 layout from the key generator")?;
    let mut v1 = V1_PREFIX.to_vec();
    v1.extend_from_slice(seed);
    KeyPair::from_pkcs8_der_and_sign_algo(&PrivatePkcs8KeyDer::from(v1.as_slice()), &rcgen::PKCS_ED25519)
        .map_err(|e| e.to_string())
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KeyType {
    type Err = String;

    /// The `--key-type` names, case-insensitive; `ecdsa`, `p256`, `rsa` and `rsa2048` style
    /// spellings are accepted too.
    fn from_str(s: &str) -> Result<Self, String> {
        let wanted: String = s.to_ascii_lowercase().chars().filter(|c| *c != '-' && *c != '_').collect();
        let found = match wanted.as_str() {
            "ecdsa" | "ec" | "p256" | "ecdsap256" | "ecp256" => KeyType::EcdsaP256,
            "p384" | "ecdsap384" | "ecp384" => KeyType::EcdsaP384,
            "ed25519" => KeyType::Ed25519,
            "rsa" | "rsa2048" => KeyType::Rsa2048,
            "rsa3072" => KeyType::Rsa3072,
            "rsa4096" => KeyType::Rsa4096,
            _ => {
                let names: Vec<&str> = KeyType::ALL.iter().map(|k| k.name()).collect();
                return Err(format!("unknown key type {s:?} (expected one of {})", names.join(", ")));
            }
        };
        Ok(found)
    }
}

/// ring's system random source, as the RNG the `rsa` crate asks for.
struct SystemRng;

impl rsa::rand_core::TryRng for SystemRng {
    type Error = std::io::Error;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut bytes = [0u8; 4];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut bytes = [0u8; 8];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        fill_random(dst)
    }
}

impl rsa::rand_core::TryCryptoRng for SystemRng {}

fn fill_random(dst: &mut [u8]) -> std::io::Result<()> {
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), dst)
        .map_err(|_| std::io::Error::other("the system's random source failed"))
}

/// A random positive 128-bit serial number.
fn random_serial() -> Result<SerialNumber, CertError> {
    let mut bytes = [0u8; 16];
    fill_random(&mut bytes).map_err(|e| CertError::Generate(e.to_string()))?;
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01; // never zero, never a leading zero byte
    Ok(SerialNumber::from_slice(&bytes))
}

/// How long certificates are backdated, for clocks a little behind.
const BACKDATE: time::Duration = time::Duration::minutes(1);

/// What a leaf certificate should say.
#[derive(Debug, Clone)]
pub struct LeafSpec {
    /// Its names (at least one).
    pub names: Vec<SubjectName>,
    /// The subject CN; default: the first name (left out if longer than 64 characters).
    pub common_name: Option<String>,
    /// The key to make.
    pub key_type: KeyType,
    /// Valid from.
    pub not_before: OffsetDateTime,
    /// Valid until.
    pub not_after: OffsetDateTime,
    /// Also for client authentication (the clientAuth extended key usage).
    pub client: bool,
    /// Never an IP address as the CN (for a name-constrained CA: OpenSSL checks a CN that
    /// looks like a host name against the DNS constraints when the leaf has no DNS name,
    /// and `127.0.0.1` looks like one).
    pub no_ip_common_name: bool,
}

impl LeafSpec {
    /// A spec valid from a minute ago for `days` days.
    pub fn new(names: Vec<SubjectName>, key_type: KeyType, days: u32) -> LeafSpec {
        let now = OffsetDateTime::now_utc();
        LeafSpec {
            names,
            common_name: None,
            key_type,
            not_before: now - BACKDATE,
            not_after: now + time::Duration::days(i64::from(days)),
            client: false,
            no_ip_common_name: false,
        }
    }

    fn params(&self) -> Result<CertificateParams, CertError> {
        if self.names.is_empty() {
            return Err(CertError::Generate("a certificate needs at least one name".into()));
        }
        let mut params = CertificateParams::default();
        params.subject_alt_names = self
            .names
            .iter()
            .map(|n| n.to_san().map_err(|e| CertError::Generate(format!("{}: {e}", n.as_text()))))
            .collect::<Result<_, _>>()?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "streamtool development certificate");
        let cn = self.common_name.clone().or_else(|| self.names.first().map(SubjectName::as_text));
        let is_ip = |cn: &String| cn.parse::<std::net::IpAddr>().is_ok();
        if let Some(cn) = cn.filter(|cn| cn.chars().count() <= 64 && !(self.no_ip_common_name && is_ip(cn))) {
            dn.push(DnType::CommonName, cn);
        }
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if self.key_type.is_rsa() {
            params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
        }
        let mut usages = Vec::new();
        if self.names.iter().any(SubjectName::is_host) {
            usages.push(ExtendedKeyUsagePurpose::ServerAuth);
        }
        if self.client {
            usages.push(ExtendedKeyUsagePurpose::ClientAuth);
        }
        if self.names.iter().any(|n| matches!(n, SubjectName::Email(_))) {
            usages.push(ExtendedKeyUsagePurpose::EmailProtection);
        }
        params.extended_key_usages = usages;
        params.not_before = self.not_before;
        params.not_after = self.not_after;
        params.serial_number = Some(random_serial()?);
        Ok(params)
    }
}

/// What a new CA should say.
#[derive(Debug, Clone)]
pub struct CaSpec {
    /// The subject CN.
    pub common_name: String,
    /// The key to make.
    pub key_type: KeyType,
    /// Days of validity.
    pub days: u32,
    /// The names it may sign for (a critical NameConstraints extension); `None`: any.
    pub constraints: Option<Constraints>,
    /// Two levels: a root that signs one intermediate CA with the same constraints, then
    /// its key is dropped; the intermediate signs the leaves. For clients (Java) that
    /// ignore the name constraints of a trust anchor but enforce them below it.
    pub intermediate: bool,
}

impl CaSpec {
    /// A CA named after the user and host (`streamtool local CA alice@laptop`).
    pub fn for_this_user(key_type: KeyType, days: u32) -> CaSpec {
        let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_default();
        let host = crate::platform::host_name();
        let who = match (user.is_empty(), host.is_empty()) {
            (false, false) => format!(" {user}@{host}"),
            (false, true) => format!(" {user}"),
            (true, false) => format!(" {host}"),
            (true, true) => String::new(),
        };
        let common_name: String = format!("streamtool local CA{who}").chars().take(64).collect();
        CaSpec { common_name, key_type, days, constraints: None, intermediate: false }
    }
}

/// What ends the intermediate CA's common name (the root's CN, then this), which tells
/// its subject from the root's.
pub const INTERMEDIATE_SUFFIX: &str = " intermediate";

/// A CA certificate's parameters for `spec` (with `intermediate`, the intermediate's CN),
/// `path_len` CAs allowed below it, valid from a minute ago for `spec.days`.
fn ca_params(spec: &CaSpec, intermediate: bool, path_len: u8) -> Result<CertificateParams, CertError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "streamtool local CA");
    let mut cn = spec.common_name.clone();
    if intermediate {
        // At most 64 characters in all (the CN's upper bound).
        cn = cn.chars().take(64 - INTERMEDIATE_SUFFIX.len()).collect::<String>() + INTERMEDIATE_SUFFIX;
    }
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_len));
    params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - BACKDATE;
    params.not_after = now + time::Duration::days(i64::from(spec.days));
    params.serial_number = Some(random_serial()?);
    params.name_constraints = spec.constraints.as_ref().map(Constraints::to_rcgen);
    Ok(params)
}

/// A certificate authority: its certificate (the root, which clients trust), the
/// intermediate CA below it when there is one, and the key that signs leaves (the
/// intermediate's, else the root's).
pub struct CertAuthority {
    cert: CertificateDer<'static>,
    cert_pem: String,
    key: KeyPair,
    not_after: OffsetDateTime,
    constraints: Option<Constraints>,
    intermediate: Option<(CertificateDer<'static>, String)>,
}

impl fmt::Debug for CertAuthority {
    /// Never prints the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertAuthority").field("cert_pem", &self.cert_pem).finish_non_exhaustive()
    }
}

impl CertAuthority {
    /// A new CA: a self-signed root, CA:TRUE with a path length of 0 (it signs leaves
    /// only, as mkcert's), key usages keyCertSign and cRLSign. With `spec.intermediate`,
    /// the root (path length 1) signs one intermediate CA (path length 0, the same name
    /// constraints) and its key is dropped here: only the intermediate's key is kept.
    ///
    /// # Errors
    /// [`CertError::Generate`].
    pub fn generate(spec: &CaSpec) -> Result<CertAuthority, CertError> {
        let fail = |e: rcgen::Error| CertError::Generate(e.to_string());
        let root_key = spec.key_type.generate()?;
        let root = ca_params(spec, false, u8::from(spec.intermediate))?;
        let root_cert = root.self_signed(&root_key).map_err(fail)?;
        let not_after = root.not_after;
        let constraints = spec.constraints.clone();
        if !spec.intermediate {
            let (cert_pem, cert) = (root_cert.pem(), root_cert.der().clone());
            return Ok(CertAuthority {
                cert,
                cert_pem,
                key: root_key,
                not_after,
                constraints,
                intermediate: None,
            });
        }
        let key = spec.key_type.generate()?;
        let mut params = ca_params(spec, true, 0)?;
        params.not_before = root.not_before;
        params.not_after = root.not_after;
        params.use_authority_key_identifier_extension = true;
        // The root's key signs this one certificate and is dropped here.
        let issuer = Issuer::from_ca_cert_der(root_cert.der(), &root_key)
            .map_err(|e| CertError::Generate(format!("cannot use the root: {e}")))?;
        let inter = params.signed_by(&key, &issuer).map_err(fail)?;
        drop(issuer);
        drop(root_key);
        Ok(CertAuthority {
            cert_pem: root_cert.pem(),
            cert: root_cert.der().clone(),
            key,
            not_after,
            constraints,
            intermediate: Some((inter.der().clone(), inter.pem())),
        })
    }

    /// A CA from its certificate and key (PEM), checked to be a CA and to belong together.
    /// With `intermediate` (the two-level layout), the key is that certificate's, which
    /// must be a CA signed by `cert_path`'s key. The key may be PKCS#8 or, for RSA, PKCS#1.
    ///
    /// # Errors
    /// [`CertError::Malformed`], [`CertError::NoCertificate`], [`CertError::NoKey`],
    /// [`CertError::UnusableKey`], [`CertError::KeyMismatch`], or [`CertError::NotCa`],
    /// each naming the file.
    pub fn from_files(
        cert_path: &std::path::Path,
        intermediate: Option<&std::path::Path>,
        key_path: &std::path::Path,
    ) -> Result<Self, CertError> {
        let cert = super::load_certs(cert_path)?.remove(0);
        let key = load_ca_key(key_path)?;
        let (_, parsed) = parse_ca(cert_path, &cert)?;
        let mut not_after = parsed.validity().not_after.to_datetime();
        let mut constraints = Constraints::of_certificate(&parsed)
            .map_err(|e| CertError::Malformed(cert_path.to_path_buf(), format!("name constraints: {e}")))?;
        let cert_pem = pem_certificate(cert.as_ref());
        let (signer_path, signer) = match intermediate {
            None => (cert_path, parsed),
            Some(path) => {
                let inter = super::load_certs(path)?.remove(0);
                let (_, below) = parse_ca(path, &inter)?;
                below.verify_signature(Some(parsed.public_key())).map_err(|_| {
                    CertError::Malformed(
                        path.to_path_buf(),
                        format!(
                            "not signed by the key of {} (the CA directory is mixed up)",
                            cert_path.display()
                        ),
                    )
                })?;
                not_after = not_after.min(below.validity().not_after.to_datetime());
                let own = Constraints::of_certificate(&below).map_err(|e| {
                    CertError::Malformed(path.to_path_buf(), format!("name constraints: {e}"))
                })?;
                constraints = own.or(constraints);
                check_key(path, &below, key_path, &key)?;
                let pem = pem_certificate(inter.as_ref());
                let intermediate = Some((inter, pem));
                return Ok(CertAuthority { cert, cert_pem, key, not_after, constraints, intermediate });
            }
        };
        check_key(signer_path, &signer, key_path, &key)?;
        Ok(CertAuthority { cert, cert_pem, key, not_after, constraints, intermediate: None })
    }

    /// Issues a leaf for `spec`, signed by this CA.
    ///
    /// # Errors
    /// [`CertError::Generate`].
    pub fn issue(&self, spec: &LeafSpec) -> Result<GeneratedCert, CertError> {
        let key = spec.key_type.generate()?;
        let mut params = spec.params()?;
        params.use_authority_key_identifier_extension = true;
        let issuer = Issuer::from_ca_cert_der(self.signing_cert(), &self.key)
            .map_err(|e| CertError::Generate(format!("cannot use the CA: {e}")))?;
        let cert = params.signed_by(&key, &issuer).map_err(|e| CertError::Generate(e.to_string()))?;
        Ok(generated(&cert, &key))
    }

    /// Issues a leaf for `spec` with a key made elsewhere (a CSR's), signed by this CA; the
    /// result has no private key (`key_pem` and `key_der` are empty).
    ///
    /// # Errors
    /// [`CertError::Generate`].
    pub fn issue_for_key(
        &self,
        spec: &LeafSpec,
        public_key: &impl rcgen::PublicKeyData,
    ) -> Result<GeneratedCert, CertError> {
        let mut params = spec.params()?;
        params.use_authority_key_identifier_extension = true;
        let issuer = Issuer::from_ca_cert_der(self.signing_cert(), &self.key)
            .map_err(|e| CertError::Generate(format!("cannot use the CA: {e}")))?;
        let cert = params.signed_by(public_key, &issuer).map_err(|e| CertError::Generate(e.to_string()))?;
        Ok(GeneratedCert {
            cert_pem: cert.pem(),
            key_pem: String::new(),
            cert_der: cert.der().clone(),
            key_der: Vec::new(),
        })
    }

    /// The certificate whose key signs leaves: the intermediate, else the root.
    fn signing_cert(&self) -> &CertificateDer<'static> {
        self.intermediate.as_ref().map_or(&self.cert, |(der, _)| der)
    }

    /// The intermediate CA (DER and PEM) that signs leaves in the two-level layout;
    /// `None` when the root signs them itself.
    pub fn intermediate(&self) -> Option<(&CertificateDer<'static>, &str)> {
        self.intermediate.as_ref().map(|(der, pem)| (der, pem.as_str()))
    }

    /// The certificates a leaf is sent with: the intermediate, when there is one.
    pub fn chain_pem(&self) -> &str {
        self.intermediate.as_ref().map_or("", |(_, pem)| pem.as_str())
    }

    /// The names this CA may sign for; `None` when it has no name constraints.
    pub fn constraints(&self) -> Option<&Constraints> {
        self.constraints.as_ref()
    }

    /// The CA certificate (the root, which clients trust), DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// The CA certificate (the root, which clients trust), PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The key that signs leaves (the intermediate's in the two-level layout), PKCS#8 PEM.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// When the CA expires (the earlier of the root and the intermediate).
    pub fn not_after(&self) -> OffsetDateTime {
        self.not_after
    }
}

/// A CA key from its file: PKCS#8, or RSA PKCS#1 (converted).
fn load_ca_key(key_path: &std::path::Path) -> Result<KeyPair, CertError> {
    let key_der = super::load_private_key(key_path)?;
    let unusable = |why: String| CertError::UnusableKey(key_path.to_path_buf(), why);
    let pkcs8: Vec<u8> = match &key_der {
        PrivateKeyDer::Pkcs8(der) => der.secret_pkcs8_der().to_vec(),
        PrivateKeyDer::Pkcs1(der) => {
            use rsa::pkcs1::DecodeRsaPrivateKey;
            use rsa::pkcs8::EncodePrivateKey;
            let key = rsa::PrivateKey::from_pkcs1_der(der.secret_pkcs1_der())
                .map_err(|e| unusable(e.to_string()))?;
            key.to_pkcs8_der().map_err(|e| unusable(e.to_string()))?.as_bytes().to_vec()
        }
        _ => {
            return Err(unusable(format!(
                "only PKCS#8 (or RSA PKCS#1) CA keys can sign; convert it: openssl pkcs8 -topk8 -nocrypt -in {0} -out {0}.p8",
                key_path.display()
            )));
        }
    };
    KeyPair::try_from(&PrivateKeyDer::Pkcs8(pkcs8.into())).map_err(|e| unusable(e.to_string()))
}

/// A certificate parsed and checked to be a CA.
fn parse_ca<'a>(
    path: &std::path::Path,
    der: &'a CertificateDer<'static>,
) -> Result<(&'a [u8], x509_parser::certificate::X509Certificate<'a>), CertError> {
    let parsed = x509_parser::parse_x509_certificate(der.as_ref())
        .map_err(|e| CertError::Malformed(path.to_path_buf(), e.to_string()))?;
    if !parsed.1.is_ca() {
        return Err(CertError::NotCa(path.to_path_buf()));
    }
    Ok(parsed)
}

/// The key must be the certificate's.
fn check_key(
    cert_path: &std::path::Path,
    cert: &x509_parser::certificate::X509Certificate<'_>,
    key_path: &std::path::Path,
    key: &KeyPair,
) -> Result<(), CertError> {
    if rcgen::PublicKeyData::subject_public_key_info(key) != cert.public_key().raw {
        return Err(CertError::KeyMismatch { cert: cert_path.to_path_buf(), key: key_path.to_path_buf() });
    }
    Ok(())
}

/// A lone self-signed leaf for `spec` (CA:FALSE, serverAuth): trusted by listing it
/// itself as the CA (`connect --tls --ca cert.pem`).
///
/// # Errors
/// [`CertError::Generate`].
pub fn self_signed_leaf(spec: &LeafSpec) -> Result<GeneratedCert, CertError> {
    let key = spec.key_type.generate()?;
    let cert = spec.params()?.self_signed(&key).map_err(|e| CertError::Generate(e.to_string()))?;
    Ok(generated(&cert, &key))
}

fn generated(cert: &rcgen::Certificate, key: &KeyPair) -> GeneratedCert {
    GeneratedCert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        cert_der: cert.der().clone(),
        key_der: key.serialize_der(),
    }
}

/// A certificate as PEM text.
pub fn pem_certificate(der: &[u8]) -> String {
    let encoded = base64(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in encoded.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

fn base64(data: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A PKCS#12 file holding the key, the leaf and `chain` (the CA), encrypted with
/// `password`: PBES2 with AES-256 and an HMAC-SHA256 MAC (OpenSSL 3's default), or with
/// `legacy`, 3DES and an HMAC-SHA1 MAC for older macOS, Windows and Java.
///
/// # Errors
/// [`CertError::Generate`].
pub fn pkcs12(
    cert: &GeneratedCert,
    chain: &[CertificateDer<'_>],
    alias: &str,
    password: &str,
    legacy: bool,
) -> Result<Vec<u8>, CertError> {
    use p12_keystore::{
        Certificate, EncryptionAlgorithm, KeyStore, KeyStoreEntry, MacAlgorithm, PrivateKeyChain,
    };
    let fail = |e: p12_keystore::error::Error| CertError::Generate(format!("PKCS#12: {e}"));
    let key = p12_keystore::PrivateKey::from_der(&cert.key_der).map_err(fail)?;
    let mut certs = vec![Certificate::from_der(cert.cert_der.as_ref()).map_err(fail)?];
    for ca in chain {
        certs.push(Certificate::from_der(ca.as_ref()).map_err(fail)?);
    }
    let key_id = crate::streams::tls::sha256(cert.cert_der.as_ref())[..20].to_vec();
    let mut store = KeyStore::new();
    store.add_entry(alias, KeyStoreEntry::PrivateKeyChain(PrivateKeyChain::new(key_id, key, certs)));
    let writer = store.writer(password);
    let writer = if legacy {
        writer
            .encryption_algorithm(EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc)
            .mac_algorithm(MacAlgorithm::HmacSha1)
    } else {
        writer
    };
    writer.write().map_err(fail)
}
