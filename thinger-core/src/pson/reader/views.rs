//! Lazy views of a decoded map or array and their iterators: the pairs and elements are
//! read from the validated input as they are visited.
//!
//! The fields are visible to the reader only, which makes every view from validated input
//! (`Cursor::value_other`, and `PsonRef::decode_prefix_with` after it has validated a
//! top-level map or array): the map iterator relies on that for its keys' UTF-8.

use super::{Cursor, PsonRef};

/// A lazy view of a PSON map: its pairs are read from the input as they are iterated.
///
/// Equality compares the encoded bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MapRef<'a> {
    pub(super) body: &'a [u8],
    pub(super) len: usize,
}

impl<'a> MapRef<'a> {
    /// Number of key/value pairs.
    ///
    /// ```
    /// let v = thinger_core::pson::PsonRef::decode(&[0xc1, 0x81, b'a', 0x01]).unwrap();
    /// assert_eq!(v.as_map().unwrap().len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.len
    }
    /// Whether the map has no pairs.
    ///
    /// ```
    /// let v = thinger_core::pson::PsonRef::decode(&[0xc0]).unwrap();
    /// assert!(v.as_map().unwrap().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The encoded pairs (without the map's own tag).
    ///
    /// ```
    /// let v = thinger_core::pson::PsonRef::decode(&[0xc1, 0x81, b'a', 0x01]).unwrap();
    /// assert_eq!(v.as_map().unwrap().body(), &[0x81, b'a', 0x01]);
    /// ```
    pub fn body(&self) -> &'a [u8] {
        self.body
    }
    /// Iterates over `(key, value)` pairs in wire order.
    ///
    /// ```
    /// let v = thinger_core::pson::PsonRef::decode(&[0xc1, 0x81, b'a', 0x01]).unwrap();
    /// let (k, v) = v.as_map().unwrap().iter().next().unwrap();
    /// assert_eq!((k, v.as_u64()), ("a", Some(1)));
    /// ```
    pub fn iter(&self) -> MapIter<'a> {
        MapIter { cursor: Cursor::new(self.body), left: self.len }
    }
    /// The value of the first pair whose key is `key`.
    ///
    /// ```
    /// let v = thinger_core::pson::PsonRef::decode(&[0xc1, 0x81, b'a', 0x61]).unwrap();
    /// assert_eq!(v.as_map().unwrap().get("a").unwrap().as_bool(), Some(true));
    /// ```
    pub fn get(&self, key: &str) -> Option<PsonRef<'a>> {
        let mut cursor = Cursor::new(self.body);
        for _ in 0..self.len {
            let tag = cursor.tag().ok()?;
            // A validated map's key length fits the body, so the cast keeps it.
            let k = cursor.take(tag.value as usize).ok()?;
            if crate::bytes::eq(k, key.as_bytes()) {
                return cursor.value(usize::MAX, false).ok();
            }
            cursor.skip(usize::MAX, false).ok()?;
        }
        None
    }
}

impl<'a> IntoIterator for MapRef<'a> {
    type Item = (&'a str, PsonRef<'a>);
    type IntoIter = MapIter<'a>;
    fn into_iter(self) -> MapIter<'a> {
        self.iter()
    }
}

/// Iterator over the pairs of a [`MapRef`].
#[derive(Debug, Clone)]
pub struct MapIter<'a> {
    pub(super) cursor: Cursor<'a>,
    pub(super) left: usize,
}

impl<'a> Iterator for MapIter<'a> {
    type Item = (&'a str, PsonRef<'a>);
    // Inlined into the caller's loop on hosts (the pair is then never built in memory);
    // one copy on microcontrollers.
    #[cfg_attr(not(target_os = "none"), inline)]
    fn next(&mut self) -> Option<Self::Item> {
        self.left = self.left.checked_sub(1)?;
        // The map was validated when decoded; an error here cannot happen, and ends the walk.
        // The key's tag as it comes (validated input has string keys); on hosts its bytes
        // are not checked for UTF-8 again (see `utf8::validated_str`).
        let tag = self.cursor.tag().ok()?;
        #[cfg(not(target_os = "none"))]
        let key = {
            let bytes = self.cursor.take(usize::try_from(tag.value).ok()?).ok()?;
            #[allow(unsafe_code)]
            // SAFETY: a key of a validated map body (see `utf8::validated_str`).
            unsafe {
                crate::pson::utf8::validated_str(bytes)
            }
        };
        #[cfg(target_os = "none")]
        let key = self.cursor.str_body(tag.value, false).ok()?;
        let value = self.cursor.value(usize::MAX, false).ok()?;
        Some((key, value))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

/// A lazy view of a PSON array.
///
/// Equality compares the encoded bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ArrayRef<'a> {
    pub(super) body: &'a [u8],
    pub(super) len: usize,
}

impl<'a> ArrayRef<'a> {
    /// Number of elements.
    ///
    /// ```
    /// let v = thinger_core::pson::PsonRef::decode(&[0xe1, 0x01]).unwrap();
    /// assert_eq!(v.as_array().unwrap().len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.len
    }
    /// Whether the array is empty.
    ///
    /// ```
    /// let v = thinger_core::pson::PsonRef::decode(&[0xe0]).unwrap();
    /// assert!(v.as_array().unwrap().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The encoded elements (without the array's own tag).
    ///
    /// ```
    /// let v = thinger_core::pson::PsonRef::decode(&[0xe1, 0x01]).unwrap();
    /// assert_eq!(v.as_array().unwrap().body(), &[0x01]);
    /// ```
    pub fn body(&self) -> &'a [u8] {
        self.body
    }
    /// Iterates over the elements.
    ///
    /// ```
    /// let v = thinger_core::pson::PsonRef::decode(&[0xe2, 0x01, 0x02]).unwrap();
    /// let sum: u64 = v.as_array().unwrap().iter().filter_map(|e| e.as_u64()).sum();
    /// assert_eq!(sum, 3);
    /// ```
    pub fn iter(&self) -> ArrayIter<'a> {
        ArrayIter { cursor: Cursor::new(self.body), left: self.len }
    }
    /// The element at `index`.
    ///
    /// ```
    /// let v = thinger_core::pson::PsonRef::decode(&[0xe2, 0x01, 0x02]).unwrap();
    /// assert_eq!(v.as_array().unwrap().get(1).unwrap().as_u64(), Some(2));
    /// ```
    pub fn get(&self, index: usize) -> Option<PsonRef<'a>> {
        self.iter().nth(index)
    }
}

impl<'a> IntoIterator for ArrayRef<'a> {
    type Item = PsonRef<'a>;
    type IntoIter = ArrayIter<'a>;
    fn into_iter(self) -> ArrayIter<'a> {
        self.iter()
    }
}

/// Iterator over the elements of an [`ArrayRef`].
#[derive(Debug, Clone)]
pub struct ArrayIter<'a> {
    pub(super) cursor: Cursor<'a>,
    pub(super) left: usize,
}

impl<'a> Iterator for ArrayIter<'a> {
    type Item = PsonRef<'a>;
    // As `MapIter::next`: inlined on hosts only.
    #[cfg_attr(not(target_os = "none"), inline)]
    fn next(&mut self) -> Option<Self::Item> {
        self.left = self.left.checked_sub(1)?;
        self.cursor.value(usize::MAX, false).ok()
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}
