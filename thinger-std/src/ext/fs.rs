//! The `fs` extension: browse, download, upload, delete, move and hash files, inline (in
//! the reply or the request itself), on the resource names and reply shapes of the official
//! Linux client, confined to named roots.
//!
//! A requested path is `ROOT/a/b.txt`, where `ROOT` is the name given to
//! [`FsConfig::root`]; `$fs/get` lists the roots. Options the official client reads from
//! the request's parameters are read from the input map here (the session hands handlers
//! the payload only).
//!
//! | resource | input | reply |
//! |---|---|---|
//! | `$fs/get/*path` | `{"include_hidden": bool}` | a directory: `[{"name","type","size","mode","modified"}]`; a file: its bytes |
//! | `$fs/info/*path` (stat) | – | `{"name","path","type","size","mode","modified"}` |
//! | `$fs/hash/*path` | `{"algorithm": "sha256"}` | `{"path","algorithm","hash","size","mtime"}` |
//! | `$fs/put/*path` | the bytes, or `{"data": bytes or text, "overwrite": bool}`; a path ending in `/` makes a directory | `{"success","path","type","size"}` |
//! | `$fs/delete/*path` | `{"recursive": bool}` | `{"success","deleted"}` |
//! | `$fs/move/*source` | `{"destination": "ROOT/…", "overwrite": bool}` | `{"success","source","destination"}` |
//!
//! Errors are the official codes: 400 bad request, 403 access denied, 404 not found, 409
//! exists (`overwrite: false`), 413 too large for an inline transfer.
//!
//! Safe by default: read-only until [`FsConfig::writable`]; every path is checked before the
//! filesystem is touched (`..`, `.`, absolute paths, `\`, drive prefixes, NUL and control
//! bytes, empty and percent-encoded dot segments, over-long paths: see [`PathError`]), then
//! resolved (symlinks included) and refused unless it stays inside its root. Uploads are
//! written to a temporary file in the same directory, synced, then renamed over the target,
//! so a reader never sees half a file. Transfers are at most [`DEFAULT_MAX_INLINE`] bytes
//! (the official limit) unless [`FsConfig::max_inline`] says otherwise, and the file plus a
//! few hundred bytes must fit a frame of the client's session, which receives and sends
//! frames of up to 3/8 of `ClientBuilder::buffer_size` each: set the buffer to at least
//! `3 × max_inline` (192 KiB for the default; with the default 32 KiB buffer, files up to
//! about 11 KiB pass). Larger files need the streamed transfers, not built yet. Each use is logged with `tracing` (target
//! `thinger::ext::fs`) with the request's stream id.
//!
//! ```
//! use thinger_std::ext::fs::FsConfig;
//! use thinger_std::resources::Resources;
//!
//! let dir = std::env::temp_dir();
//! let mut thing = Resources::new();
//! FsConfig::new().root("tmp", &dir).writable(true).install(&mut thing).unwrap();
//! assert!(thing.contains("$fs/get/*path") && thing.contains("$fs/put/*path"));
//! ```

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

use serde::Serialize;
use thinger_core::pson::Bytes;
use thinger_core::resource::{Call, HandlerError, ResourceKind, handler};

use super::fs_path::parse;
pub use super::fs_path::{MAX_PATH_LEN, MAX_SEGMENTS, PathError};
use super::fs_stream;
use crate::resources::Resources;

/// The largest file sent or received inline, as on the official client (64 KiB).
pub const DEFAULT_MAX_INLINE: usize = 64 * 1024;
/// The largest file `$fs/hash` reads (the handler runs on the client's task).
pub const DEFAULT_MAX_HASH: u64 = 64 * 1024 * 1024;
/// The largest chunked upload (`$fs/upload/:session`), by default.
pub const DEFAULT_MAX_UPLOAD: u64 = 256 * 1024 * 1024;
/// The most entries a directory listing returns.
pub const MAX_LIST_ENTRIES: usize = 1000;

