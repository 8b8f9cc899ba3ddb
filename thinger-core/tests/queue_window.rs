//! The queue's send window against a real session: scripted server answers, a fake clock.

mod support;

use support::{Harness, frames, message};
use thinger_core::iotmp::{MessageType, OutgoingMessage};
use thinger_core::pson::PsonRef;
use thinger_core::queue::{Op, Overflow, Pump, Reply, Ring, Window};
use thinger_core::resource::Thing;
use thinger_core::session::{Config, Event};
use thinger_core::time::Duration;

type Sess<'a> = support::TestSession<'a>;

/// Sends queue entries the way both adapters do (bucket writes with their PSON record).
fn pump(
    window: &mut Window<4>,
    ring: &Ring<Vec<u8>>,
    session: &mut Sess<'_>,
    now: thinger_core::time::Instant,
) -> Pump {
    window.pump(ring, |entry| match entry.op {
        Op::WriteBucket { bucket, record } => match PsonRef::decode(record) {
            Ok(v) => session.write_bucket(now, bucket, &v),
            Err(e) => Err(thinger_core::session::Error::Pson(e)),
        },
        Op::CallEndpoint { endpoint, data } => match data.map(PsonRef::decode) {
            None => session.call_endpoint(now, endpoint, None),
            Some(Ok(v)) => session.call_endpoint(now, endpoint, Some(&v)),
            Some(Err(e)) => Err(thinger_core::session::Error::Pson(e)),
        },
    })
}

/// Stream ids of the frames sent.
fn ids(bytes: &[u8]) -> Vec<u16> {
    frames(bytes).iter().map(|f| message(f).stream_id).collect()
}

fn ok(id: u16) -> Vec<u8> {
    let m = OutgoingMessage::new(MessageType::Ok, id);
    let mut buf = vec![0u8; m.encoded_len()];
    m.encode(&mut buf).unwrap();
    buf
}

/// Feeds the server's answer and hands the completions to the window; returns the entries done.
fn answer(h: &mut Harness<'_>, window: &mut Window<4>, ring: &mut Ring<Vec<u8>>, bytes: &[u8]) -> Vec<u64> {
    h.feed(bytes);
    completions(h, window, ring)
}

fn completions(h: &mut Harness<'_>, window: &mut Window<4>, ring: &mut Ring<Vec<u8>>) -> Vec<u64> {
    let mut done = Vec::new();
    while let Some(event) = h.session.poll_event() {
        if let Event::CallCompleted { request, result } = event
            && let Some(seq) = window.answered(request, Reply::of(&result))
        {
            assert!(ring.remove(seq));
            done.push(seq);
        }
    }
    done
}

fn queue(n: usize) -> Ring<Vec<u8>> {
    let mut ring = Ring::new(Vec::new(), 64, Overflow::Reject);
    for i in 0..n {
        let mut rec = [0u8; 8];
        let len = thinger_core::pson::encode_to_slice(&(i as u32), &mut rec).unwrap();
        ring.push(Op::WriteBucket { bucket: "b", record: &rec[..len] }).unwrap();
    }
    ring
}

#[test]
fn window_of_two_sends_in_order_and_refills_on_each_answer() {
    let mut h = Harness::new(Config::new("u", "d", "c"), Thing::new());
    h.connect();
    let mut ring = queue(4);
    let mut w: Window<4> = Window::new(2);
    assert_eq!(pump(&mut w, &ring, &mut h.session, h.now), Pump::Done);
    let first = ids(&h.sent());
    assert_eq!(first.len(), 2, "only the window goes out");
    assert_eq!(answer(&mut h, &mut w, &mut ring, &ok(first[1])), [2]);
    pump(&mut w, &ring, &mut h.session, h.now);
    let third = ids(&h.sent());
    assert_eq!(third.len(), 1);
    assert_eq!(answer(&mut h, &mut w, &mut ring, &ok(first[0])), [1]);
    assert_eq!(answer(&mut h, &mut w, &mut ring, &ok(third[0])), [3]);
    pump(&mut w, &ring, &mut h.session, h.now);
    let last = ids(&h.sent());
    assert_eq!(answer(&mut h, &mut w, &mut ring, &ok(last[0])), [4]);
    assert!(ring.is_empty());
    assert_eq!(pump(&mut w, &ring, &mut h.session, h.now), Pump::Done);
    assert!(h.sent().is_empty());
}

