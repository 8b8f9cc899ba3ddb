//! The session's timers with a fake clock across the 2^32 ms wrap of its 32-bit ticks
//! (`time::Tick`): every deadline falls at the same `Instant` as far from the wrap.

mod support;

use std::cell::Cell;

use support::{Harness, frames, hex, message};
use thinger_core::iotmp::{MessageType, OutField, OutgoingMessage};
use thinger_core::resource::{ResourceKind, Thing, handler};
#[cfg(feature = "cloud")]
use thinger_core::session::CallError;
use thinger_core::session::{Config, DisconnectReason, Event, Phase};
use thinger_core::time::{Duration, Instant};

/// 2^32 ms: where the session's 32-bit ticks wrap.
const WRAP: u64 = 1 << 32;

fn config() -> Config<'static> {
    Config::new("user", "dev", "pass")
}

fn bytes(msg: &OutgoingMessage<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; msg.encoded_len()];
    msg.encode(&mut buf).unwrap();
    buf
}

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// Keep-alive and the dead-peer watchdog of a connection made at `start` ms (as in
/// `session_flows::keep_alive_every_interval_and_dead_peer_at_exactly_1_15_ka`).
fn keep_alive_and_watchdog_from(start: u64) {
    let mut h = Harness::new(config(), Thing::new());
    h.now = at(start);
    h.connect();
    assert_eq!(h.session.poll_timeout(), Some(at(start + 60_000)));
    assert!(h.advance_to(start + 59_999).is_empty());
    assert_eq!(h.advance_to(start + 60_000), hex("0500"));
    h.now = at(start + 60_020);
    h.feed(&hex("0500"));
    assert_eq!(h.advance_to(start + 120_020), hex("0500"));
    assert_eq!(h.session.poll_timeout(), Some(at(start + 129_020)));
    h.advance_to(start + 129_019);
    assert!(h.session.is_connected());
    h.advance_to(start + 129_020);
    assert_eq!(h.session.poll_event(), Some(Event::Disconnected(DisconnectReason::Timeout)));
    assert_eq!(h.session.phase(), Phase::Closed);
}

#[test]
fn keep_alive_and_watchdog_across_the_wrap() {
    // Far from a wrap, the keep-alive crossing it, the watchdog crossing it, a later wrap.
    for start in [0, WRAP - 30_000, WRAP - 125_000, 7 * WRAP - 60_000, u64::MAX / 2] {
        keep_alive_and_watchdog_from(start);
    }
}

#[test]
fn interval_stream_across_the_wrap_keeps_its_rate() {
    let start = WRAP - 1_100;
    let n = Cell::new(0u32);
    let mut counter = support::counter(&n);
    let mut thing: Thing<'_, 16> = Thing::new();
    thing["counter"] >>= &mut counter;
    let mut h = Harness::new(config(), thing);
    h.now = at(start);
    h.connect();
    let interval = thinger_core::pson::Map(&[("interval", 250u32)]);
    let open = OutgoingMessage::new(MessageType::StartStream, 40)
        .parameters(OutField::Pson(&interval))
        .resource(OutField::Pson(&"counter"));
    let mut samples = vec![start];
    assert_eq!(frames(&h.feed(&bytes(&open))).len(), 2); // OK and the first sample
    while let Some(t) = h.session.poll_timeout() {
        if t.as_millis() >= start + 3_000 {
            break;
        }
        let sent = h.advance_to(t.as_millis());
        if frames(&sent).iter().any(|f| message(f).kind == MessageType::StreamData) {
            samples.push(t.as_millis());
        }
    }
    let expected: Vec<u64> = (0..12).map(|k| start + 250 * k).collect();
    assert_eq!(samples, expected);
}

