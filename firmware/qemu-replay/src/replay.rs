//! The observed exchange (thinger-core/tests/session_observed.rs, after iotmp-observed.md)
//! with 4 resources, replayed through the real `Session` and checked byte for byte.
//!
//! Shared by two runners: `firmware/qemu-replay` runs it on a Cortex-M4F in QEMU, and
//! `thinger-core/tests/replay_table.rs` runs it on the host (`#[path]` module) and also checks
//! that every expected reply carries the same values as the official client's answer.
//! It is `no_std` code without allocation or panics.

use core::cell::Cell;

use thinger_core::resource::{CallMode, HandlerError, ResourceKind, Thing, handler};
use thinger_core::session::{Config, Event, Session};
use thinger_core::time::Instant;

/// What one step does to the session.
#[derive(Debug, Clone, Copy)]
pub enum Action {
    /// `Session::connect`: the reply is the CONNECT frame.
    Connect,
    /// The server's OK to the CONNECT (built from its stream id); expects `Event::Connected`.
    Accept,
    /// These bytes (hex) come from the server.
    Feed(&'static str),
    /// The clock moves to this millisecond and `handle_timeout` runs.
    AdvanceTo(u64),
    /// The `millis` resource reads this value from now on.
    SetMillis(u64),
}

/// One step: the action, the exact bytes the session must send (hex, every frame sent
/// after the action, concatenated), and the official client's answer to the same request
/// (equal by value; field order may differ) where the official exchange has one.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// What happens.
    pub action: Action,
    /// Exactly what our session sends, in hex ("" = nothing).
    pub reply: &'static str,
    /// The official client's answer, in hex ("" = nothing, or not comparable).
    pub official: &'static str,
}

const fn step(action: Action, reply: &'static str, official: &'static str) -> Step {
    Step { action, reply, official }
}

/// The exchange, in order. Resources: `led` (input), `millis` (output), `sum` (input and
/// output), `fail` (an output whose handler fails with 418).
pub const STEPS: &[Step] = &[
    // 1: CONNECT "user1"/"dev1"/"secret", the stream id drawn from `ReplayRng(42)`.
    step(
        Action::Connect,
        "0318089ffc031ae3857573657231846465763186736563726574",
        "03181ae385757365723184646576318673656372657408e78a01",
    ),
    // 2: OK to our CONNECT id.
    step(Action::Accept, "", ""),
    // 3: DESCRIBE all, keys sorted (the official answer, reduced to these 4 resources).
    step(
        Action::Feed("0702080b"),
        "012c080b1ac4846661696cc182666e03836c6564c182666e02866d696c6c6973c182666e038373756dc182666e04",
        "012c1ac4846661696cc182666e03836c6564c182666e02866d696c6c6973c182666e038373756dc182666e04080b",
    ),
    // 4: DESCRIBE sum: zero inputs and the output they give.
    step(
        Action::Feed("0707080c228373756d"),
        "0118080c1ac282696ec2816100816200836f7574c18373756d00",
        "01181ac282696ec2816100816200836f7574c18373756d00080c",
    ),
    // 5: RUN millis: the integer travels as a varint.
    step(Action::Feed("060a080d22866d696c6c6973"), "0105080d18e11d", "010518e11d080d"),
    // 6: RUN led true.
    step(Action::Feed("0609080e1a6122836c6564"), "0102080e", "0102080e"),
    // 7: RUN led without payload: we return the state (as the Arduino library does).
    step(Action::Feed("0607080f22836c6564"), "0104080f1a61", "0104080f1a61"),
    // 8: RUN sum {a:2,b:3}.
    step(Action::Feed("060f08101ac2816102816203228373756d"), "010908101ac18373756d05", "01091ac18373756d050810"),
    // 10: handler error: code in F2, message in F3.
    step(
        Action::Feed("0608081222846661696c"),
        "0214081210a2031ac1856572726f7286746561706f74",
        "021410a2031ac1856572726f7286746561706f740812",
    ),
    // 11: unknown resource: bare ERROR.
    step(Action::Feed("0608081322846e6f7065"), "02020813", "02020813"),
    // 13: START_STREAM millis every 500 ms: OK, one sample at once, then every 500 ms.
    step(Action::SetMillis(7420), "", ""),
    step(
        Action::Feed("0818081612c188696e74657276616c1ff40322866d696c6c6973"),
        "010208160a05081618fc39",
        "010208160a05081618fc39",
    ),
    step(Action::SetMillis(7920), "", ""),
    step(Action::AdvanceTo(500), "0a05081618f03d", "0a05081618f03d"),
    step(Action::AdvanceTo(999), "", ""),
    step(Action::AdvanceTo(1000), "0a05081618f03d", "0a05081618f03d"),
    // 14: STOP_STREAM: OK and samples stop.
    step(Action::Feed("09020816"), "01020816", "01020816"),
    step(Action::AdvanceTo(1500), "", ""),
    // 15: START_STREAM led (no interval): OK, then the current state.
    step(Action::Feed("0807081722836c6564"), "010208170a0408171a61", "010208170a0408171a61"),
    // 16: STREAM_DATA false into the input: applied and echoed.
    step(Action::Feed("0a0408171a60"), "0a0408171a60", "0a0408171a60"),
    // 17: STOP_STREAM.
    step(Action::Feed("09020817"), "01020817", "01020817"),
    // 18: a server KEEP_ALIVE is not answered.
    step(Action::Feed("0500"), "", ""),
    // 19: unknown message type: ignored, connection kept.
    step(Action::Feed("63020818"), "", ""),
    // 20: DISCONNECT: the session ends.
    step(Action::Feed("0400"), "", ""),
];

