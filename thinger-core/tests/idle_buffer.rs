//! `Session::buffer_is_idle` / `idle_buffer_mut`: whenever the session says its buffer is
//! idle, the buffer's contents are scratch. A session whose buffer is overwritten with
//! garbage at every such moment (what thinger-std does when it gives an idle connection's
//! buffer back) must send the same bytes and report the same events as one whose buffer is
//! left alone, through requests, a reply split over two reads, a cloud call whose answer
//! waits in the event region, a stream and keep-alives.

mod support;

use std::cell::Cell;

use support::{TestRng, hex, message};
use thinger_core::resource::{ResourceKind, Thing, handler};
use thinger_core::session::{Config, Session};
use thinger_core::time::Instant;

/// A buffer that is overwritten with a new garbage pattern every time it is lent out.
struct Lent {
    mem: Vec<u8>,
    scrambled: usize,
}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        &self.mem
    }
}

impl AsMut<[u8]> for Lent {
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.mem
    }
}

impl Lent {
    fn scramble(&mut self) {
        self.scrambled += 1;
        let seed = self.scrambled as u8;
        for (i, b) in self.mem.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(31).wrapping_add(seed) ^ 0xa5;
        }
    }
}

macro_rules! device_thing {
    ($millis:expr, $thing:ident) => {
        let millis: &Cell<u64> = $millis;
        let mut counter = handler(ResourceKind::Output, |call| Ok(call.output().set(&millis.get())?));
        let mut sum = handler(ResourceKind::InputOutput, support::sum);
        let mut $thing: Thing<'_, 4> = Thing::new();
        $thing["millis"] >>= &mut counter;
        $thing["sum"].set(&mut sum);
    };
}

/// The two sessions side by side; `b` has its buffer scrambled whenever it is idle.
struct Pair<'a> {
    a: Session<'a, Vec<u8>, 4>,
    b: Session<'a, Lent, 4>,
    now: Instant,
}

impl Pair<'_> {
    /// Everything both sessions send and report now, compared; returns what was sent.
    fn drain(&mut self) -> Vec<u8> {
        let mut events = (Vec::new(), Vec::new());
        while let Some(event) = self.a.poll_event() {
            events.0.push(format!("{event:?}"));
        }
        while let Some(event) = self.b.poll_event() {
            events.1.push(format!("{event:?}"));
            // The payload of the event returned last stays in the buffer until the next poll.
            if events.1.last().is_some_and(|e| e.contains("Some(")) {
                assert!(!self.b.buffer_is_idle(), "idle while an event payload is borrowed: {events:?}");
            }
        }
        assert_eq!(events.0, events.1, "events");
        let sent = (transmit(&mut self.a), transmit(&mut self.b));
        assert_eq!(sent.0, sent.1, "bytes sent");
        self.settle();
        sent.0
    }

    /// Scrambles `b`'s buffer if it is idle.
    fn settle(&mut self) {
        if let Some(buf) = self.b.idle_buffer_mut() {
            buf.scramble();
        }
    }

    /// Feeds `bytes` to both, then drains them.
    fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        assert_eq!(self.a.handle_input(self.now, bytes), bytes.len());
        assert_eq!(self.b.handle_input(self.now, bytes), bytes.len());
        self.drain()
    }

    fn advance_to(&mut self, ms: u64) -> Vec<u8> {
        self.now = Instant::from_millis(ms);
        self.a.handle_timeout(self.now);
        self.b.handle_timeout(self.now);
        self.drain()
    }
}