#[cfg(feature = "deferred")] // needs `Call::defer`
#[test]
fn deferred_timeout_across_the_wrap() {
    let mut slow = support::deferring();
    let mut thing: Thing<'_, 16> = Thing::new();
    thing["slow"] >>= &mut slow;
    let start = WRAP - 1_000;
    let mut h = Harness::new(config().deferred_timeout(Duration::from_secs(2)), thing);
    h.now = at(start);
    h.connect();
    let run = OutgoingMessage::new(MessageType::Run, 71).resource(OutField::Pson(&"slow"));
    assert!(h.feed(&bytes(&run)).is_empty());
    h.drain_events();
    assert_eq!(h.session.poll_timeout(), Some(at(start + 2_000)));
    assert!(h.advance_to(start + 1_999).is_empty());
    let sent = h.advance_to(start + 2_000);
    let m = message(&sent);
    assert_eq!((m.kind, m.stream_id, m.parameters.unwrap().as_u64()), (MessageType::Error, 71, Some(504)));
}

#[cfg(feature = "cloud")] // needs `Session::read_property` and `Session::lock_sync`
#[test]
fn request_timeout_across_the_wrap_and_a_lock_that_waits_past_the_tick_span() {
    let start = WRAP - 2_000;
    // A keep-alive of 10 days (set directly: the builder clamps to 30 min), so the server
    // needs to answer only once a day while the days pass.
    let mut config = config().request_timeout(Duration::from_secs(5));
    config.keep_alive = Duration::from_secs(10 * 86_400);
    let mut h = Harness::new(config, Thing::new());
    h.now = at(start);
    h.connect();
    let call = h.session.read_property(h.now, "cfg").unwrap();
    let lock = h.session.lock_sync(h.now, "door", "dev", 1, 0).unwrap();
    h.sent();
    assert_eq!(h.session.poll_timeout(), Some(at(start + 5_000)));
    h.advance_to(start + 5_000);
    assert_eq!(h.session.poll_event(), Some(Event::CallCompleted { request: call, result: Err(CallError::Timeout) }));
    // The lock waits (server timeout 0) as long as the connection lasts: 60 days, more
    // than the ~24.8 days a tick deadline can be ahead, and across a wrap.
    for day in 1..=60u64 {
        h.now = at(start + day * 86_400_000);
        h.feed(&hex("0500"));
        h.advance_to(start + day * 86_400_000);
        assert!(h.session.is_connected());
        assert_eq!(h.session.poll_event(), None, "day {day}");
    }
    h.feed(&bytes(&OutgoingMessage::new(MessageType::Ok, lock.0)));
    assert_eq!(h.session.poll_event(), Some(Event::CallCompleted { request: lock, result: Ok(None) }));
}

#[test]
fn due_sending_deadlines_wait_for_the_transmit_queue() {
    let mut counter = handler(ResourceKind::Output, |call| Ok(call.output().set(&1u8)?));
    let mut thing: Thing<'_, 16> = Thing::new();
    thing["counter"] >>= &mut counter;
    let mut h = Harness::new(config(), thing);
    h.connect();
    // An interval stream sampled every 65 s: its next sample at 65 000, the keep-alive at
    // 60 000, the watchdog at 69 000 (nothing is received after t = 0).
    let interval = thinger_core::pson::Map(&[("interval", 65_000u32)]);
    let open = OutgoingMessage::new(MessageType::StartStream, 40)
        .parameters(OutField::Pson(&interval))
        .resource(OutField::Pson(&"counter"));
    assert_eq!(frames(&h.feed(&bytes(&open))).len(), 2);
    assert_eq!(h.session.poll_timeout(), Some(at(60_000)));
    // A frame waits to be sent: the due keep-alive waits for it, the stream does not.
    assert!(h.session.stream(at(60_000), "counter"));
    assert_eq!(h.session.poll_timeout(), Some(at(65_000)));
    h.sent();
    assert_eq!(h.session.poll_timeout(), Some(at(60_000)));
    // Both due, a frame waiting: only the watchdog counts.
    assert!(h.session.stream(at(66_000), "counter"));
    assert_eq!(h.session.poll_timeout(), Some(at(69_000)));
    h.sent();
    assert_eq!(h.session.poll_timeout(), Some(at(60_000)));
}

