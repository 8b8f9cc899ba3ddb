//! `thinger-server terminal`: this terminal attached to a device's PTY.

use std::io::{IsTerminal, Read, Write};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::{Target, encode, ws_error};

/// Attaches this terminal to a shell on the device (its `$terminal` extension). In a
/// terminal, keys go to the device as typed (raw mode) and Ctrl-] detaches; with input from
/// a pipe, the command ends once the input ended and the device was quiet for `--linger`.
#[derive(clap::Parser, Debug)]
#[command(name = "thinger-server terminal")]
pub(super) struct Args {
    #[command(flatten)]
    target: Target,
    /// Session name [default: one chosen by the server].
    #[arg(long)]
    session: Option<String>,
    /// With piped input: milliseconds of device silence after the input ended before
    /// detaching.
    #[arg(long, default_value_t = 1000)]
    linger: u64,
}

/// Ctrl-]: detach, as in telnet.
const DETACH: u8 = 0x1d;

/// Restores the terminal when dropped.
struct RawMode(bool);

impl RawMode {
    fn enable(tty: bool) -> RawMode {
        RawMode(tty && crossterm::terminal::enable_raw_mode().is_ok())
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if self.0 {
            let _ = crossterm::terminal::disable_raw_mode();
        }
    }
}

fn size() -> (u16, u16) {
    crossterm::terminal::size().ok().filter(|(c, r)| *c > 0 && *r > 0).unwrap_or((80, 24))
}

pub(super) async fn run(args: Args) -> Result<(), String> {
    let tty = std::io::stdin().is_terminal();
    let (cols, rows) = size();
    let mut query = format!("terminal?cols={cols}&rows={rows}");
    if let Some(s) = &args.session {
        query.push_str(&format!("&session={}", encode(s)));
    }
    let request = args.target.ws_request(&query)?;
    let (ws, _) = tokio_tungstenite::connect_async(request).await.map_err(ws_error)?;
    let (mut sink, mut source) = ws.split();

    // Standard input on its own thread (a blocked read must not hold the runtime at exit).
    let (keys_tx, mut keys) = mpsc::channel::<Vec<u8>>(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = [0u8; 4096];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if keys_tx.blocking_send(buf.get(..n).unwrap_or_default().to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });

    let raw = RawMode::enable(tty);
    let mut stdout = std::io::stdout();
    let mut input_open = true;
    let mut last_size = (cols, rows);
    let mut resize_tick = tokio::time::interval(Duration::from_millis(250));
    let linger = Duration::from_millis(args.linger);
    let mut quiet_deadline: Option<tokio::time::Instant> = None;
    let outcome = loop {
        let quiet = async {
            match quiet_deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            key = keys.recv(), if input_open => match key {
                Some(bytes) => {
                    if tty && bytes.contains(&DETACH) {
                        break Ok(());
                    }
                    if sink.send(Message::Binary(bytes.into())).await.is_err() {
                        break Err("the connection to the server broke".to_owned());
                    }
                }
                None => {
                    input_open = false;
                    quiet_deadline = Some(tokio::time::Instant::now() + linger);
                }
            },
            msg = source.next() => match msg {
                Some(Ok(Message::Binary(b))) => {
                    let _ = stdout.write_all(&b);
                    let _ = stdout.flush();
                    if !input_open {
                        quiet_deadline = Some(tokio::time::Instant::now() + linger);
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    let reason = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                    break if reason.is_empty() || reason.contains("closed the stream") {
                        Ok(())
                    } else {
                        Err(reason)
                    };
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => break Err(format!("the connection to the server broke: {e}")),
                None => break Ok(()),
            },
            _ = resize_tick.tick(), if tty => {
                let now = size();
                if now != last_size {
                    last_size = now;
                    let control = serde_json::json!({"resize": {"cols": now.0, "rows": now.1}}).to_string();
                    let _ = sink.send(Message::Text(control.into())).await;
                }
            }
            () = quiet => break Ok(()),
        }
    };
    let _ = sink.send(Message::Close(None)).await;
    drop(raw);
    if tty {
        eprintln!();
    }
    outcome
}
