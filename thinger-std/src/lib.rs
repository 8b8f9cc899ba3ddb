//! # thinger-std
//!
//! A tokio client for [Thinger.io](https://thinger.io) over the sans-IO session of
//! `thinger-core`: TCP, TLS (rustls, certificates checked by default, custom CA, pinning)
//! or WebSocket; reconnects with exponential backoff and jitter; re-subscribes after every
//! reconnect; async cloud calls with serde types and typed errors; an offline queue (bounded,
//! optionally persisted) so bucket writes and endpoint calls survive outages and restarts;
//! resources with the same DSL and handlers as the core, sync or async.
//!
//! ```no_run
//! use std::time::Duration;
//! use thinger_std::dsl::{input, output};
//! use thinger_std::resources::{async_input_output, Resources};
//! use thinger_std::{Client, ClientEvent};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let mut thing = Resources::new();
//! thing["led"] <<= input(|on: bool| println!("led {on}"));
//! thing["temperature"] >>= output(|| 21.5f32);
//! thing["double"] >>= async_input_output(|x: i64| async move { Ok(x * 2) });
//!
//! let client = Client::builder("user", "device", "credential").resources(thing).spawn()?;
//! let mut events = client.events();
//! while let Some(event) = events.next().await {
//!     println!("{event}");
//!     if event == ClientEvent::Connected {
//!         client.write_bucket("readings", &serde_json::json!({"t": 21.5})).await?;
//!         break;
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! ## Cargo features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `tokio` | yes | the tokio client ([`Client`], [`Runner`], transports); without it only the TLS settings and the offline queue are built |
//! | `ext-cmd` | no | the gateway `cmd` resource (allow-listed commands with a timeout): `ext::cmd` |
//! | `ext-fs` | no | the gateway `$fs` resources (files under configured roots, inline transfers): `ext::fs` |
//!
//! ## Running the client
//! [`ClientBuilder::spawn`] runs the connection on a thread of its own and returns the
//! [`Client`] handle. [`ClientBuilder::build`] returns the handle and a [`Runner`] whose
//! `run()` future is `Send`: `tokio::spawn(runner.run())` on any runtime, thousands of
//! them for a gateway of virtual devices (the connections run on a pool of one thread per
//! core, see [`Runner`]). [`Runner::run_local`] runs the same loop in place (not `Send`).
//! A gateway's devices are small with [`ClientBuilder::capacity`]`(`[`Capacity::Compact`]`)`
//! and a 4 KiB [`ClientBuilder::buffer_size`]: about 10.5 KiB each over plain TCP
//! (docs/benchmarks-std.md).
//!
//! ## What the client guarantees
//! * Protocol behaviour (keep-alives, dead-peer detection, request timeouts, streams,
//!   describe) is the core session's; this crate only moves bytes and time.
//! * Bucket writes and endpoint calls are delivered in order, at least once: an entry leaves
//!   the queue only when the server answered it.
//! * Connection state changes are reported as [`ClientEvent`]s with their reasons.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic))]

/// The crate's README.md, included so that its examples run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme_doc {}

mod backoff;
#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
mod error;
mod event;
#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
pub mod queue;
pub mod tls;

#[cfg(feature = "tokio")]
mod announce;
#[cfg(feature = "tokio")]
mod builder;
#[cfg(feature = "tokio")]
mod capacity;
#[cfg(feature = "tokio")]
pub mod channel;
#[cfg(feature = "tokio")]
mod client;
#[cfg(feature = "tokio")]
mod command;
#[cfg(any(feature = "ext-cmd", feature = "ext-fs", feature = "ext-terminal", feature = "ext-proxy"))]
pub mod ext;
#[cfg(feature = "tokio")]
mod mailbox;
#[cfg(all(feature = "tokio", unix))]
pub mod ota;
#[cfg(feature = "tokio")]
mod pson_util;
#[cfg(feature = "tokio")]
pub mod resources;
#[cfg(feature = "tokio")]
mod runner;
#[cfg(feature = "tokio")]
mod streams;
#[cfg(feature = "tokio")]
mod transport;

pub use backoff::Backoff;
pub use error::{BuildError, ConnectError, Error};
pub use event::{ClientEvent, Status};
pub use queue::{Overflow, QueueConfig};

#[cfg(feature = "tokio")]
pub use builder::{ClientBuilder, DEFAULT_HOST};
#[cfg(feature = "tokio")]
pub use capacity::Capacity;
#[cfg(feature = "tokio")]
pub use client::{Client, QoS};
#[cfg(feature = "tokio")]
pub use command::Stats;
#[cfg(feature = "tokio")]
pub use runner::Runner;
#[cfg(feature = "tokio")]
pub use streams::{Events, MqttMessage, Subscription};
#[cfg(feature = "tokio")]
pub use transport::Transport;

/// The core crate, for its PSON, session and resource types.
pub use thinger_core as core;

/// The resource DSL of `thinger-core` (handlers, `Resource`, `HandlerError`, ...), for
/// binding resources with `thing["path"] <<= …` on [`resources::Resources`].
pub mod dsl {
    pub use thinger_core::dsl::*;
}