/// Why a replay failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Step `step` sent `got` bytes that differ from the expected reply (first difference
    /// at byte `at`).
    Reply {
        /// Index in `STEPS`.
        step: usize,
        /// Bytes sent.
        got: usize,
        /// First differing byte.
        at: usize,
    },
    /// The session did not report `Connected` after the OK.
    NotConnected,
    /// The session is still open after the server's DISCONNECT.
    NotClosed,
    /// A hex string or a reply did not fit the scratch buffers.
    Overflow,
}

/// The device state behind the resources.
pub struct Device {
    led: Cell<bool>,
    millis: Cell<u64>,
}

/// The RNG of the replay: deterministic, so the CONNECT id is known (a real device uses its
/// hardware RNG).
pub struct ReplayRng(pub u64);

impl rand_core::RngCore for ReplayRng {
    fn next_u32(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 32) as u32
    }
    fn next_u64(&mut self) -> u64 {
        (u64::from(self.next_u32()) << 32) | u64::from(self.next_u32())
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        rand_core::impls::fill_bytes_via_next(self, dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl rand_core::CryptoRng for ReplayRng {}

/// Session buffer of the replay (as in firmware/size-core).
pub const SESSION_BUFFER: usize = 1024;
/// The session type the replay runs.
pub type ReplaySession<'a> = Session<'a, &'a mut [u8], 4>;

/// Decodes hex into `out`; `None` if it does not fit or is not hex.
pub fn unhex<'o>(s: &str, out: &'o mut [u8]) -> Option<&'o [u8]> {
    let digits = s.as_bytes();
    let n = digits.len() / 2;
    let dst = out.get_mut(..n)?;
    for (i, b) in dst.iter_mut().enumerate() {
        let hi = char::from(*digits.get(2 * i)?).to_digit(16)?;
        let lo = char::from(*digits.get(2 * i + 1)?).to_digit(16)?;
        *b = (hi * 16 + lo) as u8;
    }
    Some(dst)
}

/// Everything the session wants to send, appended to `out` from `len`; the new length.
fn drain(session: &mut ReplaySession<'_>, out: &mut [u8], mut len: usize) -> Result<usize, Failure> {
    loop {
        let free = out.get_mut(len..).ok_or(Failure::Overflow)?;
        match session.poll_transmit(free) {
            Ok(0) => return Ok(len),
            Ok(n) => len += n,
            Err(_) => return Err(Failure::Overflow),
        }
    }
}

