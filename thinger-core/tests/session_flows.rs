//! Scripted exchanges for every session flow, with a fake clock.

mod support;

use std::cell::Cell;

use proptest::prelude::*;
use support::{Harness, TestRng, frames, hex, message, pson_eq, varint};
use thinger_core::iotmp::{FrameError, MessageType, OutField, OutgoingMessage};
use thinger_core::pson::PsonRef;
use thinger_core::resource::{HandlerError, ResourceKind, Thing, handler};
use thinger_core::session::{
    AuthFailure, BufferTooSmall, CallError, Config, DisconnectReason, Dropped, Error, Event, Phase, RequestId, Session,
    Subscription,
};
use thinger_core::time::{Duration, Instant};

fn frame(kind: MessageType, id: u16) -> OutgoingMessage<'static> {
    OutgoingMessage::new(kind, id)
}

fn bytes(msg: &OutgoingMessage<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; msg.encoded_len()];
    msg.encode(&mut buf).unwrap();
    buf
}

fn reply(kind: MessageType, id: u16, payload: Option<&[u8]>) -> Vec<u8> {
    let mut m = frame(kind, id);
    if let Some(p) = payload {
        m = m.payload(OutField::RawPson(p));
    }
    bytes(&m)
}

fn run(id: u16, path: &str, input: Option<&[u8]>) -> Vec<u8> {
    let mut m = frame(MessageType::Run, id).resource(OutField::Pson(&path));
    if let Some(p) = input {
        m = m.payload(OutField::RawPson(p));
    }
    bytes(&m)
}

fn config() -> Config<'static> {
    Config::new("user", "dev", "pass")
}

#[test]
fn one_byte_at_a_time_and_two_frames_in_one_read() {
    let mut millis = handler(ResourceKind::Output, |call| Ok(call.output().set(&3809u32)?));
    let mut thing: Thing<'_, 16> = Thing::new();
    thing["millis"] >>= &mut millis;
    let mut h = Harness::new(config(), thing);
    h.connect();
    let request = run(13, "millis", None);
    let mut out = Vec::new();
    for b in &request {
        out.extend(h.feed(std::slice::from_ref(b)));
    }
    assert_eq!(out, hex("0105080d18e11d"));
    // Two requests in one read: both answered, in order.
    let mut two = run(14, "millis", None);
    two.extend(run(15, "millis", None));
    let sent = frames(&h.feed(&two));
    assert_eq!(sent.len(), 2);
    assert_eq!((message(&sent[0]).stream_id, message(&sent[1]).stream_id), (14, 15));
}

#[test]
fn handle_input_takes_only_what_it_can_while_replies_wait() {
    let mut millis = handler(ResourceKind::Output, |call| Ok(call.output().set(&1u32)?));
    let mut thing: Thing<'_, 16> = Thing::new();
    thing["millis"] >>= &mut millis;
    let mut h = Harness::new(config(), thing);
    h.connect();
    let mut two = run(14, "millis", None);
    let first = two.len();
    two.extend(run(15, "millis", None));
    // Without draining, the second request waits in the receive buffer.
    let used = h.session.handle_input(h.now, &two);
    assert_eq!(used, two.len());
    assert_ne!(h.session.poll_timeout(), Some(h.now), "nothing to do until the reply is sent");
    assert_eq!(frames(&h.sent()).len(), 1);
    assert_eq!(h.session.poll_timeout(), Some(h.now), "the buffered frame can go on now");
    h.session.handle_timeout(h.now);
    assert_eq!(message(&h.sent()).stream_id, 15);
    let _ = first;
}

#[test]
fn keep_alive_every_interval_and_dead_peer_at_exactly_1_15_ka() {
    let thing: Thing<'_, 16> = Thing::new();
    let mut h = Harness::new(config(), thing);
    h.connect(); // last frame received at t = 0
    assert_eq!(h.session.poll_timeout(), Some(Instant::from_millis(60_000)));
    assert!(h.advance_to(59_999).is_empty());
    assert_eq!(h.advance_to(60_000), hex("0500"));
    // The server answers at once: the watchdog restarts from there.
    h.now = Instant::from_millis(60_020);
    h.feed(&hex("0500"));
    assert_eq!(h.advance_to(120_020), hex("0500"));
    // Now the server goes silent: dead at exactly 60_020 + 69_000.
    assert_eq!(h.session.poll_timeout(), Some(Instant::from_millis(129_020)));
    h.advance_to(129_019);
    assert!(h.session.is_connected());
    h.advance_to(129_020);
    assert_eq!(h.session.poll_event(), Some(Event::Disconnected(DisconnectReason::Timeout)));
    assert_eq!(h.session.phase(), Phase::Closed);
    assert_eq!(h.session.poll_timeout(), None);
}

