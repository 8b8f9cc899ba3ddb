//! The `terminal` gateway extension: a program (a shell, by choice) on a pseudo-terminal,
//! over a channel the server opens on `$terminal/:session`, as the official IOTMP-Linux
//! client has it.
//!
//! * `START_STREAM $terminal/<session>` with `{cols, rows}` starts the configured program
//!   on a new PTY of that size; bytes flow both ways as `STREAM_DATA`;
//! * `RUN $terminal/<session>/params` with `{size: {cols, rows}}` resizes it;
//! * the server's `STOP_STREAM` kills the program (SIGHUP, then SIGKILL); the program
//!   exiting stops the stream.
//!
//! Nothing runs unless the application installs it, and then only the one program it names
//! (no shell is chosen for it), with a cleared environment (`TERM`, `PATH`, `HOME` and what
//! [`TerminalConfig::env`] adds), at most [`TerminalConfig::max_sessions`] at once. Every
//! session is logged (`tracing` info) with its name and program.
//!
//! ```
//! use thinger_std::ext::terminal::TerminalConfig;
//! use thinger_std::resources::Resources;
//! let mut thing = Resources::new();
//! TerminalConfig::program("/bin/sh").max_sessions(2).install(&mut thing);
//! assert!(thing.contains("$terminal/:session"));
//! assert!(thing.contains("$terminal/:session/params"));
//! ```

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use portable_pty::{CommandBuilder, MasterPty, PtySize, native_pty_system};
use serde::Deserialize;
use thinger_core::resource::{HandlerError, ResourceKind, handler};
use tokio::sync::mpsc;

use crate::channel::{Channel, ChannelRequest, channel};
use crate::resources::Resources;

/// Terminal sessions at once, by default.
pub const DEFAULT_MAX_SESSIONS: usize = 4;

/// What a terminal runs, and how many at once.
#[derive(Debug, Clone)]
pub struct TerminalConfig {
    program: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    cwd: Option<PathBuf>,
    max_sessions: usize,
}

/// The PTYs open now, by session name (for resizing).
type Sessions = Arc<Mutex<HashMap<String, Box<dyn MasterPty + Send>>>>;

#[derive(Debug, Deserialize)]
struct Size {
    cols: u16,
    rows: u16,
}

#[derive(Debug, Deserialize)]
struct Params {
    size: Size,
}

impl TerminalConfig {
    /// Runs `program` (an absolute path, e.g. `/bin/bash`) for every session.
    pub fn program(program: impl Into<String>) -> Self {
        TerminalConfig {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
            max_sessions: DEFAULT_MAX_SESSIONS,
        }
    }

    /// Arguments for the program (e.g. `["-l"]`).
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// Adds an environment variable (the environment is otherwise cleared).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The working directory (default: the client's).
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Sessions at once; more are refused with 503.
    pub fn max_sessions(mut self, n: usize) -> Self {
        self.max_sessions = n;
        self
    }

    /// Adds `$terminal/:session` and `$terminal/:session/params` to `thing`.
    pub fn install(self, thing: &mut Resources) {
        let sessions: Sessions = Arc::default();
        let resize = sessions.clone();
        thing.entry("$terminal/:session/params").set(handler(ResourceKind::Input, move |call| {
            if call.is_describe() {
                return Ok(());
            }
            let session = call.param("session").unwrap_or("");
            let params: Params = call.input().deserialize().map_err(|_| HandlerError::bad_input())?;
            let map = resize.lock().unwrap_or_else(|e| e.into_inner());
            let pty = map.get(session).ok_or(HandlerError::new(404, "no such terminal session"))?;
            tracing::info!("terminal {session}: resize to {}x{}", params.size.cols, params.size.rows);
            pty.resize(PtySize { rows: params.size.rows, cols: params.size.cols, pixel_width: 0, pixel_height: 0 })
                .map_err(|_| HandlerError::new(500, "resize failed"))
        }));
        let config = Arc::new(self);
        thing.entry("$terminal/:session").set_channel(channel(move |request| {
            let config = config.clone();
            let sessions = sessions.clone();
            async move { serve(request, &config, sessions).await }
        }));
    }
}

