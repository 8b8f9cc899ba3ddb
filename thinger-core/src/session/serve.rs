//! Frames from the server: requests on resources, replies to cloud calls, stream data.

use super::{CLOUD, DEFERRED, DisconnectReason, Dropped, Error, SUBSCRIBE_CODE, SUBSCRIPTIONS, keep_where, take_at};
use super::{
    Flow, OUT_OFFSET, OpenStream, Payload, Pending, PendingKind, PendingState, Phase, Record, State, SubEntry,
    Subscription,
};
use crate::iotmp::{
    FieldValue, Message, MessageError, MessageErrorKind, MessageType, OutField, OutgoingMessage, RawFrame,
};
use crate::log::{debug, trace};
use crate::pson::{self, Encoder, PsonRef, SliceSink};
use crate::resource::{Call, CallMode, HandlerError, Input, Output, Params, ResourceKind};
use crate::time::{self, MAX_SPAN};
use crate::varint;

/// What running a handler produced.
enum Outcome {
    /// Output written at `OUT_OFFSET` (0 bytes = none), with an optional return code.
    Done {
        len: usize,
        code: Option<u16>,
    },
    Deferred,
    Failed(HandlerError),
}

impl<'a, const R: usize, const S: usize, const P: usize, const E: usize> State<'a, R, S, P, E> {
    // Out of line: measured −208 B on thumbv7em "z" (docs/footprint.md).
    #[inline(never)]
    pub(super) fn on_frame(&mut self, frame: RawFrame<'_>, tx: &mut [u8], inbox: &mut [u8]) -> Flow {
        self.last_rx = self.tick();
        // Parsed in place: each field written once, where it is read.
        let mut parsed = Message::new(MessageType::KeepAlive);
        if let Err(e) = parsed.parse_into(frame.msg_type, frame.body, &self.config.pson) {
            return self.on_bad_message(e, tx);
        }
        let message = &parsed;
        trace!("frame type {} stream {}", frame.msg_type, message.stream_id);
        if self.phase == Phase::Connecting {
            return self.on_connect_reply(message, inbox);
        }
        match message.kind {
            MessageType::Ok | MessageType::Error => self.on_reply(message, inbox),
            MessageType::KeepAlive => Flow::Consumed,
            MessageType::Disconnect => {
                let reason = message.parameters.as_ref().and_then(FieldValue::as_u64);
                debug!("server disconnected");
                self.close(DisconnectReason::ServerDisconnect(reason), None);
                Flow::Consumed
            }
            MessageType::Run | MessageType::Describe | MessageType::StartStream => self.on_request(message, tx, inbox),
            MessageType::StopStream => self.on_stop_stream(message, tx),
            MessageType::StreamData => self.on_stream_data(message, tx, inbox),
            MessageType::Connect => {
                self.push(Record::Dropped(Dropped::Unexpected { msg_type: frame.msg_type }));
                Flow::Consumed
            }
        }
    }

    fn on_bad_message(&mut self, e: MessageError, tx: &mut [u8]) -> Flow {
        if self.phase == Phase::Connecting {
            self.close(DisconnectReason::UnexpectedFrame, Some(tx));
            return Flow::Consumed;
        }
        // RUN (6), DESCRIBE (7), START_STREAM (8), compared on the number (a range check is
        // smaller than decoding the type again).
        let request = matches!(e.msg_type, 6..=8);
        match e.kind {
            MessageErrorKind::UnknownType(t) => self.push(Record::Dropped(Dropped::UnknownType(t))),
            kind => {
                if matches!(kind, MessageErrorKind::Pson(_)) && request && e.stream_id != 0 {
                    // A request we cannot read is still answered, so the server does not wait.
                    let _ = self.queue_handler_error(tx, e.stream_id, HandlerError::new(400, "undecodable PSON"));
                }
                self.push(Record::Dropped(Dropped::Malformed { msg_type: e.msg_type, stream_id: e.stream_id, kind }))
            }
        }
        Flow::Consumed
    }

