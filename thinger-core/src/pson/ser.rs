//! serde `Serializer` for PSON through an [`Encoder`]; the mapping is documented on [`Serializer`].

use core::fmt::{self, Display, Write as _};

use serde::Serialize;
use serde::ser::{self, Impossible};

use super::{EncodePson, Encoder, Error, Sink, SizeCounter, SliceSink};

impl ser::Error for Error {
    /// Any error raised by a `Serialize` implementation becomes [`Error::Custom`] (the
    /// message is dropped: the error type carries no heap data).
    fn custom<T: Display>(_msg: T) -> Self {
        Error::Custom
    }
}

/// A serde [`Serializer`](serde::Serializer) that writes PSON to a [`Sink`].
///
/// Mapping of the serde data model (externally tagged enums, like `serde_json`):
///
/// | serde | PSON |
/// |---|---|
/// | `bool` | discrete false/true |
/// | integers | type 0 / type 1; `i128`/`u128` only when they fit in `i64` or `u64`, else [`Error::Unsupported`] |
/// | `f32`, `f64` | the encoder's float rules (whole numbers become integers, f32 when exact) |
/// | `char`, `str` | string |
/// | bytes (`serialize_bytes`) | byte string (type 5); note that `&[u8]`/`Vec<u8>` serialize as a sequence |
/// | `None`, `()`, unit struct | null |
/// | `Some(x)`, newtype struct | `x` |
/// | seq, tuple, tuple struct | array |
/// | map, struct | map (struct: field names as keys) |
/// | unit variant | string with the variant name |
/// | newtype / tuple / struct variant | one-entry map `{variant: value}` |
///
/// PSON writes element counts before the elements, so:
/// * a sequence or map whose length serde does not know (`len == None`, e.g. from
///   `#[serde(flatten)]` or `collect_seq` over an iterator without an exact size) is
///   [`Error::Unsupported`];
/// * the number of elements actually written must equal the length serde declared.
///   `#[derive(Serialize)]` already declares the count *after* `skip_serializing_if`
///   (as serde's contract requires: `len` excludes fields skipped with `skip_field`), so
///   skipped fields produce a minimal, correct header. A hand-written `Serialize` that
///   declares a wrong length is refused with [`Error::Custom`] instead of producing
///   corrupt output.
///
/// Map keys must be strings on the wire: `str`, `char`, unit variants and newtype structs
/// around them are written as strings; integer keys are written as their decimal string
/// (`{1: x}` → `{"1": x}`, like `serde_json`; the deserializer parses them back). Any
/// other key type is [`Error::NonStringKey`].
///
/// Like `serde_json`, `Some(())` is written as null and reads back as `None`, and the
/// format reports itself as human-readable (so e.g. IP addresses are written as strings).
///
/// The serde traits are implemented for `&mut Serializer<S>`. Most code wants
/// [`to_slice`], [`serialized_len`] or [`Serde`] instead.
///
/// ```
/// use serde::Serialize;
/// use thinger_core::pson::{Serializer, SliceSink};
///
/// #[derive(Serialize)]
/// struct Led { on: bool }
///
/// let mut buf = [0u8; 8];
/// let mut ser = Serializer::new(SliceSink::new(&mut buf));
/// Led { on: true }.serialize(&mut ser).unwrap();
/// assert_eq!(ser.into_sink().as_written(), &[0xc1, 0x82, b'o', b'n', 0x61]);
/// ```
#[derive(Debug)]
pub struct Serializer<S> {
    enc: Encoder<S>,
}

impl<S: Sink> Serializer<S> {
    /// A serializer writing to `sink`.
    ///
    /// ```
    /// use serde::Serialize;
    /// use thinger_core::pson::{Serializer, SizeCounter};
    /// let mut ser = Serializer::new(SizeCounter::default());
    /// "hello".serialize(&mut ser).unwrap();
    /// assert_eq!(ser.into_sink().len(), 6);
    /// ```
    #[inline]
    pub fn new(sink: S) -> Self {
        Serializer { enc: Encoder::new(sink) }
    }

