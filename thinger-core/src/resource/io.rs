//! Input and output views handed to resource handlers.

use crate::pson::{self, EncodePson, Encoder, PsonRef, SliceSink, WireType};
use crate::varint;

/// The input of a call: the PSON value the server sent, borrowed from the receive buffer.
///
/// Empty when the server sent no payload (for an input resource that means "report your
/// current state").
///
/// ```
/// use thinger_core::pson::PsonRef;
/// use thinger_core::resource::Input;
/// let bytes = [0xc1, 0x81, b'a', 0x02]; // {"a": 2}
/// let input = Input::from_pson(&bytes).unwrap();
/// assert_eq!(input.get("a").and_then(|v| v.as_u64()), Some(2));
/// assert!(Input::empty().is_empty());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Input<'i> {
    value: Option<PsonRef<'i>>,
    raw: Option<&'i [u8]>,
}

impl<'i> Input<'i> {
    /// No input.
    pub const fn empty() -> Self {
        Input { value: None, raw: None }
    }
    /// An input from a decoded value and, when known, its encoded bytes.
    pub const fn new(value: Option<PsonRef<'i>>, raw: Option<&'i [u8]>) -> Self {
        Input { value, raw }
    }
    /// An input decoded from PSON bytes.
    pub fn from_pson(bytes: &'i [u8]) -> Result<Self, pson::Error> {
        Ok(Input { value: Some(PsonRef::decode(bytes)?), raw: Some(bytes) })
    }
    /// Whether the server sent nothing.
    pub fn is_empty(&self) -> bool {
        self.value.is_none()
    }
    /// The value, if any.
    pub fn value(&self) -> Option<PsonRef<'i>> {
        self.value
    }
    /// The value, borrowed.
    pub(crate) fn value_ref(&self) -> Option<&PsonRef<'i>> {
        self.value.as_ref()
    }
    /// The encoded PSON bytes, when the value arrived as PSON (not as a varint).
    pub fn raw(&self) -> Option<&'i [u8]> {
        self.raw
    }
    /// A field of a map input.
    pub fn get(&self, key: &str) -> Option<PsonRef<'i>> {
        self.value?.get(key)
    }
    /// The input (or `input[key]` when the input is a map holding `key`) as a bool.
    pub fn as_bool(&self) -> Option<bool> {
        self.value?.as_bool()
    }
    /// The input as a number.
    pub fn as_f64(&self) -> Option<f64> {
        self.value?.as_f64()
    }
    /// A numeric field of a map input.
    pub fn f64(&self, key: &str) -> Option<f64> {
        self.get(key)?.as_f64()
    }
    /// An integer field of a map input.
    pub fn i64(&self, key: &str) -> Option<i64> {
        self.get(key)?.as_i64()
    }
    /// A boolean field of a map input.
    pub fn bool(&self, key: &str) -> Option<bool> {
        self.get(key)?.as_bool()
    }
    /// A string field of a map input.
    pub fn str(&self, key: &str) -> Option<&'i str> {
        self.get(key)?.as_str()
    }

    /// Deserializes the input into `T` (serde), borrowing strings from the frame.
    ///
    /// An empty input deserializes as PSON `null` (so `Option<T>` gives `None`).
    ///
    /// ```
    /// #[derive(serde::Deserialize)]
    /// struct Led { on: bool }
    /// let bytes = [0xc1, 0x82, b'o', b'n', 0x61];
    /// let input = thinger_core::resource::Input::from_pson(&bytes).unwrap();
    /// assert!(input.deserialize::<Led>().unwrap().on);
    /// ```
    #[cfg(feature = "serde")]
    pub fn deserialize<T: serde::Deserialize<'i>>(&self) -> Result<T, pson::Error> {
        match (self.raw, self.value) {
            (Some(raw), _) => pson::from_slice(raw),
            (None, Some(PsonRef::Uint(v))) => T::deserialize(serde::de::value::U64Deserializer::<pson::Error>::new(v)),
            (None, _) => T::deserialize(serde::de::value::UnitDeserializer::<pson::Error>::new()),
        }
    }
}

/// A field's value as a trait object (see [`Output::field`]).
trait FieldValue {
    fn encode_field(&self, enc: &mut Encoder<SliceSink<'_>>) -> Result<(), pson::Error>;
}

/// A borrowed [`EncodePson`] value, sized so it can be a `dyn FieldValue`.
struct FieldRef<'a, T: ?Sized>(&'a T);

