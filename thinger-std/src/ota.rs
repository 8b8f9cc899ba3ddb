//! Over-the-air updates for Linux gateways: the official `$ota` resources over a file.
//!
//! [`FileUpdater`] receives the image into a temporary file next to its target, the core
//! verifies it there (read back, MD5 and/or SHA-256), and only then is it renamed over the
//! target in one atomic step, so the target is always either the old file or the complete
//! new one. An optional post-install command runs afterwards (restart a service, unpack an
//! archive), and `$ota/reboot` can run a command of its own after a short delay.
//!
//! ```no_run
//! use thinger_std::ota::{FileUpdater, SharedOta};
//! use thinger_std::resources::Resources;
//!
//! let updater = FileUpdater::new("/opt/gateway/bin/gateway")
//!     .post_install(["systemctl", "restart", "gateway"]);
//! let ota = SharedOta::new(updater, SharedOta::config(env!("CARGO_PKG_VERSION")));
//! let mut thing = Resources::new();
//! ota.register(&mut thing); // $ota/options, begin, write, end, reboot and `version`
//! let client = thinger_std::Client::builder("user", "gateway", "credential").resources(thing);
//! ```
//!
//! See `docs/ota.md` for what is verified and when.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use thinger_core::ota::{Action, Ota, OtaConfig, OtaStatus, StorageError, Updater, Version, block_size_for};
use thinger_core::resource::{Call, HandlerError, Resource, ResourceKind};

use crate::resources::Resources;

/// An [`Updater`] that installs the image as a file, atomically.
#[derive(Debug)]
pub struct FileUpdater {
    target: PathBuf,
    temp: PathBuf,
    file: Option<File>,
    mode: u32,
    post_install: Option<Vec<String>>,
    reboot: Option<Vec<String>>,
    reboot_delay: Duration,
}

impl FileUpdater {
    /// Installs images at `target`; the partial image is `target.ota-part` in the same
    /// directory (a rename is only atomic within one file system).
    ///
    /// ```
    /// let u = thinger_std::ota::FileUpdater::new("/tmp/app.bin");
    /// assert_eq!(u.temp_path(), std::path::Path::new("/tmp/app.bin.ota-part"));
    /// ```
    pub fn new(target: impl Into<PathBuf>) -> Self {
        let target = target.into();
        let mut temp = target.clone().into_os_string();
        temp.push(".ota-part");
        FileUpdater {
            target,
            temp: temp.into(),
            file: None,
            mode: 0o755,
            post_install: None,
            reboot: None,
            reboot_delay: Duration::from_secs(1),
        }
    }

    /// Permission bits of the installed file (default `0o755`, an executable).
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// A command run after the image is in place (program and arguments; the installed
    /// path is in `THINGER_OTA_FILE`). A failure is reported to the pusher.
    pub fn post_install<S: Into<String>>(mut self, command: impl IntoIterator<Item = S>) -> Self {
        self.post_install = Some(command.into_iter().map(Into::into).collect());
        self
    }

    /// A command `$ota/reboot` runs after `delay` (so the reply reaches the pusher first),
    /// e.g. `["systemctl", "restart", "gateway"]` or `["reboot"]`. Without one, reboot
    /// only changes [`SharedOta::status`] to `Rebooting` for the application to act on.
    pub fn reboot_command<S: Into<String>>(mut self, command: impl IntoIterator<Item = S>, delay: Duration) -> Self {
        self.reboot = Some(command.into_iter().map(Into::into).collect());
        self.reboot_delay = delay;
        self
    }

    /// Where the image is installed.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Where the image is received.
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    fn file(&self) -> Result<&File, StorageError> {
        self.file.as_ref().ok_or(StorageError("no image file open"))
    }
}

fn run(command: &[String], target: &Path) -> std::io::Result<std::process::ExitStatus> {
    let (program, args) = command.split_first().ok_or_else(|| std::io::Error::other("empty command"))?;
    Command::new(program).args(args).env("THINGER_OTA_FILE", target).status()
}