    /// A serializer continuing with an existing encoder (e.g. after writing a header by hand).
    ///
    /// ```
    /// use serde::Serialize;
    /// use thinger_core::pson::{Encoder, Serializer, SliceSink};
    /// let mut buf = [0u8; 8];
    /// let mut enc = Encoder::new(SliceSink::new(&mut buf));
    /// enc.array_header(2).unwrap();
    /// enc.u64(1).unwrap();
    /// let mut ser = Serializer::from_encoder(enc);
    /// Some(2u8).serialize(&mut ser).unwrap();
    /// assert_eq!(ser.into_sink().as_written(), &[0xe2, 0x01, 0x02]);
    /// ```
    #[inline]
    pub fn from_encoder(enc: Encoder<S>) -> Self {
        Serializer { enc }
    }

    /// The underlying encoder.
    ///
    /// ```
    /// use thinger_core::pson::{Serializer, SizeCounter};
    /// let enc = Serializer::new(SizeCounter::default()).into_encoder();
    /// assert!(enc.sink().is_empty());
    /// ```
    #[inline]
    pub fn into_encoder(self) -> Encoder<S> {
        self.enc
    }

    /// The sink, with everything written so far.
    ///
    /// ```
    /// use serde::Serialize;
    /// use thinger_core::pson::{Serializer, SizeCounter};
    /// let mut ser = Serializer::new(SizeCounter::default());
    /// ().serialize(&mut ser).unwrap();
    /// assert_eq!(ser.into_sink().len(), 1);
    /// ```
    #[inline]
    pub fn into_sink(self) -> S {
        self.enc.into_sink()
    }

    /// Writes `value`'s `Display` output as a PSON string. The output is formatted twice
    /// (once to learn its length, once to write it); it must not change in between.
    fn display_str<T: Display + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let mut counter = CountWriter(0);
        write!(counter, "{value}").map_err(|_| Error::Custom)?;
        self.enc.tag(super::WireType::String, counter.0 as u64)?;
        let mut out = SinkWriter { enc: &mut self.enc, left: counter.0, error: None };
        let formatted = write!(out, "{value}");
        if let Some(err) = out.error {
            return Err(err);
        }
        if formatted.is_err() || out.left != 0 {
            // A Display impl whose output changed between the two passes.
            return Err(Error::Custom);
        }
        Ok(())
    }

    fn start(&mut self, kind: Kind, len: usize) -> Result<Compound<'_, S>, Error> {
        match kind {
            Kind::Array => self.enc.array_header(len)?,
            Kind::Map => self.enc.map_header(len)?,
        }
        Ok(Compound {
            ser: self,
            declared: len,
            written: 0,
            value_pending: false,
            #[cfg(not(target_os = "none"))]
            header: 0,
        })
    }

    /// A struct: on hosts, a header with the count in its tag byte waits for the first key
    /// (see `Compound::field`).
    #[inline]
    fn start_struct(&mut self, len: usize) -> Result<Compound<'_, S>, Error> {
        #[cfg(not(target_os = "none"))]
        if (1..usize::from(super::EXTENDED)).contains(&len) {
            return Ok(Compound {
                ser: self,
                declared: len,
                written: 0,
                value_pending: false,
                header: ((super::WireType::Map as u8) << 5) | len as u8,
            });
        }
        self.start(Kind::Map, len)
    }

    /// A one-entry map `{variant: …}` whose value is written next.
    fn variant_wrapper(&mut self, variant: &str) -> Result<(), Error> {
        self.enc.map_header(1)?;
        self.enc.str(variant)
    }
}

/// Counts the bytes of formatted output.
struct CountWriter(usize);

impl fmt::Write for CountWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 = self.0.saturating_add(s.len());
        Ok(())
    }
}

/// Writes formatted output to an encoder, never more than `left` bytes.
struct SinkWriter<'a, S> {
    enc: &'a mut Encoder<S>,
    left: usize,
    error: Option<Error>,
}

impl<S: Sink> fmt::Write for SinkWriter<'_, S> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.left = match self.left.checked_sub(s.len()) {
            Some(left) => left,
            None => return Err(fmt::Error),
        };
        self.enc.raw(s.as_bytes()).map_err(|e| {
            self.error = Some(e);
            fmt::Error
        })
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Array,
    Map,
}

