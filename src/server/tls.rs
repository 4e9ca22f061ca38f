//! TLS on the API's listener: rustls with the configured PEM certificate chain and key, HTTP/2
//! and HTTP/1.1 offered by ALPN, client certificates checked against the truststore when
//! asked for. Handshakes run side by side, so a slow or broken client holds up no other.

use std::{io, net::SocketAddr, sync::Arc, time::Duration};

use rustls::{
    RootCertStore, ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    server::WebPkiClientVerifier,
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::mpsc,
};
use tokio_rustls::{TlsAcceptor, server::TlsStream};
use tracing::{debug, warn};

use crate::{
    config::{ClientAuthentication, TlsProtocol, TlsSettings},
    error::{Result, SluiceError},
};

/// How long a client may take over its handshake.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting for the server to take them.
const READY_CONNECTIONS: usize = 64;

fn read_error(what: &str, path: &std::path::Path, error: impl std::fmt::Display) -> SluiceError {
    SluiceError::Config(format!("{what} {}: {error}", path.display()))
}

fn certificates(path: &std::path::Path, what: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certificates = CertificateDer::pem_file_iter(path)
        .and_then(|found| found.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| read_error(what, path, e))?;
    if certificates.is_empty() {
        return Err(read_error(what, path, "holds no PEM certificate"));
    }
    Ok(certificates)
}

/// The rustls configuration `settings` describe; every file is read and checked here, so a
/// mistake stops the server at start with the file named.
pub fn server_config(settings: &TlsSettings) -> Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certificates(&settings.keystore, "the certificate chain in")?;
    let key = PrivateKeyDer::from_pem_file(&settings.keystore).map_err(|e| read_error("the private key in", &settings.keystore, e))?;
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = settings
        .protocols
        .iter()
        .map(|p| match p {
            TlsProtocol::Tls12 => &rustls::version::TLS12,
            TlsProtocol::Tls13 => &rustls::version::TLS13,
        })
        .collect();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| SluiceError::Config(format!("ssl.enabled.protocols: {e}")))?;
    let builder = match (settings.client_authentication, &settings.truststore) {
        (ClientAuthentication::None, _) | (_, None) => builder.with_no_client_auth(),
        (authentication, Some(truststore)) => {
            let mut roots = RootCertStore::empty();
            for certificate in certificates(truststore, "the truststore")? {
                roots.add(certificate).map_err(|e| read_error("a certificate of the truststore", truststore, e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = match authentication {
                ClientAuthentication::Requested => verifier.allow_unauthenticated(),
                _ => verifier,
            };
            let verifier = verifier.build().map_err(|e| read_error("the truststore", truststore, e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| read_error("the key and certificate in", &settings.keystore, e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A listener handing the HTTP server connections that finished their TLS handshake.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Accepts on `tcp` and runs each handshake in a task of its own.
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let acceptor = TlsAcceptor::from(config);
        let (sender, ready) = mpsc::channel(READY_CONNECTIONS);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    accepted = tcp.accept() => accepted,
                    _ = sender.closed() => return,
                };
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let (acceptor, sender) = (acceptor.clone(), sender.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_LIMIT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = sender.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}