/// Why [`FsConfig::install`] failed.
#[derive(Debug)]
pub enum FsSetupError {
    /// No roots were configured.
    NoRoots,
    /// A root's name is not a single plain path segment, or is used twice.
    BadRootName(String),
    /// A root's directory could not be resolved.
    Root(PathBuf, io::Error),
}

impl std::fmt::Display for FsSetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FsSetupError::NoRoots => write!(f, "fs extension: no roots configured"),
            FsSetupError::BadRootName(n) => write!(f, "fs extension: bad root name {n:?}"),
            FsSetupError::Root(p, e) => write!(f, "fs extension: root {}: {e}", p.display()),
        }
    }
}

impl std::error::Error for FsSetupError {}

/// The settings of the `fs` resources; [`FsConfig::install`] adds them to a resource table.
#[derive(Debug, Clone)]
pub struct FsConfig {
    roots: Vec<(String, PathBuf)>,
    writable: bool,
    max_inline: usize,
    max_hash: u64,
    max_upload: u64,
}

impl Default for FsConfig {
    fn default() -> Self {
        FsConfig {
            roots: Vec::new(),
            writable: false,
            max_inline: DEFAULT_MAX_INLINE,
            max_hash: DEFAULT_MAX_HASH,
            max_upload: DEFAULT_MAX_UPLOAD,
        }
    }
}

impl FsConfig {
    /// No roots, read-only, the default limits.
    ///
    /// ```
    /// let _ = thinger_std::ext::fs::FsConfig::new();
    /// ```
    pub fn new() -> Self {
        FsConfig::default()
    }

    /// Exposes directory `dir` as `name` (`$fs/get/name/…`).
    ///
    /// ```
    /// let _ = thinger_std::ext::fs::FsConfig::new().root("logs", "/var/log").root("data", "/srv/data");
    /// ```
    pub fn root(mut self, name: impl Into<String>, dir: impl Into<PathBuf>) -> Self {
        self.roots.push((name.into(), dir.into()));
        self
    }

    /// Also installs `put`, `delete` and `move` (off by default).
    ///
    /// ```
    /// let _ = thinger_std::ext::fs::FsConfig::new().writable(true);
    /// ```
    pub fn writable(mut self, yes: bool) -> Self {
        self.writable = yes;
        self
    }

    /// The largest file sent or received inline.
    ///
    /// ```
    /// let _ = thinger_std::ext::fs::FsConfig::new().max_inline(16 * 1024);
    /// ```
    pub fn max_inline(mut self, bytes: usize) -> Self {
        self.max_inline = bytes;
        self
    }

    /// The largest file `$fs/hash` reads.
    ///
    /// ```
    /// let _ = thinger_std::ext::fs::FsConfig::new().max_hash(1 << 20);
    /// ```
    pub fn max_hash(mut self, bytes: u64) -> Self {
        self.max_hash = bytes;
        self
    }

    /// The largest chunked upload accepted (default [`DEFAULT_MAX_UPLOAD`]); larger ones are
    /// refused with 413 before any byte is written.
    ///
    /// ```
    /// let _ = thinger_std::ext::fs::FsConfig::new().max_upload(1 << 30);
    /// ```
    pub fn max_upload(mut self, bytes: u64) -> Self {
        self.max_upload = bytes;
        self
    }