impl<T: EncodePson + ?Sized> FieldValue for FieldRef<'_, T> {
    fn encode_field(&self, enc: &mut Encoder<SliceSink<'_>>) -> Result<(), pson::Error> {
        self.0.encode_pson(enc)
    }
}

/// Room reserved in front of a map built field by field, for its header.
const MAP_RESERVE: usize = 1 + varint::MAX_LEN_U64;

/// Where a handler writes its output: one PSON value, written straight into the session's
/// transmit buffer (no allocation).
///
/// Write a whole value with [`Output::set`], or build a map field by field with
/// [`Output::field`] (the map header is fixed up when the handler returns).
///
/// ```
/// use thinger_core::resource::Output;
/// let mut buf = [0u8; 64];
/// let mut out = Output::new(&mut buf);
/// out.field("temperature", &23.5).unwrap();
/// out.field("humidity", &60u8).unwrap();
/// let n = out.finish().unwrap();
/// assert_eq!(&buf[..2], &[0xc2, 0x8b]); // a 2-pair map, then "temperature"
/// assert_eq!(n, 29);
/// ```
// One encoder for the output's life (its sink's position is the length written): a write
// does not set up an encoder of its own, which each `set` inlined into a handler did. The
// state is the map's pair count: 0 is a whole value, or nothing when nothing was written
// (every PSON value takes a byte at least).
#[derive(Debug)]
pub struct Output<'o> {
    enc: Encoder<SliceSink<'o>>,
    pairs: usize,
    error: Option<pson::Error>,
}

impl<'o> Output<'o> {
    /// An empty output writing into `buf`.
    pub fn new(buf: &'o mut [u8]) -> Self {
        Output { enc: Encoder::new(SliceSink::new(buf)), pairs: 0, error: None }
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.pairs == 0 && self.enc.sink().written() == 0
    }

    /// Replaces the output with `value`.
    pub fn set<T: EncodePson + ?Sized>(&mut self, value: &T) -> Result<(), pson::Error> {
        #[cfg(target_os = "none")]
        if let Some((wire, v)) = value.as_tag() {
            return self.set_tag(wire, v);
        }
        self.pairs = 0;
        self.enc.sink_mut().set_written(0);
        let result = value.encode_pson(&mut self.enc);
        self.record(result)
    }

    /// [`Output::set`] of an unsigned integer or a `bool` (microcontrollers): one copy of
    /// the bookkeeping, not one inlined into every handler that sets one.
    #[cfg(any(target_os = "none", test))]
    #[cfg_attr(target_os = "none", inline(never))]
    fn set_tag(&mut self, wire: WireType, value: u64) -> Result<(), pson::Error> {
        self.pairs = 0;
        self.enc.sink_mut().set_written(0);
        #[cfg(target_os = "none")]
        let result = self.enc.tag(wire, value);
        // Hosts (the tests): the microcontrollers' `tag` itself.
        #[cfg(not(target_os = "none"))]
        let result = self.enc.tag_compact(wire, value);
        if result.is_err() {
            // That `tag` writes byte by byte: the first bytes of a tag that did not fit are
            // not left in the output, which is then empty, as on hosts (whose `tag` writes
            // nothing when it fails).
            self.enc.sink_mut().set_written(0);
        }
        self.record(result)
    }

    /// Replaces the output with whatever `write` encodes (exactly one value).
    pub fn write<F>(&mut self, write: F) -> Result<(), pson::Error>
    where
        F: FnOnce(&mut Encoder<SliceSink<'_>>) -> Result<(), pson::Error>,
    {
        self.pairs = 0;
        self.enc.sink_mut().set_written(0);
        let result = write(&mut self.enc);
        self.record(result)
    }

    /// Replaces the output with a serde value.
    #[cfg(feature = "serde")]
    pub fn serialize<T: serde::Serialize + ?Sized>(&mut self, value: &T) -> Result<(), pson::Error> {
        self.set(&pson::Serde(value))
    }

    /// Adds `key: value` to a map output (starting the map on the first call).
    // A thin wrapper: the map bookkeeping and the key are written by one out-of-line
    // `field_dyn` for every value type, which only calls back for the value itself.
    #[inline]
    pub fn field<T: EncodePson + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), pson::Error> {
        self.field_dyn(key, &FieldRef(value))
    }

