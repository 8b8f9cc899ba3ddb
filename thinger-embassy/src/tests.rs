//! Scripted exchanges with the session: the test plays the runner (draining frames,
//! feeding replies) and the server, with the client's calls in between.

use std::boxed::Box;
use std::string::ToString;
use std::vec;
use std::vec::Vec;

use embassy_futures::{block_on, join::join, yield_now};
use rand_core::OsRng;
use thinger_core::iotmp::{MessageType, OutField, OutgoingMessage, parse_frame};
use thinger_core::pson::PsonRef;
use thinger_core::queue::{Overflow, Ring};
use thinger_core::resource::{HandlerError, ResourceKind, Thing, handler};
use thinger_core::session::{Config, DisconnectReason, Session, Subscription as Def};

use crate::shared::Shared;
use crate::{Client, Error, now};

/// A frame the device sent: its type, stream id and (re-encoded) F3 payload.
#[derive(Debug)]
pub(crate) struct Sent {
    pub(crate) kind: MessageType,
    pub(crate) id: u16,
    pub(crate) payload: Option<Vec<u8>>,
}

pub(crate) fn shared_with(thing: Thing<'static, 4>, queue_capacity: usize) -> &'static Shared<'static, 4> {
    let buf: &'static mut [u8] = Box::leak(vec![0u8; 2048].into_boxed_slice());
    let session = Session::new(Config::new("user", "device", "secret"), thing, buf, &mut OsRng);
    let ring: &'static mut [u8] = Box::leak(vec![0u8; 512].into_boxed_slice());
    Box::leak(Box::new(Shared::new(session, Ring::new(ring, queue_capacity, Overflow::Reject))))
}

/// What the runner's writer does: route events, pump the queue, take frames.
pub(crate) fn drain(shared: &Shared<'_, 4>) -> Vec<Sent> {
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = shared
            .with(|i| {
                if i.session.poll_timeout().is_some_and(|t| t <= now()) {
                    i.session.handle_timeout(now());
                }
                i.dispatch_events();
                i.pump_queue();
                i.session.poll_transmit(&mut buf)
            })
            .unwrap()
            .unwrap();
        if n == 0 {
            return out;
        }
        // One poll may return several frames.
        let mut at = 0;
        while at < n {
            let (frame, used) = parse_frame(&buf[at..n], usize::MAX).unwrap().unwrap();
            at += used;
            let message = frame.message().unwrap();
            let payload = message.payload.map(|p| p.as_pson()).map(|p| {
                let mut v = vec![0u8; 256];
                let n = thinger_core::pson::encode_to_slice(&p, &mut v).unwrap();
                v.truncate(n);
                v
            });
            out.push(Sent { kind: message.kind, id: message.stream_id, payload });
        }
    }
}

pub(crate) fn feed(shared: &Shared<'_, 4>, message: OutgoingMessage<'_>) {
    let mut frame = [0u8; 256];
    let len = message.encode(&mut frame).unwrap();
    shared
        .with(|i| {
            assert_eq!(i.session.handle_input(now(), &frame[..len]), len);
            i.dispatch_events();
        })
        .unwrap();
}

pub(crate) fn connect(shared: &Shared<'_, 4>) {
    shared.with(|i| i.session.connect(now())).unwrap();
    let sent = drain(shared);
    assert_eq!(sent[0].kind, MessageType::Connect);
    feed(shared, OutgoingMessage::new(MessageType::Ok, sent[0].id));
}

/// Plays the server until `done` says stop: answers every RUN / START_STREAM with `reply`.
async fn serve(shared: &Shared<'_, 4>, mut reply: impl FnMut(&Sent) -> Option<OutgoingMessage<'static>>) -> Vec<Sent> {
    let mut seen = Vec::new();
    for _ in 0..50 {
        for s in drain(shared) {
            if let Some(m) = reply(&s) {
                feed(shared, m);
            }
            seen.push(s);
        }
        yield_now().await;
    }
    seen
}

#[test]
fn server_errors_carry_code_and_message() {
    let shared = shared_with(Thing::new(), 8);
    connect(shared);
    let client = Client { shared };
    static MESSAGE: [u8; 17] =
        [0xc1u8, 0x85, b'e', b'r', b'r', b'o', b'r', 0x89, b'n', b'o', b' ', b'b', b'u', b'c', b'k', b'e', b't'];
    let (result, _) = block_on(join(
        client.write_bucket("missing", &1u8),
        serve(shared, |s| {
            (s.kind == MessageType::Run).then(|| {
                OutgoingMessage::new(MessageType::Error, s.id)
                    .parameters(OutField::Varint(404))
                    .payload(OutField::RawPson(&MESSAGE))
            })
        }),
    ));
    let e = result.unwrap_err();
    assert_eq!((e.code(), e.message()), (Some(404), Some("no bucket")));
    assert_eq!(e.to_string(), "server error 404: no bucket");
}

