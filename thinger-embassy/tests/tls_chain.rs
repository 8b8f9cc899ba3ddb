//! The device's TLS verifier against real TLS servers on loopback: rustls servers
//! presenting RSA chains shaped like the Thinger.io cloud's (a self-signed RSA-4096 root
//! like USERTrust RSA, an RSA-2048 intermediate signed with SHA-384, an RSA-2048 leaf
//! signed with SHA-256), all generated at test time. The client is embedded-tls with
//! `thinger_embassy::tls::VerifyingProvider`, exactly as the runner uses it, over a tokio
//! TCP socket.
//!
//! Run: `cargo test -p thinger-embassy --features tls-rsa --test tls_chain -- --nocapture`
//! (prints the handshake time).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use embedded_io_adapters::tokio_1::FromTokio;
use embedded_io_async::Read;
use embedded_tls::{Aes128GcmSha256, TlsConfig, TlsConnection, TlsContext, TlsError};
use rand_core::OsRng;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use thinger_embassy::Tls;
use thinger_embassy::tls::{FixedTime, VerifyingProvider, roots};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

mod rsa_pki;

use rsa_pki::{NAME, pki};
const GREETING: &[u8] = b"hello device";

/// SHA-256 of a certificate's SubjectPublicKeyInfo (what `Tls::pins` holds).
fn spki_pin(cert: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).expect("certificate");
    sha2::Sha256::digest(parsed.tbs_certificate.subject_pki.raw).into()
}

// ---- a rustls server on loopback ----

#[derive(Clone, Copy)]
enum Version {
    Tls13,
    Tls12,
}

/// Starts a TLS server on 127.0.0.1 presenting `chain` (leaf first) that greets every
/// client; returns its address.
fn server(chain: Vec<Vec<u8>>, key: Vec<u8>, version: Version) -> SocketAddr {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = match version {
        Version::Tls13 => &[&rustls::version::TLS13],
        Version::Tls12 => &[&rustls::version::TLS12],
    };
    let chain = chain.into_iter().map(CertificateDer::from).collect();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key));
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server certificate");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = std_listener.local_addr().expect("address");
    std_listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async move {
            let listener = TcpListener::from_std(std_listener).expect("listener");
            loop {
                let Ok((tcp, _)) = listener.accept().await else { continue };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(tcp).await {
                        let _ = tls.write_all(GREETING).await;
                        let _ = tls.flush().await;
                        let mut rest = Vec::new();
                        let _ = tls.read_to_end(&mut rest).await;
                    }
                });
            }
        });
    });
    address
}

/// What the device side saw.
#[derive(Debug)]
struct Handshake {
    result: Result<(), TlsError>,
    millis: f64,
}

/// Connects as the device does (embedded-tls, `VerifyingProvider`, TLS buffers of the
/// runner's size), reads the greeting.
fn connect(address: SocketAddr, tls: Tls<'_>) -> Handshake {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async move {
        let tcp = TcpStream::connect(address).await.expect("TCP connect");
        let mut read_buffer = vec![0u8; 16_640];
        let mut write_buffer = vec![0u8; 4096];
        let mut connection: TlsConnection<'_, _, Aes128GcmSha256> =
            TlsConnection::new(FromTokio::new(tcp), &mut read_buffer, &mut write_buffer);
        let config = TlsConfig::new().with_server_name(tls.server_name);
        let mut rng = OsRng;
        let started = Instant::now();
        let opened = connection.open(TlsContext::new(&config, VerifyingProvider::new(&mut rng, tls))).await;
        let millis = started.elapsed().as_secs_f64() * 1000.0;
        let result = match opened {
            Ok(()) => {
                let mut greeting = [0u8; GREETING.len()];
                connection.read_exact(&mut greeting).await.expect("application data after the handshake");
                assert_eq!(greeting, GREETING);
                Ok(())
            }
            Err(e) => Err(e),
        };
        Handshake { result, millis }
    })
}

fn cloud_like_server(version: Version) -> SocketAddr {
    let pki = pki();
    server(vec![pki.leaf.clone(), pki.intermediate.clone()], pki.leaf_key.clone(), version)
}

fn accepted(outcome: &Handshake) {
    assert!(outcome.result.is_ok(), "expected the server to be accepted: {outcome:?}");
}

fn refused(outcome: &Handshake) {
    match outcome.result {
        Err(TlsError::InvalidCertificate | TlsError::InvalidSignature | TlsError::InvalidSignatureScheme) => {}
        ref other => panic!("expected the certificate to be refused, got {other:?}"),
    }
}

