//! One options value per endpoint ([`EndpointOptions`]) and what is built from it: the TLS
//! client and server settings, the shaping of a direction, and the defaults.
//!
//! The defaults live here and nowhere else: the command line shows them in its help
//! (checked against these constants by the binary's tests), `pipe`'s endpoint options
//! fall back to them.

use std::sync::Arc;
use std::time::Duration;

use crate::certs::{self, CertError, GeneratedCert};
use crate::endpoint::EndpointOptions;
use crate::relay::Shaping;
use crate::stack::reload::CertSet;
use crate::streams::encoding::{ErrorMode, TextEncoding};
use crate::streams::framing::FrameConfig;
use crate::streams::tls::{
    ClientAuth, ClientOptions, KeyLog, RaggedEofPolicy, ServerOptions, Trust, VersionRange,
};

/// How long a TLS handshake may take (`--handshake-timeout`, `handshake-timeout=`).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest frame with a delimiter (`--max-frame`, `max-frame=`): 1 MiB.
pub const MAX_FRAME: usize = 1 << 20;

/// The default idle limit of a `pipe` with a `tls-listen` endpoint (a TLS terminator):
/// one hour. Without one, silent clients that completed a handshake hold a backend
/// connection each for as long as they like (1,000 of them held 2,012 descriptors), and
/// `--max-conns` then locks everyone else out. stunnel's TIMEOUTidle is 12 hours and
/// ghostunnel sets none; nginx's stream proxy_timeout is 10 minutes. An hour is past what
/// protocols that idle on purpose wait (IMAP IDLE refreshes every 29 minutes, TCP and SSH
/// keepalives are shorter), while it bounds what a silent client holds. docs/security.md.
pub const TLS_TERMINATOR_IDLE: std::time::Duration = std::time::Duration::from_secs(3600);

/// The names a self-signed certificate is made for when a TLS server has none.
pub const SELF_SIGNED_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// How long that certificate is valid, in days.
pub const SELF_SIGNED_DAYS: u32 = 30;

/// How the options were given, for messages that name one: `--ca` as a flag of `serve`
/// and `connect`, `ca=` as an option of a `pipe` endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spelling {
    /// Command-line flags.
    Flags,
    /// `pipe` endpoint options.
    Endpoint,
}

impl Spelling {
    /// The option as the user wrote it.
    pub fn name(self, option: &str) -> String {
        match self {
            Spelling::Flags => format!("--{option}"),
            Spelling::Endpoint => format!("{option}="),
        }
    }

    /// A flag without a value as the user wrote it (`--tofu`, or `pipe`'s bare `tofu`).
    pub fn bare(self, option: &str) -> String {
        match self {
            Spelling::Flags => format!("--{option}"),
            Spelling::Endpoint => option.to_string(),
        }
    }
}

/// A file an option names could not be used.
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    /// A certificate or key file (named as the user wrote the option).
    #[error("cannot use {what}")]
    File {
        /// The option, or what it is for.
        what: String,
        /// Why.
        #[source]
        source: CertError,
    },
    /// The self-signed certificate of a server without one could not be made.
    #[error("cannot make a certificate")]
    SelfSigned(#[source] CertError),
    /// A setting that cannot be used (an empty certificate directory, a bad line in an
    /// access file); the line says which.
    #[error("{0}")]
    Setting(String),
    /// Options that do not fit together (more keys than certificates, an allow-list
    /// without the CAs to check it): a usage error (exit 2).
    #[error("{0}")]
    Usage(String),
}

impl EndpointOptions {
    /// How a client's TCP connection is made: the family, `connect-timeout=`, `source=`
    /// and `keepalive=`.
    pub fn connect_options(
        &self,
        family: crate::streams::FamilyPreference,
    ) -> crate::streams::ConnectOptions {
        crate::streams::ConnectOptions {
            family,
            timeout: self.connect_timeout,
            source: self.source,
            keepalive: self.keepalive,
        }
    }

    /// How a listener's TCP sockets are set up: `reuse-port`, `keepalive`.
    pub fn listen_options(&self) -> crate::streams::listener::ListenOptions {
        crate::streams::listener::ListenOptions { reuse_port: self.reuse_port, keepalive: self.keepalive }
    }

