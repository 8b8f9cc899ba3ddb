//! Zero-copy serde `Deserializer` over PSON bytes; the mapping is documented on [`Deserializer`].

use core::fmt::Display;

use serde::de::value::{BorrowedStrDeserializer, SeqDeserializer};
use serde::de::{self, Deserialize, DeserializeSeed, Unexpected, Visitor};

use super::reader::Cursor;
use super::{DecodeOptions, Error, PsonRef, WireType};

impl de::Error for Error {
    /// Any error raised by a `Deserialize` implementation becomes [`Error::Custom`].
    fn custom<T: Display>(_msg: T) -> Self {
        Error::Custom
    }

    fn invalid_type(_unexpected: Unexpected<'_>, _expected: &dyn de::Expected) -> Self {
        Error::UnexpectedType
    }
}

/// A serde [`Deserializer`](serde::Deserializer) reading one PSON value from a byte slice,
/// borrowing strings and byte strings from it.
///
/// * `deserialize_any` gives `u64` for type 0, `i64` for type 1, `f32`/`f64` for floats,
///   borrowed `&str`/`&[u8]` for strings and byte strings (so `&'de str` and `&'de [u8]`
///   fields work without copying), unit for null, and maps/sequences for containers.
/// * Integer types accept any PSON number that fits, including whole floats (the encoder
///   sends `3.0` as the integer `3`; the reverse also holds). Float types accept integers.
/// * `Option`: null is `None`, anything else `Some`.
/// * Enums: a string is a unit variant, a one-entry map `{variant: value}` any variant.
/// * Structs from maps (unknown keys are skipped) or from arrays (fields in order).
/// * Sequences and tuples also accept a byte string (each byte is one `u8` element), so a
///   `Vec<u8>` or `[u8; N]` field can receive PSON bytes.
/// * Map keys are PSON strings; integer map keys are parsed from their decimal string.
///
/// Every length is checked against the remaining input before it is used, nesting is
/// bounded by [`DecodeOptions::max_depth`], and every failure is a typed [`Error`]:
/// `invalid_type` from a visitor is [`Error::UnexpectedType`], all other visitor errors
/// (out-of-range numbers, unknown variants, missing fields, an array longer than the
/// tuple or struct it fills) are [`Error::Custom`].
///
/// The serde traits are implemented for `&mut Deserializer<'de>`. Most code wants
/// [`from_slice`]; use the type directly to read a value that is followed by other data.
///
/// ```
/// use serde::Deserialize;
/// use thinger_core::pson::Deserializer;
///
/// let input = [0x61, 0x85, b'h', b'e', b'l', b'l', b'o'];
/// let mut de = Deserializer::new(&input);
/// assert!(bool::deserialize(&mut de).unwrap());
/// assert_eq!(de.position(), 1);
/// let s: &str = Deserialize::deserialize(&mut de).unwrap();
/// assert_eq!(s, "hello");
/// de.end().unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct Deserializer<'de> {
    cursor: Cursor<'de>,
    depth_left: usize,
}

impl<'de> Deserializer<'de> {
    /// A deserializer over `input` with the default limits.
    ///
    /// ```
    /// use serde::Deserialize;
    /// let mut de = thinger_core::pson::Deserializer::new(&[0x1f, 0xac, 0x02]);
    /// assert_eq!(u16::deserialize(&mut de), Ok(300));
    /// ```
    pub fn new(input: &'de [u8]) -> Self {
        Self::with_options(input, &DecodeOptions::new())
    }

    /// A deserializer over `input` with the given limits.
    ///
    /// ```
    /// use serde::Deserialize;
    /// use thinger_core::pson::{DecodeOptions, Deserializer, Error};
    /// let nested = [0xe1, 0xe1, 0xe0]; // [[[]]]
    /// let mut de = Deserializer::with_options(&nested, &DecodeOptions::new().max_depth(2));
    /// assert_eq!(Vec::<Vec<Vec<u8>>>::deserialize(&mut de), Err(Error::DepthLimitExceeded));
    /// ```
    pub fn with_options(input: &'de [u8], options: &DecodeOptions) -> Self {
        Deserializer { cursor: Cursor::new(input), depth_left: options.depth_limit() }
    }

