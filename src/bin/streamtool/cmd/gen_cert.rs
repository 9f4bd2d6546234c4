//! `streamtool gen-cert`: a local CA and certificates signed by it (mkcert-style names),
//! lone self-signed certificates, and `--inspect`. The work is the library's
//! (`streamtool::certs::make` and its reports); this module is the flags, the notes on
//! stderr, the events and stdout. Defaults and decisions are in `docs/gen-cert.md`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use streamtool::certs::{self, CertRequest, FileSet, KeyType, MakeError, Report};

use crate::exit_codes::Usage;
use crate::ui::Ui;

const EXAMPLES: &str = "\
Examples:
  streamtool gen-cert localhost 127.0.0.1 ::1     # localhost+2.pem, localhost+2-key.pem
  streamtool gen-cert --ca-only                   # create or show the local CA (its ca.pem)
  streamtool gen-cert --ca-only --permit .corp.example --permit 10.0.0.0/8  # a CA for these only
  streamtool gen-cert --csr req.pem               # sign a request; its key stays its owner's
  streamtool gen-cert --inspect cert.pem --check 30d  # exit 4 if it expires within 30 days

The local CA lives in --ca-dir, else $STREAMTOOL_CA_DIR, else streamtool/ca in the user's
data directory ($XDG_DATA_HOME or ~/.local/share). Keys are written 0600 (the CA key 0400);
an existing file is never replaced without --force. A new CA may sign only for
localhost, .localhost, .test, .internal, loopback and private addresses unless made with
--ca-only --permit NAME... or --any-name.

Exit codes: see `streamtool --help`.";

/// Arguments of `gen-cert`.
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
#[command(group = clap::ArgGroup::new("new_ca").args(["ca_only", "install"]).multiple(true))]
#[command(group = clap::ArgGroup::new("trust_change").args(["install", "uninstall"]))]
pub struct GenCertArgs {
    /// Names the certificate is for: DNS names, IP addresses (v4 or v6), one-level
    /// wildcards (*.example.com) or email addresses; the kind is detected from the form.
    #[arg(value_name = "NAME", required_unless_present_any = ["ca_only", "inspect", "csr", "install", "uninstall"])]
    pub names: Vec<String>,

    /// Make a lone self-signed certificate instead of one signed by the local CA (clients
    /// then trust the certificate itself: connect --tls --ca CERT).
    #[arg(long, conflicts_with_all = ["ca_only", "ca_dir", "bundle", "csr"])]
    pub self_signed: bool,

    /// Only create the local CA (if there is none yet) and show it.
    #[arg(long, conflicts_with_all = ["names", "cert_file", "key_file", "bundle", "client", "pkcs12", "csr"])]
    pub ca_only: bool,

    /// With --ca-only, when the CA is made: the names it may sign for, repeatable (a
    /// critical name constraint): a DNS name covers itself and every name under it
    /// (localhost, .test, example.com), an IP range its addresses (127.0.0.0/8, ::1/128).
    /// Default: localhost, .localhost, .test, .internal, loopback and private addresses.
    #[arg(long, value_name = "NAME", requires = "new_ca", conflicts_with = "any_name")]
    pub permit: Vec<String>,

    /// With --ca-only, when the CA is made: no name constraints, so that it may sign for
    /// any name (as mkcert's CA).
    #[arg(long, requires = "new_ca")]
    pub any_name: bool,

    /// Put the local CA (made first if there is none) into the trust stores (--trust-stores):
    /// the system store, so that curl, OpenSSL, Python and Go trust it with no flag (needs root;
    /// Debian/Ubuntu: /usr/local/share/ca-certificates and update-ca-certificates, Fedora/RHEL:
    /// /etc/pki/ca-trust/source/anchors and update-ca-trust), and the NSS databases of Firefox and Chromium
    /// in $HOME (certutil). Every store is checked first; a failure undoes this run's changes.
    #[arg(
        long,
        conflicts_with_all = ["names", "uninstall", "csr", "self_signed", "cert_file", "key_file", "bundle", "client", "pkcs12", "force"]
    )]
    pub install: bool,

    /// Take the local CA out of the trust stores again (exactly what --install added).
    #[arg(
        long,
        conflicts_with_all = ["names", "csr", "self_signed", "ca_only", "cert_file", "key_file", "bundle", "client", "pkcs12", "key_type", "days", "cn", "force", "permit", "any_name"]
    )]
    pub uninstall: bool,

    /// With --install or --uninstall: the stores to change, comma-separated: system, nss
    /// (Firefox and Chromium, with certutil), java (a keystore, with keytool). Default:
    /// system, plus nss when an NSS database is found in $HOME (~/.pki/nssdb, Firefox
    /// profiles); a found database without certutil is then a note. mkcert's TRUST_STORES
    /// variable is not read.
    #[arg(long, value_name = "LIST", requires = "trust_change")]
    pub trust_stores: Option<String>,

    /// With --trust-stores naming java: the keystore (password changeit). Default:
    /// $JAVA_HOME/lib/security/cacerts if it exists, else Debian's system keystore
    /// (the one ca-certificates-java keeps; docs/gen-cert.md names it).
    #[arg(long, value_name = "FILE", requires = "trust_stores")]
    pub java_keystore: Option<PathBuf>,

    /// Sign this certificate signing request (a PEM CERTIFICATE REQUEST) instead
    /// of making a key: its signature and names are checked, the key stays its owner's.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["names", "key_type", "key_file", "pkcs12", "self_signed"]
    )]
    pub csr: Option<PathBuf>,

    /// The local CA's directory (ca.pem and ca-key.pem). Default: $STREAMTOOL_CA_DIR, else
    /// streamtool/ca in the user's data directory (~/.local/share/streamtool/ca).
    #[arg(long, value_name = "DIR")]
    pub ca_dir: Option<PathBuf>,

    /// Key type: ecdsa-p256 (default), ecdsa-p384, ed25519, rsa-2048, rsa-3072 or rsa-4096.
    /// A CA created implicitly is always ecdsa-p256; use --ca-only --key-type for another.
    #[arg(long, value_name = "TYPE", value_parser = crate::cli::parsed::<KeyType>)]
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

    /// Add a single-root CA's certificate after the leaf (a two-level CA's files always have its intermediate).
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
            "cert_file", "key_file", "bundle", "pkcs12", "force", "csr", "install", "uninstall",
        ]
    )]
    pub inspect: Option<PathBuf>,

    /// With --inspect: check instead of showing. Exit 4 with one line per certificate in
    /// FILE that expires within PERIOD (30d, 2w, 12h) or has expired, naming it and its
    /// not-after; exit 0, silently, when all are valid for longer.
    #[arg(long, value_name = "PERIOD", alias = "expires-within", requires = "inspect", conflicts_with = "json", value_parser = streamtool::values::parse_period)]
    pub check: Option<std::time::Duration>,

    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Runs `gen-cert`.