#[test]
fn custom_keep_alive_is_sent_as_a_connect_parameter() {
    let thing: Thing<'_, 16> = Thing::new();
    let mut h = Harness::new(config().keep_alive(Duration::from_secs(120)), thing);
    let connect = h.connect();
    let m = message(&connect);
    let params = m.parameters.unwrap().as_pson();
    assert_eq!(params.get("ka").and_then(|v| v.as_u64()), Some(120));
    // Same bytes as the `connect_params` vector apart from the stream id.
    let official = hex("031a08d20912c1826b611f781ae38475736572836465768470617373");
    assert!(pson_eq(params, message(&official).parameters.unwrap().as_pson()));
    assert!(pson_eq(m.payload.unwrap().as_pson(), message(&official).payload.unwrap().as_pson()));
    // Sub-second parts round up: announcing 1 s for 1.5 s would get the device dropped.
    let mut odd = Harness::new(config().keep_alive(Duration::from_millis(1_500)), Thing::new());
    let m = message(&odd.connect()).parameters.unwrap().as_pson().get("ka").and_then(|v| v.as_u64());
    assert_eq!(m, Some(2));
    // Default settings send no parameters at all.
    let mut plain = Harness::new(config(), Thing::new());
    assert!(message(&plain.connect()).parameters.is_none());
}

#[test]
fn authentication_refused_closed_and_unexpected() {
    // ERROR to CONNECT: AuthFailed with the server's code and payload.
    let mut h = Harness::new(config(), Thing::new());
    h.session.connect(h.now);
    let id = message(&h.sent()).stream_id;
    let mut err = frame(MessageType::Error, id).parameters(OutField::Varint(2));
    let body = thinger_core::pson::Map(&[("error", "bad credentials")]);
    err = err.payload(OutField::Pson(&body));
    h.feed(&bytes(&err));
    match h.session.poll_event() {
        Some(Event::AuthFailed(AuthFailure::Refused { code: Some(2), payload: Some(p) })) => {
            assert_eq!(p.get("error").unwrap().as_str(), Some("bad credentials"));
        }
        other => panic!("{other:?}"),
    }
    assert!(h.session.is_closed());
    // The transport closes before an answer.
    h.session.connect(h.now);
    h.sent();
    h.session.handle_close(h.now);
    assert_eq!(h.session.poll_event(), Some(Event::AuthFailed(AuthFailure::Closed)));
    // A request before authentication breaks the protocol.
    h.session.connect(h.now);
    h.sent();
    h.feed(&run(5, "led", None));
    assert_eq!(h.session.poll_event(), Some(Event::AuthFailed(AuthFailure::UnexpectedFrame)));
    // No answer at all within 1.15 × ka.
    h.session.connect(Instant::from_millis(1_000));
    h.sent();
    h.advance_to(70_000);
    assert_eq!(h.session.poll_event(), Some(Event::AuthFailed(AuthFailure::Timeout)));
}

#[test]
fn oversized_request_is_answered_413_skipped_and_the_connection_kept() {
    let mut n = handler(ResourceKind::Output, |call| Ok(call.output().set(&7u32)?));
    let mut thing: Thing<'_, 16> = Thing::new();
    thing["n"] >>= &mut n;
    let mut h = Harness::new(config().max_frame_size(64), thing);
    h.connect();
    // Only the header of a 1 MiB RUN: the session waits for its stream id.
    assert!(h.feed(&[0x06, 0x80, 0x80, 0x40]).is_empty());
    assert!(h.session.is_connected());
    // Its stream id: ERROR 413 right away, a typed event, and the body is skipped.
    let sent = h.feed(&[0x08, 0x05]);
    let answer = message(&sent);
    assert_eq!((answer.kind, answer.stream_id), (MessageType::Error, 5));
    assert_eq!(answer.parameters.and_then(|p| p.as_u64()), Some(413));
    assert_eq!(
        h.session.poll_event(),
        Some(Event::Dropped(Dropped::TooLarge { msg_type: 6, stream_id: 5, size: 4 + (1 << 20) }))
    );
    let body = vec![0x42u8; (1 << 20) - 2];
    for chunk in body.chunks(1000) {
        assert!(h.feed(chunk).is_empty());
    }
    // The next request on the same connection is answered.
    let sent = h.feed(&run(6, "n", None));
    let answer = message(&sent);
    assert_eq!((answer.kind, answer.stream_id), (MessageType::Ok, 6));
    assert!(h.session.is_connected());
}

