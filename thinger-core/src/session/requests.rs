//! Requests the device makes: cloud calls, subscriptions, samples on the server's streams
//! ([`Session::stream`]) and the answers to deferred requests ([`Session::reply`]).

use super::*;
#[cfg(feature = "cloud")]
use crate::time::Duration;

impl<'a, B, const R: usize, const S: usize, const P: usize, const E: usize> Session<'a, B, R, S, P, E>
where
    B: AsRef<[u8]> + AsMut<[u8]>,
{
    #[cfg(any(feature = "cloud", feature = "subscriptions"))]
    fn api(&mut self, now: Instant) -> Result<(), Error> {
        self.state.set_now(now);
        if self.state.phase != Phase::Connected {
            return Err(Error::NotConnected);
        }
        Ok(())
    }

    /// Sends a cloud call: `RUN F4=code F2=target F3=payload`. With `confirm` false the
    /// reply is not reported (it is still consumed).
    #[cfg(feature = "cloud")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cloud")))]
    #[inline(never)]
    pub fn cloud_call(
        &mut self,
        now: Instant,
        call: CloudCall,
        target: &dyn iotmp::DynEncodePson,
        payload: Option<&dyn iotmp::DynEncodePson>,
        confirm: bool,
    ) -> Result<RequestId, Error> {
        let wait = self.state.config.request_timeout;
        self.cloud_call_waiting(now, call, target, payload, confirm, wait)
    }

    /// [`Session::cloud_call`] whose answer may take `wait` (instead of the request timeout).
    #[cfg(feature = "cloud")]
    fn cloud_call_waiting(
        &mut self,
        now: Instant,
        call: CloudCall,
        target: &dyn iotmp::DynEncodePson,
        payload: Option<&dyn iotmp::DynEncodePson>,
        confirm: bool,
        wait: Duration,
    ) -> Result<RequestId, Error> {
        self.api(now)?;
        let (_, tx, _) = split_regions(self.buf.as_mut(), self.rx_len, self.tx_len);
        let st = &mut self.state;
        let id = st.fresh_id();
        let mut msg = OutgoingMessage::new(MessageType::Run, id)
            .parameters(OutField::Pson(target))
            .resource(OutField::Varint(call as u64));
        if let Some(p) = payload {
            msg = msg.payload(OutField::Pson(p));
        }
        // A wait past the longest tick span is a wait until the connection ends.
        let forever = wait.as_millis() > u64::from(crate::time::MAX_SPAN);
        let deadline = st.tick().after(crate::time::span(wait));
        let kind = PendingKind::Call { silent: !confirm };
        let entry = Pending { id, kind, deadline, state: PendingState::Waiting, forever };
        if st.pending.is_full() && confirm {
            return Err(Error::TooManyPending);
        }
        st.queue(tx, &msg)?;
        // A silent call that finds the table full is sent anyway; its reply is then dropped.
        let _ = st.pending.push(entry);
        trace!("cloud call {} on stream {}", call as u8, id);
        Ok(RequestId(id))
    }

    /// Reads a property; the reply event carries its value (or `CallError::Server` 404).
    #[cfg(feature = "cloud")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cloud")))]
    pub fn read_property(&mut self, now: Instant, property: &str) -> Result<RequestId, Error> {
        self.cloud_call(now, CloudCall::ReadProperty, &property, None, true)
    }

    /// Sets a property; with `confirm` false no completion event is reported.
    #[cfg(feature = "cloud")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cloud")))]
    pub fn set_property(
        &mut self,
        now: Instant,
        property: &str,
        value: &dyn iotmp::DynEncodePson,
        confirm: bool,
    ) -> Result<RequestId, Error> {
        self.cloud_call(now, CloudCall::SetProperty, &property, Some(value), confirm)
    }

    /// Appends a record to a data bucket; the OK comes once the server stored it.
    #[cfg(feature = "cloud")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cloud")))]
    pub fn write_bucket(
        &mut self,
        now: Instant,
        bucket: &str,
        record: &dyn iotmp::DynEncodePson,
    ) -> Result<RequestId, Error> {
        self.cloud_call(now, CloudCall::WriteBucket, &bucket, Some(record), true)
    }

    /// Calls an endpoint, with or without data.
    #[cfg(feature = "cloud")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cloud")))]
    pub fn call_endpoint(
        &mut self,
        now: Instant,
        endpoint: &str,
        data: Option<&dyn iotmp::DynEncodePson>,
    ) -> Result<RequestId, Error> {
        self.cloud_call(now, CloudCall::CallEndpoint, &endpoint, data, true)
    }

    /// Runs a resource of another device of the same account.
    #[cfg(feature = "cloud")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cloud")))]
    pub fn call_device(
        &mut self,
        now: Instant,
        device: &str,
        resource: &str,
        input: Option<&dyn iotmp::DynEncodePson>,
    ) -> Result<RequestId, Error> {
        self.cloud_call(now, CloudCall::CallDevice, &[device, resource], input, true)
    }

    /// Takes a sync lock named `sync` for holder `lock`, with `slots` holders allowed and a
    /// server-side wait of `timeout_s` seconds (0 = wait as long as needed). The call waits
    /// as long as the server may: the request timeout plus `timeout_s`, or until the
    /// connection ends when `timeout_s` is 0, so that a late grant is never dropped.
    #[cfg(feature = "cloud")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cloud")))]
    pub fn lock_sync(
        &mut self,
        now: Instant,
        sync: &str,
        lock: &str,
        slots: u32,
        timeout_s: u32,
    ) -> Result<RequestId, Error> {
        let request = LockRequest { lock, slots, timeout_s };
        let wait = match timeout_s {
            0 => Duration::from_millis(u64::MAX),
            s => self.state.config.request_timeout + Duration::from_secs(u64::from(s)),
        };
        self.cloud_call_waiting(now, CloudCall::LockSync, &sync, Some(&request), true, wait)
    }

    /// Releases a sync lock.
    #[cfg(feature = "cloud")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cloud")))]
    pub fn unlock_sync(&mut self, now: Instant, sync: &str, lock: &str) -> Result<RequestId, Error> {
        let request = LockRequest { lock, slots: 1, timeout_s: 0 };
        self.cloud_call(now, CloudCall::UnlockSync, &sync, Some(&request), true)
    }

    /// Registers a subscription; it is opened now if connected (or as soon as the transmit
    /// queue and request table have room), and again after every reconnect. Events arrive
    /// as [`Event::SubscriptionData`]. Fails only when all `S` subscription slots are taken.
    #[cfg(feature = "subscriptions")]
    #[cfg_attr(docsrs, doc(cfg(feature = "subscriptions")))]
    pub fn subscribe(&mut self, now: Instant, def: Subscription<'a>) -> Result<SubscriptionId, Error> {
        self.state.set_now(now);
        let entry = SubEntry { def, id: 0, open: false };
        let st = &mut self.state;
        let index = match st.subs.iter().position(Option::is_none) {
            Some(i) => {
                if let Some(slot) = st.subs.get_mut(i) {
                    *slot = Some(entry);
                }
                i
            }
            None => {
                st.subs.push(Some(entry)).map_err(|_| Error::TooManyPending)?;
                st.subs.len() - 1
            }
        };
        let sub = u8::try_from(index).map_err(|_| Error::TooManyPending)?;
        if st.phase == Phase::Connected {
            let (_, tx, _) = split_regions(self.buf.as_mut(), self.rx_len, self.tx_len);
            // No room now: it opens as soon as the transmit queue or request table allows.
            if self.state.open_subscription(tx, sub).is_err() {
                self.state.resubscribe = true;
            }
        }
        Ok(SubscriptionId(sub))
    }

    /// Removes a subscription (STOP_STREAM if it is open).
    #[cfg(feature = "subscriptions")]
    #[cfg_attr(docsrs, doc(cfg(feature = "subscriptions")))]
    pub fn unsubscribe(&mut self, now: Instant, id: SubscriptionId) -> Result<(), Error> {
        self.state.set_now(now);
        let entry = self.state.subs.get_mut(usize::from(id.0)).and_then(Option::take).ok_or(Error::UnknownId)?;
        if entry.id != 0 && self.state.phase == Phase::Connected {
            keep_where(&mut self.state.pending, |p| !(p.id == entry.id && matches!(p.kind, PendingKind::Subscribe(_))));
            let (_, tx, _) = split_regions(self.buf.as_mut(), self.rx_len, self.tx_len);
            self.state.queue(tx, &OutgoingMessage::new(MessageType::StopStream, entry.id))?;
        }
        Ok(())
    }

    /// Publishes `payload` on a [`Subscription::TopicPublish`] stream.
    #[cfg(feature = "subscriptions")]
    #[cfg_attr(docsrs, doc(cfg(feature = "subscriptions")))]
    pub fn publish(
        &mut self,
        now: Instant,
        id: SubscriptionId,
        payload: &dyn iotmp::DynEncodePson,
    ) -> Result<(), Error> {
        self.api(now)?;
        let (_, tx, _) = split_regions(self.buf.as_mut(), self.rx_len, self.tx_len);
        let st = &mut self.state;
        let entry = st.subs.get(usize::from(id.0)).copied().flatten().ok_or(Error::UnknownId)?;
        if !entry.open || !matches!(entry.def, Subscription::TopicPublish { .. }) {
            return Err(Error::UnknownId);
        }
        st.queue(tx, &OutgoingMessage::new(MessageType::StreamData, entry.id).payload(OutField::Pson(payload)))
    }

    /// Sends a sample of resource `path` on every stream the server has open on it (matched
    /// by the stream's path, or by the resource's pattern). Returns whether anyone listened
    /// and got a sample.
    // Out of line on hosts (smaller at "s"); on microcontrollers the optimizer decides: with
    // `poll_event` and `stream` left to it, −32 / −16 / −120 B on thumbv7em / thumbv6m /
    // riscv32imc "z" (docs/footprint.md).
    #[cfg_attr(not(target_os = "none"), inline(never))]
    pub fn stream(&mut self, now: Instant, path: &str) -> bool {
        self.state.set_now(now);
        if self.state.phase != Phase::Connected {
            return false;
        }
        let (_, tx, _) = split_regions(self.buf.as_mut(), self.rx_len, self.tx_len);
        let st = &mut self.state;
        let mut sent = false;
        for i in 0..st.streams.len() {
            let matches = st.streams.get(i).is_some_and(|s| {
                // The path the server opened, or the resource's own (a pattern).
                #[cfg(feature = "patterns")]
                if s.path.as_str() == path {
                    return true;
                }
                st.thing.entry(s.resource).is_some_and(|e| crate::bytes::str_eq(e.path(), path))
            });
            if matches && st.send_sample(tx, i) {
                sent = true;
            }
        }
        sent
    }

    /// Answers a request a handler deferred ([`Event::Deferred`]): `Ok(Some(value))` →
    /// `OK F3=value`, `Ok(None)` → `OK`, `Err(e)` → `ERROR F2=code F3={"error": message}`.
    /// Without the feature `deferred` nothing can be deferred, and this answers
    /// [`Error::UnknownId`].
    pub fn reply(
        &mut self,
        now: Instant,
        stream_id: u16,
        result: Result<Option<&dyn iotmp::DynEncodePson>, HandlerError>,
    ) -> Result<(), Error> {
        self.state.set_now(now);
        if self.state.phase != Phase::Connected {
            return Err(Error::NotConnected);
        }
        let position = self
            .state
            .pending
            .iter()
            .position(|p| p.id == stream_id && matches!(p.kind, PendingKind::Deferred { .. }))
            .ok_or(Error::UnknownId)?;
        let (_, tx, _) = split_regions(self.buf.as_mut(), self.rx_len, self.tx_len);
        let st = &mut self.state;
        match result {
            Ok(value) => {
                let out = OutgoingMessage::new(MessageType::Ok, stream_id);
                match value {
                    Some(v) => st.queue(tx, &out.payload(OutField::Pson(v)))?,
                    None => st.queue(tx, &out)?,
                }
            }
            Err(e) => st.queue_handler_error(tx, stream_id, e)?,
        }
        let _ = take_at(&mut st.pending, position);
        Ok(())
    }
}
