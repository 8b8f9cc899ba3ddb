//! The `cmd` extension: the server runs a command on the device and gets its exit code,
//! stdout and stderr, on the resource name and reply shape of the official Linux client.
//!
//! Resource `cmd`, input `{"command": "...", "mode": "api" | "text", "timeout": seconds}`:
//! * mode `api` (or none): `{"retcode": i32, "stdout": "...", "stderr": "..."}`, plus
//!   `"truncated": true` when an output passed the limit and `"timed_out": true` (with
//!   `retcode` -1) when the command was killed at its timeout;
//! * mode `text`: stdout as a string, or stderr when stdout is empty.
//!
//! Safe by default: with [`CmdConfig::allow`] only the listed programs run, **without a
//! shell** (the command is split on whitespace; `;`, `|`, `$(...)` are plain arguments), and
//! the program name must equal a listed entry exactly. A full shell (`/bin/sh -c`, as the
//! official client does) needs the explicit [`CmdConfig::allow_any_shell_command`]. Every
//! command gets a cleared environment (only `PATH` set to [`DEFAULT_PATH`], plus the names
//! passed through with [`CmdConfig::pass_env`]), no stdin, its own process group (killed as a
//! whole at the timeout), a timeout ([`DEFAULT_TIMEOUT`]; a request may only shorten it),
//! an output limit per stream ([`DEFAULT_MAX_OUTPUT`]) and a limit on commands running at
//! once ([`DEFAULT_MAX_CONCURRENT`]). Each use is logged with `tracing`
//! (target `thinger::ext::cmd`).
//!
//! The reply must fit one frame the client sends, 3/8 of `ClientBuilder::buffer_size`
//! (12 KiB of the default 32 KiB): keep `2 × max_output` plus a few hundred bytes below it;
//! a reply that does not fit is answered `ERROR 413`.
//!
//! ```
//! use std::time::Duration;
//! use thinger_std::ext::cmd::CmdConfig;
//! use thinger_std::resources::Resources;
//!
//! let mut thing = Resources::new();
//! CmdConfig::allow(["uptime", "df"])
//!     .timeout(Duration::from_secs(5))
//!     .max_output(4096)
//!     .working_dir("/tmp")
//!     .pass_env("LANG")
//!     .install(&mut thing);
//! assert!(thing.contains("cmd"));
//! ```

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use thinger_core::resource::HandlerError;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::task::JoinHandle;

use super::cmd_stream::{self, Prepare, Prepared, exit_code, kill_group};
use crate::resources::{Resources, async_input_output};

/// The timeout of a command unless [`CmdConfig::timeout`] sets another.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most bytes kept of stdout, and of stderr, unless [`CmdConfig::max_output`] says
/// otherwise; the rest is read and dropped so the command never blocks on a full pipe.
pub const DEFAULT_MAX_OUTPUT: usize = 4 * 1024;
/// The most commands running at once unless [`CmdConfig::max_concurrent`] says otherwise.
pub const DEFAULT_MAX_CONCURRENT: usize = 4;
/// The `PATH` a command sees unless `PATH` is passed through.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The resource name, as on the official client.
pub const RESOURCE: &str = "cmd";
/// How long to wait for the output pipes once the command ended or was killed.
const PIPE_GRACE: Duration = Duration::from_secs(1);

/// Which commands may run.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Allowed {
    /// Programs (names looked up in `PATH`, or full paths) run directly, without a shell.
    Programs(Vec<String>),
    /// Anything, through `/bin/sh -c`: only by explicit opt-in.
    AnyShell,
}

/// Why a command was refused before it ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmdError {
    /// No command in the request (400).
    EmptyCommand,
    /// The program is not in the allow-list (403).
    NotAllowed,
    /// The command holds a NUL byte (400).
    NulByte,
    /// The program could not be started (500).
    SpawnFailed,
    /// As many commands as allowed are already running (503).
    Busy,
}

impl From<CmdError> for HandlerError {
    fn from(e: CmdError) -> HandlerError {
        match e {
            CmdError::EmptyCommand => HandlerError::new(400, "command required"),
            CmdError::NotAllowed => HandlerError::new(403, "command not allowed"),
            CmdError::NulByte => HandlerError::new(400, "NUL byte in command"),
            CmdError::SpawnFailed => HandlerError::new(500, "command could not start"),
            CmdError::Busy => HandlerError::new(503, "too many commands running"),
        }
    }
}