    /// Resolves the roots and adds the resources to `thing`.
    ///
    /// ```
    /// use thinger_std::ext::fs::{FsConfig, FsSetupError};
    /// let mut thing = thinger_std::resources::Resources::new();
    /// assert!(matches!(FsConfig::new().install(&mut thing), Err(FsSetupError::NoRoots)));
    /// let bad = FsConfig::new().root("a/b", "/tmp").install(&mut thing);
    /// assert!(matches!(bad, Err(FsSetupError::BadRootName(_))));
    /// ```
    pub fn install(self, thing: &mut Resources) -> Result<(), FsSetupError> {
        if self.roots.is_empty() {
            return Err(FsSetupError::NoRoots);
        }
        let mut roots: Vec<(String, PathBuf)> = Vec::new();
        for (name, dir) in &self.roots {
            let single = parse(name).map(|c| c.segments.is_empty() && !c.dir).unwrap_or(false);
            if !single || roots.iter().any(|(n, _)| n == name) {
                return Err(FsSetupError::BadRootName(name.clone()));
            }
            let canonical = dir.canonicalize().map_err(|e| FsSetupError::Root(dir.clone(), e))?;
            roots.push((name.clone(), canonical));
        }
        let fs = Arc::new(Fs { roots, max_inline: self.max_inline, max_hash: self.max_hash });
        let resolver = fs.clone();
        let transfers = fs_stream::Fs {
            resolve: Box::new(move |path, must_exist| {
                let t = resolver.resolve(path, must_exist)?;
                Ok(fs_stream::Resolved { full: t.full, is_root: t.is_root, dir: t.dir })
            }),
            max_upload: self.max_upload,
        };
        fs_stream::install(&Arc::new(transfers), self.writable, thing);
        let ops: &[(&str, Op)] = &[
            ("$fs/get", Op::Get),
            ("$fs/get/*path", Op::Get),
            ("$fs/info/*path", Op::Info),
            ("$fs/hash/*path", Op::Hash),
            ("$fs/put/*path", Op::Put),
            ("$fs/delete/*path", Op::Delete),
            ("$fs/move/*source", Op::Move),
        ];
        for &(resource, op) in ops {
            if op.writes() && !self.writable {
                continue;
            }
            let fs = fs.clone();
            thing[resource] >>= handler(ResourceKind::InputOutput, move |call: &mut Call<'_>| fs.handle(op, call));
        }
        tracing::info!(target: "thinger::ext::fs", roots = fs.roots.len(), writable = self.writable, "fs extension installed");
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Get,
    Info,
    Hash,
    Put,
    Delete,
    Move,
}

impl Op {
    fn writes(self) -> bool {
        matches!(self, Op::Put | Op::Delete | Op::Move)
    }
}

/// The installed extension: canonical roots and limits.
#[derive(Debug)]
struct Fs {
    roots: Vec<(String, PathBuf)>,
    max_inline: usize,
    max_hash: u64,
}

/// A requested path, checked and resolved inside its root.
struct Target {
    full: PathBuf,
    /// Whether it is the root directory itself.
    is_root: bool,
    /// Whether the request ended with `/`.
    dir: bool,
}

#[derive(Serialize)]
struct Entry {
    name: String,
    #[serde(rename = "type")]
    kind: &'static str,
    size: u64,
    mode: String,
    modified: u64,
}

#[derive(Serialize)]
struct Info<'a> {
    name: &'a str,
    path: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    size: u64,
    mode: String,
    modified: u64,
}

#[derive(Serialize)]
struct Hashed<'a> {
    path: &'a str,
    algorithm: &'static str,
    hash: String,
    size: u64,
    mtime: u64,
}

#[derive(Serialize)]
struct Written<'a> {
    success: bool,
    path: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    size: u64,
}

#[derive(Serialize)]
struct Deleted<'a> {
    success: bool,
    deleted: &'a str,
}

#[derive(Serialize)]
struct Moved<'a> {
    success: bool,
    source: &'a str,
    destination: &'a str,
}

impl Fs {
    fn handle(&self, op: Op, call: &mut Call<'_>) -> Result<(), HandlerError> {
        if call.is_describe() {
            return Ok(());
        }
        let requested = call.param("path").or_else(|| call.param("source")).unwrap_or("");
        let request = call.stream_id();
        let result = match op {
            Op::Get if requested.is_empty() => self.list_roots(call),
            Op::Get => self.get(requested, call),
            Op::Info => self.info(requested, call),
            Op::Hash => self.hash(requested, call),
            Op::Put => self.put(requested, call),
            Op::Delete => self.delete(requested, call),
            Op::Move => self.move_to(requested, call),
        };
        match &result {
            Ok(()) => tracing::info!(target: "thinger::ext::fs", ?op, path = requested, ?request, "server request"),
            Err(e) => {
                tracing::warn!(target: "thinger::ext::fs", ?op, path = requested, ?request, code = e.code, reason = e.message, "server request refused")
            }
        }
        result
    }

