//! IOTMP framing: message types, fields, a frame encoder and an incremental frame decoder.
//!
//! ```text
//! frame = type:varint size:varint body[size]
//! body  = *( key:varint value )      key = field_id << 3 | wire_type
//! ```
//!
//! * Decoding: feed bytes in any chunking to a [`FrameDecoder`] and take [`RawFrame`]s out;
//!   [`RawFrame::message`] parses the body into a borrowed [`Message`]. Or call
//!   [`parse_frame`] on a buffer you manage yourself.
//! * Encoding: [`FrameWriter`] writes a frame straight into a caller buffer, field by field,
//!   in ascending field id; [`OutgoingMessage`] describes a whole frame and can be encoded
//!   into a slice or an `embedded_io::Write`.
//!
//! ```
//! use thinger_core::iotmp::{FrameDecoder, MessageType, OutgoingMessage, OutField};
//!
//! // OK for stream 1234 (vector `ok_empty`).
//! let mut out = [0u8; 16];
//! let n = OutgoingMessage::new(MessageType::Ok, 1234).encode(&mut out).unwrap();
//! assert_eq!(&out[..n], &[0x01, 0x03, 0x08, 0xd2, 0x09]);
//!
//! let mut decoder = FrameDecoder::new([0u8; 64]);
//! for byte in &out[..n] {
//!     assert_eq!(decoder.feed(core::slice::from_ref(byte)), 1);
//! }
//! let frame = decoder.next_frame().unwrap().unwrap();
//! let message = frame.message().unwrap();
//! assert_eq!(message.kind, MessageType::Ok);
//! assert_eq!(message.stream_id, 1234);
//! ```

mod decode;
mod encode;
mod message;

pub use decode::{
    FrameDecoder, FrameError, Header, MAX_HEADER_LEN, RawFrame, StreamIdPeek, parse_frame, parse_header, peek_stream_id,
};
pub use encode::{DynEncodePson, FrameWriter, OutField, OutgoingMessage};
pub use message::{FieldId, FieldValue, FieldWire, Message, MessageError, MessageErrorKind, MessageType};
