//! The client handle: cloud calls from any task of the runner's executor.

use core::future::poll_fn;
use core::task::Poll;

use thinger_core::iotmp::DynEncodePson;
use thinger_core::resource::HandlerError;
use thinger_core::session::{DisconnectReason, Error as SessionError, RequestId};
use thinger_core::time::Instant;

use crate::shared::{CoreSession, Deferred, LinkState, Shared, SlotState};
use crate::{ConnectError, Error, now};

/// A handle for cloud calls, made by [`new`](crate::new) together with the
/// [`Runner`](crate::Runner). It is `Copy`: hand a copy to every task that needs one.
///
/// Calls queue their frame in the session and wake the runner, then wait for the server's
/// reply (up to the session's request timeout). A call made while the device is not
/// connected fails at once with [`Error::NotConnected`] (use
/// [`Client::wait_connected`] first). Calls cannot be made from inside a resource handler
/// (they return [`Error::Busy`]): handlers run while the runner holds the session.
///
/// All tasks using the client must run on the runner's executor (the state is shared
/// through a `RefCell`, without locks).
pub struct Client<'d, const R: usize> {
    pub(crate) shared: &'d Shared<'d, R>,
}

impl<const R: usize> Clone for Client<'_, R> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<const R: usize> Copy for Client<'_, R> {}

/// Frees a claimed call slot when the call ends or its future is dropped.
struct SlotGuard<'c, 'd, const R: usize> {
    shared: &'c Shared<'d, R>,
    index: usize,
}

impl<const R: usize> Drop for SlotGuard<'_, '_, R> {
    fn drop(&mut self) {
        let _ = self.shared.with(|inner| {
            if let Some(slot) = inner.slots.get_mut(self.index) {
                slot.state = SlotState::Free;
                slot.reply.clear();
            }
            inner.waiters.wake();
        });
    }
}

impl<'d, const R: usize> Client<'d, R> {
    /// Whether the device is connected and authenticated.
    pub fn is_connected(&self) -> bool {
        self.link_state() == LinkState::Connected
    }

    /// The state of the link to the server.
    pub fn link_state(&self) -> LinkState {
        self.shared.with(|inner| inner.link).unwrap_or(LinkState::Down)
    }

    /// How many times the server has accepted the device since start (each reconnect counts).
    pub fn connections(&self) -> u32 {
        self.shared.with(|inner| inner.connections).unwrap_or(0)
    }

    /// Why the last connection attempt failed (DNS, TCP, TLS, credentials), if it did.
    /// Cleared when a connection is authenticated.
    pub fn last_error(&self) -> Option<ConnectError> {
        self.shared.with(|inner| inner.last_error).ok().flatten()
    }

    /// Why the last connection ended (keep-alive timeout, transport closed, the server's
    /// DISCONNECT with its reason code, a protocol error), if one did.
    pub fn last_disconnect(&self) -> Option<DisconnectReason> {
        self.shared.with(|inner| inner.last_disconnect).ok().flatten()
    }

    /// Waits until the device is connected and authenticated.
    pub async fn wait_connected(&self) {
        let _ = poll_fn(|cx| {
            self.shared.poll_with(cx, |inner| match inner.link {
                LinkState::Connected => Poll::Ready(()),
                _ => Poll::Pending,
            })
        })
        .await;
    }

    /// Sends a sample of resource `path` to everyone listening on it (a dashboard, a bucket
    /// fed by the resource). Returns whether anyone listened; sending needs no reply.
    pub fn stream(&self, path: &str) -> bool {
        let sent = self.shared.with(|inner| inner.session.stream(now(), path)).unwrap_or(false);
        if sent {
            self.shared.flush.signal(());
        }
        sent
    }

    /// Appends `record` to data bucket `bucket`; returns once the server stored it.
    ///
    /// `record` is any [`EncodePson`](thinger_core::pson::EncodePson) value (numbers,
    /// strings, `pson::Map`, serde types through `pson::Serde`).
    pub async fn write_bucket(&self, bucket: &str, record: &dyn DynEncodePson) -> Result<(), Error> {
        self.request(|s, t| s.write_bucket(t, bucket, record), &mut []).await.map(|_| ())
    }

    /// Sets device property `property` to `value`; returns once the server confirmed.
    pub async fn set_property(&self, property: &str, value: &dyn DynEncodePson) -> Result<(), Error> {
        self.request(|s, t| s.set_property(t, property, value, true), &mut []).await.map(|_| ())
    }