#[test]
fn oversized_reply_fails_its_call_and_before_authentication_closes() {
    let mut h = Harness::new(config().max_frame_size(64), Thing::new());
    h.connect();
    let id = h.session.read_property(h.now, "big").unwrap();
    h.sent();
    let mut big = vec![0x01, 0x84, 0x01, 0x08];
    big.extend_from_slice(&varint(u64::from(id.0)));
    big.resize(3 + 0x84, 0x00);
    h.feed(&big);
    assert_eq!(
        h.session.poll_event(),
        Some(Event::CallCompleted { request: id, result: Err(CallError::PayloadTooLarge) })
    );
    assert!(h.session.is_connected());
    // Before authentication an oversized frame is still a protocol error.
    h.session.connect(h.now);
    h.sent();
    let sent = h.feed(&[0x06, 0x80, 0x80, 0x40]);
    assert_eq!(sent, hex("0400"), "DISCONNECT before closing");
    assert!(matches!(
        h.session.poll_event(),
        Some(Event::AuthFailed(_)) | Some(Event::Disconnected(DisconnectReason::Protocol(FrameError::TooLarge { .. })))
    ));
    assert!(h.session.is_closed());
}

/// A frame over `max_frame_size` but smaller than the receive region can arrive whole,
/// together with the next frame in the same read: only its own bytes are dropped.
#[test]
fn a_frame_after_an_oversized_one_in_the_same_read_is_answered() {
    let mut n = handler(ResourceKind::Output, |call| Ok(call.output().set(&7u32)?));
    let mut thing: Thing<'_, 16> = Thing::new();
    thing["n"] >>= &mut n;
    let mut h = Harness::new(config().max_frame_size(64), thing);
    h.connect();
    // A 135-byte RUN (over the 64-byte limit), then a small RUN, in one read.
    let mut big = vec![0x06, 0x84, 0x01, 0x08, 0x05];
    big.resize(3 + 0x84, 0x00);
    assert_eq!(big.len(), 135);
    let mut both = big.clone();
    both.extend_from_slice(&run(6, "n", None));
    let sent = frames(&h.feed(&both));
    assert_eq!(sent.len(), 2, "413 to the big one, OK to the next");
    let (first, second) = (message(&sent[0]), message(&sent[1]));
    assert_eq!((first.kind, first.stream_id), (MessageType::Error, 5));
    assert_eq!((second.kind, second.stream_id), (MessageType::Ok, 6));
    assert!(h.session.is_connected());
    // And the same with the oversized frame's last bytes and the next frame in one read.
    let (head, tail) = big.split_at(40);
    assert_eq!(frames(&h.feed(head)).len(), 1);
    let mut rest = tail.to_vec();
    rest.extend_from_slice(&run(7, "n", None));
    let sent = h.feed(&rest);
    let answer = message(&sent);
    assert_eq!((answer.kind, answer.stream_id), (MessageType::Ok, 7));
}

#[test]
fn unknown_resources_get_a_bare_error() {
    let mut h = Harness::new(config(), Thing::new());
    h.connect();
    assert_eq!(h.feed(&run(9, "nope", None)), hex("02020809"));
    let describe = bytes(&frame(MessageType::Describe, 10).resource(OutField::Pson(&"nope")));
    assert_eq!(h.feed(&describe), hex("0202080a"));
    let start = bytes(&frame(MessageType::StartStream, 11).resource(OutField::Pson(&"nope")));
    assert_eq!(h.feed(&start), hex("0202080b"));
    // A numeric F4 in a server RUN names no resource of ours.
    let numeric = bytes(&frame(MessageType::Run, 12).resource(OutField::Varint(5)));
    assert_eq!(h.feed(&numeric), hex("0202080c"));
}

#[test]
fn wildcard_and_parameter_paths() {
    let mut files = handler(ResourceKind::Output, |call| {
        let path = call.param("path").unwrap_or("");
        call.output().set(path)?;
        Ok(())
    });
    let mut sensor = handler(ResourceKind::Output, |call| {
        let id = call.param("id").unwrap();
        call.output().field("id", id)?;
        Ok(())
    });
    let mut exact = handler(ResourceKind::Output, |call| Ok(call.output().set("exact")?));
    let mut thing: Thing<'_, 16> = Thing::new();
    thing["$fs/get/*path"] >>= &mut files;
    thing["sensors/:id"] >>= &mut sensor;
    thing["sensors/main"] >>= &mut exact;
    let mut h = Harness::new(config(), thing);
    h.connect();
    let m = h.feed(&run(1, "$fs/get/etc/app/config.toml", None));
    assert_eq!(message(&m).payload.unwrap().as_str(), Some("etc/app/config.toml"));
    let m = h.feed(&run(2, "sensors/42", None));
    assert_eq!(message(&m).payload.unwrap().as_pson().get("id").unwrap().as_str(), Some("42"));
    // An exact path wins over a pattern registered before it.
    let m = h.feed(&run(3, "sensors/main", None));
    assert_eq!(message(&m).payload.unwrap().as_str(), Some("exact"));
    assert_eq!(h.feed(&run(4, "sensors/1/2", None)), hex("02020804"));
    assert_eq!(h.feed(&run(5, "$fs/get", None)), hex("02020805"));
}

