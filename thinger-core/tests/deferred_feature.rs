//! A handler that defers, with and without the feature `deferred`. The default test run
//! has it on; CI also runs this file with `--no-default-features --features std,serde`,
//! where it is off and the request must be answered at once, exactly once.

mod support;

use support::{Harness, message};
use thinger_core::iotmp::{MessageType, OutField, OutgoingMessage};
use thinger_core::resource::{ResourceKind, Thing, handler};
use thinger_core::session::{Config, Error, Event};

fn run(id: u16, path: &str) -> Vec<u8> {
    let m = OutgoingMessage::new(MessageType::Run, id).resource(OutField::Pson(&path));
    let mut buf = vec![0u8; m.encoded_len()];
    m.encode(&mut buf).unwrap();
    buf
}

#[test]
fn a_deferring_handler_is_deferred_only_with_the_feature() {
    let mut calls = 0u32;
    let mut slow = handler(ResourceKind::Output, |call| {
        calls += 1;
        call.output().set(&7u8)?;
        assert_eq!(call.defer(), cfg!(feature = "deferred"));
        Ok(())
    });
    let mut thing: Thing<'_, 16> = Thing::new();
    thing["slow"] >>= &mut slow;
    let mut h = Harness::new(Config::new("user", "dev", "pass"), thing);
    h.connect();
    let answer = h.feed(&run(70, "slow"));
    if cfg!(feature = "deferred") {
        assert!(answer.is_empty());
        assert_eq!(h.session.poll_event(), Some(Event::Deferred { stream_id: 70, resource: 0 }));
        h.session.reply(h.now, 70, Ok(Some(&7u8))).unwrap();
        let late = h.sent();
        let m = message(&late);
        assert_eq!((m.kind, m.stream_id, m.payload.and_then(|p| p.as_u64())), (MessageType::Ok, 70, Some(7)));
    } else {
        // Answered by the handler's own output, at once; nothing waits for `reply`.
        let m = message(&answer);
        assert_eq!((m.kind, m.stream_id, m.payload.and_then(|p| p.as_u64())), (MessageType::Ok, 70, Some(7)));
        assert_eq!(h.session.poll_event(), None);
        assert_eq!(h.session.reply(h.now, 70, Ok(Some(&7u8))), Err(Error::UnknownId));
        assert!(h.sent().is_empty());
    }
    // Exactly once either way: no second answer, no timeout later.
    assert_eq!(h.session.reply(h.now, 70, Ok(None)), Err(Error::UnknownId));
    let later = h.advance_to(60_000);
    assert!(support::frames(&later).iter().all(|f| message(f).stream_id != 70), "{later:02x?}");
    drop(h);
    assert_eq!(calls, 1);
}
