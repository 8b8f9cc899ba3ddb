//! Test support for scripted session exchanges: a deterministic RNG, a fake clock and
//! frame comparison by value.
#![allow(dead_code)]

use thinger_core::iotmp::{FieldValue, Message, parse_frame};
use thinger_core::pson::PsonRef;
use thinger_core::resource::Thing;
use thinger_core::session::{Config, Event, Session};
use thinger_core::time::Instant;

/// A deterministic RNG for tests (the session needs `CryptoRng`; tests need repeatability).
pub struct TestRng(pub u64);

impl rand_core::RngCore for TestRng {
    fn next_u32(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 32) as u32
    }
    fn next_u64(&mut self) -> u64 {
        (u64::from(self.next_u32()) << 32) | u64::from(self.next_u32())
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            *b = self.next_u32() as u8;
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl rand_core::CryptoRng for TestRng {}

pub fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// A varint written here byte by byte (7 bits a byte, low group first), independent of
/// `thinger_core::varint`, for frames that tests build by hand.
pub fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

pub fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Splits a byte stream into frames.
pub fn frames(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (_, used) = parse_frame(rest, usize::MAX).unwrap().expect("complete frame");
        out.push(rest[..used].to_vec());
        rest = &rest[used..];
    }
    out
}

pub fn message(frame: &[u8]) -> Message<'_> {
    parse_frame(frame, usize::MAX).unwrap().unwrap().0.message().unwrap()
}

/// PSON values equal by value: numbers by value, maps regardless of key order.
pub fn pson_eq(a: PsonRef<'_>, b: PsonRef<'_>) -> bool {
    use PsonRef::*;
    match (a, b) {
        (Map(x), Map(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| pson_eq(v, w))),
        (Array(x), Array(y)) => x.len() == y.len() && x.iter().zip(y.iter()).all(|(v, w)| pson_eq(v, w)),
        (Uint(_) | Int(_) | F32(_) | F64(_), Uint(_) | Int(_) | F32(_) | F64(_)) => match (a.as_i64(), b.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => a.as_f64() == b.as_f64(),
        },
        _ => a == b,
    }
}

fn field_eq(a: Option<FieldValue<'_>>, b: Option<FieldValue<'_>>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => pson_eq(x.as_pson(), y.as_pson()),
        _ => false,
    }
}

/// Two frames are equivalent: same type and stream id, fields equal by value (field order
/// and the wire type of integers may differ).
pub fn assert_equivalent(ours: &[u8], theirs: &[u8]) {
    let a = message(ours);
    let b = message(theirs);
    let same = a.kind == b.kind
        && a.stream_id == b.stream_id
        && field_eq(a.parameters, b.parameters)
        && field_eq(a.payload, b.payload)
        && field_eq(a.resource, b.resource);
    assert!(same, "frames differ:\n ours:     {} {a:?}\n official: {} {b:?}", to_hex(ours), to_hex(theirs));
}

pub type TestSession<'a> = Session<'a, Vec<u8>, 16, 8, 8>;

/// A session with a fake clock and helpers to script exchanges.
pub struct Harness<'a> {
    pub session: TestSession<'a>,
    pub now: Instant,
}

impl<'a> Harness<'a> {
    pub fn new(config: Config<'a>, thing: Thing<'a, 16>) -> Self {
        Self::with_buffer(config, thing, 4096)
    }

    pub fn with_buffer(config: Config<'a>, thing: Thing<'a, 16>, size: usize) -> Self {
        let session = Session::new(config, thing, vec![0u8; size], &mut TestRng(42));
        Harness { session, now: Instant::from_millis(0) }
    }

    /// Everything the session wants to send, as one byte string.
    pub fn sent(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 8192];
        loop {
            let n = self.session.poll_transmit(&mut buf).unwrap();
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    /// Feeds bytes, draining transmit in between, as an adapter does; returns what was sent.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rest = bytes;
        let mut spins = 0;
        loop {
            let used = self.session.handle_input(self.now, rest);
            rest = &rest[used..];
            let sent = self.sent();
            let progressed = used > 0 || !sent.is_empty();
            out.extend(sent);
            if rest.is_empty() {
                // Frames that waited for room.
                if self.session.poll_timeout() == Some(self.now) {
                    self.session.handle_timeout(self.now);
                    let sent = self.sent();
                    if !sent.is_empty() {
                        out.extend(sent);
                        continue;
                    }
                }
                return out;
            }
            if !progressed {
                spins += 1;
                assert!(spins < 3, "session stopped taking input (events not polled?)");
                self.drain_events();
            }
        }
    }

    pub fn drain_events(&mut self) -> usize {
        let mut n = 0;
        while self.session.poll_event().is_some() {
            n += 1;
        }
        n
    }

    /// Connects and authenticates; returns the CONNECT frame sent.
    pub fn connect(&mut self) -> Vec<u8> {
        self.session.connect(self.now);
        let connect = self.sent();
        let id = message(&connect).stream_id;
        let mut ok = vec![0x01, 0x00, 0x08];
        let mut v = [0u8; 10];
        let n = thinger_core::varint::encode_u64(u64::from(id), &mut v).unwrap();
        ok.extend_from_slice(&v[..n]);
        ok[1] = (ok.len() - 2) as u8;
        self.session.handle_input(self.now, &ok);
        assert_eq!(self.session.poll_event(), Some(Event::Connected));
        connect
    }

    pub fn advance_to(&mut self, ms: u64) -> Vec<u8> {
        self.now = Instant::from_millis(ms);
        self.session.handle_timeout(self.now);
        self.sent()
    }
}

/// The `sum` resource of the observed exchange: `{a, b}` in, `{sum: a + b}` out, and zero
/// inputs to describe.
pub fn sum(call: &mut thinger_core::resource::Call<'_>) -> Result<(), thinger_core::resource::HandlerError> {
    if call.mode() == thinger_core::resource::CallMode::DescribeInput {
        call.output().field("a", &0)?;
        call.output().field("b", &0)?;
        return Ok(());
    }
    let a = call.input().i64("a").unwrap_or(0);
    let b = call.input().i64("b").unwrap_or(0);
    call.output().field("sum", &(a + b))?;
    Ok(())
}

/// An output resource counting its calls in `n` and answering the count.
pub fn counter(
    n: &std::cell::Cell<u32>,
) -> thinger_core::resource::FnResource<
    impl FnMut(&mut thinger_core::resource::Call<'_>) -> Result<(), thinger_core::resource::HandlerError> + '_,
> {
    thinger_core::resource::handler(thinger_core::resource::ResourceKind::Output, move |call| {
        n.set(n.get() + 1);
        Ok(call.output().set(&n.get())?)
    })
}

/// An output resource whose every call is answered later (it defers).
pub fn deferring() -> thinger_core::resource::FnResource<
    impl FnMut(&mut thinger_core::resource::Call<'_>) -> Result<(), thinger_core::resource::HandlerError>,
> {
    thinger_core::resource::handler(thinger_core::resource::ResourceKind::Output, |call| {
        call.defer();
        Ok(())
    })
}
