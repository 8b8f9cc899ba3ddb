//! The official IOTMP benchmark scenarios (protocol doc, section 8), built through our
//! session with the listed stream ids: our bytes on the wire against the official figures.

mod support;

use std::cell::Cell;

use support::{Harness, frames, message};
use thinger_core::iotmp::{MessageType, OutField, OutgoingMessage};
use thinger_core::pson::Map;
use thinger_core::resource::{ResourceKind, Thing, handler};
use thinger_core::session::Config;

fn encode(msg: &OutgoingMessage<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; msg.encoded_len()];
    msg.encode(&mut buf).unwrap();
    buf
}

fn ok(id: u16) -> Vec<u8> {
    encode(&OutgoingMessage::new(MessageType::Ok, id))
}

/// Interval forms: a bare varint (IOTMP-Embedded, used by the benchmark suite) or the map
/// our client sends.
#[derive(Clone, Copy)]
enum Interval {
    Bare,
    Map,
}

fn start_stream(id: u16, path: &str, interval: Interval) -> Vec<u8> {
    let map = Map(&[("interval", 5000u32)]);
    let params = match interval {
        Interval::Bare => OutField::Varint(5000),
        Interval::Map => OutField::Pson(&map),
    };
    encode(&OutgoingMessage::new(MessageType::StartStream, id).parameters(params).resource(OutField::Pson(&path)))
}

fn scenario_a() -> usize {
    // The device's CONNECT with stream id 1 (the session draws random ids, so this frame is
    // built with the same encoder the session uses) + the server's OK.
    let credentials = ["user1", "sensor1", "secret123"];
    let connect = encode(&OutgoingMessage::new(MessageType::Connect, 1).payload(OutField::Pson(&credentials)));
    // And the session's own CONNECT for these credentials differs only in the id's varint.
    let thing: Thing<'_, 16> = Thing::new();
    let mut h = Harness::new(Config::new("user1", "sensor1", "secret123"), thing);
    let ours = h.connect();
    let id_len = thinger_core::varint::len_u64(u64::from(message(&ours).stream_id));
    assert_eq!(ours.len(), connect.len() - 1 + id_len);
    connect.len() + ok(1).len()
}

fn stream_bytes(interval: Interval, samples: u32) -> (usize, usize) {
    let i = Cell::new(0u32);
    let mut temperature = handler(ResourceKind::Output, |call| {
        let n = i.get();
        i.set(n + 1);
        call.output().field("temperature", &(22.0 + f64::from(n % 30) * 0.1))?;
        call.output().field("humidity", &(55 + n % 20))?;
        Ok(())
    });
    let mut thing: Thing<'_, 16> = Thing::new();
    thing["temperature"] >>= &mut temperature;
    let mut h = Harness::new(Config::new("u", "d", "c"), thing);
    h.connect();
    let start = start_stream(0xA1, "temperature", interval);
    let reply = h.feed(&start);
    let reply_frames = frames(&reply);
    let mut total = start.len() + reply_frames[0].len(); // START_STREAM + OK
    let mut sample_bytes = reply_frames[1..].iter().map(Vec::len).sum::<usize>();
    let mut sent_samples = reply_frames.len() as u32 - 1;
    let mut t = 0;
    while sent_samples < samples {
        t += 5000;
        let sent = frames(&h.advance_to(t));
        sent_samples += sent.iter().filter(|f| message(f).kind == MessageType::StreamData).count() as u32;
        sample_bytes += sent.iter().filter(|f| message(f).kind == MessageType::StreamData).map(Vec::len).sum::<usize>();
        h.feed(&[0x05, 0x00]); // the server answers keep-alives; keeps the session alive
    }
    let stop = encode(&OutgoingMessage::new(MessageType::StopStream, 0xA1));
    let stop_ok = h.feed(&stop);
    total += stop.len() + stop_ok.len();
    (total, sample_bytes)
}

#[test]
fn official_wire_size_scenarios() {
    // A: session.
    assert_eq!(scenario_a(), 34);

    // B1: one sample {"temperature": 23.5, "humidity": 60} on stream 0xA1.
    let mut one = handler(ResourceKind::Output, |call| {
        call.output().field("temperature", &23.5)?;
        call.output().field("humidity", &60)?;
        Ok(())
    });
    let mut thing: Thing<'_, 16> = Thing::new();
    thing["temperature"] >>= &mut one;
    let mut h = Harness::new(Config::new("u", "d", "c"), thing);
    h.connect();
    let open = encode(&OutgoingMessage::new(MessageType::StartStream, 0xA1).resource(OutField::Pson(&"temperature")));
    let sent = frames(&h.feed(&open));
    assert_eq!(sent[1].len(), 35);

    // C1: 100 samples; F: stream control (interval as a bare varint, then as our map).
    let (control, samples) = stream_bytes(Interval::Bare, 100);
    assert_eq!(control + samples, 3_816);
    assert_eq!(control, 36);
    let (control_map, samples_map) = stream_bytes(Interval::Map, 100);
    assert_eq!(control_map + samples_map, 3_827);
    assert_eq!(control_map, 47);

    // D: RPC read.
    let mut read = handler(ResourceKind::Output, |call| Ok(call.output().field("temperature", &23.5)?));
    let mut thing: Thing<'_, 16> = Thing::new();
    thing["temperature"] >>= &mut read;
    let mut h = Harness::new(Config::new("u", "d", "c"), thing);
    h.connect();
    let run = encode(&OutgoingMessage::new(MessageType::Run, 0x42).resource(OutField::Pson(&"temperature")));
    let reply = h.feed(&run);
    assert_eq!((run.len(), reply.len()), (17, 23));

    // E: discovery of five resources: 73 bytes (the suite claims 61; see docs/benchmarks.md).
    let nop = || handler(ResourceKind::Output, |_| Ok(()));
    let (mut t, mut hu, mut led, mut relay, mut reboot) = (
        nop(),
        nop(),
        handler(ResourceKind::Input, |_| Ok(())),
        handler(ResourceKind::InputOutput, |_| Ok(())),
        handler(ResourceKind::Run, |_| Ok(())),
    );
    let mut thing: Thing<'_, 16> = Thing::new();
    thing["temperature"] >>= &mut t;
    thing["humidity"] >>= &mut hu;
    thing["led"] <<= &mut led;
    thing["relay"].set(&mut relay);
    thing["reboot"].set(&mut reboot);
    let mut h = Harness::new(Config::new("u", "d", "c"), thing);
    h.connect();
    let describe = encode(&OutgoingMessage::new(MessageType::Describe, 0x10));
    let reply = h.feed(&describe);
    assert_eq!((describe.len(), reply.len()), (4, 69));
    assert_eq!(describe.len() + reply.len(), 73);

    // G: an hour of keep-alives at 60 s, client side only.
    let thing: Thing<'_, 16> = Thing::new();
    let mut h = Harness::new(Config::new("u", "d", "c"), thing);
    h.connect();
    let mut client_bytes = 0;
    for minute in 1..=60u64 {
        client_bytes += h.advance_to(minute * 60_000).len();
        h.feed(&[0x05, 0x00]);
    }
    assert_eq!(client_bytes, 120);
}
