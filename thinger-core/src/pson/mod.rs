//! PSON, the compact self-describing value encoding carried by IOTMP (wire type 2).
//!
//! Every value starts with a tag byte `type << 5 | small`; `small == 31` means a varint
//! follows. See `docs/protocol.md` for the wire format as this crate implements it.
//!
//! * Encoding: [`Encoder`] over a [`Sink`] ([`SliceSink`] for a caller buffer,
//!   [`SizeCounter`] for a size-only pass, [`IoSink`] for any `embedded_io::Write`), or the
//!   [`EncodePson`] trait and [`encode_to_slice`] / [`encoded_len`]; [`Key`] for map keys
//!   encoded at compile time.
//! * Decoding: [`PsonRef::decode`] validates a value once and returns a borrowed view with
//!   lazy map/array iteration and lookup by key; nothing is copied or allocated.
//!   [`MapReader`] / [`ArrayReader`] read a top-level map or array in a single pass,
//!   validating each pair or element as it is handed out (the fastest way to read every
//!   field once).
//! * With the `serde` feature: `to_slice` and `from_slice`.
//! * With the `alloc` feature: the owned `Value` and the `pson!` macro.
//!
//! ```
//! use thinger_core::pson::{Encoder, SliceSink, PsonRef};
//!
//! let mut buf = [0u8; 64];
//! let mut enc = Encoder::new(SliceSink::new(&mut buf));
//! enc.map_header(2).unwrap();
//! enc.str("temperature").unwrap();
//! enc.f64(23.5).unwrap();
//! enc.str("on").unwrap();
//! enc.bool(true).unwrap();
//! let n = enc.into_sink().written();
//!
//! let doc = PsonRef::decode(&buf[..n]).unwrap();
//! let map = doc.as_map().unwrap();
//! assert_eq!(map.get("temperature").and_then(|v| v.as_f64()), Some(23.5));
//! assert_eq!(map.get("on").and_then(|v| v.as_bool()), Some(true));
//! ```

#[cfg(feature = "serde")]
mod de;
mod encode;
mod error;
pub(crate) mod float;
mod key;
#[cfg(not(target_os = "none"))]
mod raw;
mod reader;
#[cfg(feature = "serde")]
mod ser;
mod single_pass;
mod utf8;
#[cfg(feature = "alloc")]
mod value;

#[cfg(feature = "serde")]
pub use de::{Deserializer, from_slice, from_slice_with};
pub(crate) use encode::copy_down;
pub use encode::{Bytes, EncodePson, Encoder, IoSink, Map, Sink, SizeCounter, SliceSink, encode_to_slice, encoded_len};
pub use error::Error;
pub use key::Key;
pub use reader::{ArrayIter, ArrayRef, DEFAULT_MAX_DEPTH, DecodeOptions, MAX_DEPTH_CEILING, MapIter, MapRef, PsonRef};
#[cfg(feature = "serde")]
pub use ser::{Serde, Serializer, serialized_len, to_slice};
pub use single_pass::{ArrayReader, MapReader};
#[cfg(feature = "alloc")]
pub use value::Value;

/// PSON value types: the top three bits of a tag byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum WireType {
    /// Unsigned integer; the tag value is the number.
    PositiveInt = 0,
    /// Negative integer; the tag value is its magnitude.
    NegativeInt = 1,
    /// Float: tag value 0 = f32, 1 = f64 (little-endian payload).
    Float = 2,
    /// false (0), true (1), null (2).
    Discrete = 3,
    /// UTF-8 string; the tag value is the byte length.
    String = 4,
    /// Raw bytes; the tag value is the length.
    Bytes = 5,
    /// Map; the tag value is the number of key/value pairs.
    Map = 6,
    /// Array; the tag value is the number of elements.
    Array = 7,
}

impl WireType {
    /// The wire type of a tag byte.
    ///
    /// ```
    /// use thinger_core::pson::WireType;
    /// assert_eq!(WireType::from_tag(0xc4), WireType::Map);
    /// ```
    #[inline]
    pub const fn from_tag(tag: u8) -> WireType {
        match tag >> 5 {
            0 => WireType::PositiveInt,
            1 => WireType::NegativeInt,
            2 => WireType::Float,
            3 => WireType::Discrete,
            4 => WireType::String,
            5 => WireType::Bytes,
            6 => WireType::Map,
            _ => WireType::Array,
        }
    }
}

/// The `small` value that says "a varint follows the tag".
pub(crate) const EXTENDED: u8 = 0x1f;
