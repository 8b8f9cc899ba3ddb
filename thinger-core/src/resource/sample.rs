//! Describe samples: the zero value of a serde type, written as PSON.
//!
//! DESCRIBE of one resource asks for a sample input; the official clients answer with the
//! input's fields set to zero (`sum` taking `{a, b}` answers `in: {a: 0, b: 0}`). For a serde
//! type the zero value is found by driving its `Deserialize` implementation with a
//! deserializer that has no input and answers every request with the type's zero, writing
//! each value as PSON while it goes. That needs only `Deserialize` (no `Serialize`, no
//! `Default`), allocates nothing, and gives the field names serde knows.

use serde::Deserialize;
use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeSeed, Visitor};

use super::Output;
use crate::pson::{Encoder, Error, Sink, SizeCounter};

/// Deepest nesting of a sample (a type that contains itself ends here with an error).
const MAX_DEPTH: usize = 32;

/// Writes the zero value of `T` as the output: the describe-mode sample of an input.
///
/// | serde | sample |
/// |---|---|
/// | `bool` | `false` |
/// | integers, floats | `0` |
/// | `char` | `"\0"` |
/// | strings | `""` |
/// | bytes | empty byte string |
/// | `Option`, `()`, unit structs | `null` |
/// | newtype structs | the inner sample |
/// | sequences, maps | empty array, empty map |
/// | tuples, arrays `[T; N]`, tuple structs | an array of the element samples |
/// | structs | a map of every field name to its sample |
/// | enums | the first variant (a unit variant as its name, others as `{name: sample}`) |
/// | `deserialize_any` (untagged enums, self-describing values) | `null` |
///
/// A type that refuses its zero (a `NonZeroU8`, an empty enum) or nests deeper than 32 levels
/// is an error.
///
/// ```
/// use serde::Deserialize;
/// use thinger_core::resource::{write_sample, Output};
///
/// #[derive(Deserialize)]
/// struct Sum { a: i32, b: i32 }
///
/// let mut buf = [0u8; 16];
/// let mut out = Output::new(&mut buf);
/// write_sample::<Sum>(&mut out).unwrap();
/// let n = out.finish().unwrap();
/// assert_eq!(&buf[..n], &[0xc2, 0x81, b'a', 0x00, 0x81, b'b', 0x00]); // {a: 0, b: 0}
/// ```
pub fn write_sample<T: Deserialize<'static>>(out: &mut Output<'_>) -> Result<(), Error> {
    out.write(|enc| encode_sample::<T, _>(enc))
}

/// Encodes the zero value of `T` (see [`write_sample`] for what it is) with any encoder.
///
/// ```
/// use thinger_core::pson::{Encoder, SliceSink};
/// use thinger_core::resource::encode_sample;
///
/// let mut buf = [0u8; 8];
/// let mut enc = Encoder::new(SliceSink::new(&mut buf));
/// encode_sample::<(bool, Option<u8>, [u16; 2]), _>(&mut enc).unwrap();
/// assert_eq!(enc.into_sink().as_written(), &[0xe3, 0x60, 0x62, 0xe2, 0x00, 0x00]);
/// ```
pub fn encode_sample<T: Deserialize<'static>, S: Sink>(enc: &mut Encoder<S>) -> Result<(), Error> {
    T::deserialize(Zero { enc, depth: MAX_DEPTH }).map(drop)
}

/// The zero value of `T` (the one [`write_sample`] writes), e.g. the input a handler gets for
/// a describe-mode output.
///
/// ```
/// use serde::Deserialize;
/// use thinger_core::resource::zero_value;
///
/// #[derive(Deserialize, Debug, PartialEq)]
/// enum Mode { Off, On }
/// #[derive(Deserialize, Debug, PartialEq)]
/// struct Config { name: String, level: f32, mode: Mode, tags: Vec<u8> }
///
/// let zero: Config = zero_value().unwrap();
/// assert_eq!(zero, Config { name: String::new(), level: 0.0, mode: Mode::Off, tags: vec![] });
/// ```
pub fn zero_value<T: Deserialize<'static>>() -> Result<T, Error> {
    let mut enc = Encoder::new(SizeCounter::default());
    T::deserialize(Zero { enc: &mut enc, depth: MAX_DEPTH })
}

/// A deserializer with no input: every value is its type's zero, written to `enc` as it is
/// produced.
struct Zero<'e, S> {
    enc: &'e mut Encoder<S>,
    /// Levels of nesting still allowed.
    depth: usize,
}

impl<S: Sink> Zero<'_, S> {
    /// The depth left for values nested in this one.
    fn inner_depth(&self) -> Result<usize, Error> {
        self.depth.checked_sub(1).ok_or(Error::DepthLimitExceeded)
    }

    fn tuple<'de, V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Error> {
        let depth = self.inner_depth()?;
        self.enc.array_header(len)?;
        let mut elements = Elements { enc: self.enc, depth, remaining: len };
        let value = visitor.visit_seq(&mut elements)?;
        elements.pad()?;
        Ok(value)
    }

    fn fields<'de, V: Visitor<'de>>(self, fields: &'static [&'static str], visitor: V) -> Result<V::Value, Error> {
        let depth = self.inner_depth()?;
        self.enc.map_header(fields.len())?;
        let mut map = Fields { enc: self.enc, depth, fields, next: 0, value_pending: false };
        let value = visitor.visit_map(&mut map)?;
        map.pad()?;
        Ok(value)
    }
}

