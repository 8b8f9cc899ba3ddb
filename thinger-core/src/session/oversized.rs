//! Frames larger than the receive buffer: answered from their first bytes, their body
//! skipped, the connection kept (a big REST input must not cost the device its session,
//! nor come back on every reconnect).

use super::{Dropped, Record, State};
#[cfg(feature = "cloud")]
use super::{Payload, PendingKind, PendingState, take_at};
use crate::iotmp::{Header, MessageType, StreamIdPeek, peek_stream_id};
use crate::log::warn;
use crate::resource::HandlerError;

/// The code a request too large to receive is answered with (HTTP's "Content Too Large";
/// the server passes a device's ERROR code on as the REST status).
pub(super) const TOO_LARGE: u16 = 413;

impl<const R: usize, const S: usize, const P: usize, const E: usize> State<'_, R, S, P, E> {
    /// An oversized frame of `size` bytes with `header` (`None` when its size does not fit a
    /// `usize`) starts `pending` (all of `pending` belongs to it).
    /// Returns how many bytes of it to drop now (the rest is skipped as it arrives), or
    /// `None` to wait for more of its first bytes (its stream id).
    pub(super) fn on_oversized(
        &mut self,
        header: Option<Header>,
        pending: &[u8],
        size: u64,
        buffer_full: bool,
        tx: &mut [u8],
    ) -> Option<usize> {
        let Some(header) = header else { return Some(pending.len()) };
        let body = pending.get(header.header_len..).unwrap_or(&[]);
        let stream_id = match peek_stream_id(body) {
            StreamIdPeek::Found(id) => Some(id),
            StreamIdPeek::NeedMore if !buffer_full => return None,
            StreamIdPeek::NeedMore | StreamIdPeek::Absent => None,
        };
        self.last_rx = self.tick();
        // The type compared on its number, as `on_bad_message` does (a range check is
        // smaller than decoding it).
        let t = header.msg_type;
        warn!("skipping a frame of {} bytes (type {})", size, t);
        const OK: u32 = MessageType::Ok as u32;
        const ERROR: u32 = MessageType::Error as u32;
        const RUN: u32 = MessageType::Run as u32;
        const START_STREAM: u32 = MessageType::StartStream as u32;
        #[cfg(feature = "channels")]
        const STREAM_DATA: u32 = MessageType::StreamData as u32;
        match (t, stream_id) {
            (RUN..=START_STREAM, Some(id)) => {
                let _ = self.queue_handler_error(tx, id, HandlerError::new(TOO_LARGE, "request too large"));
            }
            (OK | ERROR, Some(id)) if self.fail_reply_too_large(id, t == OK) => return Some(pending.len()),
            // Channel data lost: the channel cannot go on (see `channel_lost`).
            #[cfg(feature = "channels")]
            (STREAM_DATA, Some(id)) if self.channel_lost(id, tx) => return Some(pending.len()),
            _ => {}
        }
        self.push(Record::Dropped(Dropped::TooLarge {
            msg_type: header.msg_type,
            stream_id: stream_id.unwrap_or(0),
            size,
        }));
        Some(pending.len())
    }

    /// A reply too large for the receive buffer: its call fails with `PayloadTooLarge`.
    /// Returns whether a call was waiting for it.
    #[cfg(feature = "cloud")]
    fn fail_reply_too_large(&mut self, id: u16, ok: bool) -> bool {
        let Some(i) = self.pending.iter().position(|p| {
            p.id == id && p.state == PendingState::Waiting && matches!(p.kind, PendingKind::Call { silent: false })
        }) else {
            return false;
        };
        let _ = take_at(&mut self.pending, i);
        self.push(Record::Reply { id, ok, code: None, payload: Payload::TooLarge });
        true
    }

    /// Without cloud calls no reply can be waited for.
    #[cfg(not(feature = "cloud"))]
    fn fail_reply_too_large(&mut self, _id: u16, _ok: bool) -> bool {
        false
    }
}
