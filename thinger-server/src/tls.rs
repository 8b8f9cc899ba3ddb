//! TLS setup: a generated CA and server certificate (ECDSA P-256), or PEM files.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, SanType, date_time_ymd,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::config::TlsMode;
use crate::error::ServerError;

/// What the TLS listener needs, plus the CA a client should trust when it was generated.
pub(crate) struct TlsSetup {
    pub config: Arc<rustls::ServerConfig>,
    pub ca_pem: Option<String>,
}

/// A generated CA with a server certificate it signed.
///
/// ```
/// let pki = thinger_server::GeneratedPki::generate(&["my-host.local".to_string()]).unwrap();
/// assert!(pki.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
/// assert!(pki.server_cert_pem.contains("BEGIN CERTIFICATE"));
/// assert!(pki.server_key_pem.contains("PRIVATE KEY"));
/// ```
#[derive(Debug, Clone)]
pub struct GeneratedPki {
    /// The CA certificate (PEM): what clients trust.
    pub ca_pem: String,
    /// The CA certificate (DER).
    pub ca_der: Vec<u8>,
    /// The CA's private key (PKCS#8 PEM): keep it secret.
    pub ca_key_pem: String,
    /// The server certificate (PEM), for `localhost`, `127.0.0.1`, `::1` and the extra names.
    pub server_cert_pem: String,
    /// The server's private key (PKCS#8 PEM).
    pub server_key_pem: String,
    server_cert_der: CertificateDer<'static>,
    server_key_der: Vec<u8>,
}

/// The CA's subject, usages and validity (the same every time, so a stored CA key reissues
/// certificates that chain to the stored CA certificate).
fn ca_params() -> Result<CertificateParams, ServerError> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(tls_err)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "thinger-server local CA");
    ca_params.distinguished_name.push(DnType::OrganizationName, "thinger-rs");
    ca_params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    ca_params.not_before = date_time_ymd(2024, 1, 1);
    ca_params.not_after = date_time_ymd(2049, 12, 31);
    Ok(ca_params)
}

fn tls_err(e: impl std::fmt::Display) -> ServerError {
    ServerError::Tls(e.to_string())
}

impl GeneratedPki {
    /// Generates a CA (ECDSA P-256, valid 2024–2049) and a server certificate signed by it
    /// for `localhost`, `127.0.0.1`, `::1` and `extra_names` (DNS names or IP addresses).
    ///
    /// ```
    /// let pki = thinger_server::GeneratedPki::generate(&[]).unwrap();
    /// assert!(!pki.ca_der.is_empty());
    /// ```
    pub fn generate(extra_names: &[String]) -> Result<GeneratedPki, ServerError> {
        let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(tls_err)?;
        let ca_params = ca_params()?;
        let ca_cert = ca_params.self_signed(&ca_key).map_err(tls_err)?;
        let ca_key_pem = ca_key.serialize_pem();
        let leaf_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(tls_err)?;
        Self::issue(
            ca_cert.pem(),
            ca_cert.der().to_vec(),
            ca_key_pem,
            Issuer::new(ca_params, ca_key),
            leaf_key,
            extra_names,
        )
    }

