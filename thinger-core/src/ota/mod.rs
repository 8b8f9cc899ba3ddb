//! Over-the-air updates on the official `$ota` resources.
//!
//! The Thinger.io tools (the VS Code extension, the console) update a device through five
//! resources; this module serves them with the names and PSON shapes the official Arduino
//! libraries use, on top of a small [`Updater`] trait the platform implements (a file on a
//! Linux gateway, the DFU partition of `embassy-boot` on a microcontroller):
//!
//! | resource | in | out |
//! |---|---|---|
//! | `$ota/options` | — | `{enabled, block_size, timeout, checksum: "md5", sha256: true, version, offset, size}` |
//! | `$ota/begin` | `{firmware, version, size, chunk_size, checksum, sha256?, resume?}` | `{success, offset, error?}` |
//! | `$ota/write` | bytes (one chunk, at most `block_size`) | `{success, offset, error?}` |
//! | `$ota/end` | — | `{success, error?}` |
//! | `$ota/reboot` | — | — |
//!
//! What is checked, and when:
//! * `begin`: OTA enabled, a size that fits `u32` and is not 0, `chunk_size` ≤ `block_size`,
//!   no compression, and at least one checksum (MD5 as 32 hex digits in `checksum`, or
//!   SHA-256 as 64 hex digits in `sha256`); anything else is refused before storage is touched.
//! * `write`: a bytes input no longer than `block_size`, within `size` (a write past the end
//!   is refused and changes nothing).
//! * `end`: all `size` bytes written (else refused, and the transfer stays resumable); then
//!   the platform flushes ([`Updater::finish`]), the image is **read back from storage** and
//!   hashed, and only when every checksum the pusher sent matches is it marked for boot
//!   ([`Updater::mark_for_boot`]). A mismatch discards the image: nothing is installed.
//!
//! Resume: a `begin` with `resume: true` for the same image (firmware name, size and
//! checksums) while that image is being received does not restart it: it answers `success`
//! with the `offset` already written, and the pusher continues from there (so a dropped link
//! does not restart a 1 MB transfer). Any other `begin` while an image runs (another image,
//! or an official tool, which always sends from 0) restarts cleanly: the platform discards
//! the partial image ([`Updater::abort`]) and the new transfer starts at 0.
//!
//! Errors are answered the way the official tools read them: an OK reply with
//! `{"success": false, "error": "…"}`.
//!
//! ```
//! use core::cell::RefCell;
//! use thinger_core::ota::{Ota, OtaConfig, OtaResources, RamUpdater};
//! use thinger_core::resource::Thing;
//!
//! let mut storage = [0u8; 4096];
//! let ota = RefCell::new(Ota::new(RamUpdater::new(&mut storage), OtaConfig::new(1024).version("1.0.0")));
//! let mut resources = OtaResources::new(&ota);
//! let mut thing: Thing<'_, 8> = Thing::new();
//! resources.register(&mut thing).unwrap();
//! assert!(thing.get("$ota/write").is_some());
//! ```

mod hex;
mod ram;
mod resource;
mod version;

pub use ram::RamUpdater;
pub use resource::{Action, OtaResource, OtaResources};
pub use version::Version;

use md5::{Digest, Md5};
use sha2::Sha256;

use crate::pson;
use crate::resource::{Input, Output};

/// Path of the options resource.
pub const OPTIONS: &str = "$ota/options";
/// Path of the begin resource.
pub const BEGIN: &str = "$ota/begin";
/// Path of the write resource.
pub const WRITE: &str = "$ota/write";
/// Path of the end resource.
pub const END: &str = "$ota/end";
/// Path of the reboot resource.
pub const REBOOT: &str = "$ota/reboot";

/// Bytes of a `RUN "$ota/write"` frame around the chunk itself (frame header, stream id,
/// resource path, PSON bytes header), with room to spare.
pub const WRITE_FRAME_OVERHEAD: usize = 64;

