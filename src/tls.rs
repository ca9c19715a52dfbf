//! Optional HTTPS in the binary (rustls), for deployments without a
//! TLS-terminating proxy in front. The certificate is read at start, so a
//! bad file stops `purser serve` before it listens, and again on SIGHUP,
//! so a renewed certificate (Let's Encrypt, cert-manager) is picked up
//! without a restart; a failed reload keeps serving the last good one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use axum_server::tls_rustls::RustlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

/// The oldest TLS version purser accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MinVersion {
    #[value(name = "1.2")]
    Tls12,
    #[value(name = "1.3")]
    Tls13,
}

/// The serving certificate and where it came from (for reloads).
#[derive(Clone)]
pub struct Tls {
    pub config: RustlsConfig,
    cert: PathBuf,
    key: PathBuf,
    min: MinVersion,
}

impl Tls {
    pub fn load(cert: &Path, key: &Path, min: MinVersion) -> anyhow::Result<Tls> {
        let config = RustlsConfig::from_config(server_config(cert, key, min)?);
        Ok(Tls { config, cert: cert.to_owned(), key: key.to_owned(), min })
    }

    /// Re-reads the certificate and key files; new connections use them,
    /// open ones keep theirs. On error nothing changes.
    pub fn reload(&self) -> anyhow::Result<()> {
        self.config.reload_from_config(server_config(&self.cert, &self.key, self.min)?);
        Ok(())
    }
}

fn server_config(cert: &Path, key: &Path, min: MinVersion) -> anyhow::Result<Arc<ServerConfig>> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading TLS certificate {}", cert.display()))?;
    anyhow::ensure!(!chain.is_empty(), "TLS certificate {} holds no certificate", cert.display());
    let key_der = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading TLS private key {}", key.display()))?;
    let versions: &[&rustls::SupportedProtocolVersion] = match min {
        MinVersion::Tls13 => &[&rustls::version::TLS13],
        MinVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
    };
    // An explicit provider: rustls refuses to guess when more than one
    // could be linked in, and ring is the one reqwest and sqlx already use.
    let mut config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(versions)
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .with_context(|| format!("TLS key {} does not fit certificate {}", key.display(), cert.display()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
