//! The HTTP listener: hyper's HTTP/1 connection with a header-read timeout (which also
//! closes kept-alive connections that stay idle), WebSocket upgrades, and a cap on open
//! connections, serving the axum router.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;
use tower_service::Service;

/// How the HTTP connections are served.
#[derive(Clone, Copy)]
pub(crate) struct HttpSettings {
    /// Time to send a request's headers; also the idle timeout between kept-alive requests.
    pub header_timeout: Duration,
    /// Most connections open at once; more wait in the accept queue.
    pub max_connections: usize,
}

/// Marks a request that came over HTTPS (its WebSocket is `wss`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Secure(pub bool);

/// Accepts HTTP connections (HTTPS with `tls`) until `shutdown`, then lets the open ones
/// finish their request.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    settings: HttpSettings,
    shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(settings.max_connections.max(1)));
    let mut stop = shutdown.clone();
    loop {
        let permit = tokio::select! {
            _ = stop.changed() => break,
            p = Arc::clone(&permits).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "HTTP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let shutdown = shutdown.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                None => serve_connection(stream, peer, false, router, settings, shutdown).await,
                Some(acceptor) => match tokio::time::timeout(settings.header_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => serve_connection(tls, peer, true, router, settings, shutdown).await,
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "HTTPS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "HTTPS handshake timed out"),
                },
            }
        });
    }
}

async fn serve_connection<S>(
    stream: S,
    peer: SocketAddr,
    secure: bool,
    router: Router,
    settings: HttpSettings,
    mut shutdown: watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        request.extensions_mut().insert(Secure(secure));
        router.clone().call(request)
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_timeout)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    let result = tokio::select! {
        r = connection.as_mut() => r,
        _ = shutdown.changed() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "HTTP connection ended");
    }
}
