use super::{FieldId, FieldWire, MessageType};
use crate::pson::{self, EncodePson, Encoder, IoSink, Sink, SizeCounter, SliceSink};
use crate::varint;

/// Room reserved for the header while the body is written: a one-byte type (all known
/// types are below 128) and a `u32` size.
const RESERVED_HEADER: usize = 1 + varint::MAX_LEN_U32;

/// Writes one frame straight into a caller buffer, field by field.
///
/// The body is written after room reserved for the header; [`FrameWriter::finish`] writes
/// the real header and moves the body next to it. Fields must come in ascending id order
/// (so bytes are reproducible); out-of-order fields are refused with
/// [`pson::Error::Unsupported`]. The buffer needs 6 bytes of headroom beyond the frame.
///
/// ```
/// use thinger_core::iotmp::{FieldId, FrameWriter, MessageType};
/// let mut buf = [0u8; 32];
/// let mut w = FrameWriter::new(&mut buf, MessageType::Ok).unwrap();
/// w.varint(FieldId::StreamId, 7).unwrap();
/// w.pson(FieldId::Payload, |enc| {
///     enc.map_header(1)?;
///     enc.str("celsius")?;
///     enc.f64(22.5)
/// }).unwrap();
/// let n = w.finish();
/// // vector `ok_output`
/// assert_eq!(&buf[..n], &[0x01, 0x11, 0x08, 0x07, 0x1a, 0xc1, 0x87, b'c', b'e', b'l', b's',
///                         b'i', b'u', b's', 0x40, 0x00, 0x00, 0xb4, 0x41]);
/// ```
#[derive(Debug)]
pub struct FrameWriter<'b> {
    buf: &'b mut [u8],
    kind: u8,
    pos: usize,
    last_field: u8,
}

impl<'b> FrameWriter<'b> {
    /// Starts a frame of type `kind` at the start of `buf`.
    pub fn new(buf: &'b mut [u8], kind: MessageType) -> Result<Self, pson::Error> {
        if buf.len() < RESERVED_HEADER {
            return Err(pson::Error::BufferFull);
        }
        Ok(FrameWriter { buf, kind: kind as u8, pos: RESERVED_HEADER, last_field: 0 })
    }

    fn key(&mut self, field: FieldId, wire: FieldWire) -> Result<(), pson::Error> {
        let id = field as u8;
        if id <= self.last_field {
            return Err(pson::Error::Unsupported);
        }
        self.last_field = id;
        self.put_varint(u64::from(id << 3 | wire as u8))
    }

    fn put_varint(&mut self, value: u64) -> Result<(), pson::Error> {
        let dst = self.buf.get_mut(self.pos..).ok_or(pson::Error::BufferFull)?;
        let n = varint::encode_u64(value, dst).ok_or(pson::Error::BufferFull)?;
        self.pos += n;
        Ok(())
    }

    /// Writes a varint field (wire type 0).
    pub fn varint(&mut self, field: FieldId, value: u64) -> Result<&mut Self, pson::Error> {
        self.key(field, FieldWire::Varint)?;
        self.put_varint(value)?;
        Ok(self)
    }

