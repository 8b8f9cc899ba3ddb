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
//! * [`time`]: millisecond `Instant`/`Duration` (the core never reads a clock).
//!
//! The crate is `#![no_std]`, never allocates unless the `alloc` feature is enabled, and
//! never touches a socket or a clock.
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
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
// Nothing reachable from wire input may panic: no indexing, unwrap or panic in library code.
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic))]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

pub mod backoff;
pub mod dsl;
pub mod iotmp;
mod log;
pub mod pson;
pub mod resource;
pub mod session;
pub mod time;
pub mod varint;

/// `docs/protocol.md`, included so that its examples run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/protocol.md")]
mod protocol_doc {}

/// `README.md`, included so that its examples run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
mod readme {}

/// `docs/dsl.md`, included so that its examples run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/dsl.md")]
mod dsl_doc {}
