//! Checking a requested path before the filesystem is touched: the `fs` extension's first
//! line of defence against traversal.

use thinger_core::resource::HandlerError;

/// The longest requested path accepted, in bytes.
pub const MAX_PATH_LEN: usize = 1024;
/// The most segments a requested path may have.
pub const MAX_SEGMENTS: usize = 64;

/// Why a requested path was refused; all of them are answered 403 except
/// [`PathError::UnknownRoot`] and [`PathError::NotFound`] (404).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// A `..` segment.
    ParentDir,
    /// A `.` segment.
    CurrentDir,
    /// A leading `/` (paths are relative to a root's name).
    Absolute,
    /// A `\` anywhere (a Windows-style separator).
    Backslash,
    /// A Windows drive or device prefix such as `C:`.
    DrivePrefix,
    /// A NUL byte.
    Nul,
    /// Another control character (newline, escape, ...).
    ControlChar,
    /// An empty segment (`a//b`).
    EmptySegment,
    /// A segment that percent-decodes to `.` or `..` (`%2e%2e`).
    EncodedDot,
    /// Longer than [`MAX_PATH_LEN`] or deeper than [`MAX_SEGMENTS`].
    TooLong,
    /// The first segment names no configured root.
    UnknownRoot,
    /// The path resolves (through a symlink) outside its root.
    OutsideRoot,
    /// The operation would act on a root itself (delete, move).
    RootItself,
    /// Nothing at that path.
    NotFound,
}

impl From<PathError> for HandlerError {
    fn from(e: PathError) -> HandlerError {
        let message = match e {
            PathError::ParentDir => "access denied: '..' in path",
            PathError::CurrentDir => "access denied: '.' in path",
            PathError::Absolute => "access denied: absolute path",
            PathError::Backslash => "access denied: '\\' in path",
            PathError::DrivePrefix => "access denied: drive prefix in path",
            PathError::Nul => "access denied: NUL byte in path",
            PathError::ControlChar => "access denied: control character in path",
            PathError::EmptySegment => "access denied: empty path segment",
            PathError::EncodedDot => "access denied: encoded dot segment",
            PathError::TooLong => "access denied: path too long",
            PathError::UnknownRoot => return HandlerError::new(404, "no such root"),
            PathError::OutsideRoot => "access denied: path outside its root",
            PathError::RootItself => "access denied: a root itself",
            PathError::NotFound => return HandlerError::new(404, "path does not exist"),
        };
        HandlerError::new(403, message)
    }
}

/// A requested path that passed [`parse`]: the root's name, the segments below it and
/// whether it ended with `/` (a directory, for `put`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked<'a> {
    pub root: &'a str,
    pub segments: Vec<&'a str>,
    pub dir: bool,
}

/// Checks a requested path (`root/a/b.txt`, `root/dir/`) without touching the filesystem.
pub fn parse(path: &str) -> Result<Checked<'_>, PathError> {
    if path.len() > MAX_PATH_LEN {
        return Err(PathError::TooLong);
    }
    if path.contains('\0') {
        return Err(PathError::Nul);
    }
    if path.chars().any(char::is_control) {
        return Err(PathError::ControlChar);
    }
    if path.contains('\\') {
        return Err(PathError::Backslash);
    }
    if path.starts_with('/') {
        return Err(PathError::Absolute);
    }
    let (body, dir) = match path.strip_suffix('/') {
        Some(body) => (body, true),
        None => (path, false),
    };
    let mut parts = body.split('/');
    let root = parts.next().unwrap_or_default();
    if is_drive(root) {
        return Err(PathError::DrivePrefix);
    }
    let mut segments = Vec::new();
    for segment in std::iter::once(root).chain(parts) {
        match segment {
            "" => return Err(PathError::EmptySegment),
            "." => return Err(PathError::CurrentDir),
            ".." => return Err(PathError::ParentDir),
            s if matches!(percent_decoded(s).as_deref(), Some(".") | Some("..")) => {
                return Err(PathError::EncodedDot);
            }
            s => segments.push(s),
        }
    }
    if segments.len() > MAX_SEGMENTS {
        return Err(PathError::TooLong);
    }
    segments.remove(0);
    Ok(Checked { root, segments, dir })
}

/// `C:`, `c:x`, or a `\\?\`-style device name's remains (`?:`).
fn is_drive(segment: &str) -> bool {
    let mut chars = segment.chars();
    matches!((chars.next(), chars.next()), (Some(c), Some(':')) if c.is_ascii_alphabetic() || c == '?')
}

/// The segment with `%XX` escapes decoded, when it has any.
fn percent_decoded(segment: &str) -> Option<String> {
    if !segment.contains('%') {
        return None;
    }
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (b, hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_paths() {
        let c = parse("data/a/b.txt").unwrap();
        assert_eq!((c.root, c.segments, c.dir), ("data", vec!["a", "b.txt"], false));
        let c = parse("data/dir/").unwrap();
        assert_eq!((c.root, c.segments, c.dir), ("data", vec!["dir"], true));
        assert_eq!(parse("data").unwrap().segments, Vec::<&str>::new());
        // Names that only look odd are fine on Linux.
        assert!(parse("data/...").is_ok());
        assert!(parse("data/a:b").is_ok());
        assert!(parse("data/.hidden").is_ok());
        assert!(parse("data/100%").is_ok());
    }

    #[test]
    fn refuses_traversal_kinds() {
        let cases = [
            ("data/../etc/passwd", PathError::ParentDir),
            ("data/a/../../x", PathError::ParentDir),
            ("..", PathError::ParentDir),
            ("data/./x", PathError::CurrentDir),
            ("/etc/passwd", PathError::Absolute),
            ("data\\..\\x", PathError::Backslash),
            ("C:/Windows", PathError::DrivePrefix),
            ("data/a\0b", PathError::Nul),
            ("data/a\nb", PathError::ControlChar),
            ("data//x", PathError::EmptySegment),
            ("data/%2e%2e/x", PathError::EncodedDot),
            ("data/%2E/x", PathError::EncodedDot),
        ];
        for (path, kind) in cases {
            assert_eq!(parse(path), Err(kind), "{path:?}");
        }
        assert_eq!(parse(&"a/".repeat(600)), Err(PathError::TooLong));
        assert_eq!(parse(&"a/".repeat(70)), Err(PathError::TooLong));
    }

    proptest::proptest! {
        /// Whatever the server sends, an accepted path is plain segments that rebuild it.
        #[test]
        fn accepted_paths_are_plain_segments(path in r"[a-zA-Z0-9./\\%:\x00\n]{0,40}") {
            if let Ok(c) = parse(&path) {
                let mut rebuilt = std::iter::once(c.root).chain(c.segments.iter().copied()).collect::<Vec<_>>().join("/");
                if c.dir {
                    rebuilt.push('/');
                }
                proptest::prop_assert_eq!(&rebuilt, &path);
                for s in std::iter::once(c.root).chain(c.segments) {
                    proptest::prop_assert!(!s.is_empty() && s != "." && s != "..");
                    proptest::prop_assert!(!s.contains(['\\', '\0', '\n', '/']));
                }
            }
        }
    }
}