/// The settings of the `cmd` resource; [`CmdConfig::install`] adds it to a resource table.
#[derive(Debug, Clone)]
pub struct CmdConfig {
    allowed: Allowed,
    timeout: Duration,
    max_output: usize,
    max_concurrent: usize,
    running: Arc<AtomicUsize>,
    working_dir: Option<PathBuf>,
    pass_env: Vec<String>,
    set_env: Vec<(String, String)>,
}

impl CmdConfig {
    fn with(allowed: Allowed) -> Self {
        CmdConfig {
            allowed,
            timeout: DEFAULT_TIMEOUT,
            max_output: DEFAULT_MAX_OUTPUT,
            max_concurrent: DEFAULT_MAX_CONCURRENT,
            running: Arc::default(),
            working_dir: None,
            pass_env: Vec::new(),
            set_env: Vec::new(),
        }
    }

    /// Only these programs may run (exact match on the command's first word), without a
    /// shell.
    ///
    /// ```
    /// let cfg = thinger_std::ext::cmd::CmdConfig::allow(["uptime"]);
    /// assert!(cfg.is_allowed("uptime -p") && !cfg.is_allowed("rm -rf /"));
    /// ```
    pub fn allow<I, S>(programs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        CmdConfig::with(Allowed::Programs(programs.into_iter().map(Into::into).collect()))
    }

    /// Any command, run by `/bin/sh -c` as the official client does: the server gets a
    /// full shell on the device. Only for devices whose server side you fully trust.
    ///
    /// ```
    /// let cfg = thinger_std::ext::cmd::CmdConfig::allow_any_shell_command();
    /// assert!(cfg.is_allowed("echo a | wc -c"));
    /// ```
    pub fn allow_any_shell_command() -> Self {
        CmdConfig::with(Allowed::AnyShell)
    }

    /// The longest a command may run before its process group is killed (a request's
    /// `timeout` may only shorten it).
    ///
    /// ```
    /// let _ = thinger_std::ext::cmd::CmdConfig::allow(["ls"]).timeout(std::time::Duration::from_secs(2));
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The most bytes kept of stdout, and of stderr.
    ///
    /// ```
    /// let _ = thinger_std::ext::cmd::CmdConfig::allow(["ls"]).max_output(1024);
    /// ```
    pub fn max_output(mut self, bytes: usize) -> Self {
        self.max_output = bytes;
        self
    }

    /// The most commands running at once; more are answered 503.
    ///
    /// ```
    /// let _ = thinger_std::ext::cmd::CmdConfig::allow(["ls"]).max_concurrent(1);
    /// ```
    pub fn max_concurrent(mut self, n: usize) -> Self {
        self.max_concurrent = n;
        self
    }

