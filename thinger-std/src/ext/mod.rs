//! Linux gateway extensions: the resources of the official IOTMP-Linux client, on the same
//! resource names and reply shapes, each behind its own cargo feature and added to a
//! [`Resources`](crate::resources::Resources) table only when the application asks for it.
//!
//! | feature | module | resources |
//! |---|---|---|
//! | `ext-cmd` | [`cmd`] | `cmd`, `$cmd/:session` (channel: streamed output) |
//! | `ext-fs` | [`fs`] | `$fs/get`, `$fs/get/*path`, `$fs/info/*path`, `$fs/hash/*path`, and when writable `$fs/put/*path`, `$fs/delete/*path`, `$fs/move/*source` |
//! | `ext-terminal` | [`terminal`] | `$terminal/:session` (channel), `$terminal/:session/params` |
//! | `ext-proxy` | [`proxy`] | `$proxy/:session` (channel) |
//!
//! Both are dangerous by nature: whoever can call the device's resources (the server and
//! anyone holding an API token for the device) can run these. Their defaults are the safe
//! ones: `cmd` runs only allow-listed programs, without a shell, with a cleared environment,
//! a timeout and an output limit; `fs` is read-only, confined to named roots, and refuses
//! traversal before touching the filesystem. `docs/security.md` describes what each exposes.
//!
//! `terminal` and `proxy` run on [channels](crate::channel) the server opens. `terminal`
//! runs only the one program the application names, `proxy` connects only to allow-listed
//! `host:port` targets.

#[cfg(feature = "ext-cmd")]
#[cfg_attr(docsrs, doc(cfg(feature = "ext-cmd")))]
pub mod cmd;
#[cfg(feature = "ext-cmd")]
mod cmd_stream;
#[cfg(feature = "ext-fs")]
#[cfg_attr(docsrs, doc(cfg(feature = "ext-fs")))]
pub mod fs;
#[cfg(feature = "ext-fs")]
mod fs_path;
#[cfg(feature = "ext-fs")]
mod fs_stream;
#[cfg(feature = "ext-proxy")]
#[cfg_attr(docsrs, doc(cfg(feature = "ext-proxy")))]
pub mod proxy;
#[cfg(feature = "ext-terminal")]
#[cfg_attr(docsrs, doc(cfg(feature = "ext-terminal")))]
pub mod terminal;