    /// [`Output::field`] with the value behind a trait object: one copy of the field
    /// writer, not one per value type and call site.
    #[inline(never)]
    fn field_dyn(&mut self, key: &str, value: &dyn FieldValue) -> Result<(), pson::Error> {
        // Every outcome through one `record` call.
        let result = if self.pairs == 0 && self.enc.sink().written() > 0 {
            // A whole value was written: no map after it.
            Err(pson::Error::Unsupported)
        } else if self.pairs == 0 && self.enc.sink_mut().buffer().len() < MAP_RESERVE {
            Err(pson::Error::BufferFull)
        } else {
            if self.pairs == 0 {
                self.enc.sink_mut().set_written(MAP_RESERVE);
            }
            // Counted before it is written: a failed pair leaves the position inside it,
            // and the error is kept, so `finish` reports it whatever follows.
            self.pairs += 1;
            self.enc.str(key).and_then(|_| value.encode_field(&mut self.enc))
        };
        self.record(result)
    }

    /// Adds a serde value as `key: value` to a map output.
    #[cfg(feature = "serde")]
    pub fn serialize_field<T: serde::Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), pson::Error> {
        self.field(key, &pson::Serde(value))
    }

    // Out of line on microcontrollers: one copy for every write's result, not one per
    // handler (the `set` calls inline into them).
    #[cfg_attr(target_os = "none", inline(never))]
    fn record(&mut self, result: Result<(), pson::Error>) -> Result<(), pson::Error> {
        if let Err(e) = result {
            self.error.get_or_insert(e);
        }
        result
    }

    /// Marks the call's input as refused: [`Output::finish`] then fails with
    /// [`pson::Error::UnexpectedType`], which the session answers 400 `"bad input"` (the
    /// DSL handlers' refusal, without building a `HandlerError` in each).
    pub(crate) fn refuse_input(&mut self) {
        let _ = self.record(Err(pson::Error::UnexpectedType));
    }

    /// The first error any write hit (a handler that ignored it still gets an ERROR reply).
    pub fn error(&self) -> Option<pson::Error> {
        self.error
    }

    /// Completes the output and returns its length in bytes (0 when nothing was written).
    pub fn finish(self) -> Result<usize, pson::Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let mut enc = self.enc;
        let len = enc.sink().written();
        match self.pairs {
            0 => Ok(len),
            pairs => {
                // The header goes straight into the room reserved for it (through the
                // output's own encoder, from the start: a header is at most `MAP_RESERVE`
                // bytes, so it ends before the pairs), then the pairs move down behind it.
                enc.sink_mut().set_written(0);
                enc.tag(WireType::Map, pairs as u64)?;
                let mut sink = enc.into_sink();
                let h = sink.written();
                let body = len - MAP_RESERVE;
                crate::pson::copy_down(sink.buffer(), MAP_RESERVE, len, h);
                Ok(h + body)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_is_reported_whatever_follows() {
        // A pair that does not fit, then one that would: the first error stays.
        let mut buf = [0u8; 16];
        let mut out = Output::new(&mut buf);
        assert_eq!(out.field("k", "a long value"), Err(pson::Error::BufferFull));
        assert!(out.field("k", &1u8).is_ok());
        assert_eq!(out.finish(), Err(pson::Error::BufferFull));
        // Then a whole value over it.
        let mut buf = [0u8; 16];
        let mut out = Output::new(&mut buf);
        assert!(out.field("k", "a long value").is_err());
        assert!(out.set(&1u8).is_ok());
        assert_eq!(out.error(), Some(pson::Error::BufferFull));
        assert_eq!(out.finish(), Err(pson::Error::BufferFull));
        // No room for a map header.
        let mut buf = [0u8; MAP_RESERVE - 1];
        let mut out = Output::new(&mut buf);
        assert_eq!(out.field("k", &1u8), Err(pson::Error::BufferFull));
        assert_eq!(out.finish(), Err(pson::Error::BufferFull));
    }

    /// The microcontrollers' `set` of an integer or `bool` (through `as_tag` and
    /// `set_tag`) writes the bytes of the general `set`.
    fn same_as_set<T: EncodePson>(value: T) {
        let (mut general, mut tagged) = ([0u8; 16], [0u8; 16]);
        let mut out = Output::new(&mut general);
        out.set(&value).unwrap();
        let n = out.finish().unwrap();
        let (wire, v) = value.as_tag().unwrap();
        let mut out = Output::new(&mut tagged);
        out.set_tag(wire, v).unwrap();
        assert_eq!(out.finish(), Ok(n));
        assert_eq!(general[..n], tagged[..n]);
    }

    #[test]
    fn integers_and_bools_through_their_tag() {
        for v in [0u64, 1, 30, 31, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            same_as_set(v);
            same_as_set(v as usize);
            same_as_set(v as u8);
            same_as_set(v as u16);
            same_as_set(v as u32);
            same_as_set(v as i64);
            same_as_set(-(v as i64));
            same_as_set(v as i8);
            same_as_set(v as i16);
            same_as_set(v as i32);
            same_as_set(v as isize);
        }
        same_as_set(i64::MIN);
        same_as_set(true);
        same_as_set(false);
        // A tag that does not fit fails like the general write, and is reported.
        let mut buf = [0u8; 2];
        let mut out = Output::new(&mut buf);
        assert_eq!(out.set_tag(WireType::PositiveInt, 300), Err(pson::Error::BufferFull));
        // Nothing of it is left: the output is empty, and a field fails for want of room.
        assert!(out.is_empty());
        assert_eq!(out.field("k", &1u8), Err(pson::Error::BufferFull));
        assert_eq!(out.finish(), Err(pson::Error::BufferFull));
    }

    #[test]
    fn values_and_maps_written_again_from_the_start() {
        let mut buf = [0u8; 32];
        let mut out = Output::new(&mut buf);
        out.set("long text").unwrap();
        out.set(&7u8).unwrap();
        assert_eq!(out.finish(), Ok(1));
        assert_eq!(buf[0], 7);
        // A map that fills the buffer exactly: header room, then two pairs.
        let mut buf = [0u8; MAP_RESERVE + 6];
        let mut out = Output::new(&mut buf);
        out.field("a", &1u8).unwrap();
        out.field("b", &2u8).unwrap();
        assert_eq!(out.field("c", &3u8), Err(pson::Error::BufferFull));
        let mut buf = [0u8; MAP_RESERVE + 6];
        let mut out = Output::new(&mut buf);
        out.field("a", &1u8).unwrap();
        out.field("b", &2u8).unwrap();
        assert_eq!(out.finish(), Ok(7));
        assert_eq!(&buf[..7], &[0xc2, 0x81, b'a', 0x01, 0x81, b'b', 0x02]);
        // A pair after a whole value is refused; a whole value replaces a map.
        let mut buf = [0u8; 32];
        let mut out = Output::new(&mut buf);
        assert!(out.is_empty());
        out.set(&1u8).unwrap();
        assert!(!out.is_empty());
        assert_eq!(out.field("a", &1u8), Err(pson::Error::Unsupported));
        let mut buf = [0u8; 32];
        let mut out = Output::new(&mut buf);
        out.field("a", &1u8).unwrap();
        assert!(!out.is_empty());
        out.set(&true).unwrap();
        assert_eq!(out.finish(), Ok(1));
        assert_eq!(buf[0], 0x61);
        assert_eq!(Output::new(&mut [0u8; 4]).finish(), Ok(0));
    }

    #[test]
    fn map_headers_of_every_length_land_in_front_of_the_pairs() {
        // 30 pairs: the count in the tag byte; 31 and more: `0xdf` and a varint (2 bytes
        // from 128 pairs on).
        for n in [1usize, 30, 31, 127, 128, 300] {
            let mut buf = std::vec![0u8; MAP_RESERVE + 3 * n];
            let mut out = Output::new(&mut buf);
            for _ in 0..n {
                out.field("k", &0u8).unwrap();
            }
            let len = out.finish().unwrap();
            let mut want = std::vec::Vec::new();
            if n < 31 {
                want.push(0xc0 | n as u8);
            } else {
                let (varint, k) = varint::to_array(n as u64);
                want.push(0xdf);
                want.extend_from_slice(&varint[..k]);
            }
            for _ in 0..n {
                want.extend_from_slice(&[0x81, b'k', 0x00]);
            }
            assert_eq!(&buf[..len], &want[..], "{n}");
        }
    }
}
