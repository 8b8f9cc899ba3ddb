//! Runs the Rust examples of the repository's README.md and docs/ as doc tests.
//!
//! They live outside every published package, so no published crate can include them; this
//! crate, never published, does. `cargo test -p thinger-doc-tests --doc` runs them.

/// `README.md`.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod repo_readme {}

/// `docs/protocol.md`.
#[cfg(doctest)]
#[doc = include_str!("../docs/protocol.md")]
mod protocol_doc {}

/// `docs/dsl.md`.
#[cfg(doctest)]
#[doc = include_str!("../docs/dsl.md")]
mod dsl_doc {}

/// `docs/getting-started.md`.
#[cfg(doctest)]
#[doc = include_str!("../docs/getting-started.md")]
mod getting_started_doc {}

/// `docs/security.md`.
#[cfg(doctest)]
#[doc = include_str!("../docs/security.md")]
mod security_doc {}

/// `docs/embedded.md`.
#[cfg(doctest)]
#[doc = include_str!("../docs/embedded.md")]
mod embedded_doc {}