// ---- the tests ----

#[test]
fn rsa_chain_like_the_clouds_is_accepted_over_tls13() {
    let address = cloud_like_server(Version::Tls13);
    let outcome = connect(address, Tls::new(NAME, &pki().root));
    accepted(&outcome);
    println!("RSA-4096 root / RSA-2048 chain, TLS 1.3 handshake (loopback): {:.1} ms", outcome.millis);
}

#[test]
fn a_wrong_ca_is_refused() {
    let address = cloud_like_server(Version::Tls13);
    // Same name as the real root, another key: found as the anchor, signature fails.
    refused(&connect(address, Tls::new(NAME, &pki().impostor_root)));
    // Another name altogether: no anchor.
    refused(&connect(address, Tls::new(NAME, &pki().other_root)));
    // The real roots of the cloud do not vouch for a test server.
    refused(&connect(address, Tls::new(NAME, roots::THINGER_CLOUD)));
}

#[test]
fn any_anchor_of_a_bundle_starts_the_chain() {
    let address = cloud_like_server(Version::Tls13);
    let mut bundle = roots::THINGER_CLOUD.to_vec();
    bundle.extend_from_slice(&pki().other_root);
    bundle.extend_from_slice(&pki().root);
    accepted(&connect(address, Tls::new(NAME, &bundle)));
}

#[test]
fn a_chain_that_includes_the_root_is_accepted() {
    let pki = pki();
    let chain = vec![pki.leaf.clone(), pki.intermediate.clone(), pki.root.clone()];
    let address = server(chain, pki.leaf_key.clone(), Version::Tls13);
    accepted(&connect(address, Tls::new(NAME, &pki.root)));
}

#[test]
fn spki_pins_are_enforced() {
    let pki = pki();
    let address = cloud_like_server(Version::Tls13);
    for pinned in [&pki.leaf, &pki.intermediate, &pki.root] {
        let pins = [[0u8; 32], spki_pin(pinned)];
        accepted(&connect(address, Tls::new(NAME, &pki.root).pins(&pins)));
    }
    let wrong = [spki_pin(&pki.other_root)];
    refused(&connect(address, Tls::new(NAME, &pki.root).pins(&wrong)));
}

#[test]
fn validity_dates_are_checked_when_the_time_is_known() {
    let pki = pki();
    let address = cloud_like_server(Version::Tls13);
    let in_2026 = FixedTime(1_780_000_000);
    let in_2031 = FixedTime(1_924_000_000); // the leaf expired on 2030-01-01
    let in_2023 = FixedTime(1_690_000_000); // the leaf is valid from 2024-01-01
    accepted(&connect(address, Tls::new(NAME, &pki.root).time_source(&in_2026)));
    refused(&connect(address, Tls::new(NAME, &pki.root).time_source(&in_2031)));
    refused(&connect(address, Tls::new(NAME, &pki.root).time_source(&in_2023)));
    // Without a time source the dates are not checked.
    accepted(&connect(address, Tls::new(NAME, &pki.root)));
}

#[test]
fn a_certificate_signed_by_a_non_ca_is_refused() {
    let pki = pki();
    let chain = vec![pki.forged_leaf.clone(), pki.non_ca.clone(), pki.intermediate.clone()];
    let address = server(chain, pki.forged_key.clone(), Version::Tls13);
    refused(&connect(address, Tls::new(NAME, &pki.root)));
}

#[test]
fn the_wrong_server_name_is_refused() {
    let address = cloud_like_server(Version::Tls13);
    refused(&connect(address, Tls::new("iot.thinger.io", &pki().root)));
}

/// embedded-tls speaks TLS 1.3 only: a server that offers TLS 1.2 only cannot be reached,
/// and the failure is a clear handshake error (the server's protocol_version alert), not a
/// hang.
#[test]
fn a_tls12_only_server_cannot_be_reached() {
    let address = cloud_like_server(Version::Tls12);
    let outcome = connect(address, Tls::new(NAME, &pki().root));
    println!("TLS 1.2-only server: {:?}", outcome.result);
    assert!(outcome.result.is_err(), "embedded-tls cannot speak TLS 1.2: {outcome:?}");
    assert!(
        !matches!(outcome.result, Err(TlsError::InvalidCertificate)),
        "refused for the version, not the certificate"
    );
}