    /// Bytes of the input consumed so far.
    ///
    /// ```
    /// use serde::Deserialize;
    /// let mut de = thinger_core::pson::Deserializer::new(&[0x62, 0x01]);
    /// assert_eq!(Option::<u8>::deserialize(&mut de), Ok(None));
    /// assert_eq!(de.position(), 1);
    /// ```
    pub fn position(&self) -> usize {
        self.cursor.position()
    }

    /// Checks that the whole input was consumed: [`Error::TrailingBytes`] otherwise.
    ///
    /// ```
    /// use serde::Deserialize;
    /// use thinger_core::pson::{Deserializer, Error};
    /// let mut de = Deserializer::new(&[0x01, 0x02]);
    /// assert_eq!(u8::deserialize(&mut de), Ok(1));
    /// assert_eq!(de.end(), Err(Error::TrailingBytes));
    /// ```
    pub fn end(&self) -> Result<(), Error> {
        if self.cursor.remaining() == 0 { Ok(()) } else { Err(Error::TrailingBytes) }
    }

    /// Reads the next tag: a scalar is read completely, a container only up to its
    /// (checked) element count.
    // Inlined on hosts into each `deserialize_*`: the item is then never built in memory.
    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn next(&mut self) -> Result<Item<'de>, Error> {
        #[cfg(not(target_os = "none"))]
        if let Some(value) = self.cursor.common_scalar() {
            return Ok(Item::Scalar(value));
        }
        let tag = self.cursor.tag()?;
        Ok(match tag.wire {
            WireType::Map => Item::Map(self.cursor.map_len(tag)?),
            WireType::Array => Item::Array(self.cursor.array_len(tag)?),
            // Scalars never enter a container, so no depth is needed.
            _ => Item::Scalar(self.cursor.value_after_tag(tag, 0, true)?),
        })
    }

    fn visit<V: Visitor<'de>>(&mut self, item: Item<'de>, visitor: V) -> Result<V::Value, Error> {
        match item {
            Item::Scalar(value) => visit_scalar(value, visitor),
            Item::Map(len) => self.visit_map(len, visitor),
            Item::Array(len) => self.visit_array(len, visitor),
        }
    }

    #[inline]
    fn enter(&mut self) -> Result<(), Error> {
        self.depth_left = self.depth_left.checked_sub(1).ok_or(Error::DepthLimitExceeded)?;
        Ok(())
    }

    #[inline]
    fn leave(&mut self) {
        self.depth_left = self.depth_left.saturating_add(1);
    }

    fn visit_map<V: Visitor<'de>>(&mut self, len: usize, visitor: V) -> Result<V::Value, Error> {
        self.enter()?;
        let mut access = MapAccess { de: self, left: len, value_pending: false };
        let value = visitor.visit_map(&mut access)?;
        let complete = access.left == 0 && !access.value_pending;
        self.leave();
        if complete { Ok(value) } else { Err(de::Error::invalid_length(len, &"fewer map entries")) }
    }

    fn visit_array<V: Visitor<'de>>(&mut self, len: usize, visitor: V) -> Result<V::Value, Error> {
        self.enter()?;
        let mut access = SeqAccess { de: self, left: len };
        let value = visitor.visit_seq(&mut access)?;
        let complete = access.left == 0;
        self.leave();
        if complete { Ok(value) } else { Err(de::Error::invalid_length(len, &"fewer elements")) }
    }

    /// `deserialize_struct` and `deserialize_map` on hosts: a map with its count in the tag
    /// byte (`Cursor::short_header`, the same length test as the general read) is visited
    /// here; anything else goes through `deserialize_any` (in line: out of line it was 17
    /// more): `payload/decode/serde` 352 -> 340 instructions.
    #[cfg(not(target_os = "none"))]
    #[inline(always)]
    fn map_first<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, Error> {
        if let Some(len) = self.cursor.short_header(WireType::Map, 2) {
            return self.visit_map(len, visitor);
        }
        de::Deserializer::deserialize_any(self, visitor)
    }

    /// For integer types: whole floats are visited as integers.
    fn integer<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, Error> {
        match self.next()? {
            Item::Scalar(PsonRef::F32(f)) => visit_whole(f64::from(f), visitor),
            Item::Scalar(PsonRef::F64(f)) => visit_whole(f, visitor),
            item => self.visit(item, visitor),
        }
    }

    /// For sequences and tuples: a byte string is visited as a sequence of `u8`.
    fn sequence<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, Error> {
        match self.next()? {
            Item::Scalar(PsonRef::Bytes(bytes)) => {
                let mut seq = SeqDeserializer::<_, Error>::new(bytes.iter().copied());
                let value = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(value)
            }
            item => self.visit(item, visitor),
        }
    }
}