    fn on_connect_reply(&mut self, m: &Message<'_>, inbox: &mut [u8]) -> Flow {
        match m.kind {
            MessageType::Ok if m.stream_id == self.connect_id => {
                debug!("authenticated");
                self.phase = Phase::Connected;
                self.connect_id = 0;
                self.push(Record::Connected);
                self.open_all_subscriptions_later();
            }
            MessageType::Error if m.stream_id == self.connect_id => {
                let payload = self.store_payload(m, inbox);
                // `None` with a payload means it fits the event buffer but not yet (a
                // payload larger than the whole buffer is `TooLarge`): events are queued.
                if payload == Payload::None && has_payload(m) {
                    return Flow::Blocked;
                }
                let code = m.parameters.as_ref().and_then(FieldValue::as_u64);
                debug!("authentication refused");
                self.push(Record::AuthRefused { code, payload });
                self.end(Phase::Closed);
            }
            _ => {
                // Anything else before authentication breaks the protocol.
                self.close(DisconnectReason::UnexpectedFrame, None);
            }
        }
        Flow::Consumed
    }

    /// Subscriptions are (re)opened right after authentication, as the official client does.
    fn open_all_subscriptions_later(&mut self) {
        self.resubscribe = true;
    }

    pub(super) fn open_subscription(&mut self, tx: &mut [u8], sub: u8) -> Result<(), Error> {
        let Some(entry) = self.subs.get(usize::from(sub)).copied().flatten() else { return Err(Error::UnknownId) };
        if self.pending.is_full() {
            return Err(Error::TooManyPending);
        }
        let id = self.fresh_id();
        let def: Subscription<'_> = entry.def;
        let msg = OutgoingMessage::new(MessageType::StartStream, id)
            .parameters(OutField::Pson(&def))
            .resource(OutField::Varint(SUBSCRIBE_CODE));
        self.queue(tx, &msg)?;
        let deadline = self.tick().after(time::span(self.config.request_timeout));
        let _ = self.pending.push(Pending {
            id,
            kind: PendingKind::Subscribe(sub),
            deadline,
            state: PendingState::Waiting,
            forever: false,
        });
        if let Some(Some(e)) = self.subs.get_mut(usize::from(sub)) {
            *e = SubEntry { def, id, open: false };
        }
        Ok(())
    }

    /// Opens subscriptions that are not open yet, as room allows.
    pub(super) fn resubscribe_pending(&mut self, tx: &mut [u8]) {
        if !self.resubscribe || self.phase != Phase::Connected {
            return;
        }
        for sub in 0..self.subs.len() {
            let needs = self.subs.get(sub).copied().flatten().is_some_and(|e| e.id == 0);
            if needs {
                let Ok(sub) = u8::try_from(sub) else { break };
                if self.open_subscription(tx, sub).is_err() {
                    return; // no room yet: the next pass continues
                }
            }
        }
        self.resubscribe = false;
    }

    /// Copies a reply/event payload into the event buffer.
    fn store_payload(&mut self, m: &Message<'_>, inbox: &mut [u8]) -> Payload {
        let mut scratch = [0u8; 1 + varint::MAX_LEN_U64];
        let bytes: &[u8] = match (m.payload_pson(), m.payload) {
            (Some(raw), _) => raw,
            (None, Some(FieldValue::Varint(v))) => {
                let n = pson::encode_to_slice(&v, &mut scratch).unwrap_or(0);
                scratch.get(..n).unwrap_or(&[])
            }
            _ => return Payload::None,
        };
        self.store_raw(bytes, inbox)
    }

    /// Copies `bytes` to the event buffer: `None` when it has no room now (the caller blocks
    /// until it drains), `TooLarge` when it never will.
    pub(super) fn store_raw(&mut self, bytes: &[u8], inbox: &mut [u8]) -> Payload {
        let capacity = inbox.len();
        let free = self.inbox.compact(inbox);
        match (free.get_mut(..bytes.len()), u32::try_from(bytes.len())) {
            (Some(dst), Ok(n)) => {
                dst.copy_from_slice(bytes);
                self.inbox.end += bytes.len();
                Payload::Inbox(n)
            }
            (Some(_), Err(_)) => Payload::TooLarge,
            (None, _) if bytes.len() > capacity => Payload::TooLarge,
            (None, _) => Payload::None,
        }
    }

