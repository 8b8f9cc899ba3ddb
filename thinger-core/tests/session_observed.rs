//! Every exchange of `iotmp-observed.md` (the official Linux client, frame by frame) replayed
//! against our session: our answers must be equivalent to the official client's.

mod support;

use std::cell::Cell;

use support::{Harness, assert_equivalent, frames, hex, message, pson_eq};
use thinger_core::iotmp::MessageType;
#[cfg(feature = "subscriptions")]
use thinger_core::pson::PsonRef;
use thinger_core::resource::{HandlerError, ResourceKind, Thing, handler};
#[cfg(feature = "subscriptions")]
use thinger_core::session::Subscription;
use thinger_core::session::{Config, DisconnectReason, Dropped, Event};
use thinger_core::time::Instant;

struct Device {
    led: Cell<bool>,
    millis: Cell<u64>,
}

macro_rules! official_thing {
    ($dev:expr, $thing:ident) => {
        let dev: &Device = $dev;
        let mut led = handler(ResourceKind::Input, |call| {
            if !call.is_describe() {
                if let Some(on) = call.input().as_bool() {
                    dev.led.set(on);
                }
            }
            call.output().set(&dev.led.get())?;
            Ok(())
        });
        let mut millis = handler(ResourceKind::Output, |call| Ok(call.output().set(&dev.millis.get())?));
        let mut sum = handler(ResourceKind::InputOutput, support::sum);
        let mut reboot = handler(ResourceKind::Run, |_| Ok(()));
        let mut fail = handler(ResourceKind::Output, |_| Err(HandlerError::new(418, "teapot")));
        let mut sensors = handler(ResourceKind::InputOutput, |call| {
            let id = call.param("id").unwrap_or("");
            call.output().field("id", id)?;
            call.output().field("value", &21.5)?;
            Ok(())
        });
        let mut version = handler(ResourceKind::Output, |call| {
            call.output().field("major", &1)?;
            call.output().field("minor", &3)?;
            call.output().field("patch", &0)?;
            Ok(())
        });
        let mut $thing: Thing<'_, 16> = Thing::new();
        $thing["led"] <<= &mut led;
        $thing["millis"] >>= &mut millis;
        $thing["sum"].set(&mut sum);
        $thing["reboot"].set(&mut reboot);
        $thing["fail"] >>= &mut fail;
        $thing["sensors/:id"].set(&mut sensors);
        $thing["version"] >>= &mut version;
    };
}

