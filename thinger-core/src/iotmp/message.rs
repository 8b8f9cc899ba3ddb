use core::fmt;

use crate::pson::{self, DecodeOptions, PsonRef};
use crate::varint;

/// IOTMP message types.
///
/// ```
/// use thinger_core::iotmp::MessageType;
/// assert_eq!(MessageType::from_u32(5), Some(MessageType::KeepAlive));
/// assert_eq!(MessageType::from_u32(99), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum MessageType {
    /// Successful reply to a request.
    Ok = 1,
    /// Failed reply to a request.
    Error = 2,
    /// Client authentication, the first frame of a session.
    Connect = 3,
    /// Either side is closing the connection.
    Disconnect = 4,
    /// Keep-alive ping (client) and its answer (server).
    KeepAlive = 5,
    /// Run a resource (server → device) or a cloud call (device → server).
    Run = 6,
    /// Describe the device's resources.
    Describe = 7,
    /// Open a stream on a resource or a subscription.
    StartStream = 8,
    /// Close a stream.
    StopStream = 9,
    /// Data on an open stream.
    StreamData = 10,
}

impl MessageType {
    /// The type with this number, if it is one of the known ones.
    ///
    /// ```
    /// assert!(thinger_core::iotmp::MessageType::from_u32(0).is_none());
    /// ```
    // Forced inline: in `Message::parse_into` the match becomes a range test (−40 / −4 / −4 B
    // on thumbv7em / thumbv6m / riscv32imc "z").
    #[inline(always)]
    pub const fn from_u32(value: u32) -> Option<Self> {
        Some(match value {
            1 => MessageType::Ok,
            2 => MessageType::Error,
            3 => MessageType::Connect,
            4 => MessageType::Disconnect,
            5 => MessageType::KeepAlive,
            6 => MessageType::Run,
            7 => MessageType::Describe,
            8 => MessageType::StartStream,
            9 => MessageType::StopStream,
            10 => MessageType::StreamData,
            _ => return None,
        })
    }

    /// Whether the server sends this to a device as a request that expects OK/ERROR.
    ///
    /// ```
    /// use thinger_core::iotmp::MessageType;
    /// assert!(MessageType::Run.is_request());
    /// assert!(!MessageType::StreamData.is_request());
    /// ```
    pub const fn is_request(self) -> bool {
        matches!(
            self,
            MessageType::Run
                | MessageType::Describe
                | MessageType::StartStream
                | MessageType::StopStream
                | MessageType::Connect
        )
    }
}

/// Field ids of an IOTMP body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum FieldId {
    /// `F1`: stream id (u16, 0 = none).
    StreamId = 1,
    /// `F2`: parameters (codes, ids, stream options).
    Parameters = 2,
    /// `F3`: payload.
    Payload = 3,
    /// `F4`: resource path, or a cloud-call code.
    Resource = 4,
}

/// Wire types of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum FieldWire {
    /// An unsigned varint.
    Varint = 0,
    /// Legacy PSON: recognised and refused.
    LegacyPson = 1,
    /// A PSON value.
    Pson = 2,
}

/// A decoded field value: a varint or a PSON value, both borrowed from the frame.
///
/// The official encoder sends non-negative integers as varints and everything else as PSON,
/// so readers should accept both; the accessors do.
///
/// ```
/// use thinger_core::iotmp::FieldValue;
/// use thinger_core::pson::PsonRef;
/// assert_eq!(FieldValue::Varint(404).as_u64(), Some(404));
/// assert_eq!(FieldValue::Pson(PsonRef::Uint(404)).as_u64(), Some(404));
/// assert_eq!(FieldValue::Pson(PsonRef::Str("led")).as_str(), Some("led"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FieldValue<'a> {
    /// Sent with wire type 0.
    Varint(u64),
    /// Sent with wire type 2.
    Pson(PsonRef<'a>),
}