    fn on_reply(&mut self, m: &Message<'_>, inbox: &mut [u8]) -> Flow {
        let ok = m.kind == MessageType::Ok;
        // Without cloud calls and subscriptions nothing waits for a reply.
        let Some(i) = self.pending.iter().position(|p| {
            (CLOUD || SUBSCRIPTIONS)
                && p.id == m.stream_id
                && p.state == PendingState::Waiting
                && matches!(p.kind, PendingKind::Call { .. } | PendingKind::Subscribe(_))
        }) else {
            self.push(Record::Dropped(Dropped::LateReply { stream_id: m.stream_id }));
            return Flow::Consumed;
        };
        let Some(pending) = self.pending.get(i).copied() else { return Flow::Consumed };
        if pending.kind == (PendingKind::Call { silent: true }) {
            let _ = take_at(&mut self.pending, i);
            return Flow::Consumed;
        }
        let payload = self.store_payload(m, inbox);
        if payload == Payload::None && has_payload(m) {
            return Flow::Blocked;
        }
        let _ = take_at(&mut self.pending, i);
        let code = m.parameters.as_ref().and_then(FieldValue::as_u64);
        match pending.kind {
            #[cfg(feature = "subscriptions")]
            PendingKind::Subscribe(sub) => {
                if ok {
                    if let Some(Some(e)) = self.subs.get_mut(usize::from(sub)) {
                        e.open = true;
                    }
                    self.push(Record::Subscribed { sub, payload });
                } else {
                    if let Some(Some(e)) = self.subs.get_mut(usize::from(sub)) {
                        e.id = 0;
                    }
                    self.push(Record::SubscriptionFailed { sub, code, payload });
                }
            }
            #[cfg(feature = "cloud")]
            _ => self.push(Record::Reply { id: m.stream_id, ok, code, payload }),
            #[cfg(not(feature = "cloud"))]
            _ => {
                let _ = (ok, code, payload);
            }
        }
        Flow::Consumed
    }