    /// Writes a PSON field (wire type 2) whose value `write` encodes; it must write exactly
    /// one value.
    pub fn pson<F>(&mut self, field: FieldId, write: F) -> Result<&mut Self, pson::Error>
    where
        F: FnOnce(&mut Encoder<SliceSink<'_>>) -> Result<(), pson::Error>,
    {
        self.key(field, FieldWire::Pson)?;
        let dst = self.buf.get_mut(self.pos..).ok_or(pson::Error::BufferFull)?;
        let mut enc = Encoder::new(SliceSink::new(dst));
        write(&mut enc)?;
        self.pos += enc.into_sink().written();
        Ok(self)
    }

    /// Writes a field the way the reference encoder does: a non-negative integer as a
    /// varint, any other value as PSON.
    pub fn value<T: EncodePson + ?Sized>(&mut self, field: FieldId, value: &T) -> Result<&mut Self, pson::Error> {
        // Encode as PSON first; an unsigned integer is then rewritten as a varint.
        let key_pos = self.pos;
        let last = self.last_field;
        self.pson(field, |enc| value.encode_pson(enc))?;
        let value_start = key_pos + 1; // field keys 1..=4 with any wire type take one byte
        let encoded = self.buf.get(value_start..self.pos).unwrap_or(&[]);
        if let Ok((pson::PsonRef::Uint(v), _)) = pson::PsonRef::decode_prefix(encoded) {
            self.pos = key_pos;
            self.last_field = last;
            self.varint(field, v)?;
        }
        Ok(self)
    }

    /// Bytes of body written so far.
    pub fn body_len(&self) -> usize {
        self.pos - RESERVED_HEADER
    }

    /// Writes the header, moves the body next to it and returns the frame's length.
    pub fn finish(self) -> usize {
        let body_len = self.pos - RESERVED_HEADER;
        let (size, size_len) = varint::to_array(body_len as u64);
        let header_len = 1 + size_len;
        let start = RESERVED_HEADER - header_len;
        if let Some((kind, size_slot)) = self.buf.get_mut(start..RESERVED_HEADER).and_then(|h| h.split_first_mut()) {
            *kind = self.kind;
            size_slot.copy_from_slice(size.get(..size_len).unwrap_or(&[]));
        }
        pson::copy_down(self.buf, start, self.pos, 0);
        header_len + body_len
    }
}

/// An object-safe form of [`EncodePson`], so a frame can hold values of different types.
/// Implemented for every `EncodePson` type.
pub trait DynEncodePson {
    /// Encodes into any sink.
    fn encode_dyn(&self, enc: &mut Encoder<&mut dyn Sink>) -> Result<(), pson::Error>;
}

impl<T: EncodePson + ?Sized> DynEncodePson for T {
    fn encode_dyn(&self, enc: &mut Encoder<&mut dyn Sink>) -> Result<(), pson::Error> {
        self.encode_pson(enc)
    }
}

/// A field value to send.
#[derive(Clone, Copy)]
pub enum OutField<'a> {
    /// A varint (wire type 0).
    Varint(u64),
    /// A PSON value (wire type 2).
    Pson(&'a dyn DynEncodePson),
    /// Bytes that are already one valid PSON value (wire type 2).
    RawPson(&'a [u8]),
}

impl core::fmt::Debug for OutField<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            OutField::Varint(v) => f.debug_tuple("Varint").field(v).finish(),
            OutField::Pson(_) => f.write_str("Pson(..)"),
            OutField::RawPson(b) => f.debug_tuple("RawPson").field(b).finish(),
        }
    }
}

/// A whole frame to send, described by its fields; encodes in ascending field id.
///
/// ```
/// use thinger_core::iotmp::{MessageType, OutField, OutgoingMessage};
/// // vector `connect`
/// let credentials = ["user", "dev", "pass"];
/// let msg = OutgoingMessage::new(MessageType::Connect, 1234)
///     .payload(OutField::Pson(&credentials));
/// let mut buf = [0u8; 32];
/// let n = msg.encode(&mut buf).unwrap();
/// assert_eq!(n, msg.encoded_len());
/// assert_eq!(buf[..n], [0x03, 0x13, 0x08, 0xd2, 0x09, 0x1a, 0xe3, 0x84, b'u', b's', b'e',
///     b'r', 0x83, b'd', b'e', b'v', 0x84, b'p', b'a', b's', b's']);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct OutgoingMessage<'a> {
    /// Message type.
    pub kind: MessageType,
    /// `F1`; 0 leaves the field out.
    pub stream_id: u16,
    /// `F2`.
    pub parameters: Option<OutField<'a>>,
    /// `F3`.
    pub payload: Option<OutField<'a>>,
    /// `F4`.
    pub resource: Option<OutField<'a>>,
}

impl<'a> OutgoingMessage<'a> {
    /// A message with only a type and a stream id (0 = no `F1`).
    pub const fn new(kind: MessageType, stream_id: u16) -> Self {
        OutgoingMessage { kind, stream_id, parameters: None, payload: None, resource: None }
    }
    /// Sets `F2`.
    pub const fn parameters(mut self, value: OutField<'a>) -> Self {
        self.parameters = Some(value);
        self
    }
    /// Sets `F3`.
    pub const fn payload(mut self, value: OutField<'a>) -> Self {
        self.payload = Some(value);
        self
    }
    /// Sets `F4`.
    pub const fn resource(mut self, value: OutField<'a>) -> Self {
        self.resource = Some(value);
        self
    }

    fn write_body(&self, sink: &mut dyn Sink) -> Result<(), pson::Error> {
        let mut enc: Encoder<&mut dyn Sink> = Encoder::new(sink);
        if self.stream_id != 0 {
            write_key_varint(&mut enc, FieldId::StreamId, FieldWire::Varint)?;
            write_varint(&mut enc, u64::from(self.stream_id))?;
        }
        let fields = [
            (FieldId::Parameters, self.parameters),
            (FieldId::Payload, self.payload),
            (FieldId::Resource, self.resource),
        ];
        for (id, field) in fields {
            match field {
                None => {}
                Some(OutField::Varint(v)) => {
                    write_key_varint(&mut enc, id, FieldWire::Varint)?;
                    write_varint(&mut enc, v)?;
                }
                Some(OutField::Pson(value)) => {
                    write_key_varint(&mut enc, id, FieldWire::Pson)?;
                    value.encode_dyn(&mut enc)?;
                }
                Some(OutField::RawPson(bytes)) => {
                    write_key_varint(&mut enc, id, FieldWire::Pson)?;
                    enc.raw(bytes)?;
                }
            }
        }
        Ok(())
    }

