//! Resource path patterns: literal segments, `:name` (one segment) and `*name` (the rest).

use heapless::Vec;

/// Most placeholders one pattern may capture.
pub const MAX_PARAMS: usize = 4;

/// Values captured from a path by `:name` and `*name` placeholders.
///
/// ```
/// use thinger_core::resource::{match_path, Params};
/// let mut params = Params::new();
/// assert!(match_path("sensors/:id/*rest", "sensors/7/a/b", &mut params));
/// assert_eq!(params.get("id"), Some("7"));
/// assert_eq!(params.get("rest"), Some("a/b"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params<'p> {
    items: Vec<(&'p str, &'p str), MAX_PARAMS>,
}

impl<'p> Params<'p> {
    /// No captures.
    pub const fn new() -> Self {
        Params { items: Vec::new() }
    }
    /// The value captured for `name`.
    pub fn get(&self, name: &str) -> Option<&'p str> {
        self.items.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }
    /// All `(name, value)` captures in pattern order.
    pub fn iter(&self) -> impl Iterator<Item = (&'p str, &'p str)> + '_ {
        self.items.iter().copied()
    }
    /// Number of captures.
    pub fn len(&self) -> usize {
        self.items.len()
    }
    /// Whether nothing was captured.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    fn clear(&mut self) {
        self.items.clear();
    }
}

/// Whether `path` matches `pattern`, filling `params` with the captures.
///
/// Segments are separated by `/`. A `:name` segment matches exactly one non-empty segment;
/// a final `*name` segment matches one or more remaining segments (with their slashes). A
/// pattern with more than [`MAX_PARAMS`] placeholders never matches.
///
/// ```
/// use thinger_core::resource::{match_path, Params};
/// let mut p = Params::new();
/// assert!(match_path("led", "led", &mut p));
/// assert!(!match_path("led", "led/x", &mut p));
/// assert!(!match_path("sensors/:id", "sensors/", &mut p));
/// assert!(!match_path("files/*path", "files", &mut p));
/// ```
pub fn match_path<'p>(pattern: &'p str, path: &'p str, params: &mut Params<'p>) -> bool {
    params.clear();
    let mut segments = pattern.split('/').peekable();
    // Byte offset of the current path segment; None once the path is used up.
    let mut pos = Some(0usize);
    while let Some(seg) = segments.next() {
        let Some(start) = pos else { return false };
        let rest = path.get(start..).unwrap_or("");
        if let Some(name) = seg.strip_prefix('*') {
            return !rest.is_empty() && segments.peek().is_none() && params.items.push((name, rest)).is_ok();
        }
        let (head, next) = match rest.find('/') {
            Some(i) => (rest.get(..i).unwrap_or(""), Some(start + i + 1)),
            None => (rest, None),
        };
        let ok = match seg.strip_prefix(':') {
            Some(name) => !head.is_empty() && params.items.push((name, head)).is_ok(),
            None => seg == head,
        };
        if !ok {
            return false;
        }
        pos = next;
    }
    pos.is_none()
}

/// Whether a pattern contains placeholders.
pub(crate) fn is_pattern(pattern: &str) -> bool {
    pattern.split('/').any(|s| s.starts_with(':') || s.starts_with('*'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m<'a>(pattern: &'a str, path: &'a str) -> Option<Params<'a>> {
        let mut p = Params::new();
        match_path(pattern, path, &mut p).then_some(p)
    }

    #[test]
    fn literals() {
        assert!(m("a/b", "a/b").is_some());
        assert!(m("a/b", "a").is_none());
        assert!(m("a", "a/b").is_none());
        assert!(m("a/b", "a/c").is_none());
        assert!(m("", "").is_some());
        assert!(m("$fs/get", "$fs/get").is_some());
    }

    #[test]
    fn placeholders() {
        let p = m("sensors/:id", "sensors/7").unwrap();
        assert_eq!(p.get("id"), Some("7"));
        assert!(m("sensors/:id", "sensors/7/x").is_none());
        assert!(m("sensors/:id", "sensors").is_none());
        let p = m("$fs/get/*path", "$fs/get/a/b/c.txt").unwrap();
        assert_eq!(p.get("path"), Some("a/b/c.txt"));
        assert!(m("x/*rest/y", "x/a/y").is_none());
        let p = m(":a/:b", "1/2").unwrap();
        assert_eq!((p.get("a"), p.get("b")), (Some("1"), Some("2")));
        assert!(m(":a/:b/:c/:d/:e", "1/2/3/4/5").is_none());
        assert!(is_pattern("a/:b") && is_pattern("*x") && !is_pattern("a/b"));
    }
}