#[test]
fn observed_exchange_frame_by_frame() {
    let dev = Device { led: Cell::new(false), millis: Cell::new(3809) };
    official_thing!(&dev, thing);
    let mut h = Harness::new(Config::new("user1", "dev1", "secret"), thing);

    // 1: CONNECT with the credentials and no parameters.
    h.session.connect(h.now);
    let connect = h.sent();
    let ours = message(&connect);
    let official = hex("03181ae385757365723184646576318673656372657408e78a01");
    let theirs = message(&official);
    assert_eq!(ours.kind, MessageType::Connect);
    assert!(ours.parameters.is_none());
    assert!(pson_eq(ours.payload.unwrap().as_pson(), theirs.payload.unwrap().as_pson()));
    assert_ne!(ours.stream_id, 0);
    // 2: OK to our CONNECT id.
    let mut ok = vec![0x01, 0x04, 0x08];
    let (v, n) = thinger_core::varint::to_array(u64::from(ours.stream_id));
    ok.extend_from_slice(&v[..n]);
    ok[1] = (ok.len() - 2) as u8;
    assert!(h.feed(&ok).is_empty());
    assert_eq!(h.session.poll_event(), Some(Event::Connected));

    let exchange: &[(&str, &str)] = &[
        // 3: DESCRIBE all, keys sorted.
        (
            "0702080b",
            "01561ac7846661696cc182666e03836c6564c182666e02866d696c6c6973c182666e03867265626f6f74c182666e018b73656e736f72732f3a6964c182666e048373756dc182666e048776657273696f6ec182666e03080b",
        ),
        // 4: DESCRIBE sum: zero inputs and the output they give.
        ("0707080c228373756d", "01181ac282696ec2816100816200836f7574c18373756d00080c"),
        // 5: RUN millis: the integer travels as a varint.
        ("060a080d22866d696c6c6973", "010518e11d080d"),
        // 6: RUN led true.
        ("0609080e1a6122836c6564", "0102080e"),
        // 8: RUN sum {a:2,b:3}.
        ("060f08101ac2816102816203228373756d", "01091ac18373756d050810"),
        // 9: RUN reboot.
        ("060a081122867265626f6f74", "01020811"),
        // 10: handler error: code in F2, message in F3.
        ("0608081222846661696c", "021410a2031ac1856572726f7286746561706f740812"),
        // 11: unknown resource: bare ERROR.
        ("0608081322846e6f7065", "02020813"),
        // 12: path parameter captured as a string.
        ("060d0814228973656e736f72732f37", "01141ac282696481378576616c7565400000ac410814"),
    ];
    for (request, answer) in exchange {
        let sent = h.feed(&hex(request));
        let ours = frames(&sent);
        assert_eq!(ours.len(), 1, "one answer to {request}");
        assert_equivalent(&ours[0], &hex(answer));
    }
    assert!(dev.led.get());

    // 7: RUN led without payload: the official client replies a bare OK; we return the state
    // (as the Arduino library does; see the protocol doc).
    let sent = h.feed(&hex("0607080f22836c6564"));
    assert_equivalent(&sent, &hex("0104080f1a61")); // OK F1=15 F3=true

    // 13: START_STREAM millis every 500 ms: OK, one sample at once, then every 500 ms.
    dev.millis.set(7420);
    let sent = frames(&h.feed(&hex("0818081612c188696e74657276616c1ff40322866d696c6c6973")));
    assert_eq!(sent.len(), 2);
    assert_equivalent(&sent[0], &hex("01020816"));
    assert_equivalent(&sent[1], &hex("0a05081618fc39"));
    assert!(matches!(h.session.poll_event(), Some(Event::StreamStarted { stream_id: 22, .. })));
    assert_eq!(h.session.poll_timeout(), Some(Instant::from_millis(500)));
    dev.millis.set(7920);
    let sample = h.advance_to(500);
    let (v, n) = thinger_core::varint::to_array(7920);
    let mut expected = vec![0x0a, 0x00, 0x08, 0x16, 0x18];
    expected.extend_from_slice(&v[..n]);
    expected[1] = (expected.len() - 2) as u8;
    assert_eq!(sample, expected);
    assert!(h.advance_to(999).is_empty());
    assert_eq!(frames(&h.advance_to(1000)).len(), 1);

    // 14: STOP_STREAM: OK and samples stop.
    assert_equivalent(&h.feed(&hex("09020816")), &hex("01020816"));
    assert!(h.advance_to(1500).is_empty());

    // 15: START_STREAM led (no interval): OK, then the current state.
    let sent = frames(&h.feed(&hex("0807081722836c6564")));
    assert_eq!(sent.len(), 2);
    assert_equivalent(&sent[0], &hex("01020817"));
    assert_equivalent(&sent[1], &hex("0a0408171a61"));
    // 16: STREAM_DATA false into the input: applied and echoed.
    assert_equivalent(&h.feed(&hex("0a0408171a60")), &hex("0a0408171a60"));
    assert!(!dev.led.get());
    // 17: STOP_STREAM.
    assert_equivalent(&h.feed(&hex("09020817")), &hex("01020817"));
    h.drain_events();

    // 18: a server KEEP_ALIVE is not answered.
    assert!(h.feed(&hex("0500")).is_empty());
    // 19: unknown message type: ignored, connection kept.
    assert!(h.feed(&hex("63020818")).is_empty());
    assert_eq!(h.session.poll_event(), Some(Event::Dropped(Dropped::UnknownType(99))));
    assert!(h.session.is_connected());
    // 20: DISCONNECT: the session ends.
    assert!(h.feed(&hex("0400")).is_empty());
    assert_eq!(h.session.poll_event(), Some(Event::Disconnected(DisconnectReason::ServerDisconnect(None))));
    assert!(h.session.is_closed());
}

