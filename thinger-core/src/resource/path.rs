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
    // Byte-wise segment walk: `str::split`/`find` would link the generic char searcher.
    let mut segments = Some(pattern);
    // The path not matched yet; None once it is used up.
    let mut rest = Some(path);
    while let Some(pattern_rest) = segments {
        let (seg, after) = next_segment(pattern_rest);
        segments = after;
        let Some(path_rest) = rest else { return false };
        if let Some(name) = placeholder(seg, b'*') {
            return !path_rest.is_empty() && after.is_none() && params.items.push((name, path_rest)).is_ok();
        }
        let (head, next) = next_segment(path_rest);
        let ok = match placeholder(seg, b':') {
            Some(name) => !head.is_empty() && params.items.push((name, head)).is_ok(),
            None => seg == head,
        };
        if !ok {
            return false;
        }
        rest = next;
    }
    rest.is_none()
}

/// `s` up to its first `/`, and what follows the `/` (None when there is none).
fn next_segment(s: &str) -> (&str, Option<&str>) {
    match s.bytes().position(|b| b == b'/') {
        Some(i) => (s.get(..i).unwrap_or(""), s.get(i + 1..)),
        None => (s, None),
    }
}

/// The name of a `<marker>name` segment.
fn placeholder(seg: &str, marker: u8) -> Option<&str> {
    if seg.as_bytes().first() == Some(&marker) { seg.get(1..) } else { None }
}

#[cfg_attr(not(feature = "patterns"), allow(dead_code))]
/// Whether a pattern contains placeholders (a segment starting with `:` or `*`).
pub(crate) fn is_pattern(pattern: &str) -> bool {
    let mut segment_start = true;
    pattern.bytes().any(|b| {
        let hit = segment_start && (b == b':' || b == b'*');
        segment_start = b == b'/';
        hit
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The earlier `str::split` matcher, as the oracle for the byte-wise one.
    fn reference_match<'p>(pattern: &'p str, path: &'p str, params: &mut Params<'p>) -> bool {
        params.clear();
        let mut segments = pattern.split('/').peekable();
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

    proptest! {
        #[test]
        fn byte_wise_matcher_agrees_with_split(pattern in "[ab:*/]{0,10}", path in "[ab/]{0,10}") {
            let (mut ours, mut theirs) = (Params::new(), Params::new());
            let matched = match_path(&pattern, &path, &mut ours);
            prop_assert_eq!(matched, reference_match(&pattern, &path, &mut theirs));
            if matched {
                prop_assert_eq!(ours, theirs);
            }
            let reference_pattern = pattern.split('/').any(|s| s.starts_with(':') || s.starts_with('*'));
            prop_assert_eq!(is_pattern(&pattern), reference_pattern);
        }
    }

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
