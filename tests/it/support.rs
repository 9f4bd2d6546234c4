//! Shared test helpers.

use std::future::Future;
use std::time::Duration;

/// How long any single test may take before it is failed as hung.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs `fut` under [`TEST_TIMEOUT`], failing the test if it hangs.
pub async fn timeout<F: Future>(fut: F) -> F::Output {
    tokio::time::timeout(TEST_TIMEOUT, fut).await.expect("the test timed out (hung?)")
}

/// Lets every other task on a current-thread runtime run until it blocks (AnyIO's
/// `wait_all_tasks_blocked`): yields often enough for spawned tasks to reach their await.
pub async fn settle() {
    for _ in 0..32 {
        tokio::task::yield_now().await;
    }
}

/// A current-thread runtime test body, under the test timeout.
pub fn run<F: Future>(fut: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async { timeout(fut).await })
}

/// A test PKI made with rcgen at test time: a CA, a server certificate for the given
/// names (DNS names and IP addresses) and a client certificate (clientAuth), all signed by
/// the CA.
pub struct TestPki {
    /// The CA certificate.
    pub ca: rustls_pki_types::CertificateDer<'static>,
    /// The server's chain and key.
    pub server: streamtool::streams::tls::Identity,
    /// The client's chain and key.
    pub client: streamtool::streams::tls::Identity,
}

impl TestPki {
    /// A PKI whose server certificate names `names`.
    pub fn new(names: &[&str]) -> TestPki {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
            KeyUsagePurpose,
        };
        use rustls_pki_types::PrivateKeyDer;

        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "streamtool test CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);

        let leaf = |names: Vec<String>, usage: ExtendedKeyUsagePurpose| {
            let mut params = CertificateParams::new(names.clone()).unwrap();
            params.distinguished_name.push(DnType::CommonName, names.first().cloned().unwrap_or_default());
            params.extended_key_usages = vec![usage];
            let key = KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, &issuer).unwrap();
            streamtool::streams::tls::Identity {
                chain: vec![cert.der().clone()],
                key: PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            }
        };
        let server = leaf(names.iter().map(|n| n.to_string()).collect(), ExtendedKeyUsagePurpose::ServerAuth);
        let client = leaf(vec!["client.test".to_string()], ExtendedKeyUsagePurpose::ClientAuth);
        TestPki { ca: ca_cert.der().clone(), server, client }
    }

    /// Client options that trust this CA.
    pub fn client_options(&self) -> streamtool::streams::tls::ClientOptions {
        streamtool::streams::tls::ClientOptions {
            trust: streamtool::streams::tls::Trust::Certificates(vec![self.ca.clone()]),
            keylog: streamtool::streams::tls::KeyLog::Off,
            ..Default::default()
        }
    }

    /// Server options with the server certificate.
    pub fn server_options(&self) -> streamtool::streams::tls::ServerOptions {
        let mut options = streamtool::streams::tls::ServerOptions::new(self.server.clone());
        options.keylog = streamtool::streams::tls::KeyLog::Off;
        options
    }
}