/// Serializes `value` as PSON into `buf` and returns the number of bytes written.
///
/// Errors: [`Error::BufferFull`] when `buf` is too small, [`Error::Unsupported`] for data
/// PSON cannot express (see the mapping on [`Serializer`]), [`Error::NonStringKey`] for map
/// keys that are not strings or integers, [`Error::Custom`] when the `Serialize`
/// implementation fails or declares a wrong length.
///
/// As with [`encode_to_slice`](super::encode_to_slice), on hosts a value with a string or
/// byte string of 128 bytes or more (or an integer of 2^21 or more in the last 10 bytes of
/// a buffer of 256 bytes or more) is serialized twice: `serialize` should produce the same
/// value each time and have no other side effect.
///
/// After an error the contents of `buf` are unspecified (as with
/// [`encode_to_slice`](super::encode_to_slice)); use only the first `n` bytes of an `Ok(n)`.
///
/// ```
/// use serde::Serialize;
///
/// #[derive(Serialize)]
/// struct Reading<'a> { humidity: u8, label: &'a str, pressure: u16, temperature: f64 }
///
/// let reading = Reading { humidity: 60, label: "outdoor", pressure: 1013, temperature: 23.5 };
/// let mut buf = [0u8; 64];
/// let n = thinger_core::pson::to_slice(&reading, &mut buf).unwrap();
/// assert_eq!(n, 55);
/// let doc = thinger_core::pson::PsonRef::decode(&buf[..n]).unwrap();
/// assert_eq!(doc.get("label").and_then(|v| v.as_str()), Some("outdoor"));
/// ```
pub fn to_slice<T: Serialize + ?Sized>(value: &T, buf: &mut [u8]) -> Result<usize, Error> {
    // Hosts: a roomy buffer takes a copy in which the compiler drops the room checks it
    // can prove (see `encode_to_slice`).
    #[cfg(not(target_os = "none"))]
    if buf.len() >= super::encode::ROOMY {
        let mut ser = Serializer::new(super::encode::RoomySink::new(buf));
        let result = value.serialize(&mut ser);
        // A refused write, whatever `serialize` made of it: the checked copy decides.
        if let Some(written) = ser.into_sink().unrefused() {
            return result.map(|()| written);
        }
    }
    // Out of line on hosts: its calls would otherwise make the roomy copy save registers.
    to_slice_checked(value, buf)
}

/// [`to_slice`] through the checked [`SliceSink`].
#[cfg_attr(not(target_os = "none"), inline(never))]
#[cfg_attr(target_os = "none", inline)]
fn to_slice_checked<T: Serialize + ?Sized>(value: &T, buf: &mut [u8]) -> Result<usize, Error> {
    let mut ser = Serializer::new(SliceSink::new(buf));
    value.serialize(&mut ser)?;
    Ok(ser.into_sink().written())
}

/// The number of bytes [`to_slice`] would write for `value` (a size-only pass: nothing is
/// written anywhere). Fails exactly when serializing would fail for a reason other than
/// the buffer size.
///
/// ```
/// let len = thinger_core::pson::serialized_len(&("on", 23.5f64)).unwrap();
/// assert_eq!(len, 1 + 3 + 5); // array tag, "on", f32 23.5
/// ```
pub fn serialized_len<T: Serialize + ?Sized>(value: &T) -> Result<usize, Error> {
    let mut ser = Serializer::new(SizeCounter::default());
    value.serialize(&mut ser)?;
    Ok(ser.into_sink().len())
}

/// Wraps any `T: Serialize` so it can be used where an [`EncodePson`] is expected (IOTMP
/// frame fields, resource outputs, [`encode_to_slice`](super::encode_to_slice)).
///
/// `T::serialize` may run twice for one encoding (see [`to_slice`]).
///
/// Serialization errors are returned from [`EncodePson::encode_pson`]; note that
/// [`encoded_len`](super::encoded_len) cannot report them (use [`serialized_len`]).
///
/// ```
/// use serde::Serialize;
/// use thinger_core::pson::{encode_to_slice, Serde};
///
/// #[derive(Serialize)]
/// enum Mode { Eco }
///
/// let mut buf = [0u8; 8];
/// let n = encode_to_slice(&Serde(Mode::Eco), &mut buf).unwrap();
/// assert_eq!(&buf[..n], &[0x83, b'E', b'c', b'o']);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Serde<T>(pub T);