    /// Checks `requested` lexically, then resolves it and makes sure it stays in its root.
    fn resolve(&self, requested: &str, must_exist: bool) -> Result<Target, PathError> {
        let checked = parse(requested)?;
        let (_, root) = self.roots.iter().find(|(n, _)| n == checked.root).ok_or(PathError::UnknownRoot)?;
        let mut full = root.clone();
        full.extend(&checked.segments);
        // The deepest part that exists, with symlinks resolved, must be inside the root.
        let mut existing = full.as_path();
        let exists = full.symlink_metadata().is_ok();
        if !exists {
            if must_exist {
                return Err(PathError::NotFound);
            }
            while existing.symlink_metadata().is_err() {
                existing = existing.parent().ok_or(PathError::OutsideRoot)?;
            }
        }
        let real = existing.canonicalize().map_err(|_| PathError::NotFound)?;
        if !real.starts_with(root) {
            return Err(PathError::OutsideRoot);
        }
        Ok(Target { is_root: checked.segments.is_empty(), full, dir: checked.dir })
    }

    fn list_roots(&self, call: &mut Call<'_>) -> Result<(), HandlerError> {
        let entries: Vec<Entry> = self
            .roots
            .iter()
            .map(|(name, dir)| {
                let meta = dir.metadata().ok();
                Entry {
                    name: name.clone(),
                    kind: "directory",
                    size: 0,
                    mode: meta.as_ref().map(mode_string).unwrap_or_default(),
                    modified: meta.as_ref().map(modified).unwrap_or(0),
                }
            })
            .collect();
        Ok(call.output().serialize(&entries)?)
    }

    fn get(&self, requested: &str, call: &mut Call<'_>) -> Result<(), HandlerError> {
        let target = self.resolve(requested, true)?;
        let meta = target.full.metadata().map_err(io_error)?;
        if meta.is_dir() {
            let hidden = call.input().bool("include_hidden").unwrap_or(false);
            let entries = list(&target.full, hidden).map_err(io_error)?;
            return Ok(call.output().serialize(&entries)?);
        }
        if !meta.is_file() {
            return Err(HandlerError::new(400, "not a regular file or directory"));
        }
        if meta.len() > self.max_inline as u64 {
            return Err(HandlerError::new(413, "file too large for inline transfer"));
        }
        // Read at most one byte more than allowed, in case the file grew since.
        let mut data = Vec::with_capacity(meta.len() as usize);
        File::open(&target.full)
            .and_then(|f| f.take(self.max_inline as u64 + 1).read_to_end(&mut data))
            .map_err(io_error)?;
        if data.len() > self.max_inline {
            return Err(HandlerError::new(413, "file too large for inline transfer"));
        }
        Ok(call.output().set(&Bytes(&data))?)
    }

    fn info(&self, requested: &str, call: &mut Call<'_>) -> Result<(), HandlerError> {
        let target = self.resolve(requested, true)?;
        let meta = target.full.metadata().map_err(io_error)?;
        let name = target.full.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let info = Info {
            name,
            path: requested,
            kind: kind_of(&meta),
            size: if meta.is_file() { meta.len() } else { 0 },
            mode: mode_string(&meta),
            modified: modified(&meta),
        };
        Ok(call.output().serialize(&info)?)
    }

