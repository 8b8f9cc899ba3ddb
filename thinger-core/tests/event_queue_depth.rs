//! A session with a short event queue (the `E` parameter; `thinger-std`'s `Capacity::Compact`
//! uses 8): input waits while the queue is nearly full, and no event is lost, whether it
//! comes from frames, timeouts or the end of a connection.

mod support;

use std::collections::BTreeSet;

use support::TestRng;
use thinger_core::resource::Thing;
use thinger_core::session::{CallError, Config, DisconnectReason, EVENT_RESERVE, Event, RequestId, Session};
use thinger_core::time::{Duration, Instant};

/// The shortest queue a session accepts, and the gateway's.
type Shortest<'a> = Session<'a, Vec<u8>, 4, 4, 16, { EVENT_RESERVE + 1 }>;
type Gateway<'a> = Session<'a, Vec<u8>, 4, 4, 16, 8>;

/// Connects and authenticates (the CONNECT id is read from the frame sent).
fn connect<const E: usize>(session: &mut Session<'_, Vec<u8>, 4, 4, 16, E>, now: Instant) {
    session.connect(now);
    let mut out = vec![0u8; 512];
    let n = session.poll_transmit(&mut out).unwrap();
    let id = support::message(&out[..n]).stream_id;
    let mut ok = vec![0x01, 0x00, 0x08];
    let mut v = [0u8; 10];
    let len = thinger_core::varint::encode_u64(u64::from(id), &mut v).unwrap();
    ok.extend_from_slice(&v[..len]);
    ok[1] = (ok.len() - 2) as u8;
    assert_eq!(session.handle_input(now, &ok), ok.len());
    assert_eq!(session.poll_event(), Some(Event::Connected));
}

fn drain_transmit<const E: usize>(session: &mut Session<'_, Vec<u8>, 4, 4, 16, E>) {
    let mut out = vec![0u8; 4096];
    while session.poll_transmit(&mut out).unwrap() > 0 {}
}

/// Feeds 40 unknown-type frames, draining events only when the session stops taking input;
/// returns how many events came and the most that waited at once.
fn unknown_frames<const E: usize>(session: &mut Session<'_, Vec<u8>, 4, 4, 16, E>, now: Instant) -> (usize, usize) {
    let many: Vec<u8> = std::iter::repeat_n([0x63u8, 0x00], 40).flatten().collect();
    let (mut total, mut most) = (0, 0);
    let mut rest = &many[..];
    loop {
        let used = session.handle_input(now, rest);
        rest = &rest[used..];
        let mut waiting = 0;
        while session.poll_event().is_some() {
            waiting += 1;
        }
        total += waiting;
        most = most.max(waiting);
        if rest.is_empty() && waiting == 0 {
            return (total, most);
        }
        assert!(used > 0 || waiting > 0, "no progress");
    }
}

#[test]
fn frames_wait_for_room_in_a_short_queue_and_none_is_lost() {
    let now = Instant::from_millis(0);
    let mut short: Shortest<'_> =
        Session::new(Config::new("u", "d", "p"), Thing::new(), vec![0; 2048], &mut TestRng(1));
    connect(&mut short, now);
    let (total, most) = unknown_frames(&mut short, now);
    assert_eq!(total, 40);
    // A frame is taken while EVENT_RESERVE slots are free, and adds one event.
    assert_eq!(most, 2, "input is taken only while {EVENT_RESERVE} slots are free");

    let mut gateway: Gateway<'_> =
        Session::new(Config::new("u", "d", "p"), Thing::new(), vec![0; 2048], &mut TestRng(1));
    connect(&mut gateway, now);
    let (total, most) = unknown_frames(&mut gateway, now);
    assert_eq!(total, 40);
    assert_eq!(most, 8 - EVENT_RESERVE + 1);
}

/// Twelve calls in flight, more than the queue holds: every one is reported once.
fn twelve_calls(session: &mut Shortest<'_>, now: Instant) -> BTreeSet<RequestId> {
    let ids: BTreeSet<RequestId> = (0..12).map(|i| session.read_property(now, &format!("p{i}")).unwrap()).collect();
    assert_eq!(ids.len(), 12);
    drain_transmit(session);
    ids
}

#[test]
fn timeouts_beyond_the_queue_depth_are_all_reported() {
    let config = Config::new("u", "d", "p").request_timeout(Duration::from_secs(5));
    let mut s: Shortest<'_> = Session::new(config, Thing::new(), vec![0; 2048], &mut TestRng(2));
    connect(&mut s, Instant::from_millis(0));
    let mut waiting = twelve_calls(&mut s, Instant::from_millis(0));
    let later = Instant::from_millis(5_000);
    let mut rounds = 0;
    while !waiting.is_empty() {
        rounds += 1;
        assert!(rounds < 20, "calls left unreported: {waiting:?}");
        s.handle_timeout(later);
        while let Some(event) = s.poll_event() {
            match event {
                Event::CallCompleted { request, result: Err(CallError::Timeout) } => assert!(waiting.remove(&request)),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert!(s.is_connected());
    // The table is free again: twelve more calls fit.
    twelve_calls(&mut s, later);
}

#[test]
fn a_disconnect_with_more_calls_than_the_queue_holds_reports_each() {
    let now = Instant::from_millis(0);
    let mut s: Shortest<'_> = Session::new(Config::new("u", "d", "p"), Thing::new(), vec![0; 2048], &mut TestRng(3));
    connect(&mut s, now);
    let mut waiting = twelve_calls(&mut s, now);
    s.handle_close(now);
    assert_eq!(s.poll_event(), Some(Event::Disconnected(DisconnectReason::TransportClosed)));
    let mut rounds = 0;
    while !waiting.is_empty() {
        rounds += 1;
        assert!(rounds < 20, "calls left unreported: {waiting:?}");
        s.handle_timeout(now);
        while let Some(event) = s.poll_event() {
            match event {
                Event::CallCompleted { request, result: Err(CallError::Disconnected) } => {
                    assert!(waiting.remove(&request))
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!(s.poll_event(), None);
}
