//! Arbitrary bytes into a connected client session.
//!
//! Input layout: byte 0 seeds the read sizes (1..=32 bytes each) and how far the fake clock
//! moves between reads; the rest is what "the server" sends after the OK to our CONNECT.
//! The device has an input, an output, an input+output with a path parameter, a run
//! resource and one that defers its reply. Checks:
//! * no panic, whatever arrives;
//! * everything the session transmits is a sequence of well-formed frames;
//! * the session always makes progress (takes bytes, or has something to send, or events to
//!   report, or is closed), so an adapter never stalls;
//! * after close it stays closed and takes no more work.
#![no_main]

use std::cell::Cell;

use libfuzzer_sys::fuzz_target;
use thinger_core::iotmp::parse_frame;
use thinger_core::resource::{ResourceKind, Thing, handler};
use thinger_core::session::{Config, Event, Session};
use thinger_core::time::Instant;

struct Rng(u64);
impl rand_core::RngCore for Rng {
    fn next_u32(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1);
        (self.0 >> 33) as u32
    }
    fn next_u64(&mut self) -> u64 {
        u64::from(self.next_u32())
    }
    fn fill_bytes(&mut self, d: &mut [u8]) {
        d.iter_mut().for_each(|b| *b = self.next_u32() as u8)
    }
    fn try_fill_bytes(&mut self, d: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(d);
        Ok(())
    }
}
impl rand_core::CryptoRng for Rng {}

fn check_frames(bytes: &[u8]) {
    let mut rest = bytes;
    while !rest.is_empty() {
        let (frame, used) = parse_frame(rest, usize::MAX).expect("valid header").expect("complete frame");
        frame.message().expect("our own frames parse");
        rest = &rest[used..];
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, stream)) = data.split_first() else { return };
    let state = Cell::new(false);
    let mut led = handler(ResourceKind::Input, |call| {
        if let Some(v) = call.input().as_bool() {
            state.set(v);
        }
        Ok(call.output().set(&state.get())?)
    });
    let mut temp = handler(ResourceKind::Output, |call| {
        call.output().field("t", &21.5)?;
        Ok(call.output().field("h", &60u8)?)
    });
    let mut sensor = handler(ResourceKind::InputOutput, |call| {
        let id = call.param("id").unwrap_or("");
        call.output().field("id", id)?;
        Ok(call.field("in", &call.input().value())?)
    });
    let mut reboot = handler(ResourceKind::Run, |_| Ok(()));
    let mut slow = handler(ResourceKind::Output, |call| {
        call.defer();
        Ok(())
    });
    let mut thing: Thing<'_, 8> = Thing::new();
    thing["led"] <<= &mut led;
    thing["temp"] >>= &mut temp;
    thing["sensors/:id"].set(&mut sensor);
    thing["reboot"].set(&mut reboot);
    thing["slow"] >>= &mut slow;
    let config = Config::new("u", "d", "c").max_frame_size(256);
    let mut session: Session<'_, [u8; 1024], 8, 4, 4> = Session::new(config, thing, [0u8; 1024], &mut Rng(7));
    let mut now = 0u64;
    session.connect(Instant::from_millis(now));
    let mut out = [0u8; 1024];
    let n = session.poll_transmit(&mut out).unwrap();
    let id = parse_frame(&out[..n], 1024).unwrap().unwrap().0.message().unwrap().stream_id;
    let mut ok = vec![0x01, 0x00, 0x08];
    let (v, len) = thinger_core::varint::to_array(u64::from(id));
    ok.extend_from_slice(&v[..len]);
    ok[1] = (ok.len() - 2) as u8;
    session.handle_input(Instant::from_millis(now), &ok);
    assert_eq!(session.poll_event(), Some(Event::Connected));

    let mut rest = stream;
    let mut step = u64::from(seed);
    let mut idle = 0;
    while !rest.is_empty() && idle < 8 {
        step = step.wrapping_mul(31).wrapping_add(7);
        let size = 1 + (step % 32) as usize;
        now += step % 700;
        let t = Instant::from_millis(now);
        let used = session.handle_input(t, &rest[..size.min(rest.len())]);
        rest = &rest[used..];
        session.handle_timeout(t);
        let mut progressed = used > 0;
        loop {
            match session.poll_transmit(&mut out) {
                Ok(0) => break,
                Ok(n) => {
                    check_frames(&out[..n]);
                    progressed = true;
                }
                Err(e) => panic!("frame larger than the transmit buffer: {e}"),
            }
        }
        while let Some(event) = session.poll_event() {
            progressed = true;
            if let Event::Deferred { stream_id, .. } = event {
                let _ = stream_id;
            }
        }
        if session.is_closed() {
            assert_eq!(session.handle_input(t, rest), rest.len());
            return;
        }
        idle = if progressed { 0 } else { idle + 1 };
    }
    assert!(rest.is_empty() || session.poll_timeout() == Some(Instant::from_millis(now)) || idle < 8);
});