/// The next value: a complete scalar, or a container's element count.
enum Item<'de> {
    Scalar(PsonRef<'de>),
    Map(usize),
    Array(usize),
}

fn visit_scalar<'de, V: Visitor<'de>>(value: PsonRef<'de>, visitor: V) -> Result<V::Value, Error> {
    match value {
        PsonRef::Null => visitor.visit_unit(),
        PsonRef::Bool(b) => visitor.visit_bool(b),
        PsonRef::Uint(v) => visitor.visit_u64(v),
        PsonRef::Int(v) => visitor.visit_i64(v),
        PsonRef::F32(f) => visitor.visit_f32(f),
        PsonRef::F64(f) => visitor.visit_f64(f),
        PsonRef::Str(s) => visitor.visit_borrowed_str(s),
        PsonRef::Bytes(b) => visitor.visit_borrowed_bytes(b),
        // `Deserializer::next` never returns containers as scalars.
        PsonRef::Map(_) | PsonRef::Array(_) => Err(Error::UnexpectedType),
    }
}

/// Visits a float as an integer when it is a whole number in `u64` or `i64` range.
fn visit_whole<'de, V: Visitor<'de>>(f: f64, visitor: V) -> Result<V::Value, Error> {
    if let Some(v) = PsonRef::F64(f).as_u64() {
        visitor.visit_u64(v)
    } else if let Some(v) = PsonRef::F64(f).as_i64() {
        visitor.visit_i64(v)
    } else {
        visitor.visit_f64(f)
    }
}

/// Reads one PSON value from `input` into a `T`; the whole input must be that value
/// ([`Error::TrailingBytes`] otherwise). Strings and byte strings are borrowed.
///
/// ```
/// use serde::Deserialize;
///
/// #[derive(Deserialize, Debug, PartialEq)]
/// struct Reading<'a> { humidity: u8, label: &'a str, temperature: f64 }
///
/// // {"humidity":60,"label":"out","temperature":23.5,"extra":true}
/// let input = [0xc4, 0x88, b'h', b'u', b'm', b'i', b'd', b'i', b't', b'y', 0x1f, 0x3c,
///              0x85, b'l', b'a', b'b', b'e', b'l', 0x83, b'o', b'u', b't',
///              0x8b, b't', b'e', b'm', b'p', b'e', b'r', b'a', b't', b'u', b'r', b'e',
///              0x40, 0x00, 0x00, 0xbc, 0x41, 0x85, b'e', b'x', b't', b'r', b'a', 0x61];
/// let r: Reading = thinger_core::pson::from_slice(&input).unwrap();
/// assert_eq!(r, Reading { humidity: 60, label: "out", temperature: 23.5 });
/// ```
pub fn from_slice<'de, T: Deserialize<'de>>(input: &'de [u8]) -> Result<T, Error> {
    from_slice_with(input, &DecodeOptions::new())
}