impl<T: Serialize> EncodePson for Serde<T> {
    fn encode_pson<S: Sink>(&self, enc: &mut Encoder<S>) -> Result<(), Error> {
        let mut ser = Serializer::new(EncoderSink(enc));
        self.0.serialize(&mut ser)
    }
}

/// Lets a [`Serializer`] write through an encoder it only borrows.
struct EncoderSink<'a, S>(&'a mut Encoder<S>);

impl<S: Sink> Sink for EncoderSink<'_, S> {
    #[inline]
    fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.0.raw(bytes)
    }
}

fn u128_to_u64(v: u128) -> Result<u64, Error> {
    u64::try_from(v).map_err(|_| Error::Unsupported)
}

impl<'a, S: Sink> ser::Serializer for &'a mut Serializer<S> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'a, S>;
    type SerializeTuple = Compound<'a, S>;
    type SerializeTupleStruct = Compound<'a, S>;
    type SerializeTupleVariant = Compound<'a, S>;
    type SerializeMap = Compound<'a, S>;
    type SerializeStruct = Compound<'a, S>;
    type SerializeStructVariant = Compound<'a, S>;

    #[inline]
    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.enc.bool(v)
    }
    #[inline]
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.enc.i64(i64::from(v))
    }
    #[inline]
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.enc.i64(i64::from(v))
    }
    #[inline]
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.enc.i64(i64::from(v))
    }
    #[inline]
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        self.enc.i64(v)
    }
    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        // Anything in i64 ∪ u64 range has a PSON integer form.
        match (i64::try_from(v), u64::try_from(v)) {
            (Ok(v), _) => self.enc.i64(v),
            (_, Ok(v)) => self.enc.u64(v),
            _ => Err(Error::Unsupported),
        }
    }
    #[inline]
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.enc.u64(u64::from(v))
    }
    #[inline]
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.enc.u64(u64::from(v))
    }
    #[inline]
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.enc.u64(u64::from(v))
    }
    #[inline]
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.enc.u64(v)
    }
    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        self.enc.u64(u128_to_u64(v)?)
    }
    #[inline]
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        self.enc.f32(v)
    }
    #[inline]
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        self.enc.f64(v)
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        let mut utf8 = [0u8; 4];
        self.enc.str(v.encode_utf8(&mut utf8))
    }
    #[inline]
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.enc.str(v)
    }
    #[inline]
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        self.enc.bytes(v)
    }
    #[inline]
    fn serialize_none(self) -> Result<(), Error> {
        self.enc.null()
    }
    #[inline]
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    #[inline]
    fn serialize_unit(self) -> Result<(), Error> {
        self.enc.null()
    }
    #[inline]
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        self.enc.null()
    }
    #[inline]
    fn serialize_unit_variant(self, _name: &'static str, _index: u32, variant: &'static str) -> Result<(), Error> {
        self.enc.str(variant)
    }
    #[inline]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _name: &'static str, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.variant_wrapper(variant)?;
        value.serialize(self)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Compound<'a, S>, Error> {
        self.start(Kind::Array, len.ok_or(Error::Unsupported)?)
    }
    fn serialize_tuple(self, len: usize) -> Result<Compound<'a, S>, Error> {
        self.start(Kind::Array, len)
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<Compound<'a, S>, Error> {
        self.start(Kind::Array, len)
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'a, S>, Error> {
        self.variant_wrapper(variant)?;
        self.start(Kind::Array, len)
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Compound<'a, S>, Error> {
        self.start(Kind::Map, len.ok_or(Error::Unsupported)?)
    }
    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<Compound<'a, S>, Error> {
        self.start_struct(len)
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'a, S>, Error> {
        self.variant_wrapper(variant)?;
        self.start(Kind::Map, len)
    }
    fn collect_str<T: Display + ?Sized>(self, value: &T) -> Result<(), Error> {
        self.display_str(value)
    }
}