#[test]
fn a_timeout_resends_from_the_oldest_entry_and_a_reconnect_from_the_front() {
    let mut h = Harness::new(Config::new("u", "d", "c").request_timeout(Duration::from_secs(5)), Thing::new());
    h.connect();
    let mut ring = queue(3);
    let mut w: Window<4> = Window::new(4);
    pump(&mut w, &ring, &mut h.session, h.now);
    let sent = ids(&h.sent());
    assert_eq!(sent.len(), 3);
    assert_eq!(answer(&mut h, &mut w, &mut ring, &ok(sent[0])), [1]);
    // Entries 2 and 3 get no answer: both time out at 5 s, nothing leaves the ring.
    h.advance_to(5_000);
    assert!(completions(&mut h, &mut w, &mut ring).is_empty());
    assert_eq!((ring.len(), w.in_flight()), (2, 0));
    pump(&mut w, &ring, &mut h.session, h.now);
    let again = frames(&h.sent());
    assert_eq!(again.len(), 2, "entries 2 and 3 again, in order");
    let values: Vec<_> = again.iter().map(|f| message(f).payload.unwrap().as_pson().as_u64()).collect();
    assert_eq!(values, [Some(1), Some(2)]);
    // The link drops with both in flight; after the reconnect they go out once more.
    h.session.handle_close(h.now);
    assert!(completions(&mut h, &mut w, &mut ring).is_empty());
    w.reset();
    h.now += Duration::from_secs(1);
    h.connect();
    pump(&mut w, &ring, &mut h.session, h.now);
    let third = ids(&h.sent());
    assert_eq!(third.len(), 2);
    assert_eq!(answer(&mut h, &mut w, &mut ring, &[ok(third[0]), ok(third[1])].concat()), [2, 3]);
}

#[test]
fn a_full_transmit_buffer_pauses_and_an_unsendable_entry_is_reported() {
    // A transmit buffer that holds the CONNECT and about one write at a time.
    let mut h = Harness::with_buffer(Config::new("u", "d", "c"), Thing::new(), 216);
    h.connect();
    let mut ring = Ring::new(Vec::new(), 64, Overflow::Reject);
    let mut text = [0u8; 48];
    let n = thinger_core::pson::encode_to_slice("forty bytes of text, forty bytes of te", &mut text).unwrap();
    let mut big = [0u8; 200];
    let m = thinger_core::pson::encode_to_slice(&[7u8; 150][..], &mut big).unwrap();
    ring.push(Op::WriteBucket { bucket: "b", record: &text[..n] }).unwrap();
    // Larger than a frame can ever be in this buffer: refused for good.
    ring.push(Op::CallEndpoint { endpoint: "x", data: Some(&big[..m]) }).unwrap();
    ring.push(Op::WriteBucket { bucket: "b", record: &text[..n] }).unwrap();
    let mut w: Window<4> = Window::new(4);
    let mut unsendable = Vec::new();
    let mut frames_out = Vec::new();
    let mut paused = 0;
    for _ in 0..10 {
        let p = pump(&mut w, &ring, &mut h.session, h.now);
        match p {
            Pump::Done => break,
            Pump::TransmitFull => {
                paused += 1;
                frames_out.extend(ids(&h.sent()));
            }
            Pump::Unsendable { seq, .. } => {
                unsendable.push(seq);
                ring.remove(seq);
                w.removed(seq);
            }
        }
    }
    frames_out.extend(ids(&h.sent()));
    assert!(paused > 0, "the small buffer filled");
    assert_eq!(unsendable, [2]);
    assert_eq!(frames_out.len(), 2);
    assert_eq!(w.in_flight(), 2);
}