/// A link busy both ways never sends a keep-alive, so the time of the last one ages: past
/// 2^31 ms it must not read as the future (the keep-alive would then be held back when the
/// link goes quiet, and the watchdog would drop the connection). Busy for ~25 days with a
/// RUN every 59 s: no keep-alive while busy, one 60 s after the last exchange.
#[test]
fn a_link_busy_for_25_days_still_sends_its_keep_alive_when_it_goes_quiet() {
    let n = Cell::new(0u32);
    let mut counter = support::counter(&n);
    let mut thing: Thing<'_, 16> = Thing::new();
    thing["counter"] >>= &mut counter;
    let mut h = Harness::new(config(), thing);
    h.connect();
    let run = bytes(&OutgoingMessage::new(MessageType::Run, 7).resource(OutField::Pson(&"counter")));
    let mut t = 0;
    while t < (1 << 31) + 3_600_000 {
        t += 59_000;
        h.now = at(t);
        let reply = h.feed(&run);
        assert!(frames(&reply).iter().all(|f| message(f).kind == MessageType::Ok), "t = {t}");
        assert!(h.advance_to(t).is_empty(), "a keep-alive while busy, t = {t}");
    }
    assert_eq!(h.session.poll_timeout(), Some(at(t + 60_000)));
    assert!(h.advance_to(t + 59_999).is_empty());
    assert_eq!(h.advance_to(t + 60_000), hex("0500"));
    assert!(h.session.is_connected());
}

/// No call for 30 days (a suspended host): the dead peer is noticed at the first call, as
/// with 64-bit time, in both phases; the ticks are rebuilt, not read across the wrap.
#[test]
fn a_gap_of_30_days_between_calls_times_the_connection_out() {
    const DAYS_30: u64 = 30 * 86_400_000;
    for start in [0, WRAP - 10_000] {
        let mut h = Harness::new(config(), Thing::new());
        h.now = at(start);
        h.connect();
        h.advance_to(start + DAYS_30);
        assert_eq!(h.session.poll_event(), Some(Event::Disconnected(DisconnectReason::Timeout)), "start {start}");
        // CONNECT never answered, and exactly 2^31 ms late.
        for gap in [DAYS_30, 1 << 31] {
            let mut h = Harness::new(config(), Thing::new());
            h.session.connect(at(start));
            h.sent();
            h.advance_to(start + gap);
            let event = h.session.poll_event();
            assert!(matches!(event, Some(Event::AuthFailed(_))), "gap {gap}: {event:?}");
            assert_eq!(h.session.phase(), Phase::Closed);
        }
    }
}

/// The clock set back by 4·10^9 ms (more than a wrap): no spurious timeout, deadlines no
/// later than the configured spans from the new time, and time then runs normally.
#[test]
fn a_clock_set_far_back_keeps_the_schedule_from_the_new_time() {
    let start = 5_000_000_000;
    let mut h = Harness::new(config(), Thing::new());
    h.now = at(start);
    h.connect();
    let back = start - 4_000_000_000;
    assert!(h.advance_to(back).is_empty());
    assert!(h.session.is_connected());
    assert_eq!(h.session.poll_timeout(), Some(at(back + 60_000)));
    assert_eq!(h.advance_to(back + 60_000), hex("0500"));
    h.advance_to(back + 69_000);
    assert_eq!(h.session.poll_event(), Some(Event::Disconnected(DisconnectReason::Timeout)));
}

/// A keep-alive too long for the ticks (set directly: the builder clamps to 30 min) is
/// clamped so that its watchdog keeps the 15 % margin: the keep-alive goes out first.
#[test]
fn a_huge_keep_alive_still_goes_out_before_its_watchdog() {
    for ka in [1u64 << 31, 25 * 86_400_000, u64::MAX] {
        let mut config = config();
        config.keep_alive = Duration::from_millis(ka);
        let mut h = Harness::new(config, Thing::new());
        let connect = h.connect();
        // CONNECT announces the clamped interval, in whole seconds rounded up.
        let params = message(&connect).parameters.unwrap();
        assert_eq!(params.as_pson().get("ka").and_then(|v| v.as_u64()), Some(933_689), "ka {ka}");
        let due = h.session.poll_timeout().unwrap();
        assert_eq!(h.advance_to(due.as_millis()), hex("0500"), "ka {ka}");
        assert!(h.session.is_connected(), "ka {ka}");
        assert_eq!(h.session.poll_event(), None);
        // Nothing answered: the watchdog 1.15 × the clamped interval after the connect.
        let watchdog = h.session.poll_timeout().unwrap().as_millis();
        assert_eq!(watchdog, due.as_millis() * 115 / 100, "ka {ka}");
    }
}