    fn hash(&self, requested: &str, call: &mut Call<'_>) -> Result<(), HandlerError> {
        match call.input().str("algorithm") {
            None | Some("sha256") => {}
            Some(_) => return Err(HandlerError::new(400, "unsupported algorithm (sha256 only)")),
        }
        let target = self.resolve(requested, true)?;
        let meta = target.full.metadata().map_err(io_error)?;
        if !meta.is_file() {
            return Err(HandlerError::new(400, "not a regular file"));
        }
        if meta.len() > self.max_hash {
            return Err(HandlerError::new(413, "file too large to hash"));
        }
        let mut file = File::open(&target.full).map_err(io_error)?.take(self.max_hash);
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        let mut chunk = vec![0u8; 64 * 1024];
        let mut size = 0u64;
        loop {
            let n = file.read(&mut chunk).map_err(io_error)?;
            if n == 0 {
                break;
            }
            context.update(chunk.get(..n).unwrap_or_default());
            size += n as u64;
        }
        let hash = hex(context.finish().as_ref());
        let reply = Hashed { path: requested, algorithm: "sha256", hash, size, mtime: modified(&meta) };
        Ok(call.output().serialize(&reply)?)
    }

    fn put(&self, requested: &str, call: &mut Call<'_>) -> Result<(), HandlerError> {
        let target = self.resolve(requested, false)?;
        if target.dir {
            std::fs::create_dir_all(&target.full).map_err(io_error)?;
            let reply = Written { success: true, path: requested, kind: "directory", size: 0 };
            return Ok(call.output().serialize(&reply)?);
        }
        if target.is_root {
            return Err(PathError::RootItself.into());
        }
        let input = call.input();
        let value = input.value();
        let data: &[u8] = match value {
            None => &[],
            Some(v) => match (v.as_bytes(), v.as_str(), v.get("data")) {
                (Some(b), _, _) => b,
                (_, Some(s), _) => s.as_bytes(),
                (_, _, Some(d)) => {
                    d.as_bytes().or_else(|| d.as_str().map(str::as_bytes)).ok_or_else(HandlerError::bad_input)?
                }
                (_, _, None) if v.as_map().is_some() => &[],
                _ => return Err(HandlerError::bad_input()),
            },
        };
        if data.len() > self.max_inline {
            return Err(HandlerError::new(413, "file too large for inline transfer"));
        }
        let overwrite = input.bool("overwrite").unwrap_or(true);
        if let Ok(meta) = target.full.symlink_metadata() {
            if meta.is_dir() {
                return Err(HandlerError::new(409, "a directory exists at this path"));
            }
            if !overwrite {
                return Err(HandlerError::new(409, "file already exists (overwrite=false)"));
            }
        }
        if let Some(parent) = target.full.parent() {
            std::fs::create_dir_all(parent).map_err(io_error)?;
        }
        write_atomically(&target.full, data).map_err(io_error)?;
        let reply = Written { success: true, path: requested, kind: "file", size: data.len() as u64 };
        Ok(call.output().serialize(&reply)?)
    }

    fn delete(&self, requested: &str, call: &mut Call<'_>) -> Result<(), HandlerError> {
        let target = self.resolve(requested, true)?;
        if target.is_root {
            return Err(PathError::RootItself.into());
        }
        let meta = target.full.symlink_metadata().map_err(io_error)?;
        let result = if meta.is_dir() {
            if call.input().bool("recursive").unwrap_or(false) {
                std::fs::remove_dir_all(&target.full)
            } else {
                std::fs::remove_dir(&target.full)
            }
        } else {
            std::fs::remove_file(&target.full)
        };
        result.map_err(io_error)?;
        Ok(call.output().serialize(&Deleted { success: true, deleted: requested })?)
    }

    fn move_to(&self, requested: &str, call: &mut Call<'_>) -> Result<(), HandlerError> {
        let source = self.resolve(requested, true)?;
        let input = call.input();
        let destination = input.str("destination").filter(|d| !d.is_empty());
        let destination = destination.ok_or(HandlerError::new(400, "destination path is required"))?;
        let dest = self.resolve(destination, false)?;
        if source.is_root || dest.is_root {
            return Err(PathError::RootItself.into());
        }
        if dest.full.symlink_metadata().is_ok() && !input.bool("overwrite").unwrap_or(false) {
            return Err(HandlerError::new(409, "destination already exists"));
        }
        std::fs::rename(&source.full, &dest.full).map_err(io_error)?;
        Ok(call.output().serialize(&Moved { success: true, source: requested, destination })?)
    }
}