/// The state of an array or map being serialized: how many elements were declared in its
/// header and how many have been written.
#[derive(Debug)]
pub struct Compound<'a, S> {
    ser: &'a mut Serializer<S>,
    declared: usize,
    written: usize,
    /// A map key was written and its value has not been.
    value_pending: bool,
    /// Hosts: the header byte of a struct with 1 to 30 fields, not written yet (0: none),
    /// written with the first key.
    #[cfg(not(target_os = "none"))]
    header: u8,
}

impl<S: Sink> Compound<'_, S> {
    /// Counts one more element, refusing more than the header declared.
    #[inline]
    fn next(&mut self) -> Result<(), Error> {
        if self.written >= self.declared || self.value_pending {
            return Err(Error::Custom);
        }
        self.written += 1;
        Ok(())
    }

    #[inline]
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.next()?;
        value.serialize(&mut *self.ser)
    }

    #[cfg_attr(not(target_os = "none"), inline(always))]
    #[cfg_attr(target_os = "none", inline)]
    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), Error> {
        self.next()?;
        // Hosts: a struct's header waits for its first key, and a short key goes to the
        // sink with its tag (and that header) as one write, which the roomy sink of
        // `to_slice` copies as fixed-size pieces of constants (the field names are
        // literals): `payload/encode/serde` 84 -> 82 instructions (callgrind).
        #[cfg(not(target_os = "none"))]
        if key.len() < usize::from(super::EXTENDED) {
            let header = core::mem::take(&mut self.header);
            let tag = ((super::WireType::String as u8) << 5) | key.len() as u8;
            self.ser.enc.sink_mut().write_key(header, tag, key.as_bytes())?;
            return value.serialize(&mut *self.ser);
        }
        #[cfg(not(target_os = "none"))]
        self.write_header()?;
        self.ser.enc.str(key)?;
        value.serialize(&mut *self.ser)
    }

    /// Writes a header that waits for the first key (hosts), if any.
    #[cfg(not(target_os = "none"))]
    #[inline(always)]
    fn write_header(&mut self) -> Result<(), Error> {
        match core::mem::take(&mut self.header) {
            0 => Ok(()),
            header => self.ser.enc.sink_mut().write_byte(header),
        }
    }

    #[inline]
    fn finish(self) -> Result<(), Error> {
        if self.written != self.declared || self.value_pending { Err(Error::Custom) } else { Ok(()) }
    }
}

impl<S: Sink> ser::SerializeSeq for Compound<'_, S> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl<S: Sink> ser::SerializeTuple for Compound<'_, S> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl<S: Sink> ser::SerializeTupleStruct for Compound<'_, S> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl<S: Sink> ser::SerializeTupleVariant for Compound<'_, S> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl<S: Sink> ser::SerializeMap for Compound<'_, S> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.next()?;
        key.serialize(MapKeySerializer { ser: &mut *self.ser })?;
        self.value_pending = true;
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        if !self.value_pending {
            return Err(Error::Custom);
        }
        self.value_pending = false;
        value.serialize(&mut *self.ser)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl<S: Sink> ser::SerializeStruct for Compound<'_, S> {
    type Ok = ();
    type Error = Error;
    // Inlined on hosts: a struct's fields then encode as one straight run of writes with
    // its literal keys, like a hand-written encoder; microcontrollers keep one copy per
    // field type (flash).
    #[cfg_attr(not(target_os = "none"), inline(always))]
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        self.field(key, value)
    }
    #[cfg_attr(not(target_os = "none"), inline)]
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

impl<S: Sink> ser::SerializeStructVariant for Compound<'_, S> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Error> {
        self.field(key, value)
    }
    fn end(self) -> Result<(), Error> {
        self.finish()
    }
}

/// Writes a map key: strings as they are, integers as decimal strings, anything else is
/// [`Error::NonStringKey`].
struct MapKeySerializer<'a, S> {
    ser: &'a mut Serializer<S>,
}

impl<S: Sink> MapKeySerializer<'_, S> {
    #[inline]
    fn display<T: Display>(self, v: T) -> Result<(), Error> {
        self.ser.display_str(&v)
    }
}

