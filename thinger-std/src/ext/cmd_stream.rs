//! Streamed command output of the `cmd` extension, on channels the server opens on
//! `$cmd/:session` with `{cmd, timeout}`: the device sends `{out: bytes}` and
//! `{err: bytes}` as the program writes, then `{exit: code}` (with `timeout: true` when it
//! was killed at its timeout) and stops the stream. Bytes or text the server sends go to
//! the program's stdin; the server stopping the stream kills the program. The same
//! allow-list, environment, concurrency and timeout rules as the inline `cmd` apply.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use thinger_core::pson::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use thinger_core::resource::HandlerError;

use crate::channel::{ChannelRequest, channel};
use crate::resources::Resources;

#[derive(Debug, Default, Deserialize)]
struct StreamRequest {
    #[serde(default, alias = "command")]
    cmd: String,
    /// Seconds; 0 or absent for the configured timeout.
    #[serde(default)]
    timeout: f64,
}

/// A command checked against the `cmd` settings, ready to spawn.
pub(super) struct Prepared {
    pub(super) process: tokio::process::Command,
    pub(super) timeout: Duration,
    /// Its place among the commands allowed at once, given back on drop.
    pub(super) slot: Box<dyn Send>,
}

/// Checks a command and its requested timeout (seconds) against the `cmd` settings.
pub(super) type Prepare = Arc<PrepareFn>;
/// See [`Prepare`].
pub(super) type PrepareFn = dyn Fn(&str, f64) -> Result<Prepared, HandlerError> + Send + Sync;

pub(super) fn install(prepare: Prepare, thing: &mut Resources) {
    thing.entry("$cmd/:session").set_channel(channel(move |request| {
        let prepare = prepare.clone();
        async move { serve(request, &*prepare).await }
    }));
}

/// The exit code, or 128 + the signal number when a signal ended the process (as a shell
/// reports it).
pub(super) fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().or_else(|| status.signal().map(|s| 128 + s)).unwrap_or(-1)
}

/// SIGKILL to the command's process group (its own, see `process_group(0)`).
pub(super) fn kill_group(pid: Option<u32>) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
}

fn one(key: &str, value: Value) -> Vec<u8> {
    Value::Map(vec![(key.to_owned(), value)]).encode_to_vec()
}

async fn serve(request: ChannelRequest, prepare: &PrepareFn) {
    let params: StreamRequest = request.params_as().unwrap_or_default();
    let command = params.cmd.trim().to_owned();
    let Prepared { mut process, timeout, slot: _slot } = match prepare(&command, params.timeout) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(target: "thinger::ext::cmd", command, reason = e.message, "server stream request refused");
            let _ = request.reject(e).await;
            return;
        }
    };
    process.stdin(std::process::Stdio::piped());
    let mut child = match process.spawn() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(target: "thinger::ext::cmd", command, error = %e, "command could not start");
            let _ = request.reject(HandlerError::new(500, "command could not start")).await;
            return;
        }
    };
    let Ok(ch) = request.accept(None::<()>).await else {
        kill_group(child.id());
        return;
    };
    tracing::info!(target: "thinger::ext::cmd", command, timeout_ms = timeout.as_millis() as u64, "server stream request: run");
    let (tx, mut rx) = ch.split();
    let (pipe_tx, mut pipes) = mpsc::channel::<Vec<u8>>(8);
    let readers = [
        tokio::spawn(forward(child.stdout.take(), "out", pipe_tx.clone())),
        tokio::spawn(forward(child.stderr.take(), "err", pipe_tx)),
    ];
    let mut stdin = child.stdin.take();
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut pipes_open = true;
    let mut status = None;
    let mut timed_out = false;
    // Output until both pipes end, then the exit code.
    loop {
        tokio::select! {
            frame = pipes.recv(), if pipes_open => match frame {
                Some(frame) => {
                    if tx.send_pson(frame).await.is_err() {
                        break;
                    }
                }
                None => pipes_open = false,
            },
            exited = child.wait(), if status.is_none() => status = Some(exited.map(exit_code).unwrap_or(-1)),
            input = rx.recv() => match input {
                Some(data) => {
                    if let (Some(bytes), Some(pipe)) = (data.bytes(), stdin.as_mut())
                        && pipe.write_all(bytes).await.is_err()
                    {
                        stdin = None;
                    }
                }
                None => {
                    tracing::info!(target: "thinger::ext::cmd", command, "stream stopped by the server: command killed");
                    break;
                }
            },
            () = &mut deadline, if !timed_out => {
                timed_out = true;
                kill_group(child.id());
            }
        }
        if !pipes_open && status.is_some() {
            break;
        }
    }
    if status.is_none() {
        kill_group(child.id());
        let _ = child.kill().await;
    }
    for r in readers {
        r.abort();
    }
    if let Some(code) = status.filter(|_| !tx.is_closed()) {
        let mut end = vec![("exit".to_owned(), Value::Int(i64::from(code)))];
        if timed_out {
            end.push(("timeout".to_owned(), Value::Bool(true)));
        }
        let _ = tx.send_pson(Value::Map(end).encode_to_vec()).await;
        tracing::info!(target: "thinger::ext::cmd", command, code, timed_out, "streamed command ended");
    }
    tx.close().await;
}

/// Sends what a pipe gives as `{key: bytes}` frames.
async fn forward<R: AsyncRead + Unpin>(pipe: Option<R>, key: &'static str, to: mpsc::Sender<Vec<u8>>) {
    let Some(mut pipe) = pipe else { return };
    let mut buf = vec![0u8; 8192];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if to.send(one(key, Value::Bytes(buf.get(..n).unwrap_or(&[]).to_vec()))).await.is_err() {
                    return;
                }
            }
        }
    }
}