/// The largest power-of-two chunk (at most 8 KiB, the official default) whose write frame
/// fits a receive buffer of `rx_buffer` bytes; at least 64.
///
/// ```
/// assert_eq!(thinger_core::ota::block_size_for(12 * 1024), 8192);
/// assert_eq!(thinger_core::ota::block_size_for(3000), 2048);
/// ```
pub const fn block_size_for(rx_buffer: usize) -> u32 {
    let room = rx_buffer.saturating_sub(WRITE_FRAME_OVERHEAD);
    let mut size: u32 = 8192;
    while size > 64 && size as usize > room {
        size /= 2;
    }
    size
}

/// A platform's storage failure, with a short reason sent to the pusher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct StorageError(pub &'static str);

impl core::fmt::Display for StorageError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.0)
    }
}

/// Where an image goes: the platform part of OTA.
///
/// The core calls these in this order for one image: [`begin`](Updater::begin), any number
/// of [`write`](Updater::write)s at increasing offsets, [`finish`](Updater::finish), then
/// [`read`](Updater::read)s to verify, then [`mark_for_boot`](Updater::mark_for_boot); or
/// [`abort`](Updater::abort) at any point. Calls are synchronous and run inside the session's
/// handler: keep each one short (one chunk).
pub trait Updater {
    /// Prepares storage for a new image of `size` bytes, discarding any earlier partial one.
    fn begin(&mut self, size: u32) -> Result<(), StorageError>;
    /// Stores `data` at `offset` (offsets arrive in order, without gaps).
    fn write(&mut self, offset: u32, data: &[u8]) -> Result<(), StorageError>;
    /// Reads stored bytes back (for verification).
    fn read(&mut self, offset: u32, buf: &mut [u8]) -> Result<(), StorageError>;
    /// All `size` bytes are written: flush them so that `read` sees what will boot.
    fn finish(&mut self, size: u32) -> Result<(), StorageError>;
    /// The verified image becomes the one to run next (swap on next boot, rename into place).
    fn mark_for_boot(&mut self) -> Result<(), StorageError>;
    /// Discards a partial or failed image.
    fn abort(&mut self);
    /// Restarts into the new image. Must not reset synchronously: the reply to
    /// `$ota/reboot` still has to go out, so schedule it (e.g. after a second).
    fn reboot(&mut self) -> Result<(), StorageError>;
}

/// OTA settings announced in `$ota/options`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OtaConfig {
    /// Whether updates are accepted.
    pub enabled: bool,
    /// Largest chunk accepted by `$ota/write`; see [`block_size_for`].
    pub block_size: u32,
    /// Milliseconds a pusher should wait for a reply.
    pub timeout_ms: u32,
    /// The running firmware's version (the VS Code extension skips a device already on it).
    pub version: &'static str,
}

impl OtaConfig {
    /// Enabled, with `block_size`, a 30 s timeout and no version.
    pub const fn new(block_size: u32) -> Self {
        OtaConfig { enabled: true, block_size, timeout_ms: 30_000, version: "" }
    }
    /// Sets the running firmware's version.
    pub const fn version(mut self, version: &'static str) -> Self {
        self.version = version;
        self
    }
    /// Enables or disables updates.
    pub const fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }
}

/// Longest firmware name kept to recognise a resumed image.
pub const MAX_NAME: usize = 48;

/// The image being received, as announced by `begin`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Image {
    firmware: heapless::String<MAX_NAME>,
    size: u32,
    md5: Option<[u8; 16]>,
    sha256: Option<[u8; 32]>,
}

/// Where an update stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum OtaStatus {
    /// Nothing running.
    Idle,
    /// Receiving an image: `offset` of `size` bytes written.
    Receiving {
        /// Bytes written so far.
        offset: u32,
        /// Bytes announced.
        size: u32,
    },
    /// An image was verified and marked for boot; a reboot runs it.
    Installed,
    /// `$ota/reboot` asked the platform to restart.
    Rebooting,
}

/// Why an OTA request was refused (the `error` text sent back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum OtaError {
    /// OTA is disabled.
    Disabled,
    /// `begin` without a usable `size`.
    BadSize,
    /// `begin` asked for chunks larger than `block_size`.
    ChunkTooLarge,
    /// `begin` asked for a compressed image.
    Compression,
    /// `begin` without an MD5 or SHA-256 checksum (or a malformed one).
    NoChecksum,
    /// `write` or `end` with no update running.
    NotRunning,
    /// `write` without a bytes input.
    NotBytes,
    /// `write` past the announced size.
    BeyondSize,
    /// `end` before all bytes were written.
    Incomplete,
    /// `end`: the stored image does not match the checksum.
    ChecksumMismatch,
    /// The platform's storage failed.
    Storage(StorageError),
}