/// Runs one action; returns how many bytes the session sent into `out`.
fn act(
    session: &mut ReplaySession<'_>,
    dev: &Device,
    now: &mut Instant,
    action: Action,
    out: &mut [u8],
) -> Result<usize, Failure> {
    let mut input = [0u8; 64];
    match action {
        Action::Connect => session.connect(*now),
        Action::Accept => {
            // `out` still holds the CONNECT of the previous step: answer its stream id.
            let mut frame = [0u8; 8];
            let id = connect_id(out)?;
            let (v, n) = thinger_core::varint::to_array(u64::from(id));
            let body = frame.get_mut(..3 + n).ok_or(Failure::Overflow)?;
            body[0] = 0x01;
            body[1] = (1 + n) as u8;
            body[2] = 0x08;
            body.get_mut(3..).ok_or(Failure::Overflow)?.copy_from_slice(v.get(..n).ok_or(Failure::Overflow)?);
            session.handle_input(*now, body);
            if session.poll_event() != Some(Event::Connected) {
                return Err(Failure::NotConnected);
            }
        }
        Action::Feed(hex) => {
            let mut rest = unhex(hex, &mut input).ok_or(Failure::Overflow)?;
            let mut len = 0;
            // As an adapter does: feed, drain transmit and events, offer the rest again.
            while !rest.is_empty() {
                let used = session.handle_input(*now, rest);
                rest = rest.get(used..).unwrap_or(&[]);
                len = drain(session, out, len)?;
                while session.poll_event().is_some() {}
                if session.poll_timeout() == Some(*now) {
                    session.handle_timeout(*now);
                    len = drain(session, out, len)?;
                }
            }
            return Ok(len);
        }
        Action::AdvanceTo(ms) => {
            *now = Instant::from_millis(ms);
            session.handle_timeout(*now);
        }
        Action::SetMillis(v) => dev.millis.set(v),
    }
    let len = drain(session, out, 0)?;
    while session.poll_event().is_some() {}
    Ok(len)
}

/// The stream id of the frame at the start of `out`.
fn connect_id(out: &[u8]) -> Result<u16, Failure> {
    let (frame, _) = thinger_core::iotmp::parse_frame(out, usize::MAX).ok().flatten().ok_or(Failure::NotConnected)?;
    frame.message().map(|m| m.stream_id).map_err(|_| Failure::NotConnected)
}

/// Replays `STEPS` and compares every reply byte for byte. `buf` is the session buffer,
/// `out` and `expected` scratch space for one step's output. `report(step, sent)` sees
/// each step's bytes.
pub fn replay(
    buf: &mut [u8],
    out: &mut [u8],
    expected: &mut [u8],
    mut report: impl FnMut(usize, &[u8]),
) -> Result<(), Failure> {
    let dev = Device { led: Cell::new(false), millis: Cell::new(3809) };
    let mut led = handler(ResourceKind::Input, |call| {
        if !call.is_describe()
            && let Some(on) = call.input().as_bool()
        {
            dev.led.set(on);
        }
        call.output().set(&dev.led.get())?;
        Ok(())
    });
    let mut millis = handler(ResourceKind::Output, |call| Ok(call.output().set(&dev.millis.get())?));
    let mut sum = handler(ResourceKind::InputOutput, |call| {
        if call.mode() == CallMode::DescribeInput {
            call.output().field("a", &0)?;
            call.output().field("b", &0)?;
            return Ok(());
        }
        let a = call.input().i64("a").unwrap_or(0);
        let b = call.input().i64("b").unwrap_or(0);
        call.output().field("sum", &(a.wrapping_add(b)))?;
        Ok(())
    });
    let mut fail = handler(ResourceKind::Output, |_| Err(HandlerError::new(418, "teapot")));
    let mut thing: Thing<'_, 4> = Thing::new();
    thing["led"] <<= &mut led;
    thing["millis"] >>= &mut millis;
    thing["sum"].set(&mut sum);
    thing["fail"] >>= &mut fail;

    let config = Config::new("user1", "dev1", "secret");
    let mut session: ReplaySession<'_> = Session::new(config, thing, buf, &mut ReplayRng(42));
    let mut now = Instant::from_millis(0);
    for (i, s) in STEPS.iter().enumerate() {
        let got = act(&mut session, &dev, &mut now, s.action, out)?;
        let sent = out.get(..got).ok_or(Failure::Overflow)?;
        report(i, sent);
        let want = unhex(s.reply, expected).ok_or(Failure::Overflow)?;
        if sent != want {
            let at = sent.iter().zip(want.iter()).take_while(|(a, b)| a == b).count();
            return Err(Failure::Reply { step: i, got, at });
        }
    }
    if !session.is_closed() {
        return Err(Failure::NotClosed);
    }
    Ok(())
}
