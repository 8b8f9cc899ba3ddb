//! # thinger-core
//!
//! The sans-IO heart of the Thinger.io device SDK for Rust.
//!
//! * [`pson`](mod@pson): the PSON value encoding (encoder into caller buffers, zero-copy reader,
//!   optional serde support and an owned `Value` behind the `alloc` feature).
//! * [`iotmp`]: IOTMP framing (varints, message types, fields, frame encoder and an
//!   incremental frame decoder).
//! * [`session`]: the client state machine (connect, keep-alive, requests from the server,
//!   streams, cloud calls, subscriptions), fed with bytes and time, drained of bytes,
//!   deadlines and events.
//! * [`resource`]: the resource table, handlers, input/output views and path patterns.
//! * [`dsl`]: `thing["led"] <<= digital_pin(pin)` and friends, on embedded-hal 1.0.
//! * [`backoff`]: reconnect delays and when to reset them, shared by both clients.
//! * [`ota`]: the official `$ota` update resources over a platform `Updater`, and `version`.
//! * [`queue`]: the offline queue of bucket writes and endpoint calls (a ring in a caller
//!   buffer, its record format and the replay of a stored log).
//! * [`time`]: millisecond `Instant`/`Duration` (the core never reads a clock).
//!
//! The crate is `#![no_std]`, never allocates unless the `alloc` feature is enabled, and
//! never touches a socket or a clock.
//!
//! ## Cargo features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `serde` | yes | serde serializer and deserializer for PSON ([`pson::to_slice`], [`pson::from_slice`]) |
//! | `cloud` | yes | the device's cloud calls (`Session::write_bucket`, properties, endpoints, other devices, sync locks) |
//! | `subscriptions` | yes | server subscriptions (`Session::subscribe`, `publish`) |
//! | `deferred` | yes | handlers that answer later (`Call::defer`, `Session::reply`); without it every request is answered by its handler at once |
//! | `connect-info` | yes | the CONNECT announcements `ct`, `fw`, `pv` (`Config::client_type`, `firmware`, `protocol_version`), which the official clients do not send |
//! | `patterns` | yes | path placeholders (`sensors/:id`, `files/*path`) and their captures; without it a path matches only itself (implied by `std`) |
//! | `alloc` | no | owned `pson::Value`, the `pson!` macro, boxed handlers |
//! | `std` | no | `std::error::Error` impls (implies `alloc`) |
//! | `log` | no | log lines through the `log` crate |
//! | `defmt` | no | log lines through `defmt`, and `defmt::Format` on public types |
//!
//! A firmware that uses none of cloud calls, subscriptions, deferred answers, CONNECT
//! announcements and path placeholders builds with `default-features = false` and saves
//! their flash (see docs/footprint.md); it adds back what it uses, e.g.
//! `features = ["deferred"]`. thinger-std and thinger-embassy enable all five. Items that need a
//! feature carry its badge in the rendered documentation.
//!
//! ```
//! use thinger_core::pson;
//!
//! let mut buf = [0u8; 16];
//! let n = pson::encode_to_slice(&23.5f64, &mut buf).unwrap();
//! assert_eq!(&buf[..n], &[0x40, 0x00, 0x00, 0xbc, 0x41]);
//! let value = pson::PsonRef::decode(&buf[..n]).unwrap();
//! assert_eq!(value.as_f64(), Some(23.5));
//! ```
#![no_std]
// Denied, not forbidden: three audited exceptions, each a measured win (see there):
// pson/utf8.rs (ASCII bytes as `&str` on hosts; bytes its byte-loop validator accepted as
// `&str` on microcontrollers) and pson/raw.rs (the bare float truncation, hosts only).
#![deny(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
// Nothing reachable from wire input may panic: no indexing, unwrap or panic in library code.
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic))]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

/// The crate's README.md, included so that its examples run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme_doc {}

pub mod backoff;
mod bytes;
pub mod dsl;
pub mod iotmp;
mod log;
pub mod ota;
pub mod pson;
pub mod queue;
pub mod resource;
pub mod session;
pub mod time;
pub mod varint;
