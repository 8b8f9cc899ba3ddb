//! Subscriptions: server events, property changes and MQTT topics, and MQTT publishing.

use core::future::poll_fn;
use core::task::Poll;

use thinger_core::iotmp::DynEncodePson;
use thinger_core::session::{Error as SessionError, Subscription as Def, SubscriptionId};

use crate::shared::{Shared, SubState};
use crate::{Client, Error, now};

/// An open subscription, made by [`Client::subscribe_event`],
/// [`Client::subscribe_property`], [`Client::mqtt_subscribe`] or
/// [`Client::mqtt_publisher`]. The session keeps it open across reconnects; dropping the
/// handle closes it.
///
/// Each subscription keeps its newest unread event (up to [`MAX_REPLY`](crate::MAX_REPLY)
/// bytes of PSON); an event that arrives before the previous one was read replaces it and
/// counts in [`Subscription::lost`].
pub struct Subscription<'d, const R: usize> {
    shared: &'d Shared<'d, R>,
    slot: usize,
    id: SubscriptionId,
}

impl<'d, const R: usize> Client<'d, R> {
    /// Subscribes to server event `name` (e.g. `device_state_change`).
    pub fn subscribe_event(&self, name: &'d str) -> Result<Subscription<'d, R>, Error> {
        self.subscribe(Def::Event { name })
    }

    /// Subscribes to changes of device property `property`; with `current` the server
    /// sends its present value first.
    pub fn subscribe_property(&self, property: &'d str, current: bool) -> Result<Subscription<'d, R>, Error> {
        self.subscribe(Def::Property { property, current })
    }

    /// Subscribes to MQTT topic filter `topic` on the server's broker. Each event is
    /// `{"topic": T, "payload": P}`:
    /// [`session::Subscription::topic_message`](thinger_core::session::Subscription::topic_message)
    /// splits it.
    pub fn mqtt_subscribe(&self, topic: &'d str, qos: u8) -> Result<Subscription<'d, R>, Error> {
        self.subscribe(Def::TopicSubscribe { topic, qos })
    }

    /// Opens a stream to publish on MQTT topic `topic`; send with
    /// [`Subscription::publish`].
    pub fn mqtt_publisher(&self, topic: &'d str, qos: u8, retained: bool) -> Result<Subscription<'d, R>, Error> {
        self.subscribe(Def::TopicPublish { topic, qos, retained })
    }

    /// Publishes one message on MQTT topic `topic` (QoS 0, not retained): opens a publish
    /// stream, waits for the server to accept it, sends, and closes it. Keep a
    /// [`Client::mqtt_publisher`] for repeated messages.
    pub async fn mqtt_publish(&self, topic: &'d str, payload: &dyn DynEncodePson) -> Result<(), Error> {
        let publisher = self.mqtt_publisher(topic, 0, false)?;
        publisher.publish(payload).await
    }

    /// Registers a subscription of any kind with the session.
    pub fn subscribe(&self, def: Def<'d>) -> Result<Subscription<'d, R>, Error> {
        let (slot, id) = self.shared.with(|inner| {
            let slot = inner.subs.iter().position(|s| s.state == SubState::Free).ok_or(Error::TooMany)?;
            let id = inner.session.subscribe(now(), def).map_err(|e| match e {
                SessionError::TooManyPending => Error::TooMany,
                e => Error::Session(e),
            })?;
            let sub = inner.subs.get_mut(slot).ok_or(Error::TooMany)?;
            sub.id = id;
            sub.state = SubState::Opening;
            sub.unread = false;
            sub.lost = 0;
            sub.data.clear();
            Ok::<_, Error>((slot, id))
        })??;
        self.shared.flush.signal(());
        Ok(Subscription { shared: self.shared, slot, id })
    }
}

impl<const R: usize> Subscription<'_, R> {
    /// The session's id of this subscription.
    pub fn id(&self) -> SubscriptionId {
        self.id
    }

    /// Events replaced before they were read (or too large to keep).
    pub fn lost(&self) -> u32 {
        self.shared.with(|inner| inner.subs.get(self.slot).map_or(0, |s| s.lost)).unwrap_or(0)
    }

    /// Whether the server has accepted the subscription on the current connection.
    pub fn is_open(&self) -> bool {
        self.shared.with(|inner| inner.subs.get(self.slot).is_some_and(|s| s.state == SubState::Open)).unwrap_or(false)
    }

    /// Waits for the server to accept the subscription; fails with the server's error if
    /// it refused it.
    pub async fn wait_open(&self) -> Result<(), Error> {
        poll_fn(|cx| {
            self.shared.poll_with(cx, |inner| match inner.subs.get(self.slot).map(|s| s.state) {
                Some(SubState::Open) => Poll::Ready(Ok(())),
                Some(SubState::Failed(e)) => Poll::Ready(Err(e)),
                _ => Poll::Pending,
            })
        })
        .await?
    }

    /// Waits for the next event and copies its payload (PSON) into `out`; returns its
    /// length (0: an event without payload). Fails with the server's error if the
    /// subscription was refused, or [`Error::BufferTooSmall`] (the event stays unread).
    pub async fn next(&mut self, out: &mut [u8]) -> Result<usize, Error> {
        poll_fn(|cx| {
            self.shared.poll_with(cx, |inner| {
                let Some(sub) = inner.subs.get_mut(self.slot) else { return Poll::Ready(Err(Error::UnknownId)) };
                if !sub.unread {
                    return match sub.state {
                        SubState::Failed(e) => Poll::Ready(Err(e)),
                        _ => Poll::Pending,
                    };
                }
                let n = sub.data.len();
                match out.get_mut(..n) {
                    Some(dst) => {
                        dst.copy_from_slice(&sub.data);
                        sub.unread = false;
                        Poll::Ready(Ok(n))
                    }
                    None => Poll::Ready(Err(Error::BufferTooSmall { needed: n })),
                }
            })
        })
        .await?
    }

    /// Publishes `payload` on an [`Client::mqtt_publisher`] stream, waiting for the server
    /// to open it first (and for room in the transmit buffer).
    pub async fn publish(&self, payload: &dyn DynEncodePson) -> Result<(), Error> {
        poll_fn(|cx| {
            let polled = self.shared.poll_with(cx, |inner| {
                match inner.subs.get(self.slot).map(|s| s.state) {
                    Some(SubState::Open) => {}
                    Some(SubState::Failed(e)) => return Poll::Ready(Err(e)),
                    _ => return Poll::Pending,
                }
                match inner.session.publish(now(), self.id, payload) {
                    Ok(()) => Poll::Ready(Ok(())),
                    Err(SessionError::TransmitBufferFull) => Poll::Pending,
                    Err(SessionError::NotConnected) => Poll::Pending,
                    Err(SessionError::UnknownId) => Poll::Ready(Err(Error::UnknownId)),
                    Err(e) => Poll::Ready(Err(Error::Session(e))),
                }
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
}

impl<const R: usize> Drop for Subscription<'_, R> {
    fn drop(&mut self) {
        let _ = self.shared.with(|inner| {
            let _ = inner.session.unsubscribe(now(), self.id);
            if let Some(sub) = inner.subs.get_mut(self.slot) {
                sub.state = SubState::Free;
                sub.unread = false;
            }
        });
        self.shared.flush.signal(());
    }
}