    /// The directory commands run in (the client's own by default).
    ///
    /// ```
    /// let _ = thinger_std::ext::cmd::CmdConfig::allow(["ls"]).working_dir("/var/log");
    /// ```
    pub fn working_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.working_dir = Some(dir.into());
        self
    }

    /// Passes the client's value of the environment variable `name` to commands (the
    /// environment is cleared otherwise).
    ///
    /// ```
    /// let _ = thinger_std::ext::cmd::CmdConfig::allow(["ls"]).pass_env("LANG").pass_env("HOME");
    /// ```
    pub fn pass_env(mut self, name: impl Into<String>) -> Self {
        self.pass_env.push(name.into());
        self
    }

    /// Sets an environment variable for commands.
    ///
    /// ```
    /// let _ = thinger_std::ext::cmd::CmdConfig::allow(["ls"]).set_env("LC_ALL", "C");
    /// ```
    pub fn set_env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.set_env.push((name.into(), value.into()));
        self
    }

    /// Whether `command` would be allowed to run.
    ///
    /// ```
    /// let cfg = thinger_std::ext::cmd::CmdConfig::allow(["df"]);
    /// assert!(cfg.is_allowed("df -h") && !cfg.is_allowed("/bin/df") && !cfg.is_allowed(""));
    /// ```
    pub fn is_allowed(&self, command: &str) -> bool {
        self.build(command).is_ok()
    }

    /// Adds the `cmd` resource to `thing`.
    ///
    /// ```
    /// let mut thing = thinger_std::resources::Resources::new();
    /// thinger_std::ext::cmd::CmdConfig::allow(["uptime"]).install(&mut thing);
    /// assert!(thing.contains(thinger_std::ext::cmd::RESOURCE));
    /// ```
    pub fn install(self, thing: &mut Resources) {
        let config = Arc::new(self);
        let checker = config.clone();
        let prepare: Prepare = Arc::new(move |command: &str, seconds: f64| {
            let process = checker.build(command)?;
            let slot = Slot::take(&checker.running, checker.max_concurrent).ok_or(CmdError::Busy)?;
            let timeout = checker.timeout_for(seconds);
            Ok(Prepared { process, timeout, slot: Box::new(slot) })
        });
        cmd_stream::install(prepare, thing);
        thing[RESOURCE] >>= async_input_output(move |request: Request| {
            let config = config.clone();
            async move { config.execute(request).await }
        });
    }

    /// The configured timeout, shortened (never lengthened) by a request's seconds.
    fn timeout_for(&self, seconds: f64) -> Duration {
        match seconds {
            t if t > 0.0 && t.is_finite() => self.timeout.min(Duration::from_secs_f64(t)),
            _ => self.timeout,
        }
    }

    /// The process for `command`, or why it may not run.
    fn build(&self, command: &str) -> Result<Command, CmdError> {
        let command = command.trim();
        if command.is_empty() {
            return Err(CmdError::EmptyCommand);
        }
        if command.contains('\0') {
            return Err(CmdError::NulByte);
        }
        let mut process = match &self.allowed {
            Allowed::Programs(list) => {
                let mut words = command.split_whitespace();
                let program = words.next().ok_or(CmdError::EmptyCommand)?;
                if !list.iter().any(|allowed| allowed == program) {
                    return Err(CmdError::NotAllowed);
                }
                let mut process = Command::new(program);
                process.args(words);
                process
            }
            Allowed::AnyShell => {
                let mut process = Command::new("/bin/sh");
                process.arg("-c").arg(command);
                process
            }
        };
        process.env_clear().env("PATH", DEFAULT_PATH);
        for name in &self.pass_env {
            if let Some(value) = std::env::var_os(name) {
                process.env(name, value);
            }
        }
        for (name, value) in &self.set_env {
            process.env(name, value);
        }
        if let Some(dir) = &self.working_dir {
            process.current_dir(dir);
        }
        process
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // Its own process group, so the timeout kills what it started too.
            .process_group(0);
        Ok(process)
    }

    async fn execute(&self, request: Request) -> Result<Reply, HandlerError> {
        let command = request.command.trim();
        let mut process = match self.build(command) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(target: "thinger::ext::cmd", command, reason = ?e, "server request refused");
                return Err(e.into());
            }
        };
        let Some(_slot) = Slot::take(&self.running, self.max_concurrent) else {
            tracing::warn!(target: "thinger::ext::cmd", command, "server request refused: too many commands running");
            return Err(CmdError::Busy.into());
        };
        let timeout = self.timeout_for(request.timeout);
        tracing::info!(target: "thinger::ext::cmd", command, timeout_ms = timeout.as_millis() as u64, "server request: run");
        let started = Instant::now();
        let mut child = process.spawn().map_err(|e| {
            tracing::warn!(target: "thinger::ext::cmd", command, error = %e, "command could not start");
            HandlerError::from(CmdError::SpawnFailed)
        })?;
        let stdout = spawn_reader(child.stdout.take(), self.max_output);
        let stderr = spawn_reader(child.stderr.take(), self.max_output);
        let (retcode, timed_out) = match tokio::time::timeout(timeout, child.wait()).await {
            Ok(Ok(status)) => (exit_code(status), false),
            Ok(Err(_)) => (-1, false),
            Err(_) => {
                kill_group(child.id());
                let _ = child.kill().await;
                (-1, true)
            }
        };
        let (stdout, out_cut) = collect(stdout).await;
        let (stderr, err_cut) = collect(stderr).await;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        if timed_out {
            tracing::warn!(target: "thinger::ext::cmd", command, elapsed_ms, "command killed at its timeout");
        } else {
            tracing::info!(target: "thinger::ext::cmd", command, retcode, elapsed_ms, "command ended");
        }
        let truncated = out_cut || err_cut;
        Ok(match request.mode.as_str() {
            "text" => Reply::Text(if stdout.is_empty() { stderr } else { stdout }),
            _ => Reply::Api {
                retcode,
                stdout,
                stderr,
                truncated: truncated.then_some(true),
                timed_out: timed_out.then_some(true),
            },
        })
    }
}

/// What the server sends.
#[derive(Debug, Default, Deserialize)]
struct Request {
    #[serde(default, alias = "cmd")]
    command: String,
    #[serde(default)]
    mode: String,
    /// Seconds; 0 or absent for the configured timeout.
    #[serde(default)]
    timeout: f64,
}

/// What the server gets back.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Reply {
    Api {
        retcode: i32,
        stdout: String,
        stderr: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        truncated: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        timed_out: Option<bool>,
    },
    Text(String),
}