    /// Body length in bytes.
    pub fn body_len(&self) -> usize {
        let mut counter = SizeCounter::default();
        let _ = self.write_body(&mut counter);
        counter.len()
    }

    /// Whole frame length in bytes.
    pub fn encoded_len(&self) -> usize {
        let body = self.body_len();
        1 + varint::len_u64(body as u64) + body
    }

    /// Encodes the frame into `buf`, returning its length, or [`pson::Error::BufferFull`].
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, pson::Error> {
        let body = self.body_len();
        let mut sink = SliceSink::new(buf);
        write_header(&mut sink, self.kind, body)?;
        self.write_body(&mut sink)?;
        Ok(sink.written())
    }

    /// Encodes the frame into a writer (a size-only pass first, so the header comes first).
    ///
    /// ```
    /// use thinger_core::iotmp::{MessageType, OutgoingMessage};
    /// let mut out = [0u8; 4];
    /// let n = OutgoingMessage::new(MessageType::KeepAlive, 0).encode_to(&mut out[..]).unwrap();
    /// assert_eq!(&out[..n], &[0x05, 0x00]);
    /// ```
    pub fn encode_to<W: embedded_io::Write>(&self, writer: W) -> Result<usize, pson::Error> {
        let body = self.body_len();
        let mut sink = IoSink::new(writer);
        let header = write_header(&mut sink, self.kind, body)?;
        self.write_body(&mut sink)?;
        Ok(header + body)
    }
}

fn write_header(sink: &mut dyn Sink, kind: MessageType, body: usize) -> Result<usize, pson::Error> {
    let (size, n) = varint::to_array(body as u64);
    sink.write_byte(kind as u8)?;
    sink.write(size.get(..n).unwrap_or(&[]))?;
    Ok(1 + n)
}

fn write_key_varint(enc: &mut Encoder<&mut dyn Sink>, id: FieldId, wire: FieldWire) -> Result<(), pson::Error> {
    enc.raw(&[(id as u8) << 3 | wire as u8])
}

fn write_varint(enc: &mut Encoder<&mut dyn Sink>, v: u64) -> Result<(), pson::Error> {
    let (bytes, n) = varint::to_array(v);
    enc.raw(bytes.get(..n).unwrap_or(&[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_refuses_out_of_order_fields() {
        let mut buf = [0u8; 16];
        let mut w = FrameWriter::new(&mut buf, MessageType::Run).unwrap();
        w.value(FieldId::Resource, &5u8).unwrap();
        assert_eq!(w.varint(FieldId::StreamId, 1).unwrap_err(), pson::Error::Unsupported);
    }

    #[test]
    fn writer_value_uses_varint_for_unsigned() {
        let mut buf = [0u8; 32];
        let mut w = FrameWriter::new(&mut buf, MessageType::Run).unwrap();
        w.varint(FieldId::StreamId, 300).unwrap();
        w.value(FieldId::Parameters, "env").unwrap();
        w.pson(FieldId::Payload, |e| {
            e.map_header(1)?;
            e.str("t")?;
            e.f64(22.5)
        })
        .unwrap();
        w.value(FieldId::Resource, &5u32).unwrap();
        let n = w.finish();
        // vector `write_bucket`
        let expected = [
            0x06, 0x13, 0x08, 0xac, 0x02, 0x12, 0x83, b'e', b'n', b'v', 0x1a, 0xc1, 0x81, b't', 0x40, 0x00, 0x00, 0xb4,
            0x41, 0x20, 0x05,
        ];
        assert_eq!(&buf[..n], &expected);
    }

    #[test]
    fn writer_buffer_full_is_an_error() {
        for len in 0..21 {
            let mut buf = std::vec![0u8; len];
            let result = FrameWriter::new(&mut buf, MessageType::Run).and_then(|mut w| {
                w.varint(FieldId::StreamId, 300)?;
                w.value(FieldId::Parameters, "env")?;
                w.value(FieldId::Resource, &5u32)?;
                Ok(w.finish())
            });
            // 6 bytes of headroom + 10 bytes of body are needed.
            assert_eq!(result.is_ok(), len >= 16, "len {len}");
        }
    }
}