    /// The handshake timeout, or the default.
    pub fn handshake_limit(&self) -> Duration {
        self.handshake_timeout.unwrap_or(HANDSHAKE_TIMEOUT)
    }

    /// What a TLS close without close_notify means (strict unless said otherwise).
    pub fn ragged_eof_policy(&self) -> RaggedEofPolicy {
        self.ragged_eof.unwrap_or_default()
    }

    /// The TLS version range.
    pub fn versions(&self) -> VersionRange {
        let default = VersionRange::default();
        VersionRange { min: self.tls_min.unwrap_or(default.min), max: self.tls_max.unwrap_or(default.max) }
    }

    /// The ALPN protocols, empty names dropped.
    pub fn alpn_protocols(&self) -> Vec<Vec<u8>> {
        self.alpn.iter().filter(|p| !p.is_empty()).map(|p| p.as_bytes().to_vec()).collect()
    }

    /// Opens the recording the `tap` options ask for (its files created now, before
    /// anything listens or connects, each announced: [`crate::tap::announce`]), for an
    /// endpoint that is TLS or not; every connection of the endpoint then shares it.
    ///
    /// # Errors
    /// [`crate::tap::TapError`] naming the file.
    pub fn open_recorder(
        &mut self,
        tls: bool,
        report: &dyn crate::event::Report,
    ) -> Result<(), crate::tap::TapError> {
        self.recorder = crate::tap::Recorder::open(&self.tap, tls)?;
        if let Some(recorder) = &self.recorder {
            crate::tap::announce(&recorder.0.files(), recorder.0.wants_secrets(), report);
        }
        Ok(())
    }

    /// Reads the `allow-file`/`deny-file` blocks into the access list now (before
    /// anything listens), so that a bad file is said at once.
    ///
    /// # Errors
    /// [`OptionsError::Setting`] naming the file, and the line that is not an address block.
    pub fn load_access(&mut self) -> Result<(), OptionsError> {
        self.access = self.access.loaded().map_err(OptionsError::Setting)?;
        Ok(())
    }

    /// Sets `listener` up for what the options ask of every accepted connection: refused
    /// by `allow`/`deny` (files read by [`load_access`](Self::load_access) first),
    /// recorded by the recording.
    pub fn prepare_listener(&self, listener: &mut crate::streams::SocketListener) {
        if self.access.is_on() {
            listener.admit_with(std::sync::Arc::new(self.access.clone()));
        }
        if let Some(recorder) = &self.recorder {
            listener.observe_with(std::sync::Arc::new(recorder.clone()));
        }
    }

    /// Where TLS secrets are logged: the file given, else `SSLKEYLOGFILE`.
    pub fn key_log(&self) -> KeyLog {
        let log = self.keylog.clone().map_or(KeyLog::FromEnv, KeyLog::File);
        match &self.recorder {
            Some(recorder) if recorder.0.wants_secrets() => {
                KeyLog::Also(Box::new(log), crate::streams::tls::KeySink(recorder.0.key_log()))
            }
            _ => log,
        }
    }