impl<'a> FieldValue<'a> {
    /// The value as a PSON view (a varint becomes [`PsonRef::Uint`]).
    ///
    /// ```
    /// use thinger_core::{iotmp::FieldValue, pson::PsonRef};
    /// assert_eq!(FieldValue::Varint(3).as_pson(), PsonRef::Uint(3));
    /// ```
    pub fn as_pson(&self) -> PsonRef<'a> {
        match *self {
            FieldValue::Varint(v) => PsonRef::Uint(v),
            FieldValue::Pson(p) => p,
        }
    }
    /// The value as an unsigned integer, whichever way it was sent.
    ///
    /// ```
    /// assert_eq!(thinger_core::iotmp::FieldValue::Varint(1).as_u64(), Some(1));
    /// ```
    pub fn as_u64(&self) -> Option<u64> {
        // Each arm on its own value: no `PsonRef` built for a varint.
        match self {
            FieldValue::Varint(v) => Some(*v),
            FieldValue::Pson(p) => p.as_u64(),
        }
    }
    /// The value as a string, if it is one.
    ///
    /// ```
    /// use thinger_core::{iotmp::FieldValue, pson::PsonRef};
    /// assert_eq!(FieldValue::Pson(PsonRef::Str("a")).as_str(), Some("a"));
    /// ```
    // Forced inline: −20 / −4 / 0 B on thumbv7em / thumbv6m / riscv32imc "z" (the session
    // reads the resource path through it).
    #[inline(always)]
    pub fn as_str(&self) -> Option<&'a str> {
        self.as_pson().as_str()
    }
}

/// Why one frame's body could not be used. The framing itself is intact: the frame is
/// dropped (or answered with ERROR) and the connection goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MessageErrorKind {
    /// The message type is not one of the ten known ones.
    UnknownType(u32),
    /// A field uses legacy PSON (wire type 1), which this crate does not support.
    LegacyPson,
    /// A field uses a reserved wire type (3–7): the rest of the body cannot be parsed.
    ReservedWireType(u8),
    /// A field key or varint value is malformed.
    BadVarint,
    /// A field's PSON value does not decode.
    Pson(pson::Error),
    /// The stream id is not an integer in `0..=65535`.
    BadStreamId,
}

/// A frame whose body could not be used, with the stream id read before the problem (0 when
/// none was), so that a request can still be answered with `ERROR`.
///
/// ```
/// use thinger_core::iotmp::{RawFrame, MessageErrorKind};
/// // RUN, stream 7, then a payload whose PSON string claims 5 bytes but has 1.
/// let frame = RawFrame { msg_type: 6, body: &[0x08, 0x07, 0x1a, 0x85, b'a'] };
/// let err = frame.message().unwrap_err();
/// assert_eq!(err.stream_id, 7);
/// assert!(matches!(err.kind, MessageErrorKind::Pson(_)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MessageError {
    /// What was wrong.
    pub kind: MessageErrorKind,
    /// The message type number.
    pub msg_type: u32,
    /// The stream id seen before the error, or 0.
    pub stream_id: u16,
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            MessageErrorKind::UnknownType(t) => write!(f, "unknown IOTMP message type {t}"),
            MessageErrorKind::LegacyPson => f.write_str("legacy PSON (wire type 1) is not supported"),
            MessageErrorKind::ReservedWireType(w) => write!(f, "reserved IOTMP wire type {w}"),
            MessageErrorKind::BadVarint => f.write_str("malformed varint in IOTMP body"),
            MessageErrorKind::Pson(e) => write!(f, "bad PSON in IOTMP field: {e}"),
            MessageErrorKind::BadStreamId => f.write_str("IOTMP stream id is not a u16"),
        }
    }
}

impl core::error::Error for MessageError {}

/// A decoded IOTMP message, borrowing its values from the frame.
///
/// Field order on the wire is free; a field repeated in one frame keeps its last value (as
/// the reference decoder does); unknown field ids are skipped.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Message<'a> {
    /// The message type.
    pub kind: MessageType,
    /// `F1`, or 0 when absent.
    pub stream_id: u16,
    /// `F2`.
    pub parameters: Option<FieldValue<'a>>,
    /// `F3`.
    pub payload: Option<FieldValue<'a>>,
    /// `F4`.
    pub resource: Option<FieldValue<'a>>,
    /// Encoded PSON bytes of `F2` and `F3` when they were sent as PSON (for serde).
    raw: [Option<&'a [u8]>; 2],
}

impl<'a> Message<'a> {
    /// A message with no fields (useful in tests and for building replies).
    ///
    /// ```
    /// use thinger_core::iotmp::{Message, MessageType};
    /// assert_eq!(Message::new(MessageType::KeepAlive).stream_id, 0);
    /// ```
    pub const fn new(kind: MessageType) -> Self {
        Message { kind, stream_id: 0, parameters: None, payload: None, resource: None, raw: [None, None] }
    }