/// One terminal session, from the request to the end.
async fn serve(request: ChannelRequest, config: &TerminalConfig, sessions: Sessions) {
    let name = request.session().to_owned();
    let (cols, rows) =
        request.params_as::<Size>().map(|s| (s.cols.clamp(1, 1000), s.rows.clamp(1, 1000))).unwrap_or((80, 24));
    let busy = {
        let map = sessions.lock().unwrap_or_else(|e| e.into_inner());
        map.len() >= config.max_sessions || map.contains_key(&name)
    };
    if busy {
        tracing::warn!("terminal {name}: refused (session limit or name in use)");
        let _ = request.reject(HandlerError::new(503, "too many terminal sessions")).await;
        return;
    }
    let started = match start(config, cols, rows) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("terminal {name}: {} could not start: {e}", config.program);
            let _ = request.reject(HandlerError::new(500, "terminal could not start")).await;
            return;
        }
    };
    let Started { master, child, reader, writer } = started;
    let Ok(channel) = request.accept(None::<()>).await else { return };
    tracing::info!("terminal {name}: started {} ({cols}x{rows}, pid {:?})", config.program, child.process_id());
    sessions.lock().unwrap_or_else(|e| e.into_inner()).insert(name.clone(), master);
    let exited = pump(channel, reader, writer).await;
    sessions.lock().unwrap_or_else(|e| e.into_inner()).remove(&name);
    let mut child = child;
    let _ = tokio::task::spawn_blocking(move || {
        if !exited {
            let _ = child.kill();
        }
        let _ = child.wait();
    })
    .await;
    tracing::info!("terminal {name}: ended ({})", if exited { "program exited" } else { "stream closed" });
}

struct Started {
    master: Box<dyn MasterPty + Send>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
    reader: Box<dyn Read + Send>,
    writer: Box<dyn Write + Send>,
}

fn start(config: &TerminalConfig, cols: u16, rows: u16) -> Result<Started, Box<dyn std::error::Error>> {
    let pair = native_pty_system().openpty(PtySize { rows, cols, pixel_width: 0, pixel_height: 0 })?;
    let mut cmd = CommandBuilder::new(&config.program);
    cmd.args(&config.args);
    cmd.env_clear();
    cmd.env("TERM", "xterm-256color");
    cmd.env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    if let Some(home) = std::env::var_os("HOME") {
        cmd.env("HOME", home);
    }
    for (k, v) in &config.env {
        cmd.env(k, v);
    }
    if let Some(dir) = &config.cwd {
        cmd.cwd(dir);
    }
    let child = pair.slave.spawn_command(cmd)?;
    drop(pair.slave);
    let reader = pair.master.try_clone_reader()?;
    let writer = pair.master.take_writer()?;
    Ok(Started { master: pair.master, child, reader, writer })
}

/// Moves bytes between the PTY and the channel; true when the program ended it.
async fn pump(channel: Channel, mut reader: Box<dyn Read + Send>, mut writer: Box<dyn Write + Send>) -> bool {
    // The PTY is blocking: one thread reads it, one writes it.
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(8);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => return, // EOF/EIO: every slave side is closed
                Ok(n) => {
                    if out_tx.blocking_send(buf.get(..n).unwrap_or(&[]).to_vec()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let (in_tx, mut in_rx) = mpsc::channel::<Vec<u8>>(8);
    std::thread::spawn(move || {
        while let Some(bytes) = in_rx.blocking_recv() {
            if writer.write_all(&bytes).and_then(|()| writer.flush()).is_err() {
                return;
            }
        }
    });
    let (sender, mut receiver) = channel.split();
    let exited = loop {
        tokio::select! {
            out = out_rx.recv() => match out {
                Some(bytes) => {
                    if sender.send_bytes(&bytes).await.is_err() {
                        break false;
                    }
                }
                None => break true,
            },
            input = receiver.recv() => match input.as_ref().and_then(|d| d.bytes()) {
                Some(bytes) => {
                    if in_tx.send(bytes.to_vec()).await.is_err() {
                        break true;
                    }
                }
                None if input.is_some() => {} // not bytes: ignored
                None => break false,
            },
        }
    };
    if exited {
        sender.close().await;
    }
    exited
}
