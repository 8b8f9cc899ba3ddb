//! The adapter's calls: CONNECT, received bytes and the frame loop, transmission, timers,
//! the transport's close and the events (see the [module documentation](super) for the
//! call sequence).

use super::*;

impl<'a, B, const R: usize, const S: usize, const P: usize, const E: usize> Session<'a, B, R, S, P, E>
where
    B: AsRef<[u8]> + AsMut<[u8]>,
{
    /// Starts a connection on a fresh transport: queues CONNECT. Anything left from an
    /// earlier connection (partial frames, unsent frames, open streams) is dropped; pending
    /// cloud calls of the earlier connection were already failed with
    /// [`CallError::Disconnected`].
    pub fn connect(&mut self, now: Instant) {
        self.rx.clear();
        self.skip = 0;
        let st = &mut self.state;
        st.tx.clear();
        st.set_now(now);
        let tick = st.tick();
        st.last_rx = tick;
        st.last_tx = tick;
        st.last_keep_alive = tick;
        st.end_connection_state();
        let id = st.fresh_id();
        st.connect_id = id;
        st.phase = Phase::Connecting;
        let (_, tx, _) = split_regions(self.buf.as_mut(), self.rx_len, self.tx_len);
        // `CONNECT F1=id [F2=parameters] F3=[user, device, credential]`, framed by the same
        // `emit_output` as every answer: F2 and F3 with their keys at `OUT_OFFSET`, F1 and
        // the header in front.
        // The queue was cleared above: its free space is all of `tx`.
        let mut enc = pson::Encoder::new(pson::SliceSink::new(tx.get_mut(OUT_OFFSET..).unwrap_or(&mut [])));
        let params = config::ConnectParams::new(&st.config, st.keep_alive);
        let body = (|| {
            params.encode_field(&mut enc)?;
            // The F3 key and the array's header (`0xe3`: three items) in one write.
            enc.raw(&[0x1a, 0xe3])?;
            let c = &st.config;
            enc.str(c.user)?;
            enc.str(c.device)?;
            enc.str(c.credential)
        })();
        let len = enc.into_sink().written();
        if body.is_err() || !st.emit_output(tx, MessageType::Connect, id, None, len) {
            warn!("CONNECT does not fit the transmit buffer");
            st.close(DisconnectReason::Local, None);
        }
        debug!("connecting as {}/{}", self.state.config.user, self.state.config.device);
    }

    /// Feeds bytes received from the transport and processes complete frames. Returns how
    /// many bytes were taken: fewer than given when frames are waiting for room (drain
    /// [`Session::poll_transmit`] and [`Session::poll_event`], then offer the rest again).
    #[inline(never)]
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) -> usize {
        self.state.set_now(now);
        // What is not taken yet; taken is `data` without it.
        let mut rest = data;
        loop {
            self.process_buffered();
            if self.state.phase == Phase::Closed || self.state.phase == Phase::Idle {
                // Nothing more is read from a closed connection.
                return data.len();
            }
            if rest.is_empty() {
                return data.len();
            }
            let n = if self.skip > 0 {
                let n = rest.len().min(self.skip);
                self.skip -= n;
                n
            } else {
                let rx_len = self.rx_len;
                let region = self.buf.as_mut().get_mut(..rx_len).unwrap_or(&mut []);
                let free = self.rx.compact(region);
                let n = free.len().min(rest.len());
                if n == 0 {
                    return data.len() - rest.len();
                }
                if let (Some(dst), Some(src)) = (free.get_mut(..n), rest.get(..n)) {
                    dst.copy_from_slice(src);
                }
                self.rx.end += n;
                n
            };
            rest = rest.get(n..).unwrap_or(&[]);
        }
    }

    /// Whether a complete frame is buffered but waits for room to be processed.
    fn has_buffered_frame(&self) -> bool {
        if self.rx.is_empty() {
            // Without touching the buffer: a lent one may hold no memory while idle.
            return false;
        }
        let pending = self.buf.as_ref().get(self.rx.start..self.rx.end).unwrap_or(&[]);
        // The frame loop's test: a whole frame, one over the limit or a broken header.
        match parse_header(pending, usize::MAX) {
            Ok(Some(h)) => h.frame_len() <= pending.len() || h.frame_len() > self.max_frame_size(),
            Ok(None) => false,
            Err(_) => true,
        }
    }

    fn process_buffered(&mut self) {
        let max = self.max_frame_size();
        loop {
            if !matches!(self.state.phase, Phase::Connecting | Phase::Connected) {
                return;
            }
            // A frame is taken only when its reply and event will have room: the transmit
            // queue is empty and an event slot is free.
            if !self.state.can_take_frame() {
                return;
            }
            let rx = self.rx;
            let (rx_region, tx, inbox) = split_regions(self.buf.as_mut(), self.rx_len, self.tx_len);
            if SUBSCRIPTIONS && self.state.resubscribe {
                // Subscriptions go out right after authentication, before anything else.
                self.state.resubscribe_pending(tx);
                if !self.state.tx.is_empty() {
                    return;
                }
            }
            let pending = rx_region.get(rx.start..rx.end).unwrap_or(&[]);
            // One header parse per frame, the limit checked here: an oversized frame keeps
            // its header for `on_oversized`, which needs no second parse.
            let (header, error) = match parse_header(pending, usize::MAX) {
                Ok(Some(h)) if h.frame_len() <= max => {
                    let body = pending.get(h.header_len..h.frame_len()).unwrap_or(&[]);
                    if h.frame_len() > pending.len() {
                        return;
                    }
                    match self.state.on_frame(RawFrame { msg_type: h.msg_type, body }, tx, inbox) {
                        Flow::Consumed => self.rx.consume(h.frame_len()),
                        Flow::Blocked => return,
                    }
                    continue;
                }
                Ok(Some(h)) => (Some(h), iotmp::FrameError::TooLarge { size: h.frame_len() as u64, max }),
                Ok(None) => return,
                // A size past `usize` (32-bit targets): no header to answer from.
                Err(iotmp::FrameError::TooLarge { size, .. }) => (None, iotmp::FrameError::TooLarge { size, max }),
                Err(e) => (None, e),
            };
            if let (Phase::Connected, iotmp::FrameError::TooLarge { size, .. }) = (self.state.phase, error) {
                // Under a `max_frame_size` below the receive region the whole frame, and the
                // start of the next, may be buffered: only its own bytes are its.
                // (A size past `usize` saturates: all of `pending` is then its.)
                let n = usize::try_from(size).unwrap_or(usize::MAX);
                let own = pending.get(..n).unwrap_or(pending);
                let full = own.len() >= rx_region.len() || own.len() >= n;
                match self.state.on_oversized(header, own, size, full, tx) {
                    Some(buffered) => {
                        // What is buffered of the oversized frame goes; the rest is skipped
                        // (`buffered` is at most `own.len()`, itself at most `size`).
                        self.rx.consume(buffered);
                        self.skip = usize::try_from(size - buffered as u64).unwrap_or(usize::MAX);
                    }
                    None => return,
                }
                continue;
            }
            warn!("framing error: {}", error);
            self.state.protocol_error(tx, error);
            return;
        }
    }

    /// Advances timers: keep-alives, the dead-peer watchdog, stream intervals, request
    /// and deferred-reply timeouts. Also processes buffered frames that waited for room.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.state.set_now(now);
        self.process_buffered();
        let (_, tx, _) = split_regions(self.buf.as_mut(), self.rx_len, self.tx_len);
        if SUBSCRIPTIONS {
            self.state.resubscribe_pending(tx);
        }
        let now = self.state.now;
        self.state.on_timeout(now, tx);
    }

    /// The transport closed (or failed).
    pub fn handle_close(&mut self, now: Instant) {
        self.state.set_now(now);
        let truncated = self.rx.len();
        self.rx.clear();
        self.skip = 0;
        // Reported by the one `close` (without DISCONNECT): `AuthFailed(Closed)` while
        // connecting, `Disconnected` with the reason once connected.
        let phase = self.state.phase;
        if matches!(phase, Phase::Connecting | Phase::Connected) {
            let reason = if truncated > 0 && phase == Phase::Connected {
                DisconnectReason::Protocol(iotmp::FrameError::TruncatedAtClose { buffered: truncated })
            } else {
                DisconnectReason::TransportClosed
            };
            self.state.close(reason, None);
        }
        self.state.tx.clear();
    }

    /// Closes the session from the device side: queues DISCONNECT and reports
    /// `Disconnected(Local)`.
    pub fn close(&mut self, now: Instant) {
        self.state.set_now(now);
        if matches!(self.state.phase, Phase::Connecting | Phase::Connected) {
            let (_, tx, _) = split_regions(self.buf.as_mut(), self.rx_len, self.tx_len);
            self.state.close(DisconnectReason::Local, Some(tx));
        }
    }

    /// Copies queued frames into `out` (whole frames only, as many as fit) and returns the
    /// number of bytes; 0 when there is nothing to send. If the next frame does not fit,
    /// [`BufferTooSmall`] says how big `out` must be.
    pub fn poll_transmit(&mut self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let fifo = self.state.tx;
        if fifo.is_empty() {
            // Without touching the buffer: a lent one may hold no memory while idle.
            return Ok(0);
        }
        let (_, tx, _) = split_regions(self.buf.as_mut(), self.rx_len, self.tx_len);
        let queued = tx.get(fifo.start..fifo.end).unwrap_or(&[]);
        let mut used = 0;
        // The first frame's length when even it does not fit (one header parse per frame).
        let mut needed = 0;
        while let Ok(Some(header)) = parse_header(queued.get(used..).unwrap_or(&[]), usize::MAX) {
            let len = header.frame_len();
            if used + len > out.len() {
                if used == 0 {
                    needed = len;
                }
                break;
            }
            used += len;
        }
        if used == 0 {
            return if needed > 0 { Err(BufferTooSmall { needed }) } else { Ok(0) };
        }
        if let (Some(dst), Some(src)) = (out.get_mut(..used), queued.get(..used)) {
            dst.copy_from_slice(src);
        }
        self.state.tx.consume(used);
        Ok(used)
    }

    /// When [`Session::handle_timeout`] should be called next, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let st = &self.state;
        if matches!(st.phase, Phase::Connecting | Phase::Connected)
            && st.can_take_frame()
            && (self.has_buffered_frame() || (SUBSCRIPTIONS && st.resubscribe && !st.pending.is_full()))
        {
            return Some(st.now);
        }
        st.next_deadline().map(|t| t.instant(st.now))
    }

    /// The next event, if any. Its payload is valid until the next call.
    // Out of line on hosts (smaller at "s"); on microcontrollers the optimizer decides: with
    // `poll_event` and `stream` left to it, −32 / −16 / −120 B on thumbv7em / thumbv6m /
    // riscv32imc "z" (docs/footprint.md).
    #[cfg_attr(not(target_os = "none"), inline(never))]
    pub fn poll_event(&mut self) -> Option<Event<'_>> {
        let release = core::mem::take(&mut self.state.release_on_poll);
        self.state.inbox.consume(release);
        if self.state.events.is_empty() {
            self.state.synthesize_completion();
        }
        let record = self.state.events.pop_front()?;
        let inbox_start = self.state.inbox.start;
        let payload = match record {
            Record::AuthRefused { payload, .. } => payload,
            #[cfg(feature = "cloud")]
            Record::Reply { payload, .. } => payload,
            #[cfg(feature = "subscriptions")]
            Record::Subscribed { payload, .. }
            | Record::SubscriptionFailed { payload, .. }
            | Record::SubscriptionData { payload, .. } => payload,
            #[cfg(feature = "channels")]
            Record::ChannelOpened { payload, .. } | Record::ChannelData { payload, .. } => payload,
            _ => Payload::None,
        };
        self.state.release_on_poll = if let Payload::Inbox(n) = payload { n as usize } else { 0 };
        let (_, _, inbox) = split_regions(self.buf.as_mut(), self.rx_len, self.tx_len);
        // The payload, decoded once: `Err` when it did not fit the event buffer.
        let data: Result<Option<PsonRef<'_>>, ()> = match payload {
            Payload::None => Ok(None),
            // The bytes are one value the frame's parse validated with these limits (or one
            // the session encoded): its prefix decode is the whole of them.
            Payload::Inbox(n) => Ok(inbox
                .get(inbox_start..inbox_start + n as usize)
                .and_then(|b| PsonRef::decode_prefix_with(b, &self.state.config.pson).ok())
                .map(|(v, _)| v)),
            Payload::TooLarge => Err(()),
        };
        #[cfg(any(feature = "cloud", feature = "subscriptions"))]
        let failed = |timeout: bool| if timeout { CallError::Timeout } else { CallError::Disconnected };
        Some(match record {
            Record::Connected => Event::Connected,
            Record::AuthRefused { code, .. } => {
                Event::AuthFailed(AuthFailure::Refused { code, payload: data.ok().flatten() })
            }
            Record::AuthFailed(f) => Event::AuthFailed(match f {
                NoAnswer::Closed => AuthFailure::Closed,
                NoAnswer::Timeout => AuthFailure::Timeout,
                NoAnswer::UnexpectedFrame => AuthFailure::UnexpectedFrame,
            }),
            Record::Disconnected(r) => Event::Disconnected(r),
            #[cfg(feature = "cloud")]
            Record::Reply { id, ok, code, .. } => {
                let request = RequestId(id);
                let result = match (ok, data) {
                    (_, Err(())) => Err(CallError::PayloadTooLarge),
                    (true, Ok(d)) => Ok(d),
                    (false, Ok(d)) => Err(CallError::Server { code, payload: d }),
                };
                Event::CallCompleted { request, result }
            }
            #[cfg(feature = "cloud")]
            Record::CallFailed { id, timeout } => {
                Event::CallCompleted { request: RequestId(id), result: Err(failed(timeout)) }
            }
            #[cfg(feature = "subscriptions")]
            Record::SubscriptionError { sub, timeout } => {
                Event::SubscriptionFailed { subscription: SubscriptionId(sub), error: failed(timeout) }
            }
            #[cfg(feature = "subscriptions")]
            Record::Subscribed { sub, .. } => {
                Event::Subscribed { subscription: SubscriptionId(sub), initial: data.ok().flatten() }
            }
            #[cfg(feature = "subscriptions")]
            Record::SubscriptionFailed { sub, code, .. } => Event::SubscriptionFailed {
                subscription: SubscriptionId(sub),
                error: match data {
                    Err(()) => CallError::PayloadTooLarge,
                    Ok(d) => CallError::Server { code, payload: d },
                },
            },
            #[cfg(feature = "subscriptions")]
            Record::SubscriptionData { sub, .. } => {
                Event::SubscriptionData { subscription: SubscriptionId(sub), data: data.ok().flatten() }
            }
            Record::Deferred { stream_id, resource } => Event::Deferred { stream_id, resource },
            Record::StreamStarted { stream_id, resource } => Event::StreamStarted { stream_id, resource },
            Record::StreamStopped { stream_id } => Event::StreamStopped { stream_id },
            #[cfg(feature = "channels")]
            Record::ChannelOpened { stream_id, resource, payload, params_len } => {
                let n = if let Payload::Inbox(n) = payload { n as usize } else { 0 };
                let stored = inbox.get(inbox_start..inbox_start + n).unwrap_or(&[]);
                let (params, path) = stored.split_at(usize::from(params_len).min(stored.len()));
                Event::ChannelOpened {
                    stream_id,
                    resource,
                    path: core::str::from_utf8(path).unwrap_or(""),
                    // With the limits the frame's parse applied, as every other payload.
                    params: PsonRef::decode_with(params, &self.state.config.pson).ok(),
                }
            }
            #[cfg(feature = "channels")]
            Record::ChannelData { stream_id, .. } => Event::ChannelData { stream_id, data: data.ok().flatten() },
            #[cfg(feature = "channels")]
            Record::ChannelClosed { stream_id } => Event::ChannelClosed { stream_id },
            Record::Dropped(d) => Event::Dropped(d),
        })
    }
}