    /// The encoded PSON bytes of the payload (`F3`), if it was sent as PSON.
    ///
    /// ```
    /// use thinger_core::iotmp::RawFrame;
    /// let m = RawFrame { msg_type: 6, body: &[0x08, 0x08, 0x1a, 0x61] }.message().unwrap();
    /// assert_eq!(m.payload_pson(), Some(&[0x61][..]));
    /// ```
    pub fn payload_pson(&self) -> Option<&'a [u8]> {
        self.raw[1]
    }

    /// The encoded PSON bytes of the parameters (`F2`), if they were sent as PSON.
    ///
    /// ```
    /// use thinger_core::iotmp::RawFrame;
    /// let m = RawFrame { msg_type: 6, body: &[0x10, 0x05] }.message().unwrap();
    /// assert_eq!(m.parameters_pson(), None); // sent as a varint
    /// ```
    pub fn parameters_pson(&self) -> Option<&'a [u8]> {
        self.raw[0]
    }

    /// Parses a frame body of message type `msg_type`.
    ///
    /// ```
    /// use thinger_core::iotmp::{Message, MessageType};
    /// // vector `run_input`: RUN stream 8, payload true, resource "led"
    /// let m = Message::parse(6, &[0x08, 0x08, 0x1a, 0x61, 0x22, 0x83, b'l', b'e', b'd'],
    ///                        &Default::default()).unwrap();
    /// assert_eq!(m.kind, MessageType::Run);
    /// assert_eq!(m.resource.unwrap().as_str(), Some("led"));
    /// ```
    pub fn parse(msg_type: u32, body: &'a [u8], options: &DecodeOptions) -> Result<Self, MessageError> {
        let mut message = Message::new(MessageType::KeepAlive);
        message.parse_into(msg_type, body, options)?;
        Ok(message)
    }

    /// [`Message::parse`] into `self`, a [`Message::new`] (the session parses each frame so):
    /// each field written once, at its place, not built in local arrays, moved into a
    /// message and that into a `Result` (two 48-byte copies; −48 / 0 / −128 B on thumbv7em /
    /// thumbv6m / riscv32imc "z", docs/footprint-rounds-3.md). On an error `self` is left
    /// partly written.
    pub(crate) fn parse_into(
        &mut self,
        msg_type: u32,
        body: &'a [u8],
        options: &DecodeOptions,
    ) -> Result<(), MessageError> {
        // Every error leaves through the one exit after this block, with the stream id read
        // so far (one construction of the `MessageError`).
        let kind = 'fail: {
            let Some(kind) = MessageType::from_u32(msg_type) else {
                break 'fail MessageErrorKind::UnknownType(msg_type);
            };
            self.kind = kind;
            let mut pos = 0usize;
            while let Some(rest) = body.get(pos..).filter(|r| !r.is_empty()) {
                let Ok(Some((key, n))) = varint::decode_u64(rest) else { break 'fail MessageErrorKind::BadVarint };
                pos += n;
                let rest = body.get(pos..).unwrap_or(&[]);
                let wire = (key & 0x07) as u8;
                let field = key >> 3;
                let mut raw = None;
                let value = match wire {
                    0 => match varint::decode_u64(rest) {
                        Ok(Some((v, n))) => {
                            pos += n;
                            FieldValue::Varint(v)
                        }
                        _ => break 'fail MessageErrorKind::BadVarint,
                    },
                    2 => match PsonRef::decode_prefix_with(rest, options) {
                        Ok((v, n)) => {
                            pos += n;
                            raw = rest.get(..n);
                            FieldValue::Pson(v)
                        }
                        Err(e) => break 'fail MessageErrorKind::Pson(e),
                    },
                    1 => break 'fail MessageErrorKind::LegacyPson,
                    w => break 'fail MessageErrorKind::ReservedWireType(w),
                };
                // F2 and F3 to their places with their raw bytes, F4 without; any other id (also past
                // `usize`) is skipped.
                let slot = match field {
                    1 => match value.as_u64().and_then(|v| u16::try_from(v).ok()) {
                        Some(id) => {
                            self.stream_id = id;
                            continue;
                        }
                        None => break 'fail MessageErrorKind::BadStreamId,
                    },
                    2 => (&mut self.parameters, Some(&mut self.raw[0])),
                    3 => (&mut self.payload, Some(&mut self.raw[1])),
                    4 => (&mut self.resource, None),
                    _ => continue,
                };
                *slot.0 = Some(value);
                if let Some(r) = slot.1 {
                    *r = raw;
                }
            }
            // Unknown field ids (with a known wire type) were skipped above.
            return Ok(());
        };
        Err(MessageError { kind, msg_type, stream_id: self.stream_id })
    }
}