macro_rules! zero_numbers {
    ($($method:ident => $visit:ident($zero:expr), $write:ident;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.enc.$write($zero)?;
            visitor.$visit($zero)
        }
    )*};
}

impl<'de, S: Sink> de::Deserializer<'de> for Zero<'_, S> {
    type Error = Error;

    zero_numbers! {
        deserialize_i8 => visit_i8(0), i64;
        deserialize_i16 => visit_i16(0), i64;
        deserialize_i32 => visit_i32(0), i64;
        deserialize_i64 => visit_i64(0), i64;
        deserialize_u8 => visit_u8(0), u64;
        deserialize_u16 => visit_u16(0), u64;
        deserialize_u32 => visit_u32(0), u64;
        deserialize_u64 => visit_u64(0), u64;
        deserialize_f32 => visit_f32(0.0), f32;
        deserialize_f64 => visit_f64(0.0), f64;
        deserialize_bool => visit_bool(false), bool;
    }

    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.enc.i64(0)?;
        visitor.visit_i128(0)
    }

    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.enc.u64(0)?;
        visitor.visit_u128(0)
    }

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.enc.null()?;
        visitor.visit_unit()
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.enc.str("\0")?;
        visitor.visit_char('\0')
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.enc.str("")?;
        visitor.visit_borrowed_str("")
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.enc.bytes(&[])?;
        visitor.visit_borrowed_bytes(&[])
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.enc.null()?;
        visitor.visit_none()
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.enc.null()?;
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        let depth = self.inner_depth()?;
        visitor.visit_newtype_struct(Zero { enc: self.enc, depth })
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.tuple(0, visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Error> {
        self.tuple(len, visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.tuple(len, visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.fields(&[], visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.fields(fields, visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let name = variants.first().copied().ok_or(Error::Unsupported)?;
        let depth = self.inner_depth()?;
        visitor.visit_enum(Variant { enc: self.enc, depth, name })
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }
}

/// The elements of a tuple (or of an empty sequence).
struct Elements<'e, S> {
    enc: &'e mut Encoder<S>,
    depth: usize,
    remaining: usize,
}

impl<S: Sink> Elements<'_, S> {
    /// Writes `null` for elements the visitor did not read, so the array matches its header.
    fn pad(&mut self) -> Result<(), Error> {
        for _ in 0..self.remaining {
            self.enc.null()?;
        }
        self.remaining = 0;
        Ok(())
    }
}

impl<'de, S: Sink> de::SeqAccess<'de> for Elements<'_, S> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Error> {
        if self.remaining == 0 {
            return Ok(None);
        }
        self.remaining -= 1;
        seed.deserialize(Zero { enc: &mut *self.enc, depth: self.depth }).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.remaining)
    }
}

/// The fields of a struct (or of an empty map): each name, then its zero value.
struct Fields<'e, S> {
    enc: &'e mut Encoder<S>,
    depth: usize,
    fields: &'static [&'static str],
    next: usize,
    /// A key was handed out and its value not yet written.
    value_pending: bool,
}

impl<S: Sink> Fields<'_, S> {
    /// Writes `null` values for fields the visitor did not read, so the map matches its header.
    fn pad(&mut self) -> Result<(), Error> {
        if self.value_pending {
            self.enc.null()?;
            self.value_pending = false;
        }
        while let Some(name) = self.fields.get(self.next) {
            self.enc.str(name)?;
            self.enc.null()?;
            self.next += 1;
        }
        Ok(())
    }
}

impl<'de, S: Sink> de::MapAccess<'de> for Fields<'_, S> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        if self.value_pending {
            // The visitor skipped a value: keep the map well formed.
            self.enc.null()?;
            self.value_pending = false;
        }
        let Some(name) = self.fields.get(self.next).copied() else {
            return Ok(None);
        };
        self.next += 1;
        self.enc.str(name)?;
        self.value_pending = true;
        seed.deserialize(BorrowedStrDeserializer::<Error>::new(name)).map(Some)
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, Error> {
        if !self.value_pending {
            return Err(Error::Custom);
        }
        self.value_pending = false;
        seed.deserialize(Zero { enc: &mut *self.enc, depth: self.depth })
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.fields.len().saturating_sub(self.next))
    }
}

/// The first variant of an enum.
struct Variant<'e, S> {
    enc: &'e mut Encoder<S>,
    depth: usize,
    name: &'static str,
}

impl<'de, S: Sink> de::EnumAccess<'de> for Variant<'_, S> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), Error> {
        let value = seed.deserialize(BorrowedStrDeserializer::<Error>::new(self.name))?;
        Ok((value, self))
    }
}

impl<'de, S: Sink> de::VariantAccess<'de> for Variant<'_, S> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        self.enc.str(self.name)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        self.enc.map_header(1)?;
        self.enc.str(self.name)?;
        seed.deserialize(Zero { enc: self.enc, depth: self.depth })
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Error> {
        self.enc.map_header(1)?;
        self.enc.str(self.name)?;
        Zero { enc: self.enc, depth: self.depth }.tuple(len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(self, fields: &'static [&'static str], visitor: V) -> Result<V::Value, Error> {
        self.enc.map_header(1)?;
        self.enc.str(self.name)?;
        Zero { enc: self.enc, depth: self.depth }.fields(fields, visitor)
    }
}
