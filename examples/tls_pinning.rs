//! Certificate pinning: connect only to the server whose certificate key you pinned.
//!
//! ```text
//! cargo run --example tls_pinning                 # against a local server
//! THINGER_PIN=spki-sha256:… cargo run --example tls_pinning   # a pin you have (local or Thinger.io)
//! ```
//!
//! 1. Trust on first use: fetch the server's certificate (checked against the CA) and compute
//!    its public-key pin.
//! 2. Connect with the CA *and* the pin: a certificate from the same CA but another key is
//!    refused.
//! 3. A wrong pin is refused with `PinMismatch`, before any credential is sent.

use std::time::Duration;

use thinger_examples::{Target, init_logging};
use thinger_std::tls::{Pin, TlsConfig, TlsFailure, fetch_server_certificate};
use thinger_std::{ClientEvent, ConnectError};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_logging();
    // Locally, the server keeps its CA and TLS key in a folder of its own, so the pin printed
    // below stays valid for the next run (`THINGER_PIN=… cargo run --example tls_pinning`).
    let target = match thinger_std::ClientBuilder::from_env() {
        Some(_) => Target::from_env_or_local("pinned").await?,
        None => Target::local_in("pinned", &std::env::temp_dir().join("thinger-examples-tls-pinning")).await?,
    };
    // The CA to check against: the local server's, or the public roots.
    let (host, port, ca_tls) = match &target.local {
        Some(local) => {
            let ca = local.server.ca_cert_pem().ok_or("no CA")?;
            let port = local.server.tls_addr().ok_or("no TLS")?.port();
            ("localhost".to_owned(), port, TlsConfig::new().with_ca_pem(&ca)?)
        }
        None => {
            let host = std::env::var("THINGER_HOST").unwrap_or_else(|_| thinger_std::DEFAULT_HOST.to_owned());
            (host, 25206, TlsConfig::new())
        }
    };

    // 1. The pin: given, or fetched now (trust on first use).
    let pin: Pin = match std::env::var("THINGER_PIN") {
        // Display, not Debug: a bad pin says what a pin looks like.
        Ok(text) => text.parse().map_err(|e| format!("THINGER_PIN={text:?} is not a pin: {e}"))?,
        Err(_) => {
            let der = fetch_server_certificate(&host, port, &ca_tls).await?;
            Pin::spki_of_certificate(&der).ok_or("cannot read the certificate's key")?
        }
    };
    println!("server key pin: {pin}");

    // 2. Connect with CA + pin.
    let client = target.builder.tls(ca_tls.clone().pin(pin)).spawn()?;
    let mut events = client.events();
    match tokio::time::timeout(
        Duration::from_secs(15),
        events.wait_for(|e| {
            matches!(e, ClientEvent::Connected | ClientEvent::ConnectFailed(_) | ClientEvent::AuthFailed { .. })
        }),
    )
    .await
    {
        Ok(Some(ClientEvent::Connected)) => println!("connected with the pinned certificate"),
        other => println!("not connected: {other:?}"),
    }
    client.shutdown().await;

    // 3. A wrong pin.
    let wrong = ca_tls.pin(Pin::Spki([0u8; 32]));
    match fetch_server_certificate(&host, port, &wrong).await {
        Err(ConnectError::Tls(TlsFailure::PinMismatch)) => println!("a wrong pin is refused: PinMismatch"),
        other => println!("unexpected: {other:?}"),
    }
    if let Some(local) = target.local {
        local.server.shutdown().await;
    }
    Ok(())
}