impl Updater for FileUpdater {
    fn begin(&mut self, size: u32) -> Result<(), StorageError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&self.temp)
            .map_err(|e| io_error("cannot create the image file", &e))?;
        // Reserve the space now: a full disk fails here, not halfway through.
        file.set_len(u64::from(size)).map_err(|e| io_error("cannot reserve space for the image", &e))?;
        self.file = Some(file);
        Ok(())
    }

    fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), StorageError> {
        self.file()?.write_all_at(data, u64::from(offset)).map_err(|e| io_error("cannot write the image file", &e))
    }

    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), StorageError> {
        self.file()?.read_exact_at(buf, u64::from(offset)).map_err(|e| io_error("cannot read the image file", &e))
    }

    fn finish(&mut self, size: u32) -> Result<(), StorageError> {
        let file = self.file()?;
        let len = file.metadata().map_err(|e| io_error("cannot stat the image file", &e))?.len();
        if len != u64::from(size) {
            return Err(StorageError("image file has the wrong size"));
        }
        file.sync_all().map_err(|e| io_error("cannot flush the image file", &e))
    }

    fn mark_for_boot(&mut self) -> Result<(), StorageError> {
        let file = self.file.take().ok_or(StorageError("no image file open"))?;
        file.set_permissions(std::fs::Permissions::from_mode(self.mode))
            .map_err(|e| io_error("cannot set the image's permissions", &e))?;
        drop(file);
        std::fs::rename(&self.temp, &self.target).map_err(|e| io_error("cannot move the image into place", &e))?;
        // Make the rename itself durable.
        if let Some(dir) = self.target.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = File::open(dir).and_then(|d| d.sync_all());
        }
        tracing::info!(target = %self.target.display(), "OTA image installed");
        if let Some(command) = &self.post_install {
            match run(command, &self.target) {
                Ok(status) if status.success() => {}
                Ok(status) => {
                    tracing::warn!(%status, "OTA post-install command failed");
                    return Err(StorageError("post-install command failed"));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "OTA post-install command did not run");
                    return Err(StorageError("post-install command did not run"));
                }
            }
        }
        Ok(())
    }

    fn abort(&mut self) {
        self.file = None;
        let _ = std::fs::remove_file(&self.temp);
    }

    fn reboot(&mut self) -> Result<(), StorageError> {
        let Some(command) = self.reboot.clone() else {
            tracing::info!("OTA reboot requested (no reboot command configured)");
            return Ok(());
        };
        let (delay, target) = (self.reboot_delay, self.target.clone());
        std::thread::Builder::new()
            .name("thinger-ota-reboot".into())
            .spawn(move || {
                std::thread::sleep(delay);
                if let Err(e) = run(&command, &target) {
                    tracing::warn!(error = %e, "OTA reboot command did not run");
                }
            })
            .map(drop)
            .map_err(|e| io_error("cannot schedule the reboot", &e))
    }
}

fn io_error(what: &'static str, e: &std::io::Error) -> StorageError {
    tracing::warn!(error = %e, "OTA: {what}");
    StorageError(what)
}

/// The OTA state shared by the five `$ota` resources of a client.
///
/// Cloning gives another handle on the same state.
#[derive(Debug)]
pub struct SharedOta<U> {
    ota: Arc<Mutex<Ota<U>>>,
}

impl<U> Clone for SharedOta<U> {
    fn clone(&self) -> Self {
        SharedOta { ota: Arc::clone(&self.ota) }
    }
}

impl SharedOta<FileUpdater> {
    /// OTA settings for a client with the default 32 KiB session buffer (8 KiB chunks),
    /// announcing `version` as the running one.
    ///
    /// ```
    /// let c = thinger_std::ota::SharedOta::config("1.2.3");
    /// assert_eq!((c.block_size, c.version), (8192, "1.2.3"));
    /// ```
    pub fn config(version: &'static str) -> OtaConfig {
        OtaConfig::new(block_size_for_buffer(32 * 1024)).version(version)
    }
}

/// The largest chunk a client with a session buffer of `buffer_size` bytes (see
/// `ClientBuilder::buffer_size`) receives in one `$ota/write`.
///
/// ```
/// assert_eq!(thinger_std::ota::block_size_for_buffer(32 * 1024), 8192);
/// assert_eq!(thinger_std::ota::block_size_for_buffer(4096), 1024);
/// ```
pub fn block_size_for_buffer(buffer_size: usize) -> u32 {
    // The client gives 3/8 of its buffer to receiving.
    block_size_for(buffer_size.max(1024) / 8 * 3)
}