#[test]
fn handler_return_code_without_failing() {
    let mut created = handler(ResourceKind::Run, |call| {
        call.set_code(201);
        Ok(())
    });
    let mut thing: Thing<'_, 16> = Thing::new();
    thing["create"].set(&mut created);
    let mut h = Harness::new(config(), thing);
    h.connect();
    let m = h.feed(&run(1, "create", None));
    let m = message(&m);
    assert_eq!((m.kind, m.parameters.unwrap().as_u64()), (MessageType::Ok, Some(201)));
}

#[test]
fn undecodable_request_is_answered_with_error_and_connection_kept() {
    let mut h = Harness::new(config(), Thing::new());
    h.connect();
    // RUN stream 7 whose payload string claims 5 bytes but the frame ends after 1.
    let sent = h.feed(&[0x06, 0x05, 0x08, 0x07, 0x1a, 0x85, b'a']);
    let m = message(&sent);
    assert_eq!((m.kind, m.stream_id, m.parameters.unwrap().as_u64()), (MessageType::Error, 7, Some(400)));
    assert!(matches!(h.session.poll_event(), Some(Event::Dropped(Dropped::Malformed { stream_id: 7, .. }))));
    // A reserved wire type inside a known frame: dropped, not answered.
    assert!(h.feed(&[0x06, 0x03, 0x08, 0x08, 0x1b]).is_empty());
    // Legacy PSON: dropped with a typed reason.
    assert!(h.feed(&[0x06, 0x04, 0x08, 0x09, 0x19, 0x61]).is_empty());
    h.drain_events();
    assert!(h.session.is_connected());
}

