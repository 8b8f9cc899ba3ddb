//! A Linux gateway with the device extensions of the official IOTMP-Linux client, each with
//! safe settings: `cmd` runs only `uptime` and `echo`, `fs` serves one directory read-only,
//! `proxy` reaches only one local port, and `terminal` is installed only when
//! `EXT_TERMINAL=1` (it is a shell for whoever can call the device).
//!
//! ```text
//! cargo run --example gateway_extensions            # local server: streams a command, a tunnel
//! EXT_TERMINAL=1 cargo run --example gateway_extensions
//! ```
//!
//! With `THINGER_USER`, `THINGER_DEVICE` and `THINGER_CREDENTIAL` set it connects to that
//! account instead and serves until Ctrl-C (`GATEWAY_SECONDS` limits it), so the console's
//! terminal, proxy and file browser can use it. `docs/security.md` says what each extension
//! exposes.

use thinger_core::pson::Value;
use thinger_examples::{LOCAL_USER, Target, init_logging, run_limit, wait_for_stop};
use thinger_std::ext::cmd::CmdConfig;
use thinger_std::ext::fs::FsConfig;
use thinger_std::ext::proxy::ProxyConfig;
use thinger_std::ext::terminal::TerminalConfig;
use thinger_std::resources::Resources;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DEVICE: &str = "gateway-ext";

fn map(pairs: &[(&str, Value)]) -> Value {
    Value::Map(pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_logging();
    // The one target the proxy may reach: a local echo service.
    let echo = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let echo_port = echo.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = echo.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = conn.read(&mut buf).await {
                    if n == 0 || conn.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    let shared = std::env::temp_dir().join("thinger-gateway-extensions");
    std::fs::create_dir_all(&shared)?;
    std::fs::write(shared.join("hello.txt"), "hello from the gateway\n")?;

    let mut thing = Resources::new();
    CmdConfig::allow(["uptime", "echo"]).install(&mut thing);
    FsConfig::new().root("shared", &shared).install(&mut thing)?;
    ProxyConfig::allow([("127.0.0.1", echo_port)]).max_sessions(2).install(&mut thing);
    if std::env::var("EXT_TERMINAL").as_deref() == Ok("1") {
        TerminalConfig::program("/bin/sh").max_sessions(1).install(&mut thing);
    }

    let target = Target::from_env_or_local(DEVICE).await?;
    // Frames of up to 32 KiB (the server's default) in and out, and room to hold one.
    let client = target.builder.buffer_size(160 * 1024).resources(thing).spawn()?;
    client.connected().await?;
    let Some(local) = target.local else {
        println!("serving {DEVICE}; Ctrl-C to stop");
        wait_for_stop(run_limit("GATEWAY_SECONDS")).await;
        client.shutdown().await;
        return Ok(());
    };
    let server = local.server;

    // A streamed command: output as it comes, then the exit code.
    let params = map(&[("cmd", Value::Str("echo streamed from the device".into())), ("timeout", Value::Uint(5))]);
    let mut cmd = server.open_stream(LOCAL_USER, DEVICE, "$cmd/demo", Some(params)).await?;
    while let Ok(v) = cmd.recv().await {
        if let Some(out) = v.get("out").and_then(Value::as_bytes) {
            print!("cmd output: {}", String::from_utf8_lossy(out));
        }
        if let Some(code) = v.get("exit").and_then(Value::as_i64) {
            println!("cmd exit code: {code}");
        }
    }

    // A tunnel to the allowed port, and one the allow-list refuses.
    let tunnel = |port: u16| {
        Some(map(&[
            ("protocol", Value::Str("tcp".into())),
            ("address", Value::Str("127.0.0.1".into())),
            ("port", Value::Uint(u64::from(port))),
            ("secure", Value::Bool(false)),
        ]))
    };
    let mut t = server.open_stream(LOCAL_USER, DEVICE, "$proxy/demo", tunnel(echo_port)).await?;
    t.send_bytes(b"ping through the tunnel").await?;
    println!("proxy echoed: {}", String::from_utf8_lossy(&t.recv_bytes().await?));
    t.close();
    match server.open_stream(LOCAL_USER, DEVICE, "$proxy/denied", tunnel(22)).await {
        Err(e) => println!("proxy to port 22 refused: {e}"),
        Ok(_) => return Err("the allow-list let port 22 through".into()),
    }
    client.shutdown().await;
    server.shutdown().await;
    Ok(())
}