    /// The name a client verifies and sends as SNI: `sni`, else the host connected to.
    ///
    /// # Errors
    /// [`StreamError::TlsConfig`](crate::streams::StreamError::TlsConfig) for a name that
    /// is not a valid host name or address.
    pub fn verify_name(&self, host: &str) -> crate::streams::Result<rustls_pki_types::ServerName<'static>> {
        crate::streams::tls::server_name(self.sni.as_deref().unwrap_or(host))
    }

    /// The TLS client settings: the trusted CAs (the system's without `ca`), pins, a
    /// client certificate, SNI, ALPN, versions, key log. `insecure` is logged as a
    /// warning on its own target (`streamtool::insecure`), which `-q` keeps: skipping
    /// verification is never silent.
    ///
    /// # Errors
    /// A file that cannot be read or used, named as `spelling` writes the option.
    pub fn client_options(&self, spelling: Spelling) -> Result<ClientOptions, OptionsError> {
        let trust = match &self.ca {
            Some(path) => Trust::Certificates(
                certs::load_certs(path)
                    .map_err(|source| OptionsError::File { what: spelling.name("ca"), source })?,
            ),
            None => Trust::System,
        };
        if self.cert.len() > 1 || self.key.len() > 1 {
            return Err(OptionsError::Usage(format!(
                "a client presents one certificate: {} and {} are given once",
                spelling.name("cert"),
                spelling.name("key")
            )));
        }
        let identity = match self.cert.first() {
            Some(cert) => {
                Some(certs::load_identity(cert, self.key.first().unwrap_or(cert)).map_err(|source| {
                    OptionsError::File { what: "the client certificate".to_string(), source }
                })?)
            }
            None => None,
        };
        if self.insecure {
            tracing::warn!(
                target: "streamtool::insecure",
                "--insecure: the server's certificate is NOT verified; anyone on the path can read and change the data"
            );
        }
        Ok(ClientOptions {
            trust,
            pins: self.pins.clone(),
            insecure: self.insecure,
            alpn: self.alpn_protocols(),
            no_sni: self.no_sni,
            versions: self.versions(),
            identity,
            keylog: self.key_log(),
        })
    }

    /// The TLS server settings, the certificate made for them when no `cert` (nor
    /// `cert-dir`) was given (self-signed for [`SELF_SIGNED_NAMES`], valid
    /// [`SELF_SIGNED_DAYS`] days; the caller shows its pins), else the certificates given,
    /// chosen by SNI ([`CertSet`]), the first the
    /// identity. The client CAs are read first, so that a bad file is reported before
    /// anything is made.
    ///
    /// # Errors
    /// A file that cannot be read or used, named as `spelling` writes the option; a
    /// certificate that cannot be made; `reload-on-change` or `keep-pin` without a
    /// certificate file.
    #[allow(clippy::type_complexity)]
    pub fn server_options(
        &self,
        spelling: Spelling,
    ) -> Result<(ServerOptions, Option<GeneratedCert>, Option<Arc<CertSet>>), OptionsError> {
        let client_auth = match &self.client_ca {
            Some(path) => {
                let cas = certs::load_certs(path)
                    .map_err(|source| OptionsError::File { what: spelling.name("client-ca"), source })?;
                if self.require_client_cert { ClientAuth::Required(cas) } else { ClientAuth::Optional(cas) }
            }
            None if !self.reload.allow.is_empty() => {
                return Err(OptionsError::Usage(format!(
                    "{}, {} and {} need {} (the CAs that client certificates must chain to)",
                    spelling.name("allow-cn"),
                    spelling.name("allow-san"),
                    spelling.name("allow-spki"),
                    spelling.name("client-ca")
                )));
            }
            None => ClientAuth::None,
        };
        let (identity, generated, set) = match CertSet::load(self, spelling)? {
            Some(set) => (set.default_identity(), None, Some(Arc::new(set))),
            None => {
                if self.reload.reload_on_change || self.reload.keep_pin {
                    return Err(OptionsError::Usage(format!(
                        "{} and {} need {} or {} (a self-signed certificate has no file to reload)",
                        spelling.bare("reload-on-change"),
                        spelling.bare("keep-pin"),
                        spelling.name("cert"),
                        spelling.name("cert-dir")
                    )));
                }
                let generated = certs::self_signed(&SELF_SIGNED_NAMES, SELF_SIGNED_DAYS)
                    .map_err(OptionsError::SelfSigned)?;
                (generated.identity(), Some(generated), None)
            }
        };
        let options = ServerOptions {
            identity,
            client_auth,
            allow: self.reload.allow.clone(),
            alpn: self.alpn_protocols(),
            versions: self.versions(),
            keylog: self.key_log(),
        };
        Ok((options, generated, set))
    }
}

