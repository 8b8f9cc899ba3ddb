//! The accessors of a decoded [`PsonRef`] and its encoding back to bytes (the decoder is
//! in the parent module).

use super::super::{EncodePson, Encoder, Error, Sink, WireType, float};
use super::{ArrayRef, MapRef, PsonRef};

impl<'a> PsonRef<'a> {
    /// The PSON type of this value.
    ///
    /// ```
    /// use thinger_core::pson::{PsonRef, WireType};
    /// assert_eq!(PsonRef::Null.wire_type(), WireType::Discrete);
    /// ```
    pub fn wire_type(&self) -> WireType {
        match self {
            PsonRef::Null | PsonRef::Bool(_) => WireType::Discrete,
            PsonRef::Uint(_) => WireType::PositiveInt,
            PsonRef::Int(_) => WireType::NegativeInt,
            PsonRef::F32(_) | PsonRef::F64(_) => WireType::Float,
            PsonRef::Str(_) => WireType::String,
            PsonRef::Bytes(_) => WireType::Bytes,
            PsonRef::Map(_) => WireType::Map,
            PsonRef::Array(_) => WireType::Array,
        }
    }

    /// Whether the value is `null`.
    ///
    /// ```
    /// assert!(thinger_core::pson::PsonRef::Null.is_null());
    /// ```
    pub fn is_null(&self) -> bool {
        matches!(self, PsonRef::Null)
    }

    /// The boolean, if this is one.
    ///
    /// ```
    /// assert_eq!(thinger_core::pson::PsonRef::Bool(true).as_bool(), Some(true));
    /// ```
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            PsonRef::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The value as `u64`, if it is a non-negative integer (or a whole float that fits).
    ///
    /// ```
    /// use thinger_core::pson::PsonRef;
    /// assert_eq!(PsonRef::Uint(7).as_u64(), Some(7));
    /// assert_eq!(PsonRef::Int(-1).as_u64(), None);
    /// ```
    #[cfg(not(target_os = "none"))]
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            PsonRef::Uint(v) => Some(v),
            // A "negative" integer of magnitude 0 (tag 0x20) is zero.
            PsonRef::Int(0) => Some(0),
            PsonRef::F32(f) => float::f32_whole_u64(f),
            PsonRef::F64(f) => float::f64_whole_u64(f),
            _ => None,
        }
    }

    /// The value as `u64`, if it is a non-negative integer (or a whole float that fits).
    // Microcontrollers: an f32 through the encoder's f32 rule, an f64 split here.
    #[cfg(target_os = "none")]
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            PsonRef::Uint(v) => Some(v),
            // A "negative" integer of magnitude 0 (tag 0x20) is zero.
            PsonRef::Int(0) => Some(0),
            PsonRef::F32(f) => float::f32_bits_whole_u64(f.to_bits()),
            PsonRef::F64(f) => float::f64_bits_whole_u64(f.to_bits()),
            _ => None,
        }
    }

    /// The value as `i64`, if it is an integer in range (or a whole float that fits).
    ///
    /// ```
    /// use thinger_core::pson::PsonRef;
    /// assert_eq!(PsonRef::Int(-3).as_i64(), Some(-3));
    /// assert_eq!(PsonRef::Uint(u64::MAX).as_i64(), None);
    /// ```
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            PsonRef::Uint(v) => i64::try_from(v).ok(),
            PsonRef::Int(v) => Some(v),
            PsonRef::F32(f) => float::f32_whole_i64(f),
            PsonRef::F64(f) => float::f64_whole_i64(f),
            _ => None,
        }
    }

    /// Any number as `f64` (integers are converted, possibly rounding above 2^53).
    ///
    /// ```
    /// use thinger_core::pson::PsonRef;
    /// assert_eq!(PsonRef::Uint(3).as_f64(), Some(3.0));
    /// assert_eq!(PsonRef::F32(0.5).as_f64(), Some(0.5));
    /// ```
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            PsonRef::Uint(v) => Some(v as f64),
            PsonRef::Int(v) => Some(v as f64),
            PsonRef::F32(f) => Some(f64::from(f)),
            PsonRef::F64(f) => Some(f),
            _ => None,
        }
    }

    /// The string, if this is one.
    ///
    /// ```
    /// assert_eq!(thinger_core::pson::PsonRef::Str("x").as_str(), Some("x"));
    /// ```
    pub fn as_str(&self) -> Option<&'a str> {
        match *self {
            PsonRef::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The byte string, if this is one.
    ///
    /// ```
    /// assert_eq!(thinger_core::pson::PsonRef::Bytes(b"x").as_bytes(), Some(&b"x"[..]));
    /// ```
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match *self {
            PsonRef::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The map view, if this is a map.
    ///
    /// ```
    /// let v = thinger_core::pson::PsonRef::decode(&[0xc0]).unwrap();
    /// assert!(v.as_map().unwrap().is_empty());
    /// ```
    pub fn as_map(&self) -> Option<MapRef<'a>> {
        match *self {
            PsonRef::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The array view, if this is an array.
    ///
    /// ```
    /// let v = thinger_core::pson::PsonRef::decode(&[0xe2, 0x01, 0x02]).unwrap();
    /// assert_eq!(v.as_array().unwrap().len(), 2);
    /// ```
    pub fn as_array(&self) -> Option<ArrayRef<'a>> {
        match *self {
            PsonRef::Array(a) => Some(a),
            _ => None,
        }
    }

    /// Looks up `key` if this is a map.
    ///
    /// ```
    /// let v = thinger_core::pson::PsonRef::decode(&[0xc1, 0x81, b'a', 0x01]).unwrap();
    /// assert_eq!(v.get("a").and_then(|a| a.as_u64()), Some(1));
    /// assert!(v.get("b").is_none());
    /// ```
    pub fn get(&self, key: &str) -> Option<PsonRef<'a>> {
        self.as_map()?.get(key)
    }
}

impl EncodePson for PsonRef<'_> {
    /// Writes the value back; integers, strings and containers keep their bytes, floats keep
    /// their width.
    fn encode_pson<S: Sink>(&self, enc: &mut Encoder<S>) -> Result<(), Error> {
        match *self {
            PsonRef::Null => enc.null(),
            PsonRef::Bool(b) => enc.bool(b),
            PsonRef::Uint(v) => enc.u64(v),
            PsonRef::Int(v) => enc.i64(v),
            PsonRef::F32(f) => enc.f32_raw(f),
            PsonRef::F64(f) => enc.f64_raw(f),
            PsonRef::Str(s) => enc.str(s),
            PsonRef::Bytes(b) => enc.bytes(b),
            PsonRef::Map(m) => {
                enc.map_header(m.len)?;
                enc.raw(m.body)
            }
            PsonRef::Array(a) => {
                enc.array_header(a.len)?;
                enc.raw(a.body)
            }
        }
    }
}