    /// Reads device property `property` into `out` as PSON; returns its length (decode with
    /// [`PsonRef::decode`](thinger_core::pson::PsonRef::decode) or `pson::from_slice`).
    /// `Ok(0)` when the server answered without a value.
    pub async fn read_property(&self, property: &str, out: &mut [u8]) -> Result<usize, Error> {
        self.request(|s, t| s.read_property(t, property), out).await
    }

    /// Calls endpoint `endpoint` with optional `data`; returns once the server ran it.
    pub async fn call_endpoint(&self, endpoint: &str, data: Option<&dyn DynEncodePson>) -> Result<(), Error> {
        self.request(|s, t| s.call_endpoint(t, endpoint, data), &mut []).await.map(|_| ())
    }

    /// Calls endpoint `endpoint` with optional `data` and copies the endpoint's answer (its
    /// PSON body, e.g. an HTTP endpoint's response) into `out`; returns its length, 0 when
    /// it answered without a body.
    pub async fn call_endpoint_reply(
        &self,
        endpoint: &str,
        data: Option<&dyn DynEncodePson>,
        out: &mut [u8],
    ) -> Result<usize, Error> {
        self.request(|s, t| s.call_endpoint(t, endpoint, data), out).await
    }

    /// Takes sync lock `sync` for holder `lock` (`slots` holders allowed at once, the
    /// server waiting up to `timeout_s` seconds for a slot; 0 = as long as needed); returns
    /// once it is held. Release it with [`Client::unlock_sync`].
    pub async fn lock_sync(&self, sync: &str, lock: &str, slots: u32, timeout_s: u32) -> Result<(), Error> {
        self.request(|s, t| s.lock_sync(t, sync, lock, slots, timeout_s), &mut []).await.map(|_| ())
    }

    /// Releases sync lock `sync` held by `lock`.
    pub async fn unlock_sync(&self, sync: &str, lock: &str) -> Result<(), Error> {
        self.request(|s, t| s.unlock_sync(t, sync, lock), &mut []).await.map(|_| ())
    }

    /// Waits for the next request a resource handler deferred (it called
    /// [`Call::defer`](thinger_core::resource::Call::defer)); answer it with
    /// [`Client::reply`] before the session's deferred timeout, or the server gets 504.
    /// Up to [`DEFERRED`](crate::DEFERRED) unread ones are kept; a handler may also keep
    /// [`Call::stream_id`](thinger_core::resource::Call::stream_id) itself.
    pub async fn next_deferred(&self) -> Result<Deferred, Error> {
        poll_fn(|cx| {
            self.shared.poll_with(cx, |inner| match inner.deferred.pop_front() {
                Some(d) => Poll::Ready(d),
                None => Poll::Pending,
            })
        })
        .await
    }