    fn resource_path<'m>(m: &Message<'m>) -> Option<&'m str> {
        m.resource.as_ref().and_then(FieldValue::as_str)
    }

    /// RUN, DESCRIBE and START_STREAM: the resource path looked up once, an unknown one
    /// answered ERROR, in one place for the three (DESCRIBE without a path describes all).
    fn on_request(&mut self, m: &Message<'_>, tx: &mut [u8], inbox: &mut [u8]) -> Flow {
        let id = m.stream_id;
        let path = Self::resource_path(m);
        let mut params = Params::new();
        let found = path.and_then(|p| Some((p, self.thing.lookup(p, &mut params)?)));
        // DESCRIBE of all (no path) or of one resource: one output region, one answer.
        if m.kind == MessageType::Describe && (path.is_none() || found.is_some()) {
            let free = self.tx.compact(tx);
            let out = free.get_mut(OUT_OFFSET..).unwrap_or(&mut []);
            let result = match found {
                Some((_, index)) => self.describe_one(index, &params, out),
                None => self.describe_all(out),
            };
            self.answer(tx, id, result);
            return Flow::Consumed;
        }
        let Some((path, index)) = found else {
            trace!("unknown resource");
            self.reply_status(tx, MessageType::Error, id);
            return Flow::Consumed;
        };
        match m.kind {
            MessageType::Run => self.run_input(m, index, &params, tx, Some(id)),
            _ => return self.on_start_stream(m, path, index, tx, inbox),
        }
        Flow::Consumed
    }

    /// OK with the output at `OUT_OFFSET`, or the handler's error.
    fn answer(&mut self, tx: &mut [u8], id: u16, result: Result<usize, HandlerError>) {
        match result {
            Ok(len) => {
                self.emit_output(tx, MessageType::Ok, id, None, len);
            }
            Err(e) => {
                let _ = self.queue_handler_error(tx, id, e);
            }
        }
    }

    /// Runs resource `index` on the frame's payload: for a RUN (`request` is its id) with
    /// the answer, for STREAM_DATA into an input with the echo only. One lookup-and-invoke
    /// tail for both.
    fn run_input(&mut self, m: &Message<'_>, index: usize, params: &Params<'_>, tx: &mut [u8], request: Option<u16>) {
        let kind = self.kind_of(index);
        // The payload as PSON in two steps, a PSON value as it is, then a varint as `Uint`
        // (−12 / −4 / −12 B on thumbv7em / thumbv6m / riscv32imc "z" against one `match`
        // through `FieldValue::as_pson`, docs/footprint-rounds-3.md).
        let mut value = match m.payload {
            Some(FieldValue::Pson(p)) => Some(p),
            _ => None,
        };
        if let Some(FieldValue::Varint(v)) = m.payload {
            value = Some(PsonRef::Uint(v));
        }
        let input = Input::new(value, m.payload_pson());
        let had_input = !input.is_empty();
        let outcome = self.invoke(index, CallMode::Run, input, params, tx, request);
        let Some(id) = request else {
            if let Outcome::Done { .. } = outcome {
                // Echo the new state on this stream (and any other on the same resource).
                self.echo(tx, index, Some(m.stream_id));
            }
            return;
        };
        match outcome {
            Outcome::Failed(e) => {
                let _ = self.queue_handler_error(tx, id, e);
            }
            // Never produced without the feature (`invoke_into`), which the optimizer does
            // not see through the out-of-line call: the arm is compiled out here.
            Outcome::Deferred if DEFERRED => {
                let report_state = kind == Some(ResourceKind::Input) && !had_input;
                let deadline = self.tick().after(time::span(self.config.deferred_timeout));
                let kind = kind.unwrap_or(ResourceKind::Run);
                let entry = Pending {
                    id,
                    kind: PendingKind::Deferred { resource: index, kind, report_state },
                    deadline,
                    state: PendingState::Waiting,
                    forever: false,
                };
                // Replace a deferred request the server reused the id of.
                self.prune_pending(Some(id));
                if self.pending.push(entry).is_err() {
                    let _ = self.queue_handler_error(tx, id, HandlerError::new(503, "too many pending requests"));
                } else {
                    self.push(Record::Deferred { stream_id: id, resource: index });
                }
            }
            Outcome::Deferred => {}
            Outcome::Done { len, code } => {
                let send_output = match kind {
                    Some(ResourceKind::Output | ResourceKind::InputOutput) => true,
                    // An input returns its state only when asked without a payload.
                    Some(ResourceKind::Input) => !had_input,
                    _ => false,
                };
                let len = if send_output { len } else { 0 };
                self.emit_output(tx, MessageType::Ok, id, code, len);
                if had_input && matches!(kind, Some(ResourceKind::Input | ResourceKind::InputOutput)) {
                    self.echo(tx, index, None);
                }
            }
        }
    }

    fn kind_of(&self, index: usize) -> Option<ResourceKind> {
        self.thing.entry(index).and_then(|e| e.kind())
    }

    /// Runs a handler with its output at `OUT_OFFSET` of the free transmit space.
    // Inlined into its two callers (RUN / STREAM_DATA and samples): −20 B on thumbv7em "z"
    // (docs/footprint.md).
    #[inline(always)]
    fn invoke(
        &mut self,
        index: usize,
        mode: CallMode,
        input: Input<'_>,
        params: &Params<'_>,
        tx: &mut [u8],
        request: Option<u16>,
    ) -> Outcome {
        let free = self.tx.compact(tx);
        let out_buf = free.get_mut(OUT_OFFSET..).unwrap_or(&mut []);
        self.invoke_into(index, mode, input, params, out_buf, request)
    }

    fn invoke_into(
        &mut self,
        index: usize,
        mode: CallMode,
        input: Input<'_>,
        params: &Params<'_>,
        out_buf: &mut [u8],
        request: Option<u16>,
    ) -> Outcome {
        let Some(resource) = self.thing.entry_mut(index).and_then(|e| e.resource()) else {
            return Outcome::Failed(HandlerError::new(404, "no handler"));
        };
        // The request id stored as the `Option` it is (no test and two stores of `Some`).
        let mut call = Call::new_request(mode, input, Output::new(out_buf), params, request);
        let result = resource.handle(&mut call);
        if let Err(e) = result {
            return Outcome::Failed(e);
        }
        if DEFERRED && call.is_deferred() {
            return Outcome::Deferred;
        }
        let code = call.code();
        match call.into_output().finish() {
            Ok(len) => Outcome::Done { len, code },
            Err(e) => Outcome::Failed(e.into()),
        }
    }

    /// `kind [F1=id]`: a bare OK / ERROR answer, KEEP_ALIVE or DISCONNECT; false when it
    /// does not fit.
    pub(super) fn reply_status(&mut self, tx: &mut [u8], kind: MessageType, id: u16) -> bool {
        self.emit_output(tx, kind, id, None, 0)
    }

    /// Builds `kind F1=id [F2=code] [F3=output]` from output bytes at `OUT_OFFSET` of the free
    /// transmit space; an unsigned-integer output travels as a varint, as the official
    /// client sends it.
    pub(super) fn emit_output(
        &mut self,
        tx: &mut [u8],
        kind: MessageType,
        id: u16,
        code: Option<u16>,
        len: usize,
    ) -> bool {
        let free = self.tx.compact(tx);
        let output = free.get(OUT_OFFSET..OUT_OFFSET + len).unwrap_or(&[]);
        // CONNECT's body is its fields F2 and F3, keys included (written by `connect`).
        let fields_only = kind == MessageType::Connect;
        // Only an unsigned integer (tag type 0) changes form; looking at the tag first avoids
        // validating every map or array output a second time.
        let as_varint = match output.first() {
            Some(&tag) if tag >> 5 == 0 && !fields_only => match PsonRef::decode_prefix(output) {
                Ok((PsonRef::Uint(v), used)) if used == len => Some(v),
                _ => None,
            },
            _ => None,
        };
        // Its varint is already in the output: PSON writes the integer as its tag byte (below
        // 31) or as the tag 0x1f followed by the value's varint, so F3 is the output without
        // that prefix, moved down like any output (nothing encoded again). A varint padded
        // with zero groups (a raw PSON write; the encoder never pads) goes as PSON instead.
        let skip = usize::from(output.first() == Some(&0x1f));
        let (key3, from, tail) = match as_varint {
            Some(_) if len <= 2 || output.last() != Some(&0) => (0x18, OUT_OFFSET + skip, len - skip),
            _ => (0x1a, OUT_OFFSET, len),
        };
        // The frame is written backwards, ending where the output starts: F3's key, F2, F1,
        // then the header (at most 15 bytes: it starts inside the free space, as the output
        // is at `OUT_OFFSET` or after it), and then moved down to the start of the free
        // space with the output, in one copy. No staging and no measuring pass. It ends at
        // the output (inside the free space), or for a bare answer at `OUT_OFFSET` or at the
        // end of a shorter free space.
        let end = from.min(free.len());
        let mut at = end;
        // F3's key (CONNECT's body has its own keys).
        if tail > 0 && !fields_only {
            at -= 1;
            if let Some(slot) = free.get_mut(at) {
                *slot = key3;
            }
        }
        // F1 id and F2 code are u16 varints of 1 to 3 bytes.
        put_field_back(free, &mut at, 0x10, code);
        put_field_back(free, &mut at, 0x08, Some(id).filter(|&id| id != 0));
        // An IOTMP body length is a u32 (a no-op on 32-bit targets).
        let Ok(body_len) = u32::try_from((end + tail).wrapping_sub(at)) else { return false };
        put_back(free, &mut at, kind as u8, body_len);
        // Before the start of the free space: no room.
        if at > end {
            return false;
        }
        pson::copy_down(free, at, end + tail, 0);
        self.tx.end += end + tail - at;
        self.last_tx = self.tick();
        true
    }

    /// Sends the resource's state on every stream open on it (after an input was applied),
    /// except `skip`.
    // Forced inline into its two callers (RUN, STREAM_DATA), with `describe_all` into
    // `on_request`: −48 / −12 / −12 B on thumbv7em / thumbv6m / riscv32imc "z" together
    // (docs/footprint-rounds-2.md).
    #[inline(always)]
    fn echo(&mut self, tx: &mut [u8], index: usize, skip: Option<u16>) {
        for i in 0..self.streams.len() {
            let hit = self.streams.get(i).is_some_and(|s| s.resource == index && Some(s.id) != skip);
            if hit {
                self.send_sample(tx, i);
            }
        }
        if let Some(id) = skip
            && let Some(i) = self.streams.iter().position(|s| s.id == id)
        {
            self.send_sample(tx, i);
        }
    }

    /// Samples stream `i` into a STREAM_DATA frame; false when it could not be sent.
    pub(super) fn send_sample(&mut self, tx: &mut [u8], i: usize) -> bool {
        let Some(stream) = self.streams.get(i) else { return false };
        let (id, index) = (stream.id, stream.resource);
        // The path's captures, looked up again (a stream keeps only its path).
        #[cfg(feature = "patterns")]
        let path = stream.path.clone();
        #[cfg_attr(not(feature = "patterns"), allow(unused_mut))]
        let mut params = Params::new();
        #[cfg(feature = "patterns")]
        let _ = self.thing.lookup(path.as_str(), &mut params);
        match self.invoke(index, CallMode::Sample, Input::empty(), &params, tx, None) {
            Outcome::Done { len, .. } if len > 0 => self.emit_output(tx, MessageType::StreamData, id, None, len),
            Outcome::Failed(HandlerError { code: 413, .. }) => {
                if self.tx.is_empty() && self.events.len() + super::EVENT_RESERVE < E {
                    self.push(Record::Dropped(Dropped::SampleTooLarge { stream_id: id }));
                }
                false
            }
            _ => false,
        }
    }

    /// `{path: {"fn": kind}}` for every resource, keys in ascending order as the official
    /// client sends them.
    // Forced inline (see `echo`).
    #[inline(always)]
    fn describe_all(&self, out: &mut [u8]) -> Result<usize, HandlerError> {
        let mut enc = Encoder::new(SliceSink::new(out));
        // With fewer than 31 resources the map's header is one byte, `0xc0 | count`: written
        // empty and completed after the loop, which counts (no counting pass first).
        let short = R < 31;
        if short {
            enc.raw(&[0xc0])?;
        } else {
            enc.map_header(self.thing.iter().filter(|e| e.has_handler()).count())?;
        }
        let mut count = 0u8;
        let mut last: Option<&str> = None;
        loop {
            // Selection by path order: the table is small and this needs no memory. Paths
            // are unique, so the next one is the smallest above the last.
            let mut next: Option<&crate::resource::Entry<'_>> = None;
            for e in self.thing.iter().filter(|e| e.has_handler()) {
                let path = e.path().as_bytes();
                if last.is_none_or(|l| crate::bytes::cmp(path, l.as_bytes()).is_gt())
                    && next.is_none_or(|n| crate::bytes::cmp(path, n.path().as_bytes()).is_lt())
                {
                    next = Some(e);
                }
            }
            let Some(entry) = next else { break };
            enc.str(entry.path())?;
            // `{"fn": kind}` as its 5 PSON bytes: map of 1, the 2-byte string, a small uint.
            enc.raw(&[0xc1, 0x82, b'f', b'n', entry.kind().map_or(0, |k| k as u8)])?;
            last = Some(entry.path());
            count = count.wrapping_add(1);
        }
        let written = enc.into_sink().written();
        if let (true, Some(header)) = (short, out.first_mut()) {
            *header |= count;
        }
        Ok(written)
    }

    /// `{"in": sample, "out": sample}` for one resource, from its handler in describe mode.
    fn describe_one(&mut self, index: usize, params: &Params<'_>, out: &mut [u8]) -> Result<usize, HandlerError> {
        let kind = self.kind_of(index).unwrap_or(ResourceKind::Run);
        let (has_in, has_out) = match kind {
            ResourceKind::Run => (false, false),
            ResourceKind::Input => (true, false),
            ResourceKind::Output => (false, true),
            ResourceKind::InputOutput => (true, true),
        };
        // The map header of at most 2 pairs is one byte (type 6, count in the low bits).
        let Some(header) = out.first_mut() else { return Err(pson::Error::BufferFull.into()) };
        *header = 0xc0 | (u8::from(has_in) + u8::from(has_out));
        let mut pos = 1;
        // Each key as its PSON bytes (a short string: the length in the tag).
        let parts: [(bool, &[u8], CallMode); 2] =
            [(has_in, b"\x82in", CallMode::DescribeInput), (has_out, b"\x83out", CallMode::DescribeOutput)];
        for (wanted, key, mode) in parts {
            if !wanted {
                continue;
            }
            let dst = out.get_mut(pos..pos + key.len()).ok_or(pson::Error::BufferFull)?;
            dst.copy_from_slice(key);
            pos += key.len();
            let rest = out.get_mut(pos..).unwrap_or(&mut []);
            match self.invoke_into(index, mode, Input::empty(), params, rest, None) {
                Outcome::Done { len, .. } if len > 0 => pos += len,
                Outcome::Failed(e) => return Err(e),
                _ => {
                    let rest = out.get_mut(pos..).unwrap_or(&mut []);
                    let mut enc = Encoder::new(SliceSink::new(rest));
                    enc.null()?;
                    pos += 1;
                }
            }
        }
        Ok(pos)
    }

    fn on_start_stream(&mut self, m: &Message<'_>, path: &str, index: usize, tx: &mut [u8], inbox: &mut [u8]) -> Flow {
        let id = m.stream_id;
        #[cfg(feature = "channels")]
        if self.is_channel(index) {
            return self.open_channel(m, index, tx, inbox);
        }
        #[cfg(not(feature = "channels"))]
        let _ = inbox;
        #[cfg(feature = "patterns")]
        let Ok(stored) = heapless::String::<{ super::MAX_STREAM_PATH }, u8>::try_from(path) else {
            let _ = self.queue_handler_error(tx, id, HandlerError::new(414, "resource path too long"));
            return Flow::Consumed;
        };
        // Interval: {"interval": ms} (Linux client) or a bare number of ms (IOTMP-Embedded).
        // A map is looked up, anything else read through the out-of-line `FieldValue::as_u64`
        // (a map is never a number): one test of the field's kind, no fallback after a failed
        // `as_u64`.
        let interval = m.parameters.as_ref().and_then(|p| match p {
            FieldValue::Pson(PsonRef::Map(map)) => map.get("interval").and_then(|i| i.as_u64()),
            p => p.as_u64(),
        });
        // Clamped to the longest tick span (~12.4 days).
        let interval = interval.map_or(0, |ms| ms.min(u64::from(MAX_SPAN)) as u32);
        // The same id, or the same resource path, replaces the earlier stream.
        self.close_streams(id, Some((index, path)));
        let stream = OpenStream {
            id,
            resource: index,
            #[cfg(feature = "patterns")]
            path: stored,
            interval,
            next: self.tick().after(interval),
        };
        if self.streams.push(stream).is_err() {
            let _ = self.queue_handler_error(tx, id, HandlerError::new(503, "too many streams"));
            return Flow::Consumed;
        }
        self.reply_status(tx, MessageType::Ok, id);
        self.push(Record::StreamStarted { stream_id: id, resource: index });
        // One sample right after the OK, always: the new stream is the last one (any other
        // with its id was closed above).
        self.send_sample(tx, self.streams.len() - 1);
        Flow::Consumed
    }

    /// Closes the open stream `id` and, with `target` (a resource index and the path that
    /// named it), any stream on it: one copy of the table compaction for START_STREAM and
    /// STOP_STREAM.
    #[inline(never)]
    fn close_streams(&mut self, id: u16, target: Option<(usize, &str)>) {
        keep_where(&mut self.streams, |s| s.id != id && target.is_none_or(|(index, path)| !s.serves(index, path)));
    }

    fn on_stop_stream(&mut self, m: &Message<'_>, tx: &mut [u8]) -> Flow {
        let id = m.stream_id;
        #[cfg(feature = "channels")]
        if self.channel_stopped(id, tx) {
            return Flow::Consumed;
        }
        let before = self.streams.len();
        self.close_streams(id, None);
        let mut known = before != self.streams.len();
        for sub in self.subs.iter_mut().flatten().filter(|_| SUBSCRIPTIONS) {
            if sub.id == id {
                // The server ended a subscription: reopen it after the next reconnect.
                sub.id = 0;
                sub.open = false;
                known = true;
            }
        }
        if known {
            self.reply_status(tx, MessageType::Ok, id);
            self.push(Record::StreamStopped { stream_id: id });
        } else {
            self.reply_status(tx, MessageType::Error, id);
        }
        Flow::Consumed
    }

    fn on_stream_data(&mut self, m: &Message<'_>, tx: &mut [u8], inbox: &mut [u8]) -> Flow {
        let id = m.stream_id;
        // A device subscription first, then a server-opened stream into an input.
        #[cfg(feature = "subscriptions")]
        if let Some(sub) = self.subs.iter().position(|s| s.is_some_and(|s| s.id == id && s.open)) {
            let payload = self.store_payload(m, inbox);
            if payload == Payload::None && has_payload(m) {
                return Flow::Blocked;
            }
            let sub = u8::try_from(sub).unwrap_or(u8::MAX);
            self.push(Record::SubscriptionData { sub, payload });
            return Flow::Consumed;
        }
        #[cfg(feature = "channels")]
        if let Some(flow) = self.channel_data(m, tx, inbox) {
            return flow;
        }
        #[cfg(not(any(feature = "subscriptions", feature = "channels")))]
        let _ = inbox;
        let Some(stream) = self.streams.iter().find(|s| s.id == id) else {
            self.push(Record::Dropped(Dropped::UnknownStream { stream_id: id }));
            return Flow::Consumed;
        };
        let index = stream.resource;
        #[cfg(feature = "patterns")]
        let path = stream.path.clone();
        #[cfg_attr(not(feature = "patterns"), allow(unused_mut))]
        let mut params = Params::new();
        #[cfg(feature = "patterns")]
        let _ = self.thing.lookup(path.as_str(), &mut params);
        if !matches!(self.kind_of(index), Some(ResourceKind::Input | ResourceKind::InputOutput)) {
            return Flow::Consumed;
        }
        self.run_input(m, index, &params, tx, None);
        Flow::Consumed
    }
}

