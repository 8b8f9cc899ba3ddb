//! Channels: server-opened, bidirectional streams of PSON values on a resource that says
//! [`Resource::channel`](crate::resource::Resource::channel) (a terminal, a TCP proxy, a
//! chunked file transfer, a command's streamed output).
//!
//! The exchange, as the official Linux client has it:
//!
//! * the server sends `START_STREAM F1=id F2=params F4=resource`; the session reports
//!   [`Event::ChannelOpened`](super::Event::ChannelOpened) with the params, and the
//!   application answers with [`Session::accept_channel`] (`OK F1=id [F3=value]`) or
//!   [`Session::reject_channel`] (`ERROR F1=id F2=code F3={"error": …}`);
//! * `STREAM_DATA F1=id F3=value` from the server becomes
//!   [`Event::ChannelData`](super::Event::ChannelData); the application sends its own with
//!   [`Session::channel_send`];
//! * either side ends it with `STOP_STREAM F1=id`: the server's is reported as
//!   [`Event::ChannelClosed`](super::Event::ChannelClosed) (answered `OK`), the
//!   application's is [`Session::close_channel`].
//!
//! Channels share the `S` slots of the session with sampled streams' capacity (a fixed table,
//! no heap). Inbound data waits in the event buffer like subscription data: while the
//! application does not poll, the session stops taking frames (the adapter stops reading),
//! which is the backpressure towards the server.

use heapless::Vec;

use super::{Error, Flow, Payload, Phase, Record, Session, State, keep_where, split_regions};
use crate::iotmp::{self, FieldValue, Message, MessageType, OutField, OutgoingMessage};
use crate::pson;
use crate::resource::HandlerError;
use crate::time::Instant;
use crate::varint;

/// One open channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Channel {
    pub(super) id: u16,
    /// Answered (accepted) by the application: data may flow.
    accepted: bool,
}

/// The channel table of a session with `S` stream slots.
pub(super) type Channels<const S: usize> = Vec<Channel, S>;

impl<'a, const R: usize, const S: usize, const P: usize, const E: usize> State<'a, R, S, P, E> {
    /// Whether resource `index` takes channels.
    pub(super) fn is_channel(&mut self, index: usize) -> bool {
        self.thing.entry_mut(index).and_then(|e| e.resource()).is_some_and(|r| r.channel())
    }

    /// A field as PSON bytes: a varint field is re-encoded into `scratch`.
    fn field_bytes<'f>(
        raw: Option<&'f [u8]>,
        value: Option<FieldValue<'f>>,
        scratch: &'f mut [u8],
    ) -> Option<&'f [u8]> {
        match (raw, value) {
            (Some(raw), _) => Some(raw),
            (None, Some(FieldValue::Varint(v))) => {
                let n = pson::encode_to_slice(&v, scratch).ok()?;
                scratch.get(..n)
            }
            _ => None,
        }
    }

    /// START_STREAM on a channel resource.
    pub(super) fn open_channel(&mut self, m: &Message<'_>, index: usize, tx: &mut [u8], inbox: &mut [u8]) -> Flow {
        let id = m.stream_id;
        let mut scratch = [0u8; 1 + varint::MAX_LEN_U64];
        let params = Self::field_bytes(m.parameters_pson(), m.parameters, &mut scratch).unwrap_or(&[]);
        let path = m.resource.and_then(|r| r.as_str()).unwrap_or("");
        // The params, then the path, in the event buffer (both or nothing).
        let total = params.len() + path.len();
        let (Ok(params_len), Ok(stored)) = (u16::try_from(params.len()), u32::try_from(total)) else {
            let _ = self.queue_handler_error(tx, id, HandlerError::new(413, "parameters too large"));
            return Flow::Consumed;
        };
        if total > inbox.len() {
            let _ = self.queue_handler_error(tx, id, HandlerError::new(413, "parameters too large"));
            return Flow::Consumed;
        }
        if self.inbox.compact(inbox).len() < total {
            return Flow::Blocked;
        }
        let _ = self.store_raw(params, inbox);
        let _ = self.store_raw(path.as_bytes(), inbox);
        let payload = Payload::Inbox(stored);
        // The server reusing an id replaces the earlier channel.
        if self.channels.iter().any(|c| c.id == id) {
            keep_where(&mut self.channels, |c| c.id != id);
            self.push(Record::ChannelClosed { stream_id: id });
        }
        if self.channels.push(Channel { id, accepted: false }).is_err() {
            self.inbox.end -= total;
            let _ = self.queue_handler_error(tx, id, HandlerError::new(503, "too many channels"));
            return Flow::Consumed;
        }
        self.push(Record::ChannelOpened { stream_id: id, resource: index, payload, params_len });
        Flow::Consumed
    }

    /// STREAM_DATA on a channel; `None` when `id` is no channel.
    pub(super) fn channel_data(&mut self, m: &Message<'_>, tx: &mut [u8], inbox: &mut [u8]) -> Option<Flow> {
        let id = m.stream_id;
        self.channels.iter().position(|c| c.id == id)?;
        let mut scratch = [0u8; 1 + varint::MAX_LEN_U64];
        let payload = match Self::field_bytes(m.payload_pson(), m.payload, &mut scratch) {
            Some(bytes) => self.store_raw(bytes, inbox),
            None => Payload::Inbox(0),
        };
        match payload {
            Payload::None => Some(Flow::Blocked),
            Payload::TooLarge => {
                // Data the application can never see: the channel cannot go on.
                self.channel_lost(id, tx);
                Some(Flow::Consumed)
            }
            payload => {
                self.push(Record::ChannelData { stream_id: id, payload });
                Some(Flow::Consumed)
            }
        }
    }

    /// Data of channel `id` could not be received (too large): the session stops the channel
    /// and reports it closed. False when `id` is no channel.
    pub(super) fn channel_lost(&mut self, id: u16, tx: &mut [u8]) -> bool {
        let before = self.channels.len();
        keep_where(&mut self.channels, |c| c.id != id);
        if before == self.channels.len() {
            return false;
        }
        let _ = self.queue(tx, &OutgoingMessage::new(MessageType::StopStream, id));
        self.push(Record::ChannelClosed { stream_id: id });
        true
    }

    /// STOP_STREAM from the server; false when `id` is no channel.
    pub(super) fn channel_stopped(&mut self, id: u16, tx: &mut [u8]) -> bool {
        let before = self.channels.len();
        keep_where(&mut self.channels, |c| c.id != id);
        if before == self.channels.len() {
            return false;
        }
        let _ = self.queue(tx, &OutgoingMessage::new(MessageType::Ok, id));
        self.push(Record::ChannelClosed { stream_id: id });
        true
    }
}

