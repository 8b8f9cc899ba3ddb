//! The commands that drive a device's gateway extensions through a running server's API
//! (feature `cli`): `thinger-server terminal`, `thinger-server proxy`, `thinger-server fs`.
//! They talk to the routes of `docs/server.md` (WebSocket for the terminal and the proxy,
//! HTTP for file transfers), so they work against any reachable local server.

mod fs;
mod proxy;
mod terminal;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// Where the server is and who the device is: the arguments every command shares.
#[derive(clap::Args, Debug, Clone)]
struct Target {
    /// The device id.
    device: String,
    /// The device's user.
    #[arg(long)]
    user: String,
    /// The server's REST API.
    #[arg(long, default_value_t = format!("http://127.0.0.1:{}", crate::DEFAULT_HTTP_PORT))]
    server: String,
    /// Bearer token of the REST API.
    #[arg(long, env = "THINGER_SERVER_TOKEN")]
    token: Option<String>,
}

impl Target {
    /// `host:port` and the path prefix of the server URL (`http://` only).
    fn authority(&self) -> Result<(String, String), String> {
        let rest = self.server.strip_prefix("http://").ok_or("--server: only http:// URLs are supported")?;
        let (authority, base) = rest.split_once('/').unwrap_or((rest, ""));
        if authority.is_empty() {
            return Err("--server: the URL has no host".into());
        }
        let base = base.trim_end_matches('/');
        let base = if base.is_empty() { String::new() } else { format!("/{base}") };
        Ok((authority.to_owned(), base))
    }

    /// The path of one of the device's routes (`/v3/users/U/devices/D/{tail}`).
    fn path(&self, tail: &str) -> Result<String, String> {
        let (_, base) = self.authority()?;
        Ok(format!("{base}/v3/users/{}/devices/{}/{tail}", encode(&self.user), encode(&self.device)))
    }

    /// A WebSocket request for a route, with the token as a bearer header.
    fn ws_request(&self, tail: &str) -> Result<tokio_tungstenite::tungstenite::handshake::client::Request, String> {
        let (authority, _) = self.authority()?;
        let url = format!("ws://{authority}{}", self.path(tail)?);
        let mut request = url.as_str().into_client_request().map_err(|e| format!("bad URL {url}: {e}"))?;
        if let Some(t) = &self.token {
            let v = HeaderValue::from_str(&format!("Bearer {t}")).map_err(|_| "the token is not a valid header")?;
            request.headers_mut().insert("authorization", v);
        }
        Ok(request)
    }
}

/// Percent-encodes what is not unreserved in a URL path segment or query value.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Why a WebSocket could not be opened, readable: the server's `{"error"}` when it sent one.
fn ws_error(e: tokio_tungstenite::tungstenite::Error) -> String {
    match e {
        tokio_tungstenite::tungstenite::Error::Http(r) => {
            let status = r.status();
            let message = r
                .body()
                .as_ref()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
                .and_then(|v| v.get("error").and_then(|m| m.as_str()).map(str::to_owned));
            match message {
                Some(m) => format!("{m} ({status})"),
                None => format!("the server answered {status}"),
            }
        }
        other => other.to_string(),
    }
}

fn parse<A: Parser>(name: &str, args: impl IntoIterator<Item = OsString>) -> Result<A, ExitCode> {
    let argv = std::iter::once(OsString::from(format!("thinger-server {name}"))).chain(args.into_iter().skip(1));
    A::try_parse_from(argv).map_err(|e| {
        let _ = e.print();
        if e.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS }
    })
}

/// `thinger-server terminal DEVICE --user U`: attaches this terminal (raw mode when it is
/// one) to a shell on the device, through its `$terminal` extension. Ctrl-] detaches.
/// `args` starts with the `terminal` word.
#[cfg_attr(docsrs, doc(cfg(feature = "cli")))]
pub async fn terminal_cli(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    match parse::<terminal::Args>("terminal", args) {
        Ok(a) => report("terminal", terminal::run(a).await),
        Err(code) => code,
    }
}

/// `thinger-server proxy DEVICE --user U --listen 127.0.0.1:PORT --to HOST:PORT`: every
/// connection to the local address is tunnelled to `HOST:PORT` as the device sees it,
/// through its `$proxy` extension. `args` starts with the `proxy` word.
#[cfg_attr(docsrs, doc(cfg(feature = "cli")))]
pub async fn proxy_cli(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    match parse::<proxy::Args>("proxy", args) {
        Ok(a) => report("proxy", proxy::run(a).await),
        Err(code) => code,
    }
}

/// `thinger-server fs get DEVICE REMOTE LOCAL` and `fs put DEVICE LOCAL REMOTE`: file
/// transfers over the device's chunked `$fs` streams. `args` starts with the `fs` word.
#[cfg_attr(docsrs, doc(cfg(feature = "cli")))]
pub async fn fs_cli(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    match parse::<fs::Args>("fs", args) {
        Ok(a) => report("fs", fs::run(a).await),
        Err(code) => code,
    }
}

fn report(name: &str, r: Result<(), String>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("thinger-server {name}: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = Target { device: "gw 1".into(), user: "u".into(), server: "http://h:8/api/".into(), token: None };
        assert_eq!(t.path("terminal").unwrap(), "/api/v3/users/u/devices/gw%201/terminal");
        assert_eq!(t.ws_request("proxy").unwrap().uri().to_string(), "ws://h:8/api/v3/users/u/devices/gw%201/proxy");
        let bad = Target { server: "https://h".into(), ..t };
        assert!(bad.authority().is_err());
    }
}