impl<U: Updater + Send + 'static> SharedOta<U> {
    /// OTA over `updater`.
    pub fn new(updater: U, config: OtaConfig) -> Self {
        SharedOta { ota: Arc::new(Mutex::new(Ota::new(updater, config))) }
    }

    /// Adds `$ota/options`, `begin`, `write`, `end`, `reboot` and the `version` resource
    /// (from the config's version) to `thing`.
    pub fn register(&self, thing: &mut Resources) {
        for action in Action::ALL {
            thing.entry(action.path()).set(OtaHandler { ota: self.clone(), action });
        }
        let version = self.with(|ota| ota.config().version);
        if !version.is_empty() {
            thing.entry(Version::PATH).set(Version::new(version));
        }
    }

    /// Where the update stands.
    pub fn status(&self) -> OtaStatus {
        self.with(|ota| ota.status())
    }

    /// Runs `f` on the state (briefly: the resources wait for it).
    pub fn with<R>(&self, f: impl FnOnce(&mut Ota<U>) -> R) -> R {
        // A handler that panicked leaves the state as it was between two calls: still usable.
        let mut ota = self.ota.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut ota)
    }
}

/// One `$ota` resource over a [`SharedOta`].
struct OtaHandler<U> {
    ota: SharedOta<U>,
    action: Action,
}

impl<U: Updater + Send + 'static> Resource for OtaHandler<U> {
    fn kind(&self) -> ResourceKind {
        self.action.kind()
    }
    fn handle(&mut self, call: &mut Call<'_>) -> Result<(), HandlerError> {
        let action = self.action;
        self.ota.with(|ota| ota.handle(action, call))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("thinger-ota-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn target_changes_only_at_mark_for_boot() {
        let dir = temp_dir("atomic");
        let target = dir.join("app");
        std::fs::write(&target, b"old").unwrap();
        let marker = dir.join("installed");
        let script = format!("cp \"$THINGER_OTA_FILE\" {}", marker.display());
        let mut u = FileUpdater::new(&target).mode(0o644).post_install(["sh", "-c", &script]);
        u.begin(6).unwrap();
        u.write(0, b"new").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"old");
        u.write(3, b"img").unwrap();
        u.finish(6).unwrap();
        let mut back = [0u8; 6];
        u.read(0, &mut back).unwrap();
        assert_eq!(&back, b"newimg");
        assert_eq!(std::fs::read(&target).unwrap(), b"old");
        u.mark_for_boot().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"newimg");
        assert_eq!(std::fs::read(&marker).unwrap(), b"newimg");
        assert!(!u.temp_path().exists());
        assert_eq!(std::fs::metadata(&target).unwrap().permissions().mode() & 0o777, 0o644);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn abort_removes_the_partial_image_and_failed_post_install_is_reported() {
        let dir = temp_dir("abort");
        let target = dir.join("app");
        let mut u = FileUpdater::new(&target).post_install(["false"]);
        u.begin(4).unwrap();
        u.write(0, b"ab").unwrap();
        u.abort();
        assert!(!u.temp_path().exists());
        assert!(u.finish(4).is_err());
        u.begin(2).unwrap();
        u.write(0, b"ok").unwrap();
        u.finish(2).unwrap();
        assert_eq!(u.mark_for_boot(), Err(StorageError("post-install command failed")));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn reboot_command_runs_after_the_delay() {
        let dir = temp_dir("reboot");
        let marker = dir.join("rebooted");
        let script = format!("touch {}", marker.display());
        let mut u = FileUpdater::new(dir.join("app")).reboot_command(["sh", "-c", &script], Duration::from_millis(50));
        u.reboot().unwrap();
        assert!(!marker.exists(), "not synchronous");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !marker.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(marker.exists());
        std::fs::remove_dir_all(dir).unwrap();
    }
}

/// `docs/ota.md`, included so that its examples compile as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/ota.md")]
mod ota_doc {}
