//! Map keys encoded once, at compile time: [`Key`].

use super::{EXTENDED, WireType};

/// The longest key a [`Key`] holds: 30 bytes, the longest string whose length fits in its
/// tag byte.
const MAX_NAME: usize = EXTENDED as usize - 1;

/// A map key with its tag byte, encoded once (in a `const`), optionally after the header
/// of the map it starts: [`Encoder::key`](super::Encoder::key) writes it as one copy of
/// constant bytes.
///
/// `Encoder::str(name)` writes the same bytes; with a `Key` the tag is part of the
/// constant, so a literal key is a few fixed-size stores of immediates, and a map's header
/// and first key are one copy ([`Key::after_map_header`]): on hosts the benchmark
/// payload's encoder (four keys) is 2 instructions shorter (docs/benchmarks.md).
///
/// Names of up to 30 bytes (the short string form); maps of up to 30 pairs for
/// [`Key::after_map_header`]. In a `const`, a longer name is a compile-time error.
///
/// ```
/// use thinger_core::pson::{Encoder, Key, SliceSink};
///
/// const TEMPERATURE: Key = Key::after_map_header(2, "temperature");
/// const ON: Key = Key::new("on");
///
/// let mut buf = [0u8; 32];
/// let mut enc = Encoder::new(SliceSink::new(&mut buf));
/// enc.key(&TEMPERATURE).unwrap(); // the map header and the first key
/// enc.f32(23.5).unwrap();
/// enc.key(&ON).unwrap();
/// enc.bool(true).unwrap();
///
/// let mut same = [0u8; 32];
/// let mut by_str = Encoder::new(SliceSink::new(&mut same));
/// by_str.map_header(2).unwrap();
/// by_str.str("temperature").unwrap();
/// by_str.f32(23.5).unwrap();
/// by_str.str("on").unwrap();
/// by_str.bool(true).unwrap();
/// assert_eq!(enc.into_sink().as_written(), by_str.into_sink().as_written());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// The encoded bytes (header, tag, name), then zeros.
    bytes: [u8; 2 + MAX_NAME],
    /// How many of `bytes` are encoded.
    len: u8,
    /// Where the name starts in `bytes` (1, or 2 after a map header).
    name_at: u8,
}

impl Key {
    /// The key `name`, encoded (its tag byte and its bytes).
    ///
    /// Panics when `name` is longer than 30 bytes: at compile time when used in a `const`
    /// (use [`Key::try_new`] to test a name at run time).
    ///
    /// ```
    /// use thinger_core::pson::Key;
    /// const LABEL: Key = Key::new("label");
    /// assert_eq!(LABEL.as_bytes(), b"\x85label");
    /// ```
    pub const fn new(name: &str) -> Key {
        match Key::try_new(name) {
            Some(key) => key,
            #[allow(clippy::panic)] // A compile-time error in the intended use (a `const`).
            None => panic!("a pson::Key name has at most 30 bytes"),
        }
    }

    /// The key `name`, or `None` when it is longer than 30 bytes.
    ///
    /// ```
    /// use thinger_core::pson::Key;
    /// assert!(Key::try_new("humidity").is_some());
    /// assert!(Key::try_new(&"x".repeat(31)).is_none());
    /// ```
    pub const fn try_new(name: &str) -> Option<Key> {
        Key::build(None, name)
    }

    /// The header of a map of `pairs` pairs, then its first key `name`: written as one copy
    /// instead of two. Write the first value next, then the other pairs.
    ///
    /// Panics when `pairs` is 0 or more than 30, or `name` is longer than 30 bytes: at
    /// compile time when used in a `const`.
    ///
    /// ```
    /// use thinger_core::pson::Key;
    /// const FIRST: Key = Key::after_map_header(4, "temperature");
    /// assert_eq!(FIRST.as_bytes(), b"\xc4\x8btemperature");
    /// assert_eq!(FIRST.name(), "temperature");
    /// ```
    pub const fn after_map_header(pairs: usize, name: &str) -> Key {
        match Key::try_after_map_header(pairs, name) {
            Some(key) => key,
            #[allow(clippy::panic)] // A compile-time error in the intended use (a `const`).
            None => panic!("pson::Key::after_map_header takes 1 to 30 pairs and a name of at most 30 bytes"),
        }
    }

    /// [`Key::after_map_header`], or `None` when `pairs` is 0 or more than 30, or `name`
    /// is longer than 30 bytes.
    ///
    /// ```
    /// use thinger_core::pson::Key;
    /// assert!(Key::try_after_map_header(31, "a").is_none());
    /// assert!(Key::try_after_map_header(0, "a").is_none());
    /// ```
    pub const fn try_after_map_header(pairs: usize, name: &str) -> Option<Key> {
        if pairs == 0 || pairs > MAX_NAME {
            return None;
        }
        Key::build(Some(((WireType::Map as u8) << 5) | pairs as u8), name)
    }

    // Indexing: every index is below `2 + MAX_NAME` by the length test first (and in a
    // `const` an index out of range would be a compile-time error, not a panic at run time).
    #[allow(clippy::indexing_slicing)]
    const fn build(header: Option<u8>, name: &str) -> Option<Key> {
        let name = name.as_bytes();
        if name.len() > MAX_NAME {
            return None;
        }
        let mut bytes = [0u8; 2 + MAX_NAME];
        let mut at = 0;
        if let Some(header) = header {
            bytes[0] = header;
            at = 1;
        }
        bytes[at] = ((WireType::String as u8) << 5) | name.len() as u8;
        at += 1;
        let name_at = at;
        let mut i = 0;
        while i < name.len() {
            bytes[at] = name[i];
            at += 1;
            i += 1;
        }
        Some(Key { bytes, len: at as u8, name_at: name_at as u8 })
    }

    /// The encoded bytes: the map header if any, the tag byte, the name.
    #[inline(always)]
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// The key's name.
    ///
    /// ```
    /// assert_eq!(thinger_core::pson::Key::new("on").name(), "on");
    /// ```
    #[inline]
    pub fn name(&self) -> &str {
        let name = self.name_bytes();
        // Built from a `&str` (a whole one: no cut inside a character).
        core::str::from_utf8(name).unwrap_or("")
    }

    /// The name's bytes (without the tag or header): `Key::name`, hosts' `Encoder::key`.
    #[inline(always)]
    pub(crate) fn name_bytes(&self) -> &[u8] {
        self.bytes.get(usize::from(self.name_at)..usize::from(self.len)).unwrap_or(&[])
    }

    /// Whether the key starts with a map header (hosts' `Encoder::key`).
    #[cfg(not(target_os = "none"))]
    #[inline(always)]
    pub(crate) fn has_header(&self) -> bool {
        self.name_at == 2
    }
}