impl OtaError {
    /// The text sent as `error`.
    pub const fn message(&self) -> &'static str {
        match self {
            OtaError::Disabled => "OTA disabled",
            OtaError::BadSize => "invalid image size",
            OtaError::ChunkTooLarge => "chunk_size larger than block_size",
            OtaError::Compression => "compression not supported",
            OtaError::NoChecksum => "an MD5 (checksum) or SHA-256 (sha256) hex checksum is required",
            OtaError::NotRunning => "no update running",
            OtaError::NotBytes => "write expects a bytes input",
            OtaError::BeyondSize => "write beyond image size",
            OtaError::Incomplete => "incomplete image",
            OtaError::ChecksumMismatch => "checksum mismatch: image discarded",
            OtaError::Storage(e) => e.0,
        }
    }
}

impl core::fmt::Display for OtaError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.message())
    }
}

#[derive(Debug)]
enum State {
    Idle,
    Receiving { image: Image, offset: u32 },
    Installed,
    Rebooting,
}

/// The OTA state machine behind the `$ota` resources, over a platform [`Updater`].
///
/// Share it between the five resources with a `RefCell` ([`OtaResources`]) or a mutex (the
/// std adapter). No heap: the largest buffer is a 256-byte read-back block on the stack.
#[derive(Debug)]
pub struct Ota<U> {
    updater: U,
    config: OtaConfig,
    state: State,
}

/// Bytes read back per step when verifying.
const VERIFY_BLOCK: usize = 256;

impl<U: Updater> Ota<U> {
    /// OTA over `updater` with `config`.
    pub fn new(updater: U, config: OtaConfig) -> Self {
        Ota { updater, config, state: State::Idle }
    }

    /// The settings.
    pub fn config(&self) -> &OtaConfig {
        &self.config
    }

    /// The platform part.
    pub fn updater(&mut self) -> &mut U {
        &mut self.updater
    }

    /// Where the update stands.
    pub fn status(&self) -> OtaStatus {
        match &self.state {
            State::Idle => OtaStatus::Idle,
            State::Receiving { image, offset } => OtaStatus::Receiving { offset: *offset, size: image.size },
            State::Installed => OtaStatus::Installed,
            State::Rebooting => OtaStatus::Rebooting,
        }
    }

    /// `$ota/options`: writes the options map.
    pub fn options(&self, out: &mut Output<'_>) -> Result<(), pson::Error> {
        out.field("enabled", &self.config.enabled)?;
        out.field("block_size", &self.config.block_size)?;
        out.field("timeout", &self.config.timeout_ms)?;
        out.field("checksum", "md5")?;
        out.field("sha256", &true)?;
        if !self.config.version.is_empty() {
            out.field("version", self.config.version)?;
        }
        if let State::Receiving { image, offset } = &self.state {
            out.field("firmware", image.firmware.as_str())?;
            out.field("size", &image.size)?;
            out.field("offset", offset)?;
        }
        Ok(())
    }