fn transmit<B: AsRef<[u8]> + AsMut<[u8]>>(session: &mut Session<'_, B, 4>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 4096];
    loop {
        let n = session.poll_transmit(&mut chunk).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

/// `kind len F1=id [F3=pson]` with a one-byte length.
fn reply(kind: u8, id: u16, pson: &[u8]) -> Vec<u8> {
    let mut frame = vec![kind, 0, 0x08];
    let (v, n) = thinger_core::varint::to_array(u64::from(id));
    frame.extend_from_slice(&v[..n]);
    if !pson.is_empty() {
        frame.push(0x1a);
        frame.extend_from_slice(pson);
    }
    frame[1] = u8::try_from(frame.len() - 2).unwrap();
    frame
}

#[test]
fn a_buffer_overwritten_whenever_idle_changes_nothing() {
    let millis = Cell::new(3809);
    device_thing!(&millis, thing_a);
    let other = Cell::new(3809);
    device_thing!(&other, thing_b);
    let config = Config::new("user1", "dev1", "secret").keep_alive(thinger_core::time::Duration::from_secs(60));
    let a = Session::new(config, thing_a, vec![0u8; 1024], &mut TestRng(7));
    let b = Session::new(config, thing_b, Lent { mem: vec![0u8; 1024], scrambled: 0 }, &mut TestRng(7));
    let mut pair = Pair { a, b, now: Instant::from_millis(0) };
    assert!(pair.b.buffer_is_idle(), "a new session holds nothing");

    pair.a.connect(pair.now);
    pair.b.connect(pair.now);
    assert!(!pair.b.buffer_is_idle(), "CONNECT waits to be sent");
    assert!(pair.b.idle_buffer_mut().is_none());
    let connect = pair.drain();
    assert!(pair.b.buffer_is_idle());
    pair.feed(&reply(0x01, message(&connect).stream_id, &[]));

    // RUN sum {a:2,b:3}, split in two reads: the first half waits in the buffer.
    let run = hex("060f08101ac2816102816203228373756d");
    assert_eq!(pair.a.handle_input(pair.now, &run[..7]), 7);
    assert_eq!(pair.b.handle_input(pair.now, &run[..7]), 7);
    assert!(!pair.b.buffer_is_idle(), "half a frame is buffered");
    assert_eq!(pair.drain(), Vec::<u8>::new());
    support::assert_equivalent(&pair.feed(&run[7..]), &hex("01091ac18373756d050810"));

    // DESCRIBE all and one.
    assert!(!pair.feed(&hex("0702080b")).is_empty());
    support::assert_equivalent(
        &pair.feed(&hex("0707080c228373756d")),
        &hex("01181ac282696ec2816100816200836f7574c18373756d00080c"),
    );

    // A cloud call answered with a payload: it waits in the event region until polled.
    let request = pair.a.read_property(pair.now, "config").unwrap();
    assert_eq!(pair.b.read_property(pair.now, "config").unwrap(), request);
    let sent = pair.drain();
    let id = message(&sent).stream_id;
    let answer = reply(0x01, id, &hex("c181768568656c6c6f"));
    assert_eq!(pair.a.handle_input(pair.now, &answer), answer.len());
    assert_eq!(pair.b.handle_input(pair.now, &answer), answer.len());
    assert!(!pair.b.buffer_is_idle(), "the answer's payload waits to be polled");
    pair.settle();
    pair.drain();

    // A stream of millis every 500 ms, then keep-alives.
    let sent = pair.feed(&hex("0818081612c188696e74657276616c1ff40322866d696c6c6973"));
    assert_eq!(support::frames(&sent).len(), 2);
    for (t, value) in [(500u64, 4000u64), (1000, 4500), (1500, 5000)] {
        millis.set(value);
        other.set(value);
        assert_eq!(support::frames(&pair.advance_to(t)).len(), 1, "one sample at {t} ms");
    }
    // STOP_STREAM, then a keep-alive after a minute of silence.
    assert_eq!(support::frames(&pair.feed(&hex("09020816"))).len(), 1);
    assert!(!pair.advance_to(62_000).is_empty(), "a keep-alive after 60 s of silence");
    pair.a.close(pair.now);
    pair.b.close(pair.now);
    pair.drain();
    assert!(pair.b.is_closed());
    assert!(pair.b.as_lent().scrambled >= 10, "scrambled {} times", pair.b.as_lent().scrambled);
}

/// Read access to the test buffer.
trait AsLent {
    fn as_lent(&mut self) -> &Lent;
}

impl AsLent for Session<'_, Lent, 4> {
    fn as_lent(&mut self) -> &Lent {
        self.idle_buffer_mut().expect("closed and drained: idle")
    }
}
