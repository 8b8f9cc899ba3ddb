//! Channels: server-opened byte streams (terminal, proxy, file transfer) as scripted
//! exchanges, frame by frame.

mod support;

use support::{Harness, frames, message};
use thinger_core::iotmp::{MessageType, OutField, OutgoingMessage};
use thinger_core::pson::{Bytes, Encoder, PsonRef, SliceSink};
use thinger_core::resource::{Call, HandlerError, Resource, ResourceKind, Thing};
use thinger_core::session::{Config, Error, Event};

/// A resource that takes channels.
struct Terminal;

impl Resource for Terminal {
    fn kind(&self) -> ResourceKind {
        ResourceKind::Run
    }
    fn handle(&mut self, _: &mut Call<'_>) -> Result<(), HandlerError> {
        Err(HandlerError::new(405, "stream only"))
    }
    fn channel(&self) -> bool {
        true
    }
}

fn frame(msg: OutgoingMessage<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; msg.encoded_len()];
    let n = msg.encode(&mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn start(id: u16, resource: &str, params: &[u8]) -> Vec<u8> {
    let path = resource.to_owned();
    frame(
        OutgoingMessage::new(MessageType::StartStream, id)
            .parameters(OutField::RawPson(params))
            .resource(OutField::Pson(&path.as_str())),
    )
}

fn data(id: u16, bytes: &[u8]) -> Vec<u8> {
    frame(OutgoingMessage::new(MessageType::StreamData, id).payload(OutField::Pson(&Bytes(bytes))))
}

/// `{"cols": 80, "rows": 24}` as PSON.
fn size() -> Vec<u8> {
    let mut buf = [0u8; 32];
    let mut enc = Encoder::new(SliceSink::new(&mut buf));
    enc.map_header(2).unwrap();
    enc.str("cols").unwrap();
    enc.u64(80).unwrap();
    enc.str("rows").unwrap();
    enc.u64(24).unwrap();
    let n = enc.into_sink().written();
    buf[..n].to_vec()
}

#[test]
fn open_accept_data_both_ways_and_server_stop() {
    let mut term = Terminal;
    let mut thing: Thing<'_, 16> = Thing::new();
    thing["$terminal/:session"].set(&mut term);
    let mut h = Harness::new(Config::new("u", "d", "c"), thing);
    h.connect();

    // START_STREAM is not answered by the session: the application decides.
    assert!(h.feed(&start(40, "$terminal/abc", &size())).is_empty());
    match h.session.poll_event() {
        Some(Event::ChannelOpened { stream_id: 40, resource: 0, path: "$terminal/abc", params: Some(p) }) => {
            assert_eq!(p.get("cols").and_then(|v| v.as_u64()), Some(80));
            assert_eq!(p.get("rows").and_then(|v| v.as_u64()), Some(24));
        }
        other => panic!("{other:?}"),
    }
    // Data before the answer is refused locally.
    assert_eq!(h.session.channel_send(h.now, 40, &Bytes(b"x")), Err(Error::UnknownId));
    h.session.accept_channel(h.now, 40, None).unwrap();
    let sent = frames(&h.sent());
    assert_eq!(sent.len(), 1);
    let ok = message(&sent[0]);
    assert_eq!((ok.kind, ok.stream_id), (MessageType::Ok, 40));
    assert_eq!(h.session.accept_channel(h.now, 40, None), Err(Error::UnknownId), "answered once");

    // Server → device bytes become events.
    assert!(h.feed(&data(40, b"echo hi\n")).is_empty());
    match h.session.poll_event() {
        Some(Event::ChannelData { stream_id: 40, data: Some(PsonRef::Bytes(b)) }) => assert_eq!(b, b"echo hi\n"),
        other => panic!("{other:?}"),
    }
    // Device → server bytes.
    h.session.channel_send(h.now, 40, &Bytes(b"hi\r\n")).unwrap();
    let sent = frames(&h.sent());
    let m = message(&sent[0]);
    assert_eq!((m.kind, m.stream_id), (MessageType::StreamData, 40));
    assert_eq!(m.payload.map(|p| p.as_pson()), Some(PsonRef::Bytes(b"hi\r\n")));

    // The server stops it: answered OK and reported.
    let sent = frames(&h.feed(&frame(OutgoingMessage::new(MessageType::StopStream, 40))));
    assert_eq!(message(&sent[0]).kind, MessageType::Ok);
    assert_eq!(h.session.poll_event(), Some(Event::ChannelClosed { stream_id: 40 }));
    assert_eq!(h.session.open_channels(), 0);
    assert_eq!(h.session.channel_send(h.now, 40, &Bytes(b"x")), Err(Error::UnknownId));
}

#[test]
fn reject_and_device_close() {
    let mut term = Terminal;
    let mut thing: Thing<'_, 16> = Thing::new();
    thing["$proxy/:session"].set(&mut term);
    let mut h = Harness::new(Config::new("u", "d", "c"), thing);
    h.connect();

    h.feed(&start(7, "$proxy/p1", &[0xc0]));
    assert!(matches!(h.session.poll_event(), Some(Event::ChannelOpened { stream_id: 7, .. })));
    h.session.reject_channel(h.now, 7, HandlerError::new(403, "not allowed")).unwrap();
    let sent = frames(&h.sent());
    let m = message(&sent[0]);
    assert_eq!((m.kind, m.stream_id), (MessageType::Error, 7));
    assert_eq!(m.parameters.and_then(|p| p.as_u64()), Some(403));
    assert_eq!(h.session.open_channels(), 0);

    // Accepted, then closed by the device: STOP_STREAM goes out, nothing is reported.
    h.feed(&start(8, "$proxy/p2", &[0xc0]));
    h.drain_events();
    h.session.accept_channel(h.now, 8, Some(&42u32)).unwrap();
    let ok = frames(&h.sent());
    assert_eq!(message(&ok[0]).payload.and_then(|p| p.as_u64()), Some(42));
    h.session.close_channel(h.now, 8).unwrap();
    let sent = frames(&h.sent());
    let m = message(&sent[0]);
    assert_eq!((m.kind, m.stream_id), (MessageType::StopStream, 8));
    assert_eq!(h.session.poll_event(), None);
    // Stream data for it is now an unknown stream.
    h.feed(&data(8, b"late"));
    assert!(matches!(h.session.poll_event(), Some(Event::Dropped(_))));
}

#[test]
fn table_is_bounded_and_disconnect_clears_it() {
    let mut term = Terminal;
    let mut thing: Thing<'_, 16> = Thing::new();
    thing["$terminal/:session"].set(&mut term);
    let mut h = Harness::new(Config::new("u", "d", "c"), thing);
    h.connect();
    // The harness session has 8 stream slots.
    for id in 1..=8u16 {
        assert!(h.feed(&start(id, "$terminal/s", &[0xc0])).is_empty());
    }
    let refused = frames(&h.feed(&start(9, "$terminal/s", &[0xc0])));
    let m = message(&refused[0]);
    assert_eq!((m.kind, m.stream_id, m.parameters.and_then(|p| p.as_u64())), (MessageType::Error, 9, Some(503)));
    assert_eq!(h.session.open_channels(), 8);
    h.drain_events();
    h.session.handle_close(h.now);
    assert_eq!(h.session.open_channels(), 0);
}

#[test]
fn unpolled_data_holds_input_back() {
    let mut term = Terminal;
    let mut thing: Thing<'_, 16> = Thing::new();
    thing["$terminal/:session"].set(&mut term);
    let mut h = Harness::with_buffer(Config::new("u", "d", "c"), thing, 2048);
    h.connect();
    h.feed(&start(3, "$terminal/s", &[0xc0]));
    h.drain_events();
    h.session.accept_channel(h.now, 3, None).unwrap();
    h.sent();
    // The event buffer is a quarter of 2048: five 300-byte chunks do not fit unpolled.
    let chunk = vec![0x55u8; 300];
    let mut input = Vec::new();
    for _ in 0..5 {
        input.extend(data(3, &chunk));
    }
    let mut taken = h.session.handle_input(h.now, &input);
    assert!(taken < input.len(), "the session must stop taking input while its events wait");
    let mut got = 0;
    while got < 5 {
        match h.session.poll_event() {
            Some(Event::ChannelData { stream_id: 3, data: Some(PsonRef::Bytes(b)) }) => {
                assert_eq!(b.len(), 300);
                got += 1;
            }
            Some(other) => panic!("{other:?}"),
            None => {
                taken += h.session.handle_input(h.now, &input[taken..]);
            }
        }
    }
    assert_eq!(taken, input.len());
}

#[test]
fn data_too_large_to_receive_stops_the_channel() {
    let mut term = Terminal;
    let mut thing: Thing<'_, 16> = Thing::new();
    thing["$terminal/:session"].set(&mut term);
    let mut h = Harness::with_buffer(Config::new("u", "d", "c"), thing, 2048);
    h.connect();
    for id in [5u16, 6] {
        h.feed(&start(id, "$terminal/s", &[0xc0]));
        h.drain_events();
        h.session.accept_channel(h.now, id, None).unwrap();
        h.sent();
    }
    // Larger than the event buffer (512) but not the receive buffer (768).
    let sent = frames(&h.feed(&data(5, &[1u8; 600])));
    let m = message(&sent[0]);
    assert_eq!((m.kind, m.stream_id), (MessageType::StopStream, 5));
    assert_eq!(h.session.poll_event(), Some(Event::ChannelClosed { stream_id: 5 }));
    // Larger than the receive buffer: skipped, and the channel is stopped too.
    let sent = frames(&h.feed(&data(6, &[2u8; 1500])));
    let m = message(&sent[0]);
    assert_eq!((m.kind, m.stream_id), (MessageType::StopStream, 6));
    assert_eq!(h.session.poll_event(), Some(Event::ChannelClosed { stream_id: 6 }));
    assert_eq!(h.session.open_channels(), 0);
}

/// A channel's parameters are read with the session's PSON limits, as every other payload:
/// nested past the default depth but within a raised `Config::pson` limit, they reach the
/// event (they were `None` before).
#[test]
fn channel_params_use_the_sessions_depth_limit() {
    // 40 arrays, one inside the other, around a 0.
    let mut params = vec![0xe1u8; 40];
    params.push(0x00);
    let mut term = Terminal;
    let mut thing: Thing<'_, 16> = Thing::new();
    thing["$terminal/:session"].set(&mut term);
    let mut config = Config::new("u", "d", "c");
    config.pson = thinger_core::pson::DecodeOptions::new().max_depth(64);
    let mut h = Harness::new(config, thing);
    h.connect();
    assert!(h.feed(&start(41, "$terminal/deep", &params)).is_empty());
    match h.session.poll_event() {
        Some(Event::ChannelOpened { stream_id: 41, params: Some(p), .. }) => {
            let mut v = p;
            for _ in 0..40 {
                v = v.as_array().and_then(|a| a.get(0)).expect("one element per level");
            }
            assert_eq!(v.as_u64(), Some(0));
        }
        other => panic!("{other:?}"),
    }
}