/// [`from_slice`] with the given limits.
///
/// ```
/// use thinger_core::pson::{from_slice_with, DecodeOptions, Error};
/// let nested = [0xe1, 0xe1, 0xe1, 0xe0]; // [[[[]]]]
/// let strict = DecodeOptions::new().max_depth(3);
/// let r: Result<Vec<Vec<Vec<Vec<u8>>>>, _> = from_slice_with(&nested, &strict);
/// assert_eq!(r, Err(Error::DepthLimitExceeded));
/// ```
pub fn from_slice_with<'de, T: Deserialize<'de>>(input: &'de [u8], options: &DecodeOptions) -> Result<T, Error> {
    let mut de = Deserializer::with_options(input, options);
    let value = T::deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

macro_rules! integer_hints {
    ($($method:ident),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.integer(visitor)
        }
    )*};
}

/// The narrow unsigned types (otherwise as [`Deserializer::integer`]): a value in range is
/// visited with its own type, so serde's visitor for it has no range test of its own
/// (`payload/decode/serde` 519 -> 501 instructions, callgrind); serde's default
/// `visit_u8` / `u16` / `u32` forward to `visit_u64`, so any other visitor sees what it saw
/// before.
///
/// Hosts: an integer below 2^21 in range is read first, in line (`Cursor::uint_at_most`),
/// and everything else goes through the general read out of line, so the value's `Result`
/// is built in one place: `payload/decode/serde` 455 -> 409 instructions (callgrind).
macro_rules! unsigned_hints {
    ($($method:ident: $t:ty => $visit:ident),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            #[cfg(not(target_os = "none"))]
            if let Some(v) = self.cursor.uint_at_most(u64::from(<$t>::MAX)) {
                return visitor.$visit(v as $t);
            }
            #[cfg_attr(not(target_os = "none"), inline(never))]
            fn general<'de, V: Visitor<'de>>(de: &mut Deserializer<'de>, visitor: V) -> Result<V::Value, Error> {
                match de.next()? {
                    Item::Scalar(PsonRef::Uint(v)) if v <= u64::from(<$t>::MAX) => visitor.$visit(v as $t),
                    Item::Scalar(PsonRef::F32(f)) => visit_whole(f64::from(f), visitor),
                    Item::Scalar(PsonRef::F64(f)) => visit_whole(f, visitor),
                    item => de.visit(item, visitor),
                }
            }
            general(self, visitor)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for &mut Deserializer<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let item = self.next()?;
        self.visit(item, visitor)
    }

    integer_hints!(
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_i128,
        deserialize_u64,
        deserialize_u128
    );

    unsigned_hints!(deserialize_u8: u8 => visit_u8, deserialize_u16: u16 => visit_u16, deserialize_u32: u32 => visit_u32);

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        // Hosts: the common scalars in line, the rest out of line, as `deserialize_f64`
        // (`payload/decode/serde` with an f32 temperature 369 -> 340 instructions).
        #[cfg(not(target_os = "none"))]
        if let Some(value) = self.cursor.common_scalar() {
            return match value {
                PsonRef::Uint(v) => visitor.visit_f32(v as f32),
                other => visit_scalar(other, visitor),
            };
        }
        #[cfg_attr(not(target_os = "none"), inline(never))]
        fn general<'de, V: Visitor<'de>>(de: &mut Deserializer<'de>, visitor: V) -> Result<V::Value, Error> {
            match de.next()? {
                Item::Scalar(PsonRef::Uint(v)) => visitor.visit_f32(v as f32),
                Item::Scalar(PsonRef::Int(v)) => visitor.visit_f32(v as f32),
                item => de.visit(item, visitor),
            }
        }
        general(self, visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        // Hosts: the common scalars in line, the rest out of line (see `unsigned_hints`):
        // `payload/decode/serde` 409 -> 396 instructions.
        #[cfg(not(target_os = "none"))]
        if let Some(value) = self.cursor.common_scalar() {
            return match value {
                PsonRef::Uint(v) => visitor.visit_f64(v as f64),
                PsonRef::F32(f) => visitor.visit_f64(f64::from(f)),
                other => visit_scalar(other, visitor),
            };
        }
        #[cfg_attr(not(target_os = "none"), inline(never))]
        fn general<'de, V: Visitor<'de>>(de: &mut Deserializer<'de>, visitor: V) -> Result<V::Value, Error> {
            match de.next()? {
                Item::Scalar(PsonRef::Uint(v)) => visitor.visit_f64(v as f64),
                Item::Scalar(PsonRef::Int(v)) => visitor.visit_f64(v as f64),
                Item::Scalar(PsonRef::F32(f)) => visitor.visit_f64(f64::from(f)),
                item => de.visit(item, visitor),
            }
        }
        general(self, visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.cursor.peek() == Some(0x62) {
            self.cursor.tag()?;
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.sequence(visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        self.sequence(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.sequence(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.next()? {
            Item::Scalar(PsonRef::Str(name)) => visitor.visit_enum(BorrowedStrDeserializer::<Error>::new(name)),
            Item::Map(1) => {
                self.enter()?;
                let value = visitor.visit_enum(EnumAccess { de: &mut *self })?;
                self.leave();
                Ok(value)
            }
            _ => Err(Error::UnexpectedType),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.cursor.skip(self.depth_left, true)?;
        visitor.visit_unit()
    }

    // Hosts: a short ASCII string in line, the rest through `deserialize_any` out of line
    // (see `unsigned_hints`): `payload/decode/serde` 396 -> 352 instructions.
    #[cfg(not(target_os = "none"))]
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if let Some(s) = self.cursor.short_ascii_str() {
            return visitor.visit_borrowed_str(s);
        }
        #[inline(never)]
        fn general<'de, V: Visitor<'de>>(de: &mut Deserializer<'de>, visitor: V) -> Result<V::Value, Error> {
            de::Deserializer::deserialize_any(de, visitor)
        }
        general(self, visitor)
    }

    // Hosts: a map with its count in the tag byte first (`map_first`).
    #[cfg(not(target_os = "none"))]
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.map_first(visitor)
    }

    #[cfg(not(target_os = "none"))]
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.map_first(visitor)
    }

    #[cfg(not(target_os = "none"))]
    serde::forward_to_deserialize_any! {
        bool char string bytes byte_buf unit unit_struct identifier
    }

    #[cfg(target_os = "none")]
    serde::forward_to_deserialize_any! {
        bool char str string bytes byte_buf unit unit_struct map struct identifier
    }
}

/// Elements of a PSON array.
struct SeqAccess<'a, 'de> {
    de: &'a mut Deserializer<'de>,
    left: usize,
}

impl<'de> de::SeqAccess<'de> for SeqAccess<'_, 'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Error> {
        match self.left.checked_sub(1) {
            None => Ok(None),
            Some(left) => {
                self.left = left;
                seed.deserialize(&mut *self.de).map(Some)
            }
        }
    }

    fn size_hint(&self) -> Option<usize> {
        // Already checked against the remaining input (at least one byte per element).
        Some(self.left)
    }
}

/// Pairs of a PSON map.
struct MapAccess<'a, 'de> {
    de: &'a mut Deserializer<'de>,
    left: usize,
    value_pending: bool,
}

impl<'de> de::MapAccess<'de> for MapAccess<'_, 'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        if self.value_pending {
            // The visitor asked for a key without reading the previous value.
            return Err(Error::Custom);
        }
        match self.left.checked_sub(1) {
            None => Ok(None),
            Some(left) => {
                self.left = left;
                let key = read_key(&mut self.de.cursor)?;
                self.value_pending = true;
                seed.deserialize(MapKey { key }).map(Some)
            }
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        if !self.value_pending {
            return Err(Error::Custom);
        }
        self.value_pending = false;
        seed.deserialize(&mut *self.de)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

#[cfg_attr(not(target_os = "none"), inline)]
fn read_key<'de>(cursor: &mut Cursor<'de>) -> Result<&'de str, Error> {
    #[cfg(not(target_os = "none"))]
    return cursor.key();
    // Microcontrollers: the general read written out, as before the host fast path.
    #[cfg(target_os = "none")]
    {
        let tag = cursor.tag()?;
        if tag.wire != WireType::String {
            return Err(Error::NonStringKey);
        }
        cursor.str_body(tag.value, true)
    }
}

/// The `{variant: value}` form of an enum.
struct EnumAccess<'a, 'de> {
    de: &'a mut Deserializer<'de>,
}

impl<'de> de::EnumAccess<'de> for EnumAccess<'_, 'de> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), Error> {
        let name = read_key(&mut self.de.cursor)?;
        let variant = seed.deserialize(BorrowedStrDeserializer::<Error>::new(name))?;
        Ok((variant, self))
    }
}