#[test]
fn endpoint_replies_and_locks() {
    let shared = shared_with(Thing::new(), 8);
    connect(shared);
    let client = Client { shared };
    let mut out = [0u8; 16];
    let (n, seen) = block_on(join(
        client.call_endpoint_reply("hook", Some(&"hi"), &mut out),
        serve(shared, |s| {
            (s.kind == MessageType::Run)
                .then(|| OutgoingMessage::new(MessageType::Ok, s.id).payload(OutField::Pson(&200u32)))
        }),
    ));
    assert_eq!(PsonRef::decode(&out[..n.unwrap()]).unwrap().as_u64(), Some(200));
    assert_eq!(seen.len(), 1);

    let (locked, seen) = block_on(join(
        async {
            client.lock_sync("door", "me", 2, 5).await?;
            client.unlock_sync("door", "me").await
        },
        serve(shared, |s| (s.kind == MessageType::Run).then(|| OutgoingMessage::new(MessageType::Ok, s.id))),
    ));
    assert_eq!(locked, Ok(()));
    // {"lock": "me", "slots": 2, "timeout": 5}, then {"lock": "me"}.
    let lock = PsonRef::decode(seen[0].payload.as_deref().unwrap()).unwrap();
    assert_eq!(
        (lock.get("slots").and_then(|v| v.as_u64()), lock.get("timeout").and_then(|v| v.as_u64())),
        (Some(2), Some(5))
    );
    let unlock = PsonRef::decode(seen[1].payload.as_deref().unwrap()).unwrap();
    assert_eq!(unlock.get("lock").and_then(|v| v.as_str()), Some("me"));
}

#[test]
fn a_deferred_request_is_answered_not_timed_out() {
    let deferring: &'static mut _ = Box::leak(Box::new(handler(ResourceKind::Output, |call| {
        assert!(call.defer());
        Ok(())
    })));
    let mut thing: Thing<'static, 4> = Thing::new();
    thing["slow"] >>= deferring;
    let shared = shared_with(thing, 8);
    connect(shared);
    let client = Client { shared };
    feed(shared, OutgoingMessage::new(MessageType::Run, 77).resource(OutField::Pson(&"slow")));
    assert!(drain(shared).is_empty(), "answered before the reply");
    let deferred = block_on(client.next_deferred()).unwrap();
    assert_eq!(deferred.stream_id, 77);
    block_on(client.reply(deferred.stream_id, Ok(Some(&42u32)))).unwrap();
    let sent = drain(shared);
    assert_eq!((sent[0].kind, sent[0].id), (MessageType::Ok, 77));
    assert_eq!(PsonRef::decode(sent[0].payload.as_deref().unwrap()).unwrap().as_u64(), Some(42));
    // Answered once: a second reply is refused.
    assert_eq!(block_on(client.reply(77, Err(HandlerError::new(500, "late")))), Err(Error::UnknownId));
}

