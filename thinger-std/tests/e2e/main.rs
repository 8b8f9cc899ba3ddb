//! End-to-end tests of the tokio client against the local `thinger-server`, over real
//! loopback sockets (TCP, TLS, WebSocket), with server restarts in a child process.

mod capacity;
mod cloud;
mod events;
mod hostile;
mod peer;
mod resilience;
mod rest;
mod scripted;
mod support;
mod transports;

/// Not a test of its own: the restart tests re-execute this binary on this test to run a
/// server in a child process they can kill with SIGKILL.
#[test]
#[ignore = "helper: the server child process of the restart tests"]
fn server_child() {
    support::run_server_child();
}
