//! `thinger-server proxy`: a local port tunnelled through a device.

use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

use super::{Target, encode, ws_error};

/// Tunnels every connection to `--listen` to `--to` as the device sees it (its `$proxy`
/// extension; the device decides which targets it allows). Prints the address it listens
/// on, then runs until interrupted.
#[derive(clap::Parser, Debug)]
#[command(name = "thinger-server proxy")]
pub(super) struct Args {
    #[command(flatten)]
    target: Target,
    /// Local address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The target, as the device reaches it: HOST:PORT.
    #[arg(long)]
    to: String,
}

fn split_target(to: &str) -> Result<(String, u16), String> {
    let (host, port) = to.rsplit_once(':').ok_or("--to must be HOST:PORT")?;
    let port: u16 = port.parse().ok().filter(|p| *p != 0).ok_or("--to: the port must be 1 to 65535")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err("--to: the host is empty".into());
    }
    Ok((host.to_owned(), port))
}

async fn tunnel(target: Target, query: String, socket: TcpStream, peer: SocketAddr) {
    let request = match target.ws_request(&query) {
        Ok(r) => r,
        Err(e) => return eprintln!("{peer}: {e}"),
    };
    let ws = match tokio_tungstenite::connect_async(request).await {
        Ok((ws, _)) => ws,
        Err(e) => return eprintln!("{peer}: {}", ws_error(e)),
    };
    let (mut sink, mut source) = ws.split();
    let (mut r, mut w) = socket.into_split();
    let up = async {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if sink.send(Message::Binary(buf.get(..n).unwrap_or_default().to_vec().into())).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = sink.send(Message::Close(None)).await;
    };
    let down = async {
        while let Some(Ok(msg)) = source.next().await {
            match msg {
                Message::Binary(b) if w.write_all(&b).await.is_err() => break,
                Message::Close(_) => break,
                _ => {}
            }
        }
        let _ = w.shutdown().await;
    };
    tokio::select! {
        () = up => {}
        () = down => {}
    }
}

pub(super) async fn run(args: Args) -> Result<(), String> {
    let (host, port) = split_target(&args.to)?;
    let query = format!("proxy?address={}&port={port}", encode(&host));
    let listener =
        TcpListener::bind(args.listen).await.map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening on {local}, tunnelled to {host}:{port} through {}", args.target.device);
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let _ = socket.set_nodelay(true);
                    tokio::spawn(tunnel(args.target.clone(), query.clone(), socket, peer));
                }
                Err(e) => {
                    eprintln!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(split_target("127.0.0.1:22").unwrap(), ("127.0.0.1".into(), 22));
        assert_eq!(split_target("[::1]:80").unwrap(), ("::1".into(), 80));
        assert!(split_target("host").is_err());
        assert!(split_target("host:0").is_err());
        assert!(split_target(":80").is_err());
    }
}
