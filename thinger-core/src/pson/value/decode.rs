//! Decoding into a [`Value`]: through the validating [`PsonRef`] view, then built without
//! recursion.

use alloc::borrow::ToOwned;
use alloc::string::String;
use alloc::vec::Vec;

use super::Value;
use crate::pson::{ArrayIter, DecodeOptions, Error, MapIter, PsonRef};

impl Value {
    /// Decodes exactly one PSON value that fills `input`, with the default limits (see
    /// [`DecodeOptions`]).
    ///
    /// The input is validated completely first ([`PsonRef::decode`]), so nesting is bounded
    /// by the depth limit and every length is checked against the input before anything is
    /// allocated. The tree then takes 32 bytes per value (56 per map pair, on 64-bit
    /// targets) plus the bytes of strings: at most about 32 times the input's size.
    ///
    /// ```
    /// use thinger_core::pson::{Error, Value};
    /// assert_eq!(Value::decode(&[0xe2, 0x01, 0x21]), Ok(Value::Array(vec![Value::Uint(1), Value::Int(-1)])));
    /// assert_eq!(Value::decode(&[0x85, b'a']), Err(Error::LengthExceedsInput));
    /// ```
    pub fn decode(input: &[u8]) -> Result<Value, Error> {
        Ok(Value::from_ref(PsonRef::decode(input)?))
    }

    /// [`Value::decode`] with the given limits.
    ///
    /// ```
    /// use thinger_core::pson::{DecodeOptions, Error, Value};
    /// let nested = [0xe1, 0xe1, 0xe0]; // [[[]]]
    /// let options = DecodeOptions::new().max_depth(2);
    /// assert_eq!(Value::decode_with(&nested, &options), Err(Error::DepthLimitExceeded));
    /// assert!(Value::decode_with(&nested, &DecodeOptions::new()).is_ok());
    /// ```
    pub fn decode_with(input: &[u8], options: &DecodeOptions) -> Result<Value, Error> {
        Ok(Value::from_ref(PsonRef::decode_with(input, options)?))
    }

    /// Copies a decoded, borrowed value into an owned tree.
    ///
    /// The conversion does not recurse: it walks the tree with a heap stack whose height is
    /// the value's nesting depth, which the decoder already bounded.
    ///
    /// ```
    /// use thinger_core::pson::{PsonRef, Value};
    /// let view = PsonRef::decode(&[0xc1, 0x81, b'a', 0x61]).unwrap();
    /// assert_eq!(Value::from_ref(view), thinger_core::pson!({"a": true}));
    /// ```
    pub fn from_ref(value: PsonRef<'_>) -> Value {
        let mut stack: Vec<Frame<'_>> = Vec::new();
        let mut next = Some(value);
        loop {
            let mut completed = match next.take() {
                Some(PsonRef::Map(map)) => {
                    stack.push(Frame::Map {
                        iter: map.iter(),
                        items: Vec::with_capacity(map.len()),
                        key: String::new(),
                    });
                    None
                }
                Some(PsonRef::Array(array)) => {
                    stack.push(Frame::Array { iter: array.iter(), items: Vec::with_capacity(array.len()) });
                    None
                }
                Some(PsonRef::Null) => Some(Value::Null),
                Some(PsonRef::Bool(b)) => Some(Value::Bool(b)),
                Some(PsonRef::Uint(v)) => Some(Value::Uint(v)),
                Some(PsonRef::Int(v)) => Some(Value::Int(v)),
                Some(PsonRef::F32(f)) => Some(Value::F32(f)),
                Some(PsonRef::F64(f)) => Some(Value::F64(f)),
                Some(PsonRef::Str(s)) => Some(Value::Str(s.to_owned())),
                Some(PsonRef::Bytes(b)) => Some(Value::Bytes(b.to_vec())),
                None => None,
            };
            // Hand the finished value to its parent and find the next child to convert.
            loop {
                let Some(frame) = stack.last_mut() else {
                    return completed.unwrap_or(Value::Null);
                };
                match frame {
                    Frame::Map { iter, items, key } => {
                        if let Some(value) = completed.take() {
                            items.push((core::mem::take(key), value));
                        }
                        if let Some((k, child)) = iter.next() {
                            *key = k.to_owned();
                            next = Some(child);
                            break;
                        }
                    }
                    Frame::Array { iter, items } => {
                        if let Some(value) = completed.take() {
                            items.push(value);
                        }
                        if let Some(child) = iter.next() {
                            next = Some(child);
                            break;
                        }
                    }
                }
                completed = stack.pop().map(Frame::finish);
            }
        }
    }
}

/// One container being converted by [`Value::from_ref`].
enum Frame<'a> {
    Map { iter: MapIter<'a>, items: Vec<(String, Value)>, key: String },
    Array { iter: ArrayIter<'a>, items: Vec<Value> },
}

impl Frame<'_> {
    fn finish(self) -> Value {
        match self {
            Frame::Map { items, .. } => Value::Map(items),
            Frame::Array { items, .. } => Value::Array(items),
        }
    }
}

impl From<PsonRef<'_>> for Value {
    /// Same as [`Value::from_ref`].
    fn from(value: PsonRef<'_>) -> Self {
        Value::from_ref(value)
    }
}
