//! The sizes of the runner's futures on a 64-bit host, pinned: a device of a gateway holds
//! them for as long as it runs, so they must not grow unnoticed.

use crate::capacity::tables::{COMPACT_E, COMPACT_P, COMPACT_R, COMPACT_S};
use crate::{Capacity, Client, Transport};

use super::connection::serve;
use super::handlers::last_values;
use super::session::Clock;
use super::{Runner, transport};

fn compact_runner() -> Runner {
    let (_client, runner) = Client::builder("user", "device", "credential")
        .host("127.0.0.1")
        .port(1)
        .transport(Transport::Tcp)
        .buffer_size(4096)
        .capacity(Capacity::Compact)
        .build()
        .expect("a valid configuration");
    runner
}

/// The boxed connection future (core session included) and the reconnect loop of one
/// Compact device, the two largest things a gateway's device keeps besides its buffer.
#[test]
fn the_futures_a_device_holds_fit_their_documented_sizes() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("listener");
        let addr = listener.local_addr().expect("address");
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let mut conn = transport::Conn::Stream(transport::Stream::Tcp(stream));
        let Runner { settings, mut handlers, mut driver } = compact_runner();
        let clock = Clock { start: tokio::time::Instant::now() };
        let lasts = last_values(&handlers);
        let paths: Vec<String> = handlers.iter().map(|(p, _)| p.clone()).collect();
        let connection = core::mem::size_of_val(&serve::<COMPACT_R, COMPACT_S, COMPACT_P, COMPACT_E>(
            &settings,
            &mut handlers,
            &lasts,
            &paths,
            &mut driver,
            &mut conn,
            &clock,
        ));
        let reconnect = core::mem::size_of_val(&compact_runner().reconnect_loop());
        println!("Compact: connection future {connection} B, reconnect loop {reconnect} B");
        // As `cargo test` builds them. The connection's future was 4,128 B before the
        // queue's in-flight table, the wait for channel room and the channel table moved
        // out of it. The reconnect loop grew from 1,120 to 1,128 B with
        // `Stats::session_buffer` (the driver keeps a `Stats`).
        if cfg!(target_pointer_width = "64") {
            assert!(connection <= 3_368, "connection future {connection} B");
            assert!(reconnect <= 1_128, "reconnect loop {reconnect} B");
        }
    });
}