pub fn run(args: GenCertArgs, ui: Ui) -> Result<()> {
    if let Some(cn) = &args.cn
        && (cn.is_empty() || cn.chars().count() > 64 || cn.chars().any(char::is_control))
    {
        return Err(Usage(format!("--cn {cn:?}: a common name has 1 to 64 characters")).into());
    }
    if let (Some(path), Some(period)) = (&args.inspect, args.check) {
        return check_expiry(path, period, &ui);
    }
    let note = &mut |text: &str| ui.notice(text);
    let out = match &args.inspect {
        Some(path) => certs::inspect_report(path, args.json, note).map_err(failure)?,
        None if args.install => {
            let choice = store_choice(&args)?;
            let (made, changes) = certs::make::install(&request(&args), &choice, note).map_err(failure)?;
            emit_files(&ui, &made.files, &made.kinds);
            certs::trust_report(&made.dir, &changes, true, args.json)
        }
        None if args.uninstall => {
            let choice = store_choice(&args)?;
            let (dir, changes) = certs::make::uninstall(&request(&args), &choice, note).map_err(failure)?;
            certs::trust_report(&dir, &changes, false, args.json)
        }
        None if args.ca_only => {
            let made = certs::make::ca_only(&request(&args), note).map_err(failure)?;
            emit_files(&ui, &made.files, &made.kinds);
            made.report(args.json).map_err(anyhow::Error::msg)?
        }
        None => {
            let made = certs::make::leaf(&request(&args), note).map_err(failure)?;
            emit_files(&ui, &made.files, &made.kinds);
            made.report(args.json).map_err(anyhow::Error::msg)?
        }
    };
    flush(out)
}

/// `--inspect FILE --check PERIOD`: one line for each certificate that expires within the
/// period (the last one is the error, exit 4); nothing on stdout.
fn check_expiry(path: &std::path::Path, period: std::time::Duration, ui: &Ui) -> Result<()> {
    let lines = certs::expiring_within(path, period, time::OffsetDateTime::now_utc()).map_err(failure)?;
    match streamtool::event::say_all_but_last(ui, lines) {
        None => Ok(()),
        Some(last) => Err(crate::exit_codes::CheckFailed(last).into()),
    }
}

/// `--trust-stores`, or the default for the user's home.
fn store_choice(args: &GenCertArgs) -> Result<certs::StoreChoice> {
    certs::StoreChoice::new(args.trust_stores.as_deref(), dirs::home_dir(), args.java_keystore.clone())
        .map_err(failure)
}

/// The library's request from the flags.
fn request(args: &GenCertArgs) -> CertRequest {
    CertRequest {
        names: args.names.clone(),
        self_signed: args.self_signed,
        ca_dir: certs::ca_dir_from(args.ca_dir.as_deref()),
        key_type: args.key_type,
        days: args.days,
        client: args.client,
        cn: args.cn.clone(),
        cert_file: args.cert_file.clone(),
        key_file: args.key_file.clone(),
        bundle: args.bundle,
        pkcs12: args.pkcs12,
        p12_file: args.p12_file.clone(),
        p12_legacy: args.p12_legacy,
        force: args.force,
        permit: args.permit.clone(),
        any_name: args.any_name,
        csr: args.csr.clone(),
    }
}

/// A usage error (exit code 2) or a failure (1).
fn failure(err: MakeError) -> anyhow::Error {
    if err.is_usage() { Usage(err.to_string()).into() } else { err.into() }
}

/// Writes the text or the JSON to stdout; a closed stdout is not an error.
fn flush(out: Report) -> Result<()> {
    let text = match out.json {
        Some(value) => format!("{}\n", serde_json::to_string_pretty(&value)?),
        None => out.text,
    };
    crate::ui::write_stdout(text.as_bytes())
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