/// A `now` a little older than the last one (read before it) is ignored: the schedule
/// does not move earlier, however often it happens.
#[test]
fn a_now_a_little_behind_the_last_one_does_not_pull_the_schedule_in() {
    let mut h = Harness::new(config(), Thing::new());
    h.connect();
    for k in 1..=20_000u64 {
        h.session.handle_input(at(2 * k), &[]);
        h.session.handle_input(at(2 * k - 1), &[]);
    }
    assert_eq!(h.session.poll_timeout(), Some(at(60_000)));
    assert!(h.advance_to(59_999).is_empty());
    assert_eq!(h.advance_to(60_000), hex("0500"));
}

/// Only input, no `handle_timeout`, for ~25 days: the last receive and send are kept in
/// range too, so the first `handle_timeout` sees the dead peer.
#[test]
fn input_only_for_25_days_then_the_watchdog_fires_at_the_first_timeout_call() {
    let mut h = Harness::new(config(), Thing::new());
    h.connect();
    let mut t = 0;
    while t < (1 << 31) + 100_000 {
        t += 3_600_000;
        h.session.handle_input(at(t), &[]);
    }
    h.advance_to(t);
    assert_eq!(h.session.poll_event(), Some(Event::Disconnected(DisconnectReason::Timeout)));
}

/// An interval stream and a waiting request across a 30-day gap (due at once, as with
/// 64-bit time) and across a clock set far back (their distance kept).
#[cfg(feature = "cloud")] // needs `Session::read_property`
#[test]
fn streams_and_requests_across_a_gap_and_a_clock_set_back() {
    let n = Cell::new(0u32);
    let mut counter = support::counter(&n);
    let mut thing: Thing<'_, 16> = Thing::new();
    thing["counter"] >>= &mut counter;
    let start = 5_000_000_000;
    let mut config = config().request_timeout(Duration::from_secs(5));
    config.keep_alive = Duration::from_secs(40 * 86_400); // clamped: the gap is not a timeout
    let mut h = Harness::new(config, thing);
    h.now = at(start);
    h.connect();
    let interval = thinger_core::pson::Map(&[("interval", 1_000u32)]);
    let open = OutgoingMessage::new(MessageType::StartStream, 40)
        .parameters(OutField::Pson(&interval))
        .resource(OutField::Pson(&"counter"));
    h.feed(&bytes(&open));
    h.drain_events();
    let call = h.session.read_property(h.now, "cfg").unwrap();
    h.sent();
    // Back by 4·10^9 ms: the sample 1 s and the request timeout 5 s after the new time.
    let back = start - 4_000_000_000;
    assert!(h.advance_to(back).is_empty());
    assert_eq!(h.session.poll_timeout(), Some(at(back + 1_000)));
    assert!(frames(&h.advance_to(back + 1_000)).iter().any(|f| message(f).stream_id == 40));
    h.advance_to(back + 4_999);
    assert_eq!(h.session.poll_event(), None);
    h.advance_to(back + 5_000);
    assert_eq!(h.session.poll_event(), Some(Event::CallCompleted { request: call, result: Err(CallError::Timeout) }));
    // Forward by 30 days: the next sample is due at once.
    let call = h.session.read_property(h.now, "cfg").unwrap();
    h.sent();
    let later = back + 5_000 + 30 * 86_400_000;
    h.now = at(later);
    h.feed(&hex("0500"));
    let sent = h.advance_to(later);
    assert!(frames(&sent).iter().any(|f| message(f).stream_id == 40));
    assert_eq!(h.session.poll_event(), Some(Event::CallCompleted { request: call, result: Err(CallError::Timeout) }));
    assert!(h.session.is_connected());
}