fn has_payload(m: &Message<'_>) -> bool {
    m.payload.is_some()
}

/// [`put_back`] when the field is there.
#[inline(always)]
fn put_field_back(buf: &mut [u8], at: &mut usize, key: u8, value: Option<u16>) {
    if let Some(v) = value {
        put_back(buf, at, key, u32::from(v));
    }
}

/// Writes `key` and the varint `value` so that they end at `*at` of `buf`, and moves `*at`
/// back to the key (wrapping below 0, which the caller checks); bytes outside `buf` are
/// not written.
fn put_back(buf: &mut [u8], at: &mut usize, key: u8, value: u32) {
    let mut n = 2;
    let mut v = value;
    while v >= 0x80 {
        n += 1;
        v >>= 7;
    }
    *at = at.wrapping_sub(n);
    let mut pos = *at;
    put(buf, &mut pos, key, value);
}

/// Writes `key` and the varint `value` at `*at` of `buf` and moves `*at` past them; bytes
/// past the end of `buf` are not written (the caller checks `*at` against its length).
fn put(buf: &mut [u8], at: &mut usize, key: u8, value: u32) {
    put_byte(buf, at, key);
    // The varint in 32 bits (every value here is a length or a u16).
    let mut v = value;
    while v >= 0x80 {
        put_byte(buf, at, v as u8 | 0x80);
        v >>= 7;
    }
    put_byte(buf, at, v as u8);
}