#[test]
fn subscriptions_deliver_events_and_reopen_after_reconnect() {
    let shared = shared_with(Thing::new(), 8);
    connect(shared);
    let client = Client { shared };
    let mut events = client.subscribe_event("device_state_change").unwrap();
    let mut mode = client.subscribe_property("mode", true).unwrap();
    let mut topic = client.mqtt_subscribe("home/+/temp", 1).unwrap();
    let starts = drain(shared);
    assert_eq!(starts.len(), 3);
    assert!(starts.iter().all(|s| s.kind == MessageType::StartStream));
    // The property subscription answers with the current value; the others with OK.
    feed(shared, OutgoingMessage::new(MessageType::Ok, starts[0].id));
    feed(shared, OutgoingMessage::new(MessageType::Ok, starts[1].id).payload(OutField::Pson(&"eco")));
    feed(shared, OutgoingMessage::new(MessageType::Ok, starts[2].id));
    assert!(events.is_open() && mode.is_open() && topic.is_open());
    let mut out = [0u8; 64];
    let n = block_on(mode.next(&mut out)).unwrap();
    assert_eq!(PsonRef::decode(&out[..n]).unwrap().as_str(), Some("eco"));

    feed(shared, OutgoingMessage::new(MessageType::StreamData, starts[0].id).payload(OutField::Pson(&"sub_b")));
    let n = block_on(events.next(&mut out)).unwrap();
    assert_eq!(PsonRef::decode(&out[..n]).unwrap().as_str(), Some("sub_b"));

    // An MQTT message: {"payload": 21, "topic": "home/k/temp"}.
    let raw = [
        0xc2u8, 0x87, b'p', b'a', b'y', b'l', b'o', b'a', b'd', 0x15, 0x85, b't', b'o', b'p', b'i', b'c', 0x8b, b'h',
        b'o', b'm', b'e', b'/', b'k', b'/', b't', b'e', b'm', b'p',
    ];
    feed(shared, OutgoingMessage::new(MessageType::StreamData, starts[2].id).payload(OutField::RawPson(&raw)));
    // A second one before the first is read replaces it, and is counted.
    feed(shared, OutgoingMessage::new(MessageType::StreamData, starts[2].id).payload(OutField::RawPson(&raw)));
    assert_eq!(topic.lost(), 1);
    let n = block_on(topic.next(&mut out)).unwrap();
    let (name, payload) = Def::topic_message(PsonRef::decode(&out[..n]).unwrap()).unwrap();
    assert_eq!((name, payload.and_then(|p| p.as_u64())), ("home/k/temp", Some(21)));

    // After a reconnect the session opens them again.
    shared.with(|i| i.session.handle_close(now())).unwrap();
    drain(shared);
    assert_eq!(client.last_disconnect(), Some(DisconnectReason::TransportClosed));
    assert!(!events.is_open());
    connect(shared);
    let again = drain(shared);
    assert_eq!(again.iter().filter(|s| s.kind == MessageType::StartStream).count(), 3);

    // Dropping a handle closes its stream.
    let id = again[0].id;
    feed(shared, OutgoingMessage::new(MessageType::Ok, id));
    drop(events);
    let stops = drain(shared);
    assert!(stops.iter().any(|s| s.kind == MessageType::StopStream), "{stops:?}");
}

#[test]
fn mqtt_publish_waits_for_its_stream() {
    let shared = shared_with(Thing::new(), 8);
    connect(shared);
    let client = Client { shared };
    let (result, seen) = block_on(join(
        client.mqtt_publish("home/k/temp", &21u32),
        serve(shared, |s| (s.kind == MessageType::StartStream).then(|| OutgoingMessage::new(MessageType::Ok, s.id))),
    ));
    assert_eq!(result, Ok(()));
    let kinds: Vec<MessageType> = seen.iter().map(|s| s.kind).collect();
    assert_eq!(kinds, [MessageType::StartStream, MessageType::StreamData, MessageType::StopStream]);
}

#[test]
fn the_queue_waits_offline_and_replays_in_order_after_reconnect() {
    let shared = shared_with(Thing::new(), 3);
    let client = Client { shared };
    for n in 0..3u32 {
        block_on(client.queue_bucket_write("b", &n)).unwrap();
    }
    assert_eq!(block_on(client.queue_endpoint_call("e", None)), Err(Error::QueueFull));
    assert_eq!(client.queued(), 3);

    // Connected: all three go out, in order; the connection drops before any answer.
    connect(shared);
    let first = drain(shared);
    let values: Vec<u64> =
        first.iter().map(|s| PsonRef::decode(s.payload.as_deref().unwrap()).unwrap().as_u64().unwrap()).collect();
    assert_eq!(values, [0, 1, 2]);
    shared.with(|i| i.session.handle_close(now())).unwrap();
    drain(shared);
    assert_eq!(client.queued(), 3, "an unanswered write must stay queued");

    // After the reconnect: the same three, in order; answered, the queue empties.
    connect(shared);
    let (flushed, again) = block_on(join(
        client.flush(),
        serve(shared, |s| (s.kind == MessageType::Run).then(|| OutgoingMessage::new(MessageType::Ok, s.id))),
    ));
    assert_eq!(flushed, Ok(()));
    let values: Vec<u64> =
        again.iter().map(|s| PsonRef::decode(s.payload.as_deref().unwrap()).unwrap().as_u64().unwrap()).collect();
    assert_eq!(values, [0, 1, 2]);
    assert_eq!(client.queued(), 0);
}