    /// `$ota/begin`: starts (or resumes) an image; returns the offset to continue from.
    pub fn begin(&mut self, input: &Input<'_>) -> Result<u32, OtaError> {
        if !self.config.enabled {
            return Err(OtaError::Disabled);
        }
        let size = input.get("size").and_then(|v| v.as_u64()).and_then(|s| u32::try_from(s).ok());
        let size = size.filter(|s| *s > 0).ok_or(OtaError::BadSize)?;
        let chunk = input.get("chunk_size").and_then(|v| v.as_u64()).unwrap_or(0);
        if chunk > u64::from(self.config.block_size) {
            return Err(OtaError::ChunkTooLarge);
        }
        if input.str("compression").is_some_and(|c| !c.is_empty() && c != "none") {
            return Err(OtaError::Compression);
        }
        let md5 = checksum::<16>(input, "checksum")?;
        let sha256 = checksum::<32>(input, "sha256")?;
        if md5.is_none() && sha256.is_none() {
            return Err(OtaError::NoChecksum);
        }
        let mut firmware = heapless::String::new();
        for c in input.str("firmware").unwrap_or("").chars() {
            if firmware.push(c).is_err() {
                break;
            }
        }
        let image = Image { firmware, size, md5, sha256 };
        if let State::Receiving { image: running, offset } = &self.state {
            // Only a pusher that asks for it resumes: the official tools always send from 0.
            if *running == image && input.bool("resume") == Some(true) {
                return Ok(*offset);
            }
            // A different image: drop the partial one and start over.
            self.updater.abort();
        }
        self.state = State::Idle;
        self.updater.begin(size).map_err(OtaError::Storage)?;
        self.state = State::Receiving { image, offset: 0 };
        Ok(0)
    }

    /// `$ota/write`: stores one chunk at the current offset; returns the new offset.
    pub fn write(&mut self, data: &[u8]) -> Result<u32, OtaError> {
        let State::Receiving { image, offset } = &mut self.state else {
            return Err(OtaError::NotRunning);
        };
        if data.len() > self.config.block_size as usize {
            return Err(OtaError::ChunkTooLarge);
        }
        let end = u32::try_from(data.len()).ok().and_then(|n| offset.checked_add(n)).ok_or(OtaError::BeyondSize)?;
        if end > image.size {
            return Err(OtaError::BeyondSize);
        }
        if let Err(e) = self.updater.write(*offset, data) {
            self.updater.abort();
            self.state = State::Idle;
            return Err(OtaError::Storage(e));
        }
        *offset = end;
        Ok(end)
    }

    /// `$ota/end`: checks the image is complete, reads it back, verifies the checksums and
    /// marks it for boot. A mismatch (or a storage failure) discards it.
    pub fn end(&mut self) -> Result<(), OtaError> {
        let State::Receiving { image, offset } = &self.state else {
            return Err(OtaError::NotRunning);
        };
        if *offset < image.size {
            return Err(OtaError::Incomplete);
        }
        let image = image.clone();
        let result = self.verify(&image).and_then(|_| self.updater.mark_for_boot().map_err(OtaError::Storage));
        match result {
            Ok(()) => self.state = State::Installed,
            Err(_) => {
                self.updater.abort();
                self.state = State::Idle;
            }
        }
        result
    }

    fn verify(&mut self, image: &Image) -> Result<(), OtaError> {
        self.updater.finish(image.size).map_err(OtaError::Storage)?;
        let (mut md5, mut sha) = (Md5::new(), Sha256::new());
        let mut block = [0u8; VERIFY_BLOCK];
        let mut at = 0u32;
        while at < image.size {
            let n = (image.size - at).min(VERIFY_BLOCK as u32);
            let buf = block.get_mut(..n as usize).unwrap_or(&mut []);
            self.updater.read(at, buf).map_err(OtaError::Storage)?;
            if image.md5.is_some() {
                md5.update(&*buf);
            }
            if image.sha256.is_some() {
                sha.update(&*buf);
            }
            at += n;
        }
        let md5_ok = image.md5.is_none_or(|want| md5.finalize().as_slice() == want);
        let sha_ok = image.sha256.is_none_or(|want| sha.finalize().as_slice() == want);
        if md5_ok && sha_ok { Ok(()) } else { Err(OtaError::ChecksumMismatch) }
    }

    /// `$ota/reboot`: asks the platform to restart.
    pub fn reboot(&mut self) -> Result<(), OtaError> {
        self.updater.reboot().map_err(OtaError::Storage)?;
        self.state = State::Rebooting;
        Ok(())
    }
}

/// A hex checksum field of `N` bytes: absent or empty is `None`, malformed is an error.
fn checksum<const N: usize>(input: &Input<'_>, key: &str) -> Result<Option<[u8; N]>, OtaError> {
    match input.str(key) {
        None | Some("") => Ok(None),
        Some(text) => hex::decode::<N>(text).map(Some).ok_or(OtaError::NoChecksum),
    }
}

#[cfg(test)]
mod tests;