impl<'a, B, const R: usize, const S: usize, const P: usize, const E: usize> Session<'a, B, R, S, P, E>
where
    B: AsRef<[u8]> + AsMut<[u8]>,
{
    fn channel_op(&mut self, now: Instant, id: u16) -> Result<usize, Error> {
        self.state.set_now(now);
        if self.state.phase != Phase::Connected {
            return Err(Error::NotConnected);
        }
        self.state.channels.iter().position(|c| c.id == id).ok_or(Error::UnknownId)
    }

    /// Accepts channel `id` ([`Event::ChannelOpened`](super::Event::ChannelOpened)):
    /// `OK F1=id`, with `value` as F3 when given (e.g. `{"chunk_size": n}` for a file
    /// transfer). `UnknownId` when it is not open or was answered already.
    pub fn accept_channel(
        &mut self,
        now: Instant,
        id: u16,
        value: Option<&dyn iotmp::DynEncodePson>,
    ) -> Result<(), Error> {
        let i = self.channel_op(now, id)?;
        if self.state.channels.get(i).is_some_and(|c| c.accepted) {
            return Err(Error::UnknownId);
        }
        let (_, tx, _) = split_regions(self.buf.as_mut(), self.rx_len, self.tx_len);
        let ok = OutgoingMessage::new(MessageType::Ok, id);
        match value {
            Some(v) => self.state.queue(tx, &ok.payload(OutField::Pson(v)))?,
            None => self.state.queue(tx, &ok)?,
        }
        if let Some(c) = self.state.channels.get_mut(i) {
            c.accepted = true;
        }
        Ok(())
    }

    /// Refuses channel `id`: `ERROR F1=id F2=code F3={"error": message}`; the channel is
    /// gone. `UnknownId` when it is not open or was accepted already.
    pub fn reject_channel(&mut self, now: Instant, id: u16, error: HandlerError) -> Result<(), Error> {
        let i = self.channel_op(now, id)?;
        if self.state.channels.get(i).is_some_and(|c| c.accepted) {
            return Err(Error::UnknownId);
        }
        let (_, tx, _) = split_regions(self.buf.as_mut(), self.rx_len, self.tx_len);
        self.state.queue_handler_error(tx, id, error)?;
        keep_where(&mut self.state.channels, |c| c.id != id);
        Ok(())
    }

    /// Sends `STREAM_DATA F1=id F3=value` on an accepted channel. `TransmitBufferFull`: drain
    /// `poll_transmit` and try again; `TooLarge`: the value never fits a frame.
    pub fn channel_send(&mut self, now: Instant, id: u16, value: &dyn iotmp::DynEncodePson) -> Result<(), Error> {
        let i = self.channel_op(now, id)?;
        if !self.state.channels.get(i).is_some_and(|c| c.accepted) {
            return Err(Error::UnknownId);
        }
        let (_, tx, _) = split_regions(self.buf.as_mut(), self.rx_len, self.tx_len);
        self.state.queue(tx, &OutgoingMessage::new(MessageType::StreamData, id).payload(OutField::Pson(value)))
    }

    /// Ends channel `id` from the device: `STOP_STREAM F1=id`. Nothing is reported for it.
    pub fn close_channel(&mut self, now: Instant, id: u16) -> Result<(), Error> {
        self.channel_op(now, id)?;
        let (_, tx, _) = split_regions(self.buf.as_mut(), self.rx_len, self.tx_len);
        self.state.queue(tx, &OutgoingMessage::new(MessageType::StopStream, id))?;
        keep_where(&mut self.state.channels, |c| c.id != id);
        Ok(())
    }

    /// The largest `STREAM_DATA` value (its PSON bytes) [`Session::channel_send`] can take:
    /// the transmit region less room for the frame header and fields.
    pub fn max_channel_value(&self) -> usize {
        self.tx_len.saturating_sub(16)
    }

    /// Channels open now.
    pub fn open_channels(&self) -> usize {
        self.state.channels.len()
    }
}
