//! Encoding a [`Value`] (the float rules of [`Encoder::f64`](crate::pson::Encoder::f64) for `F64`, `F32` as is).

use alloc::vec::Vec;

use super::Value;
use crate::pson::{EncodePson, Encoder, Error, Sink, SizeCounter, SliceSink};

impl Value {
    /// Encodes the value into a new vector of exactly the right size.
    ///
    /// ```
    /// use thinger_core::pson::Value;
    /// assert_eq!(Value::from(300u32).encode_to_vec(), vec![0x1f, 0xac, 0x02]);
    /// assert_eq!(Value::from(3.0f64).encode_to_vec(), vec![0x03]); // official float rules
    /// assert_eq!(Value::from(3.0f32).encode_to_vec(), vec![0x40, 0, 0, 0x40, 0x40]); // F32 as is
    /// ```
    pub fn encode_to_vec(&self) -> Vec<u8> {
        let mut counter = Encoder::new(SizeCounter::default());
        // A size counter cannot fail.
        let _ = self.encode_pson(&mut counter);
        let mut out = alloc::vec![0u8; counter.into_sink().len()];
        let mut enc = Encoder::new(SliceSink::new(&mut out));
        // The buffer has exactly the counted size, so this cannot fail either; if it somehow
        // did, the vector is cut to what was written rather than holding zeroes.
        let written = match self.encode_pson(&mut enc) {
            Ok(()) => enc.into_sink().written(),
            Err(_) => enc.into_sink().written(),
        };
        out.truncate(written);
        out
    }
}

impl EncodePson for Value {
    /// Writes the value; see [`Value`] for how floats are written.
    fn encode_pson<S: Sink>(&self, enc: &mut Encoder<S>) -> Result<(), Error> {
        match self {
            Value::Null => enc.null(),
            Value::Bool(b) => enc.bool(*b),
            Value::Uint(v) => enc.u64(*v),
            Value::Int(v) => enc.i64(*v),
            Value::F32(f) => enc.f32_raw(*f),
            Value::F64(f) => enc.f64(*f),
            Value::Str(s) => enc.str(s),
            Value::Bytes(b) => enc.bytes(b),
            Value::Map(pairs) => {
                enc.map_header(pairs.len())?;
                pairs.iter().try_for_each(|(k, v)| {
                    enc.str(k)?;
                    v.encode_pson(enc)
                })
            }
            Value::Array(items) => {
                enc.array_header(items.len())?;
                items.iter().try_for_each(|v| v.encode_pson(enc))
            }
        }
    }
}