/// The shaping of data read from the endpoint `from` and written to `to`, the one rule
/// for every relay (a `pipe` pair, and `serve`/`connect` between the network and stdio,
/// whose stdio side is UTF-8 text with the network side's error mode):
///
/// - frames: split by `from`'s delimiter (at most its `max-frame`, [`MAX_FRAME`] by
///   default), written with `to`'s delimiter when it has one;
/// - text: decoded when `from` names an encoding or an error mode (its text is checked),
///   or when either side's encoding is not UTF-8; then encoded into `to`'s encoding.
///   Errors are handled by the side's own mode, else the other side's, else strictly;
/// - `to`'s `crlf` turns LF into CRLF.
pub fn shaping(from: &EndpointOptions, to: &EndpointOptions) -> Shaping {
    let frames = from.delimiter.as_ref().map(|d| {
        let mut config = FrameConfig::new(bytes::Bytes::from(d.clone()), from.max_frame.unwrap_or(MAX_FRAME));
        config.on_oversize = from.on_oversize.unwrap_or_default();
        config
    });
    let not_utf8 = |o: &EndpointOptions| o.encoding.is_some_and(|e| !e.is_utf8());
    let recode = from.encoding.is_some() || from.decode_errors.is_some() || not_utf8(from) || not_utf8(to);
    let decode_mode = from.decode_errors.or(to.decode_errors).unwrap_or(ErrorMode::Strict);
    let encode_mode = to.decode_errors.or(from.decode_errors).unwrap_or(ErrorMode::Strict);
    Shaping {
        out_delimiter: match (&frames, &to.delimiter) {
            (Some(_), Some(d)) => Some(bytes::Bytes::from(d.clone())),
            _ => None,
        },
        frames,
        decode: recode.then(|| (from.encoding.unwrap_or(TextEncoding::UTF_8), decode_mode)),
        // UTF-8 output needs no encoder of its own (the decoder's text is UTF-8).
        encode: (recode && not_utf8(to)).then(|| (to.encoding.unwrap_or(TextEncoding::UTF_8), encode_mode)),
        crlf: to.crlf,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(f: impl FnOnce(&mut EndpointOptions)) -> EndpointOptions {
        let mut o = EndpointOptions::default();
        f(&mut o);
        o
    }

    #[test]
    fn plain_endpoints_relay_raw() {
        let plain = EndpointOptions::default();
        assert!(shaping(&plain, &plain).is_raw());
        // A UTF-8 target alone changes nothing: the source's bytes are not checked.
        assert!(shaping(&plain, &with(|o| o.encoding = Some(TextEncoding::UTF_8))).is_raw());
    }

    #[test]
    fn latin1_network_side_recodes_both_directions_with_its_error_mode() {
        let net = with(|o| {
            o.encoding = TextEncoding::for_label("latin1");
            o.decode_errors = Some(ErrorMode::Replace);
        });
        let stdio = EndpointOptions::default();
        let inbound = shaping(&net, &stdio);
        assert_eq!(inbound.decode.map(|(e, m)| (e.name(), m)), Some(("ISO-8859-1", ErrorMode::Replace)));
        assert!(inbound.encode.is_none());
        let outbound = shaping(&stdio, &net);
        assert_eq!(outbound.decode.map(|(e, m)| (e.name(), m)), Some(("UTF-8", ErrorMode::Replace)));
        assert_eq!(outbound.encode.map(|(e, m)| (e.name(), m)), Some(("ISO-8859-1", ErrorMode::Replace)));
    }

    #[test]
    fn frames_take_the_default_limit_and_the_targets_delimiter() {
        let from = with(|o| o.delimiter = Some(b"\n".to_vec()));
        let to = with(|o| o.delimiter = Some(b"\r\n".to_vec()));
        let s = shaping(&from, &to);
        assert_eq!(s.frames.as_ref().map(|f| f.max_frame), Some(MAX_FRAME));
        assert_eq!(s.out_delimiter.as_deref(), Some(&b"\r\n"[..]));
        assert!(shaping(&from, &EndpointOptions::default()).out_delimiter.is_none());
    }

    #[test]
    fn spelling_names_the_option_as_written() {
        assert_eq!(Spelling::Flags.name("ca"), "--ca");
        assert_eq!(Spelling::Endpoint.name("ca"), "ca=");
        assert_eq!(EndpointOptions::default().handshake_limit(), HANDSHAKE_TIMEOUT);
    }
}