    /// Like [`GeneratedPki::generate`], but keeps the CA in `dir` (`ca.pem`, `ca-key.pem`) and
    /// the server's key (`server-key.pem`): existing ones are reused, so clients that trust
    /// the CA, or pin the server's public key (`spki-sha256:`), keep working across restarts;
    /// the server certificate itself is issued anew each time.
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("thinger-pki-doc-{}", std::process::id()));
    /// let first = thinger_server::GeneratedPki::load_or_generate(&dir, &[]).unwrap();
    /// let again = thinger_server::GeneratedPki::load_or_generate(&dir, &[]).unwrap();
    /// assert_eq!(first.ca_pem, again.ca_pem);
    /// assert_eq!(first.server_key_pem, again.server_key_pem);
    /// std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn load_or_generate(dir: &Path, extra_names: &[String]) -> Result<GeneratedPki, ServerError> {
        let (cert_path, key_path) = (dir.join("ca.pem"), dir.join("ca-key.pem"));
        if cert_path.exists() && key_path.exists() {
            let ca_pem = String::from_utf8(read_file(&cert_path, "CA certificate")?)
                .map_err(|e| ServerError::Tls(format!("{}: {e}", cert_path.display())))?;
            let key_pem = String::from_utf8(read_file(&key_path, "CA key")?)
                .map_err(|e| ServerError::Tls(format!("{}: {e}", key_path.display())))?;
            let ca_der = CertificateDer::from_pem_slice(ca_pem.as_bytes())
                .map_err(|e| ServerError::Tls(format!("{}: {e}", cert_path.display())))?
                .to_vec();
            let ca_key = KeyPair::from_pem(&key_pem).map_err(tls_err)?;
            // The same key and subject as the stored certificate: what it signs chains to it.
            let issuer = Issuer::new(ca_params()?, ca_key);
            let leaf_path = dir.join("server-key.pem");
            let leaf_key = if leaf_path.exists() {
                let pem = String::from_utf8(read_file(&leaf_path, "server key")?)
                    .map_err(|e| ServerError::Tls(format!("{}: {e}", leaf_path.display())))?;
                KeyPair::from_pem(&pem).map_err(tls_err)?
            } else {
                let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(tls_err)?;
                write_file(&leaf_path, &key.serialize_pem())?;
                key
            };
            return Self::issue(ca_pem, ca_der, key_pem, issuer, leaf_key, extra_names);
        }
        let pki = Self::generate(extra_names)?;
        std::fs::create_dir_all(dir).map_err(|e| ServerError::io(format!("cannot create {}", dir.display()), e))?;
        write_file(&key_path, &pki.ca_key_pem)?;
        write_file(&cert_path, &pki.ca_pem)?;
        write_file(&dir.join("server-key.pem"), &pki.server_key_pem)?;
        Ok(pki)
    }

    fn issue(
        ca_pem: String,
        ca_der: Vec<u8>,
        ca_key_pem: String,
        issuer: Issuer<'static, KeyPair>,
        key: KeyPair,
        extra_names: &[String],
    ) -> Result<GeneratedPki, ServerError> {
        let mut names = vec!["localhost".to_owned()];
        for n in extra_names {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
        let mut params = CertificateParams::new(names).map_err(tls_err)?;
        for ip in [IpAddr::from([127, 0, 0, 1]), IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1])] {
            if !params.subject_alt_names.contains(&SanType::IpAddress(ip)) {
                params.subject_alt_names.push(SanType::IpAddress(ip));
            }
        }
        params.distinguished_name.push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.not_before = date_time_ymd(2024, 1, 1);
        params.not_after = date_time_ymd(2049, 12, 31);
        let cert = params.signed_by(&key, &issuer).map_err(tls_err)?;
        Ok(GeneratedPki {
            ca_pem,
            ca_der,
            ca_key_pem,
            server_cert_pem: cert.pem(),
            server_key_pem: key.serialize_pem(),
            server_cert_der: cert.der().clone(),
            server_key_der: key.serialize_der(),
        })
    }
}

fn write_file(path: &Path, text: &str) -> Result<(), ServerError> {
    std::fs::write(path, text).map_err(|e| ServerError::io(format!("cannot write {}", path.display()), e))
}

fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, ServerError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(tls_err)?;
    Ok(Arc::new(config))
}

fn read_file(path: &Path, what: &str) -> Result<Vec<u8>, ServerError> {
    std::fs::read(path).map_err(|e| ServerError::io(format!("cannot read TLS {what} {}", path.display()), e))
}

/// Builds the TLS configuration for `mode` (`None` when TLS is off).
/// With `data_dir`, a generated CA is kept there and reused.
pub(crate) fn setup(mode: &TlsMode, data_dir: Option<&Path>) -> Result<Option<TlsSetup>, ServerError> {
    match mode {
        TlsMode::Off => Ok(None),
        TlsMode::Generate { names } => {
            let pki = match data_dir {
                Some(dir) => GeneratedPki::load_or_generate(dir, names)?,
                None => GeneratedPki::generate(names)?,
            };
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.server_key_der.clone()));
            let config = server_config(vec![pki.server_cert_der.clone()], key)?;
            Ok(Some(TlsSetup { config, ca_pem: Some(pki.ca_pem) }))
        }
        TlsMode::Files { cert, key } => {
            let cert_pem = read_file(cert, "certificate")?;
            let chain = CertificateDer::pem_slice_iter(&cert_pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ServerError::Tls(format!("{}: {e}", cert.display())))?;
            if chain.is_empty() {
                return Err(ServerError::Tls(format!("no certificate in {}", cert.display())));
            }
            let key_pem = read_file(key, "key")?;
            let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| match e {
                rustls_pki_types::pem::Error::NoItemsFound => {
                    ServerError::Tls(format!("no private key in {}", key.display()))
                }
                e => ServerError::Tls(format!("{}: {e}", key.display())),
            })?;
            Ok(Some(TlsSetup { config: server_config(chain, key_der)?, ca_pem: None }))
        }
    }
}
