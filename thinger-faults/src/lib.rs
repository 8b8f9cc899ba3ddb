//! # thinger-faults
//!
//! Dev-only fault injection for thinger-rs (not published). Its library is one thing: a
//! TCP [`Proxy`] that sits between a device and a server on loopback and does to the byte
//! stream what field networks do, switchable mid-connection from the test through a
//! [`FaultHandle`]:
//!
//! | fault | what the peers see |
//! |---|---|
//! | [`Faults::latency`] / [`Faults::jitter`] | every chunk arrives later (order kept) |
//! | [`Faults::bandwidth`] | bytes paced to a rate |
//! | [`Faults::split`] | chunks cut into tiny TCP segments |
//! | [`Faults::stall`] | nothing moves, the connection stays open; held bytes go on when cleared |
//! | [`Faults::black_hole`] | bytes are read and thrown away (a NAT that forgot the flow) |
//! | [`FaultHandle::half_close`] | one direction gets a FIN, the other keeps going |
//! | [`FaultHandle::reset`] | both peers get a TCP RST |
//! | [`FaultHandle::corrupt`] | one byte of the next chunk is flipped |
//!
//! The scenario tests (`tests/scenarios.rs`) put a thinger-std client behind it in front of
//! a thinger-server and count writes by id; `tests/power_loss.rs` tears the persisted
//! queue's file at every byte; `src/bin/soak.rs` kills a server a thousand times.
//!
//! ```
//! use std::time::Duration;
//! use thinger_faults::{Faults, Proxy};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let proxy = Proxy::start(upstream.local_addr().unwrap()).await.unwrap();
//! let faults = proxy.handle();
//! faults.set(Faults::new().latency(Duration::from_millis(50)));
//! faults.set(Faults::new().stall(true));
//! faults.clear();
//! assert_eq!(faults.current(), Faults::default());
//! # });
//! ```
#![forbid(unsafe_code)]

/// `docs/reliability.md`, included so that its examples run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/reliability.md")]
mod reliability_doc {}

mod proxy;
mod rng;

pub use proxy::{Direction, FaultHandle, Faults, Proxy, ProxyStats};
pub use rng::SplitMix64;