impl<'de> de::VariantAccess<'de> for EnumAccess<'_, 'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        // `{"Variant": null}`.
        <()>::deserialize(&mut *self.de)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        seed.deserialize(&mut *self.de)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_tuple(&mut *self.de, len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(self, _fields: &'static [&'static str], visitor: V) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_any(&mut *self.de, visitor)
    }
}

/// A map key: always a PSON string, parsed when an integer is asked for.
struct MapKey<'de> {
    key: &'de str,
}

macro_rules! parsed_key {
    ($($method:ident => $t:ty, $visit:ident;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.key.parse::<$t>() {
                Ok(v) => visitor.$visit(v),
                Err(_) => visitor.visit_borrowed_str(self.key),
            }
        }
    )*};
}

impl<'de> de::Deserializer<'de> for MapKey<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_borrowed_str(self.key)
    }

    parsed_key! {
        deserialize_i8 => i8, visit_i8;
        deserialize_i16 => i16, visit_i16;
        deserialize_i32 => i32, visit_i32;
        deserialize_i64 => i64, visit_i64;
        deserialize_i128 => i128, visit_i128;
        deserialize_u8 => u8, visit_u8;
        deserialize_u16 => u16, visit_u16;
        deserialize_u32 => u32, visit_u32;
        deserialize_u64 => u64, visit_u64;
        deserialize_u128 => u128, visit_u128;
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_enum(BorrowedStrDeserializer::<Error>::new(self.key))
    }

    serde::forward_to_deserialize_any! {
        bool f32 f64 char str string bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ser(v: u64) -> std::vec::Vec<u8> {
        let mut buf = std::vec![0u8; 16];
        let n = super::super::encode_to_slice(&v, &mut buf).unwrap();
        buf.truncate(n);
        buf
    }

    /// A visitor with only `visit_u64`, as many hand-written ones are.
    struct OnlyU64;

    impl<'de> Visitor<'de> for OnlyU64 {
        type Value = u64;
        fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.write_str("an integer")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
    }

    #[test]
    fn narrow_unsigned_at_their_bounds() {
        for v in [0, 30, 31, 255, 256, 65_535, 65_536, u64::from(u32::MAX), u64::from(u32::MAX) + 1, u64::MAX] {
            let bytes = ser(v);
            assert_eq!(from_slice::<u8>(&bytes).ok(), u8::try_from(v).ok(), "{v}");
            assert_eq!(from_slice::<u16>(&bytes).ok(), u16::try_from(v).ok(), "{v}");
            assert_eq!(from_slice::<u32>(&bytes).ok(), u32::try_from(v).ok(), "{v}");
            for hint in [0, 1, 2] {
                let mut de = Deserializer::new(&bytes);
                let got = match hint {
                    0 => de::Deserializer::deserialize_u8(&mut de, OnlyU64),
                    1 => de::Deserializer::deserialize_u16(&mut de, OnlyU64),
                    _ => de::Deserializer::deserialize_u32(&mut de, OnlyU64),
                };
                assert_eq!(got, Ok(v), "{v} {hint}");
            }
        }
    }
}