/// One of the `max_concurrent` places for a running command, given back on drop.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(running: &Arc<AtomicUsize>, max: usize) -> Option<Slot> {
        running.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1)).ok()?;
        Some(Slot(running.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

type Reader = Option<JoinHandle<(Vec<u8>, bool)>>;

/// Reads a pipe to its end on a task of its own, keeping at most `limit` bytes.
fn spawn_reader<R: AsyncRead + Unpin + Send + 'static>(pipe: Option<R>, limit: usize) -> Reader {
    let mut pipe = pipe?;
    Some(tokio::spawn(async move {
        let mut kept = Vec::new();
        let mut truncated = false;
        let mut chunk = [0u8; 4096];
        while let Ok(n @ 1..) = pipe.read(&mut chunk).await {
            let room = limit.saturating_sub(kept.len());
            let take = n.min(room);
            kept.extend_from_slice(chunk.get(..take).unwrap_or_default());
            truncated |= take < n;
        }
        (kept, truncated)
    }))
}

/// What a reader kept, as text; empty if the pipe stays open past [`PIPE_GRACE`] (a
/// process that left the group still holds it).
async fn collect(reader: Reader) -> (String, bool) {
    let Some(mut task) = reader else { return (String::new(), false) };
    match tokio::time::timeout(PIPE_GRACE, &mut task).await {
        Ok(Ok((bytes, truncated))) => (String::from_utf8_lossy(&bytes).into_owned(), truncated),
        _ => {
            task.abort();
            (String::new(), true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_matches_the_program_exactly() {
        let cfg = CmdConfig::allow(["echo", "/usr/bin/id"]);
        assert!(cfg.is_allowed("echo a; rm -rf /"));
        assert!(cfg.is_allowed("  /usr/bin/id  "));
        assert!(!cfg.is_allowed("/bin/echo a"));
        assert!(!cfg.is_allowed("id"));
        assert!(!cfg.is_allowed("echoo"));
        assert_eq!(cfg.build("").err(), Some(CmdError::EmptyCommand));
        assert_eq!(cfg.build("rm x").err(), Some(CmdError::NotAllowed));
        assert_eq!(cfg.build("echo a\0b").err(), Some(CmdError::NulByte));
    }

    #[tokio::test]
    async fn no_shell_means_metacharacters_are_arguments() {
        let cfg = CmdConfig::allow(["echo"]);
        let request = Request { command: "echo a;id $(id) | wc".into(), ..Request::default() };
        match cfg.execute(request).await.unwrap() {
            Reply::Api { retcode, stdout, .. } => {
                assert_eq!(retcode, 0);
                assert_eq!(stdout, "a;id $(id) | wc\n");
            }
            Reply::Text(_) => panic!("api mode expected"),
        }
    }

    #[tokio::test]
    async fn concurrent_commands_are_limited() {
        let cfg = Arc::new(CmdConfig::allow(["sleep", "echo"]).max_concurrent(1));
        let slow = tokio::spawn({
            let cfg = cfg.clone();
            async move { cfg.execute(Request { command: "sleep 0.5".into(), ..Request::default() }).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let busy = cfg.execute(Request { command: "echo x".into(), ..Request::default() }).await;
        assert_eq!(busy.err().map(|e| e.code), Some(503));
        assert!(slow.await.unwrap().is_ok());
        // The place is given back.
        assert!(cfg.execute(Request { command: "echo x".into(), ..Request::default() }).await.is_ok());
    }

    #[tokio::test]
    async fn environment_is_cleared_unless_passed() {
        let cfg = CmdConfig::allow_any_shell_command().set_env("ONLY", "this");
        let request = Request { command: "env".into(), mode: "text".into(), ..Request::default() };
        let Reply::Text(text) = cfg.execute(request).await.unwrap() else { panic!("text mode expected") };
        let mut names: Vec<&str> = text.lines().filter_map(|l| l.split_once('=').map(|(k, _)| k)).collect();
        names.sort_unstable();
        // `sh` itself may add PWD, SHLVL and `_`.
        names.retain(|n| !matches!(*n, "PWD" | "SHLVL" | "_" | "OLDPWD"));
        assert_eq!(names, ["ONLY", "PATH"]);
    }

    #[tokio::test]
    async fn output_is_cut_at_the_limit() {
        let cfg = CmdConfig::allow_any_shell_command().max_output(100);
        let request = Request { command: "head -c 100000 /dev/zero | tr '\\0' x".into(), ..Request::default() };
        let Reply::Api { stdout, truncated, retcode, .. } = cfg.execute(request).await.unwrap() else {
            panic!("api mode expected")
        };
        assert_eq!((stdout.len(), truncated, retcode), (100, Some(true), 0));
    }
}