    /// Answers deferred request `stream_id`: `Ok(Some(value))` sends the value,
    /// `Ok(None)` a bare OK, `Err(e)` an error with its code and message.
    pub async fn reply(
        &self,
        stream_id: u16,
        result: Result<Option<&dyn DynEncodePson>, HandlerError>,
    ) -> Result<(), Error> {
        poll_fn(|cx| {
            let polled = self.shared.poll_with(cx, |inner| match inner.session.reply(now(), stream_id, result) {
                Ok(()) => Poll::Ready(Ok(())),
                Err(SessionError::TransmitBufferFull) => Poll::Pending,
                Err(SessionError::NotConnected) => Poll::Ready(Err(Error::NotConnected)),
                Err(SessionError::UnknownId) => Poll::Ready(Err(Error::UnknownId)),
                Err(e) => Poll::Ready(Err(Error::Session(e))),
            });
            self.shared.flush.signal(());
            match polled {
                Poll::Ready(Ok(r)) => Poll::Ready(r),
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }

    /// Runs resource `resource` of another device of the account; its output (PSON) is
    /// written to `out` and its length returned.
    pub async fn call_device(
        &self,
        device: &str,
        resource: &str,
        input: Option<&dyn DynEncodePson>,
        out: &mut [u8],
    ) -> Result<usize, Error> {
        self.request(|s, t| s.call_device(t, device, resource, input), out).await
    }

    /// Makes any request of the session (`f` queues it and returns its id), waits for its
    /// completion and copies the reply value into `out`.
    pub(crate) async fn request(
        &self,
        mut f: impl FnMut(&mut CoreSession<'d, R>, Instant) -> Result<RequestId, SessionError>,
        out: &mut [u8],
    ) -> Result<usize, Error> {
        // 1. A call slot (waits while all are taken).
        let index = poll_fn(|cx| {
            self.shared.poll_with(cx, |inner| {
                match inner.slots.iter_mut().enumerate().find(|(_, s)| s.state == SlotState::Free) {
                    Some((i, slot)) => {
                        slot.state = SlotState::Claimed;
                        Poll::Ready(i)
                    }
                    None => Poll::Pending,
                }
            })
        })
        .await?;
        let guard = SlotGuard { shared: self.shared, index };

        // 2. The request (waits while the transmit queue is full).
        poll_fn(|cx| {
            let polled = self.shared.poll_with(cx, |inner| {
                if inner.link != LinkState::Connected {
                    return Poll::Ready(Err(Error::NotConnected));
                }
                match f(&mut inner.session, now()) {
                    Ok(id) => {
                        if let Some(slot) = inner.slots.get_mut(index) {
                            slot.state = SlotState::Waiting(id);
                        }
                        Poll::Ready(Ok(()))
                    }
                    Err(SessionError::TransmitBufferFull) => Poll::Pending,
                    Err(SessionError::NotConnected) => Poll::Ready(Err(Error::NotConnected)),
                    Err(e) => Poll::Ready(Err(Error::Session(e))),
                }
            });
            // Queued, or waiting for room: either way the runner has frames to send.
            self.shared.flush.signal(());
            match polled {
                Poll::Ready(Ok(Ok(()))) => Poll::Ready(Ok(())),
                Poll::Ready(Ok(Err(e)) | Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        })
        .await?;

        // 3. The completion.
        let result = poll_fn(|cx| {
            self.shared.poll_with(cx, |inner| {
                let Some(slot) = inner.slots.get(index) else {
                    return Poll::Ready(Err(Error::Disconnected));
                };
                match slot.state {
                    SlotState::Done(Ok(None)) => Poll::Ready(Ok(0)),
                    SlotState::Done(Ok(Some(n))) => {
                        let value = slot.reply.get(..n).unwrap_or(&[]);
                        if out.is_empty() {
                            return Poll::Ready(Ok(0));
                        }
                        match out.get_mut(..n) {
                            Some(dst) => {
                                dst.copy_from_slice(value);
                                Poll::Ready(Ok(n))
                            }
                            None => Poll::Ready(Err(Error::BufferTooSmall { needed: n })),
                        }
                    }
                    SlotState::Done(Err(e)) => Poll::Ready(Err(e)),
                    SlotState::Free | SlotState::Claimed | SlotState::Waiting(_) => Poll::Pending,
                }
            })
        })
        .await
        .and_then(|r| r);
        drop(guard);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::CALL_SLOTS;
    use embassy_futures::{block_on, join::join, yield_now};
    use rand_core::OsRng;
    use std::boxed::Box;
    use std::vec;
    use thinger_core::iotmp::{MessageType, OutField, OutgoingMessage, parse_frame};
    use thinger_core::pson::PsonRef;
    use thinger_core::resource::Thing;
    use thinger_core::session::{Config, Session};

    fn stream_id(frame: &[u8]) -> (MessageType, u16) {
        let message = parse_frame(frame, usize::MAX).unwrap().unwrap().0.message().unwrap();
        (message.kind, message.stream_id)
    }

    /// Plays the runner and the server: answers the next queued request with `reply`.
    async fn answer(shared: &Shared<'_, 4>, reply: Option<&u32>) -> MessageType {
        let mut out = [0u8; 256];
        loop {
            let n = shared.with(|i| i.session.poll_transmit(&mut out)).unwrap().unwrap();
            if n > 0 {
                let (kind, id) = stream_id(&out[..n]);
                let mut frame = [0u8; 32];
                let ok = OutgoingMessage::new(MessageType::Ok, id);
                let len = match reply {
                    Some(v) => ok.payload(OutField::Pson(v)).encode(&mut frame).unwrap(),
                    None => ok.encode(&mut frame).unwrap(),
                };
                shared
                    .with(|i| {
                        assert_eq!(i.session.handle_input(now(), &frame[..len]), len);
                        i.dispatch_events();
                    })
                    .unwrap();
                return kind;
            }
            yield_now().await;
        }
    }

    /// Shared state for the whole test (the client borrows it for its lifetime, as the
    /// firmware does with a static).
    fn idle() -> &'static Shared<'static, 4> {
        let buf: &'static mut [u8] = Box::leak(vec![0u8; 1024].into_boxed_slice());
        let session = Session::new(Config::new("user", "device", "secret"), Thing::new(), buf, &mut OsRng);
        let ring: &'static mut [u8] = Box::leak(vec![0u8; 512].into_boxed_slice());
        let ring = thinger_core::queue::Ring::new(ring, 8, thinger_core::queue::Overflow::Reject);
        Box::leak(Box::new(Shared::new(session, ring)))
    }

    fn connected() -> &'static Shared<'static, 4> {
        let shared = idle();
        shared.with(|i| i.session.connect(now())).unwrap();
        assert_eq!(block_on(answer(shared, None)), MessageType::Connect);
        shared
    }

    #[test]
    fn calls_complete_with_their_replies() {
        let shared = connected();
        let client = Client { shared };
        assert!(client.is_connected());
        assert_eq!(client.link_state(), LinkState::Connected);
        assert_eq!(client.connections(), 1);

        let (written, kind) = block_on(join(client.write_bucket("b", &21.5f64), answer(shared, None)));
        assert_eq!((written, kind), (Ok(()), MessageType::Run));

        let mut value = [0u8; 8];
        let (read, _) = block_on(join(client.read_property("cfg", &mut value), answer(shared, Some(&7))));
        let n = read.unwrap();
        assert_eq!(PsonRef::decode(&value[..n]).unwrap().as_u64(), Some(7));

        // A reply larger than the caller's buffer is reported, not truncated.
        let mut tiny = [0u8; 1];
        let (read, _) = block_on(join(client.read_property("cfg", &mut tiny), answer(shared, Some(&70_000))));
        assert!(matches!(read, Err(Error::BufferTooSmall { needed }) if needed > 1));

        // Every slot is free again.
        shared.with(|i| assert!(i.slots.iter().all(|s| s.state == SlotState::Free))).unwrap();
        assert_eq!(CALL_SLOTS, shared.with(|i| i.slots.len()).unwrap());
    }

    #[test]
    fn calls_fail_when_not_connected_or_busy() {
        let client = Client { shared: idle() };
        assert_eq!(block_on(client.write_bucket("b", &1u8)), Err(Error::NotConnected));
        assert!(!client.stream("millis"));

        let shared = connected();
        let client = Client { shared };
        // From inside a handler the runner holds the state: the call is refused, no panic.
        let held = shared.inner.borrow_mut();
        assert_eq!(block_on(client.write_bucket("b", &1u8)), Err(Error::Busy));
        assert_eq!(client.link_state(), LinkState::Down);
        drop(held);
        assert!(client.is_connected());
    }

    #[test]
    fn a_dropped_call_frees_its_slot_and_its_late_reply_is_ignored() {
        let shared = connected();
        let client = Client { shared };
        {
            let call = core::pin::pin!(client.write_bucket("b", &1u8));
            // Poll once: the request goes out, then the caller gives up.
            let waker = core::task::Waker::noop();
            let mut cx = core::task::Context::from_waker(waker);
            assert!(call.poll(&mut cx).is_pending());
        }
        shared.with(|i| assert!(i.slots.iter().all(|s| s.state == SlotState::Free))).unwrap();
        // The server's reply to the abandoned call is consumed without effect.
        block_on(answer(shared, None));
        assert!(client.is_connected());
    }

    #[test]
    fn a_disconnect_fails_the_waiting_call() {
        let shared = connected();
        let client = Client { shared };
        let close = async {
            let mut out = [0u8; 256];
            // Wait for the request, then the transport closes.
            while shared.with(|i| i.session.poll_transmit(&mut out)).unwrap().unwrap() == 0 {
                yield_now().await;
            }
            shared
                .with(|i| {
                    i.session.handle_close(now());
                    i.dispatch_events();
                })
                .unwrap();
        };
        let (result, ()) = block_on(join(client.call_endpoint("e", None), close));
        assert_eq!(result, Err(Error::Disconnected));
        assert_eq!(client.link_state(), LinkState::Down);
    }
}