/// The entries of `dir`, sorted by name; symlinks are reported as such, not followed.
fn list(dir: &Path, include_hidden: bool) -> io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name().to_string_lossy().into_owned();
        if !include_hidden && name.starts_with('.') {
            continue;
        }
        let Ok(meta) = entry.path().symlink_metadata() else { continue };
        let size = if meta.is_file() { meta.len() } else { 0 };
        entries.push(Entry { name, kind: kind_of(&meta), size, mode: mode_string(&meta), modified: modified(&meta) });
        if entries.len() >= MAX_LIST_ENTRIES {
            break;
        }
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

/// Writes `data` to a new temporary file next to `path`, syncs it and renames it over `path`.
fn write_atomically(path: &Path, data: &[u8]) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
    let temp = path.with_file_name(format!(".{name}.thinger-{}-{unique}.tmp", std::process::id()));
    let written = OpenOptions::new().write(true).create_new(true).open(&temp).and_then(|mut file| {
        file.write_all(data)?;
        file.sync_all()
    });
    let renamed = written.and_then(|()| std::fs::rename(&temp, path));
    if renamed.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    renamed
}

fn kind_of(meta: &Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    match () {
        _ if t.is_file() => "file",
        _ if t.is_dir() => "directory",
        _ if t.is_symlink() => "symlink",
        _ if t.is_block_device() => "block",
        _ if t.is_char_device() => "character",
        _ if t.is_fifo() => "fifo",
        _ if t.is_socket() => "socket",
        _ => "unknown",
    }
}

/// `rwxr-xr-x`.
fn mode_string(meta: &Metadata) -> String {
    let mode = meta.permissions().mode();
    let letters = "rwxrwxrwx";
    letters.chars().enumerate().map(|(i, c)| if mode & (1 << (8 - i)) != 0 { c } else { '-' }).collect()
}

/// Seconds since the epoch.
fn modified(meta: &Metadata) -> u64 {
    meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_secs())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn io_error(e: io::Error) -> HandlerError {
    match e.kind() {
        io::ErrorKind::NotFound => HandlerError::new(404, "path does not exist"),
        io::ErrorKind::PermissionDenied => HandlerError::new(403, "permission denied"),
        io::ErrorKind::AlreadyExists => HandlerError::new(409, "already exists"),
        io::ErrorKind::DirectoryNotEmpty => HandlerError::new(409, "directory not empty"),
        _ => HandlerError::new(500, "filesystem error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_strings_read_like_ls() {
        let dir = std::env::temp_dir().join(format!("thinger-fs-mode-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("f");
        std::fs::write(&file, b"x").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(mode_string(&file.metadata().unwrap()), "rw-r-----");
        write_atomically(&file, b"hello").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"hello");
        // No temporary file left behind.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn symlinks_out_of_a_root_are_refused() {
        let base = std::env::temp_dir().join(format!("thinger-fs-link-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let root = base.join("root");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(base.join("secret"), b"s").unwrap();
        std::os::unix::fs::symlink(base.join("secret"), root.join("link")).unwrap();
        std::os::unix::fs::symlink(&base, root.join("up")).unwrap();
        let fs = Fs { roots: vec![("r".into(), root.canonicalize().unwrap())], max_inline: 10, max_hash: 10 };
        assert_eq!(fs.resolve("r/link", true).err(), Some(PathError::OutsideRoot));
        assert_eq!(fs.resolve("r/up/secret", true).err(), Some(PathError::OutsideRoot));
        assert_eq!(fs.resolve("r/up/new/file", false).err(), Some(PathError::OutsideRoot));
        assert_eq!(fs.resolve("x/a", false).err(), Some(PathError::UnknownRoot));
        assert_eq!(fs.resolve("r/missing", true).err(), Some(PathError::NotFound));
        assert!(fs.resolve("r/new/file", false).is_ok());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