/// Writes `byte` at `*at` of `buf` if it is in range, and moves `*at` past it.
fn put_byte(buf: &mut [u8], at: &mut usize, byte: u8) {
    if let Some(slot) = buf.get_mut(*at) {
        *slot = byte;
    }
    *at = at.saturating_add(1);
}

#[cfg(test)]
mod tests {
    use super::{put, put_back, put_field_back};
    use crate::varint;

    #[test]
    fn put_writes_the_key_and_the_varint_as_encode_u64() {
        for v in [0u32, 1, 0x7f, 0x80, 0x3fff, 0x4000, 0x1f_ffff, 0x20_0000, 0x0fff_ffff, 0x1000_0000, u32::MAX] {
            let mut want = [0u8; 11];
            want[0] = 0x0a;
            let n = 1 + varint::encode_u64(u64::from(v), &mut want[1..]).unwrap();
            let mut buf = [0u8; 11];
            let mut at = 0;
            put(&mut buf, &mut at, 0x0a, v);
            assert_eq!((at, &buf[..at]), (n, &want[..n]), "{v}");
            // Short of room: nothing written past the end, and `at` says how far it went.
            for room in 0..n {
                let mut short = [0u8; 11];
                let mut at = 0;
                put(&mut short[..room], &mut at, 0x0a, v);
                assert_eq!((at, &short[..room]), (n, &want[..room]), "{v} in {room}");
            }
        }
    }