impl<S: Sink> ser::Serializer for MapKeySerializer<'_, S> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Impossible<(), Error>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Impossible<(), Error>;
    type SerializeStruct = Impossible<(), Error>;
    type SerializeStructVariant = Impossible<(), Error>;

    fn serialize_bool(self, _v: bool) -> Result<(), Error> {
        Err(Error::NonStringKey)
    }
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.display(v)
    }
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.display(v)
    }
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.display(v)
    }
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        self.display(v)
    }
    fn serialize_i128(self, v: i128) -> Result<(), Error> {
        self.display(v)
    }
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.display(v)
    }
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.display(v)
    }
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.display(v)
    }
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        self.display(v)
    }
    fn serialize_u128(self, v: u128) -> Result<(), Error> {
        self.display(v)
    }
    fn serialize_f32(self, _v: f32) -> Result<(), Error> {
        Err(Error::NonStringKey)
    }
    fn serialize_f64(self, _v: f64) -> Result<(), Error> {
        Err(Error::NonStringKey)
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        ser::Serializer::serialize_char(&mut *self.ser, v)
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        self.ser.enc.str(v)
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<(), Error> {
        Err(Error::NonStringKey)
    }
    fn serialize_none(self) -> Result<(), Error> {
        Err(Error::NonStringKey)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<(), Error> {
        Err(Error::NonStringKey)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        Err(Error::NonStringKey)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        Err(Error::NonStringKey)
    }
    fn serialize_unit_variant(self, _name: &'static str, _index: u32, variant: &'static str) -> Result<(), Error> {
        self.ser.enc.str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _name: &'static str, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), Error> {
        Err(Error::NonStringKey)
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(Error::NonStringKey)
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, Error> {
        Err(Error::NonStringKey)
    }
    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Self::SerializeTupleStruct, Error> {
        Err(Error::NonStringKey)
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(Error::NonStringKey)
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(Error::NonStringKey)
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self::SerializeStruct, Error> {
        Err(Error::NonStringKey)
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(Error::NonStringKey)
    }
    fn collect_str<T: Display + ?Sized>(self, value: &T) -> Result<(), Error> {
        self.ser.display_str(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Serialize` that maps the serializer's error to its own (as user code may).
    struct Mapped<'a>(&'a str);

    impl serde::Serialize for Mapped<'_> {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            use serde::ser::Error as _;
            serializer.serialize_str(self.0).map_err(|_| S::Error::custom("mapped"))
        }
    }

    /// A string the roomy copy refuses is retried even when `serialize` changed the error:
    /// a larger buffer never fails where a smaller one succeeds.
    #[test]
    fn a_refused_write_is_retried_whatever_serialize_returns() {
        let text = "x".repeat(200);
        for room in [203, super::super::encode::ROOMY, 512] {
            let mut buf = std::vec![0u8; room];
            assert_eq!(to_slice(&Mapped(&text), &mut buf), Ok(203), "room {room}");
            assert_eq!(&buf[3..203], text.as_bytes());
            assert_eq!(super::super::encode_to_slice(&Serde(Mapped(&text)), &mut buf), Ok(203), "room {room}");
        }
        let mut small = [0u8; 202];
        assert_eq!(to_slice(&Mapped(&text), &mut small), Err(Error::Custom));
    }

    #[derive(serde::Serialize)]
    struct Reading<'a> {
        temperature: f64,
        humidity: u32,
        label: &'a str,
        values: &'a [u64],
    }

    /// Around the roomy-buffer threshold of `to_slice` (and far below and above it): the
    /// same bytes as the plain encoder, `BufferFull` at every shorter buffer, nothing
    /// written past the value.
    #[test]
    fn to_slice_at_every_room_around_the_roomy_copy() {
        let long = "y".repeat(200);
        let middle = "m".repeat(100);
        let values: std::vec::Vec<u64> = (0..30).map(|i| i * 1_000_003).collect();
        for (label, values) in [("outdoor", &values[..4]), (middle.as_str(), &values[..]), (long.as_str(), &values[..])]
        {
            let reading = Reading { temperature: 23.5, humidity: 60, label, values };
            let len = serialized_len(&reading).unwrap();
            let mut reference = std::vec![0u8; len];
            let mut ser = Serializer::new(SliceSink::new(&mut reference));
            reading.serialize(&mut ser).unwrap();
            assert_eq!(ser.into_sink().written(), len);
            super::super::encode::tests::check_rooms(&reference, |buf| to_slice(&reading, buf));
        }
    }
}