#[cfg(feature = "subscriptions")] // needs `Session::subscribe`
#[test]
fn subscriptions_go_out_right_after_authentication_like_the_official_client() {
    let thing: Thing<'_, 16> = Thing::new();
    let mut h = Harness::new(Config::new("user1", "dev1", "secret"), thing);
    let now = Instant::from_millis(0);
    let cfg = h.session.subscribe(now, Subscription::Property { property: "cfg", current: true }).unwrap();
    let topic = h.session.subscribe(now, Subscription::TopicSubscribe { topic: "home/t", qos: 1 }).unwrap();
    let state = h.session.subscribe(now, Subscription::Event { name: "device_state_change" }).unwrap();
    h.connect();
    let sent = frames(&h.feed(&[]));
    let official = [
        "084312c38763757272656e7461856576656e74966465766963655f70726f70657274795f7570646174658766696c74657273c18870726f706572747983636667200808c647",
        "084512c4856576656e74946465766963655f746f7069635f7075626c69736883716f73018573636f70658973756273637269626585746f70696386686f6d652f74200808e9b002",
        "082212c1856576656e74936465766963655f73746174655f6368616e6765200808f39001",
    ];
    assert_eq!(sent.len(), 3);
    let mut ids = Vec::new();
    for (ours, theirs) in sent.iter().zip(official) {
        let theirs = hex(theirs);
        let (a, b) = (message(ours), message(&theirs));
        assert_eq!(a.kind, MessageType::StartStream);
        assert!(pson_eq(a.parameters.unwrap().as_pson(), b.parameters.unwrap().as_pson()));
        assert_eq!(a.resource.unwrap().as_u64(), Some(8));
        // Same parameter bytes as the official client (keys in the same order).
        let ours_params = a.parameters.unwrap().as_pson();
        let mut buf = [0u8; 128];
        let n = thinger_core::pson::encode_to_slice(&ours_params, &mut buf).unwrap();
        let mut buf2 = [0u8; 128];
        let m = thinger_core::pson::encode_to_slice(&b.parameters.unwrap().as_pson(), &mut buf2).unwrap();
        assert_eq!(&buf[..n], &buf2[..m]);
        ids.push(a.stream_id);
    }
    // The server accepts each; a property update then arrives on the first.
    for id in &ids {
        let mut ok = vec![0x01, 0x00, 0x08];
        let (v, n) = thinger_core::varint::to_array(u64::from(*id));
        ok.extend_from_slice(&v[..n]);
        ok[1] = (ok.len() - 2) as u8;
        h.feed(&ok);
    }
    let subs = [cfg, topic, state];
    for sub in subs {
        assert!(matches!(h.session.poll_event(), Some(Event::Subscribed { subscription, .. }) if subscription == sub));
    }
    let mut data = vec![0x0a, 0x00, 0x08];
    let (v, n) = thinger_core::varint::to_array(u64::from(ids[0]));
    data.extend_from_slice(&v[..n]);
    data.extend_from_slice(&[0x1a, 0xc1, 0x81, b'x', 0x05]);
    data[1] = (data.len() - 2) as u8;
    assert!(h.feed(&data).is_empty());
    match h.session.poll_event() {
        Some(Event::SubscriptionData { subscription, data: Some(d) }) => {
            assert_eq!(subscription, cfg);
            assert!(pson_eq(d, PsonRef::decode(&[0xc1, 0x81, b'x', 0x05]).unwrap()));
        }
        other => panic!("expected subscription data, got {other:?}"),
    }
    // After a reconnect the subscriptions are opened again, with fresh ids.
    h.session.handle_close(h.now);
    assert!(matches!(h.session.poll_event(), Some(Event::Disconnected(DisconnectReason::TransportClosed))));
    h.connect();
    let again = frames(&h.feed(&[]));
    assert_eq!(again.len(), 3);
    assert!(again.iter().all(|f| message(f).kind == MessageType::StartStream));
}