    #[test]
    fn put_field_back_writes_only_a_present_field() {
        let mut buf = [0u8; 4];
        let mut at = 4;
        put_field_back(&mut buf, &mut at, 0x08, None);
        put_field_back(&mut buf, &mut at, 0x10, Some(300));
        assert_eq!((at, buf), (1, [0, 0x10, 0xac, 0x02]));
    }

    #[test]
    fn put_back_ends_where_put_starts_and_writes_the_same_bytes() {
        for v in [0u32, 1, 0x7f, 0x80, 0x3fff, 0x4000, 0x1f_ffff, 0x20_0000, 0x0fff_ffff, 0x1000_0000, u32::MAX] {
            let mut want = [0u8; 11];
            let mut n = 0;
            put(&mut want, &mut n, 0x0a, v);
            let mut buf = [0u8; 11];
            let mut at = 11;
            put_back(&mut buf, &mut at, 0x0a, v);
            assert_eq!((at, &buf[at..]), (11 - n, &want[..n]), "{v}");
            // Short of room in front: `at` wraps below 0 (the caller's test) and nothing
            // is written.
            for room in 0..n {
                let mut short = [0u8; 11];
                let mut at = room;
                put_back(&mut short, &mut at, 0x0a, v);
                assert_eq!(at, room.wrapping_sub(n), "{v} in {room}");
                assert_eq!(short, [0; 11], "{v} in {room}");
            }
        }
    }
}