#[test]
fn cloud_calls_have_the_official_wire_shapes() {
    let mut h = Harness::new(config(), Thing::new());
    h.connect();
    let now = h.now;
    let reading = thinger_core::pson::Map(&[("t", 22.5)]);
    let bucket = h.session.write_bucket(now, "env", &reading).unwrap();
    let property = h.session.read_property(now, "config").unwrap();
    let device = h.session.call_device(now, "dev2", "relay", Some(&true)).unwrap();
    let alert = thinger_core::pson::Map(&[("msg", "hot")]);
    let endpoint = h.session.call_endpoint(now, "alert", Some(&alert)).unwrap();
    let sent = frames(&h.sent());
    let vectors = [
        (bucket, "061308ac021283656e761ac18174400000b4412005"),
        (property, "060d08ad021286636f6e6669672001"),
        (device, "061408ae0212e284646576328572656c61791a612003"),
        (endpoint, "061608af021285616c6572741ac1836d736783686f742004"),
    ];
    for (ours, (id, official)) in sent.iter().zip(vectors) {
        let official = hex(official);
        let (a, b) = (message(ours), message(&official));
        assert_eq!(a.stream_id, id.0);
        assert_eq!(a.kind, b.kind);
        for (x, y) in [(a.parameters, b.parameters), (a.payload, b.payload), (a.resource, b.resource)] {
            match (x, y) {
                (None, None) => {}
                (Some(x), Some(y)) => assert!(pson_eq(x.as_pson(), y.as_pson())),
                _ => panic!("field mismatch"),
            }
        }
    }
    // Replies complete the calls with their payloads.
    h.feed(&reply(MessageType::Ok, bucket.0, None));
    h.feed(&reply(MessageType::Ok, property.0, Some(&[0xc1, 0x81, b'a', 0x01])));
    let mut err = frame(MessageType::Error, device.0).parameters(OutField::Varint(503));
    err = err.payload(OutField::RawPson(&[0x80]));
    h.feed(&bytes(&err));
    assert_eq!(h.session.poll_event(), Some(Event::CallCompleted { request: bucket, result: Ok(None) }));
    match h.session.poll_event() {
        Some(Event::CallCompleted { request, result: Ok(Some(v)) }) => {
            assert_eq!(request, property);
            assert_eq!(v.get("a").unwrap().as_u64(), Some(1));
        }
        other => panic!("{other:?}"),
    }
    match h.session.poll_event() {
        Some(Event::CallCompleted { request, result: Err(CallError::Server { code: Some(503), .. }) }) => {
            assert_eq!(request, device)
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.session.poll_event(), None);
}

#[test]
fn lock_unlock_and_set_property_shapes() {
    let mut h = Harness::new(config(), Thing::new());
    h.connect();
    let now = h.now;
    h.session.lock_sync(now, "door", "dev", 2, 10).unwrap();
    h.session.unlock_sync(now, "door", "dev").unwrap();
    h.session.set_property(now, "cfg", &5u8, false).unwrap();
    let sent = frames(&h.sent());
    let lock = message(&sent[0]);
    assert_eq!(lock.resource.unwrap().as_u64(), Some(6));
    assert_eq!(lock.parameters.unwrap().as_str(), Some("door"));
    let p = lock.payload.unwrap().as_pson();
    assert_eq!(
        (p.get("lock").unwrap().as_str(), p.get("slots").unwrap().as_u64(), p.get("timeout").unwrap().as_u64()),
        (Some("dev"), Some(2), Some(10))
    );
    let unlock = message(&sent[1]);
    assert_eq!(unlock.resource.unwrap().as_u64(), Some(7));
    assert_eq!(unlock.payload.unwrap().as_pson().as_map().unwrap().len(), 1);
    let set = message(&sent[2]);
    assert_eq!((set.resource.unwrap().as_u64(), set.payload.unwrap().as_u64()), (Some(2), Some(5)));
    // An unconfirmed call's reply is consumed silently.
    h.feed(&reply(MessageType::Ok, set.stream_id, None));
    assert_eq!(h.session.poll_event(), None);
}

#[test]
fn reply_after_timeout_is_dropped_and_connection_kept() {
    let mut h = Harness::new(config().request_timeout(Duration::from_secs(5)), Thing::new());
    h.connect();
    let id = h.session.read_property(h.now, "cfg").unwrap();
    h.sent();
    assert_eq!(h.session.poll_timeout(), Some(Instant::from_millis(5_000)));
    h.advance_to(5_000);
    assert_eq!(h.session.poll_event(), Some(Event::CallCompleted { request: id, result: Err(CallError::Timeout) }));
    h.feed(&reply(MessageType::Ok, id.0, Some(&[0x01])));
    assert_eq!(h.session.poll_event(), Some(Event::Dropped(Dropped::LateReply { stream_id: id.0 })));
    assert!(h.session.is_connected());
}

#[test]
fn pending_calls_fail_on_disconnect_and_api_refuses_when_offline() {
    let mut h = Harness::new(config(), Thing::new());
    h.connect();
    let id = h.session.write_bucket(h.now, "b", &1u8).unwrap();
    h.session.handle_close(h.now);
    assert_eq!(h.session.poll_event(), Some(Event::Disconnected(DisconnectReason::TransportClosed)));
    assert_eq!(
        h.session.poll_event(),
        Some(Event::CallCompleted { request: id, result: Err(CallError::Disconnected) })
    );
    assert_eq!(h.session.write_bucket(h.now, "b", &1u8), Err(Error::NotConnected));
}

#[test]
fn server_start_stream_reusing_an_open_id_replaces_it() {
    let mut a = handler(ResourceKind::Output, |call| Ok(call.output().set("a")?));
    let mut b = handler(ResourceKind::Output, |call| Ok(call.output().set("b")?));
    let mut thing: Thing<'_, 16> = Thing::new();
    thing["a"] >>= &mut a;
    thing["b"] >>= &mut b;
    let mut h = Harness::new(config(), thing);
    h.connect();
    let interval = thinger_core::pson::Map(&[("interval", 1000u32)]);
    let start = |path: &'static str| {
        bytes(
            &frame(MessageType::StartStream, 30).parameters(OutField::Pson(&interval)).resource(OutField::Pson(&path)),
        )
    };
    h.feed(&start("a"));
    h.feed(&start("b"));
    let samples = frames(&h.advance_to(1000));
    assert_eq!(samples.len(), 1, "only the replacing stream samples");
    assert_eq!(message(&samples[0]).payload.unwrap().as_str(), Some("b"));
    // The bare-number interval form (IOTMP-Embedded) is accepted too.
    let embedded =
        bytes(&frame(MessageType::StartStream, 31).parameters(OutField::Varint(250)).resource(OutField::Pson(&"a")));
    h.feed(&embedded);
    let next = h.advance_to(1250);
    assert!(frames(&next).iter().any(|f| message(f).stream_id == 31));
}

