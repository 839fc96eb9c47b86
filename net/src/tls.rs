//! TLS for node connections: always on. A node either generates a self-signed certificate at
//! start (development: peers' certificates are then not checked against any authority, and the
//! node says so in a warning) or takes a certificate chain, key and CA in PEM, optionally
//! requiring peers to present a certificate signed by that CA (mutual TLS).

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls13_signature, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::Path;
use std::sync::Arc;

/// The ALPN protocol nodes speak.
pub(crate) const ALPN: &[u8] = b"corelane/1";

/// How a node proves who it is, and checks who its peers are.
#[derive(Clone, Debug)]
pub enum Tls {
    /// Not chosen: a node refuses to start ([`TlsError::Unset`]). The default, so that an
    /// insecure set-up is never one by accident.
    Unset,
    /// A certificate generated at start for `localhost`; peers' certificates are accepted
    /// without an authority (their signatures over the handshake are still checked), so peers
    /// are not authenticated. For development ([`RemoteConfig::dev`](crate::RemoteConfig::dev)):
    /// the node warns when it starts, on stderr when no `tracing` subscriber is installed.
    /// With the `dev-certs` feature.
    #[cfg(feature = "dev-certs")]
    DevSelfSigned,
    /// Certificates in PEM.
    Pem(TlsPem),
}

/// A node's certificate chain and key, and the authority its peers' certificates must chain to.
#[derive(Clone)]
pub struct TlsPem {
    /// The node's certificate chain, leaf first.
    pub cert_chain: String,
    /// The node's private key (PKCS#8, PKCS#1 or SEC1).
    pub key: String,
    /// The CA certificates peers' certificates must chain to.
    pub ca: String,
    /// Require peers that connect to present a certificate signed by `ca` (mutual TLS).
    pub mutual: bool,
    /// The name peers' certificates are checked against (default `localhost`).
    pub server_name: String,
}

impl std::fmt::Debug for TlsPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsPem")
            .field("mutual", &self.mutual)
            .field("server_name", &self.server_name)
            .finish()
    }
}

impl TlsPem {
    /// Reads the chain, key and CA from PEM files.
    ///
    /// # Errors
    /// The file that could not be read.
    pub fn from_files(cert_chain: &Path, key: &Path, ca: &Path, mutual: bool) -> Result<Self, TlsError> {
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|e| TlsError::Read(p.display().to_string(), e.to_string()))
        };
        Ok(Self {
            cert_chain: read(cert_chain)?,
            key: read(key)?,
            ca: read(ca)?,
            mutual,
            server_name: "localhost".into(),
        })
    }
}

/// A TLS set-up that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {0}: {1}")]
    Read(String, String),
    /// PEM that holds no certificate, no key, or something unparsable.
    #[error("bad {0}: {1}")]
    Pem(&'static str, String),
    /// rustls or quinn refused the configuration.
    #[error("TLS configuration refused: {0}")]
    Config(String),
    /// No TLS was chosen.
    #[error(
        "no TLS configured: set RemoteConfig::tls to Tls::Pem (certificate, key and CA files) for \
         production, or start from RemoteConfig::dev() for a self-signed development certificate \
         that does not authenticate peers"
    )]
    Unset,
}

/// The warning a node with the development certificate gives when it starts.
#[cfg(feature = "dev-certs")]
const DEV_WARNING: &str = "corelane-net: TLS with a generated self-signed certificate \
    (RemoteConfig::dev): connections are encrypted but peers are NOT authenticated; any peer can \
    claim to be any node. Use Tls::Pem with mutual TLS in production.";

/// Says, where someone will see it, that the node does not authenticate its peers.
#[cfg(feature = "dev-certs")]
fn warn_insecure() {
    tracing::warn!("{DEV_WARNING}");
    if !tracing::dispatcher::has_been_set() {
        eprintln!("warning: {DEV_WARNING}");
    }
}

/// The QUIC configuration of a node: what it serves with, what it dials with, and the name it
/// expects servers to prove.
pub struct Crypto {
    /// For the node's endpoint as a server.
    pub server: quinn::ServerConfig,
    /// For the connections it dials.
    pub client: quinn::ClientConfig,
    /// The name servers' certificates are checked against.
    pub server_name: String,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn cfg_err(e: impl std::fmt::Display) -> TlsError {
    TlsError::Config(e.to_string())
}

pub(crate) fn crypto(tls: &Tls) -> Result<Crypto, TlsError> {
    let p = provider();
    let (chain, key, roots, mutual, server_name) = match tls {
        Tls::Unset => return Err(TlsError::Unset),
        #[cfg(feature = "dev-certs")]
        Tls::DevSelfSigned => {
            warn_insecure();
            let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).map_err(cfg_err)?;
            let key = PrivateKeyDer::try_from(ck.signing_key.serialize_der())
                .map_err(|e| TlsError::Pem("key", e.into()))?;
            (vec![ck.cert.der().clone()], key, None, false, "localhost".to_string())
        }
        Tls::Pem(pem) => {
            let chain = CertificateDer::pem_slice_iter(pem.cert_chain.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| TlsError::Pem("certificate chain", e.to_string()))?;
            if chain.is_empty() {
                return Err(TlsError::Pem("certificate chain", "no certificate".into()));
            }
            let key = PrivateKeyDer::from_pem_slice(pem.key.as_bytes())
                .map_err(|e| TlsError::Pem("key", e.to_string()))?;
            let mut roots = RootCertStore::empty();
            for ca in CertificateDer::pem_slice_iter(pem.ca.as_bytes()) {
                roots
                    .add(ca.map_err(|e| TlsError::Pem("CA", e.to_string()))?)
                    .map_err(|e| TlsError::Pem("CA", e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(TlsError::Pem("CA", "no certificate".into()));
            }
            (chain, key, Some(Arc::new(roots)), pem.mutual, pem.server_name.clone())
        }
    };

    let server = rustls::ServerConfig::builder_with_provider(p.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(cfg_err)?;
    let server = match (&roots, mutual) {
        (Some(roots), true) => server.with_client_cert_verifier(
            WebPkiClientVerifier::builder_with_provider(roots.clone(), p.clone()).build().map_err(cfg_err)?,
        ),
        _ => server.with_no_client_auth(),
    };
    let mut server = server.with_single_cert(chain.clone(), key.clone_key()).map_err(cfg_err)?;
    server.alpn_protocols = vec![ALPN.to_vec()];
    server.max_early_data_size = 0;

    let client = rustls::ClientConfig::builder_with_provider(p.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(cfg_err)?;
    let client = match roots {
        Some(roots) => client.with_root_certificates(roots),
        None => client
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServer(p.signature_verification_algorithms))),
    };
    // A client certificate is presented whenever the node has one from a CA (a mutual-TLS
    // server asks for it; others ignore it).
    let mut client = match tls {
        Tls::Pem(_) => client.with_client_auth_cert(chain, key).map_err(cfg_err)?,
        _ => client.with_no_client_auth(),
    };
    client.alpn_protocols = vec![ALPN.to_vec()];

    Ok(Crypto {
        server: quinn::ServerConfig::with_crypto(Arc::new(
            QuicServerConfig::try_from(server).map_err(cfg_err)?,
        )),
        client: quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(client).map_err(cfg_err)?)),
        server_name,
    })
}

/// Development only: accepts any server certificate, but still checks that the server holds
/// its key (the handshake signature).
#[derive(Debug)]
struct AnyServer(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("TLS 1.2 is not spoken".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