#[test]
fn interval_stream_250ms_gives_12_samples_in_3s_including_the_first() {
    let n = Cell::new(0u32);
    let mut counter = support::counter(&n);
    let mut thing: Thing<'_, 16> = Thing::new();
    thing["counter"] >>= &mut counter;
    let mut h = Harness::new(config(), thing);
    h.connect();
    let interval = thinger_core::pson::Map(&[("interval", 250u32)]);
    let start =
        frame(MessageType::StartStream, 40).parameters(OutField::Pson(&interval)).resource(OutField::Pson(&"counter"));
    let mut samples = frames(&h.feed(&bytes(&start))).len() - 1; // minus the OK
    // Drive the session only at its own deadlines, as an adapter does.
    while let Some(t) = h.session.poll_timeout() {
        if t.as_millis() >= 3_000 {
            break;
        }
        let sent = h.advance_to(t.as_millis());
        samples += frames(&sent).iter().filter(|f| message(f).kind == MessageType::StreamData).count();
        h.feed(&[]);
    }
    assert_eq!(samples, 12); // t = 0, 250, ..., 2750
}

#[test]
fn stream_reports_whether_anyone_listens() {
    let mut temp = handler(ResourceKind::Output, |call| Ok(call.output().set(&21.5)?));
    let mut thing: Thing<'_, 16> = Thing::new();
    thing["temp"] >>= &mut temp;
    let mut h = Harness::new(config(), thing);
    h.connect();
    assert!(!h.session.stream(h.now, "temp"));
    assert!(h.sent().is_empty());
    h.feed(&bytes(&frame(MessageType::StartStream, 50).resource(OutField::Pson(&"temp"))));
    assert!(h.session.stream(h.now, "temp"));
    let m = h.sent();
    assert_eq!((message(&m).kind, message(&m).stream_id), (MessageType::StreamData, 50));
    h.feed(&hex("09020832")); // STOP_STREAM 50
    assert!(!h.session.stream(h.now, "temp"));
}

#[test]
fn input_echo_on_open_stream_after_run() {
    let state = Cell::new(false);
    let mut led = handler(ResourceKind::Input, |call| {
        if let Some(v) = call.input().as_bool() {
            state.set(v);
        }
        Ok(call.output().set(&state.get())?)
    });
    let mut thing: Thing<'_, 16> = Thing::new();
    thing["led"] <<= &mut led;
    let mut h = Harness::new(config(), thing);
    h.connect();
    h.feed(&bytes(&frame(MessageType::StartStream, 60).resource(OutField::Pson(&"led"))));
    let sent = frames(&h.feed(&run(61, "led", Some(&[0x61]))));
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0], hex("0102083d"));
    assert_eq!(sent[1], hex("0a04083c1a61"));
}

#[test]
fn deferred_replies_answer_later_time_out_and_refuse_late_answers() {
    let mut slow = support::deferring();
    let mut thing: Thing<'_, 16> = Thing::new();
    thing["slow"] >>= &mut slow;
    let mut h = Harness::new(config().deferred_timeout(Duration::from_secs(2)), thing);
    h.connect();
    assert!(h.feed(&run(70, "slow", None)).is_empty());
    assert_eq!(h.session.poll_event(), Some(Event::Deferred { stream_id: 70, resource: 0 }));
    h.session.reply(h.now, 70, Ok(Some(&42u8))).unwrap();
    assert_equivalent_hex(&h.sent(), "01040846182a");
    assert_eq!(h.session.reply(h.now, 70, Ok(None)), Err(Error::UnknownId));
    // A deferred request that is never answered: ERROR 504 at the deadline.
    h.feed(&run(71, "slow", None));
    h.drain_events();
    let timeout = h.advance_to(2_000);
    let m = message(&timeout);
    assert_eq!((m.kind, m.stream_id, m.parameters.unwrap().as_u64()), (MessageType::Error, 71, Some(504)));
    assert_eq!(h.session.reply(h.now, 71, Err(HandlerError::new(500, "x"))), Err(Error::UnknownId));
    // An error answer.
    h.feed(&run(72, "slow", None));
    h.session.reply(h.now, 72, Err(HandlerError::new(418, "teapot"))).unwrap();
    assert_equivalent_hex(&h.sent(), "021410a2031ac1856572726f7286746561706f740848");
}

fn assert_equivalent_hex(ours: &[u8], official: &str) {
    support::assert_equivalent(ours, &hex(official));
}

#[test]
fn stream_ids_avoid_every_open_id() {
    let mut out = handler(ResourceKind::Output, |call| Ok(call.output().set(&1u8)?));
    let mut thing: Thing<'_, 16> = Thing::new();
    thing["o"] >>= &mut out;
    let mut session: Session<'_, Vec<u8>, 16, 8, 8> = Session::new(config(), thing, vec![0u8; 4096], &mut TestRng(1));
    let mut h = Harness { session, now: Instant::ZERO };
    h.connect();
    // The server holds streams open on a few ids.
    let server_ids = [1u16, 2, 3, 4, 5, 6, 7];
    for id in server_ids {
        h.feed(&bytes(&frame(MessageType::StartStream, id).resource(OutField::Pson(&"o"))));
    }
    h.drain_events();
    for _ in 0..2000 {
        let RequestId(id) = h.session.write_bucket(h.now, "b", &1u8).unwrap();
        assert!(id != 0 && !server_ids.contains(&id));
        h.sent();
        h.feed(&reply(MessageType::Ok, id, None));
        h.drain_events();
    }
    session = h.session;
    let _ = session;
}

#[test]
fn poll_transmit_says_how_much_room_it_needs() {
    let mut h = Harness::new(config(), Thing::new());
    h.session.connect(h.now);
    let mut tiny = [0u8; 4];
    match h.session.poll_transmit(&mut tiny) {
        Err(BufferTooSmall { needed }) => assert_eq!(needed, h.sent().len()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn topic_publish_stream_and_unsubscribe() {
    let mut h = Harness::new(config(), Thing::new());
    h.connect();
    let sub =
        h.session.subscribe(h.now, Subscription::TopicPublish { topic: "home/out", qos: 0, retained: true }).unwrap();
    let start = h.sent();
    let m = message(&start);
    let params = m.parameters.unwrap().as_pson();
    assert_eq!(params.get("scope").unwrap().as_str(), Some("publish"));
    assert_eq!(params.get("retained").unwrap().as_bool(), Some(true));
    assert!(params.get("qos").is_none());
    assert_eq!(h.session.publish(h.now, sub, &"on"), Err(Error::UnknownId), "not open before the OK");
    h.feed(&reply(MessageType::Ok, m.stream_id, None));
    h.drain_events();
    h.session.publish(h.now, sub, &"on").unwrap();
    let sent = h.sent();
    let data = message(&sent).payload.unwrap();
    assert_eq!(data.as_str(), Some("on"));
    h.session.unsubscribe(h.now, sub).unwrap();
    let sent = h.sent();
    let stop = message(&sent);
    assert_eq!((stop.kind, stop.stream_id), (MessageType::StopStream, m.stream_id));
}

#[test]
fn events_are_not_lost_when_the_queue_is_full() {
    let mut h = Harness::new(config(), Thing::new());
    h.connect();
    // 40 unknown-type frames: the session takes input only while it has event room.
    let mut many = Vec::new();
    for _ in 0..40 {
        many.extend_from_slice(&[0x63, 0x00]);
    }
    let used = h.session.handle_input(h.now, &many);
    let mut total = 0;
    let mut rest = &many[used..];
    loop {
        total += h.drain_events();
        if rest.is_empty() {
            h.session.handle_timeout(h.now);
            let n = h.drain_events();
            total += n;
            if n == 0 {
                break;
            }
            continue;
        }
        let used = h.session.handle_input(h.now, rest);
        rest = &rest[used..];
    }
    assert_eq!(total, 40);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, failure_persistence: None, .. ProptestConfig::default() })]

    /// 10,000 random frames (random type, id, fields) into a connected session: no panic,
    /// and every reply it sends is a well-formed frame.
    #[test]
    fn random_frames_never_panic(
        kind in 0u32..14,
        id in any::<u16>(),
        f2 in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..12)),
        f3 in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..12)),
        path in proptest::sample::select(vec!["led", "temp", "nope", "sensors/1", ""]),
        garbage in proptest::collection::vec(any::<u8>(), 0..8),
    ) {
        let state = Cell::new(false);
        let mut led = handler(ResourceKind::Input, |call| {
            if let Some(v) = call.input().as_bool() { state.set(v); }
            Ok(call.output().set(&state.get())?)
        });
        let mut temp = handler(ResourceKind::Output, |call| Ok(call.output().set(&21.5)?));
        let mut sensor = handler(ResourceKind::InputOutput, |call| {
            let id = call.param("id").unwrap_or("");
            Ok(call.output().set(id)?)
        });
        let mut thing: Thing<'_, 16> = Thing::new();
        thing["led"] <<= &mut led;
        thing["temp"] >>= &mut temp;
        thing["sensors/:id"].set(&mut sensor);
        let mut h = Harness::new(config(), thing);
        h.connect();
        let mut body = Vec::new();
        body.extend_from_slice(&[0x08]);
        let (v, n) = thinger_core::varint::to_array(u64::from(id));
        body.extend_from_slice(&v[..n]);
        if let Some(p) = f2 { body.push(0x12); body.extend(p); }
        if let Some(p) = f3 { body.push(0x1a); body.extend(p); }
        body.push(0x22);
        body.push(0x80 | path.len() as u8);
        body.extend_from_slice(path.as_bytes());
        body.extend(garbage);
        let mut frame_bytes = vec![kind as u8];
        let (v, n) = thinger_core::varint::to_array(body.len() as u64);
        frame_bytes.extend_from_slice(&v[..n]);
        frame_bytes.extend(body);
        let sent = h.feed(&frame_bytes);
        let _ = frames(&sent);
        h.drain_events();
        h.advance_to(1000);
        let _ = PsonRef::decode(&[]);
    }
}

#[test]
fn deferred_calls_know_their_stream_id_and_stream_data_cannot_defer() {
    let seen = Cell::new(None);
    let deferrals = Cell::new(0);
    let mut slow = handler(ResourceKind::Input, |call| {
        seen.set(call.stream_id());
        if call.defer() {
            deferrals.set(deferrals.get() + 1);
        }
        Ok(call.output().set(&true)?)
    });
    let mut thing: Thing<'_, 16> = Thing::new();
    thing["slow"] <<= &mut slow;
    let mut h = Harness::new(config(), thing);
    h.connect();
    h.feed(&run(80, "slow", Some(&[0x61])));
    assert_eq!((seen.get(), deferrals.get()), (Some(80), 1));
    assert_eq!(h.session.poll_event(), Some(Event::Deferred { stream_id: 80, resource: 0 }));
    // Data on a stream the server opened into the input: applied, never deferred.
    h.feed(&bytes(&frame(MessageType::StartStream, 81).resource(OutField::Pson(&"slow"))));
    h.drain_events();
    seen.set(Some(0));
    let echo = h.feed(&[0x0a, 0x04, 0x08, 0x51, 0x1a, 0x60]);
    assert_eq!((seen.get(), deferrals.get()), (None, 1));
    assert_eq!(message(&echo).kind, MessageType::StreamData);
}

#[test]
fn subscribe_without_room_opens_when_room_comes() {
    let mut h = Harness::with_buffer(config().buffers(256, 48), Thing::new(), 512);
    h.connect();
    // Fill the transmit queue.
    h.session.write_bucket(h.now, "bucket", &1u8).unwrap();
    let sub = h.session.subscribe(h.now, Subscription::Event { name: "device_state_change" }).unwrap();
    let first = frames(&h.sent());
    assert_eq!(first.len(), 1, "only the bucket write fitted");
    assert_eq!(h.session.poll_timeout(), Some(h.now));
    h.session.handle_timeout(h.now);
    let start = h.sent();
    let m = message(&start);
    assert_eq!((m.kind, m.resource.unwrap().as_u64()), (MessageType::StartStream, Some(8)));
    h.feed(&reply(MessageType::Ok, m.stream_id, None));
    assert!(matches!(h.session.poll_event(), Some(Event::Subscribed { subscription, .. }) if subscription == sub));
}

/// CONNECT needs its body plus 16 bytes of room in front (the room every answer gets) in
/// the transmit region: with exactly that it is sent whole, with a byte less the session
/// closes (`DisconnectReason::Local`) instead of sending a cut frame.
#[test]
fn connect_needs_its_body_and_16_bytes_of_transmit_room() {
    fn connect_with(tx: usize) -> (bool, Vec<u8>) {
        let thing: Thing<'_, 4> = Thing::new();
        let config = Config::new("u", "d", "c").buffers(256, tx);
        let mut s: Session<'_, Vec<u8>, 4> = Session::new(config, thing, vec![0u8; 1024], &mut TestRng(7));
        s.connect(Instant::from_millis(0));
        let mut out = vec![0u8; 512];
        let n = s.poll_transmit(&mut out).unwrap_or(0);
        (s.is_closed(), out[..n].to_vec())
    }
    let (closed, frame) = connect_with(256);
    assert!(!closed);
    // CONNECT, its body length (one byte here), F1 (the key and the id's varint), then the
    // body written at the 16-byte offset: F3 and the credentials.
    assert_eq!((frame[0], frame[2]), (0x03, 0x08));
    let id_len = frame[3..].iter().position(|b| b & 0x80 == 0).unwrap() + 1;
    let body = frame.len() - 3 - id_len;
    assert_eq!(connect_with(16 + body), (false, frame.clone()));
    assert_eq!(connect_with(16 + body - 1), (true, Vec::new()));
}
