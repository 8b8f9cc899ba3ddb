//! Linux gateway extensions: the resources of the official IOTMP-Linux client, on the same
//! resource names and reply shapes, each behind its own cargo feature and added to a
//! [`Resources`](crate::resources::Resources) table only when the application asks for it.
//!
//! | feature | module | resources |
//! |---|---|---|
//! | `ext-cmd` | [`cmd`] | `cmd` |
//! | `ext-fs` | [`fs`] | `$fs/get`, `$fs/get/*path`, `$fs/info/*path`, `$fs/hash/*path`, and when writable `$fs/put/*path`, `$fs/delete/*path`, `$fs/move/*source` |
//!
//! Both are dangerous by nature: whoever can call the device's resources (the server and
//! anyone holding an API token for the device) can run these. Their defaults are the safe
//! ones: `cmd` runs only allow-listed programs, without a shell, with a cleared environment,
//! a timeout and an output limit; `fs` is read-only, confined to named roots, and refuses
//! traversal before touching the filesystem. `docs/security.md` describes what each exposes.
//!
//! Not here yet: the extensions that need server-opened streams (`terminal`, `proxy`, cmd's
//! streaming output and fs's chunked transfers).

#[cfg(feature = "ext-cmd")]
#[cfg_attr(docsrs, doc(cfg(feature = "ext-cmd")))]
pub mod cmd;
#[cfg(feature = "ext-fs")]
#[cfg_attr(docsrs, doc(cfg(feature = "ext-fs")))]
pub mod fs;
#[cfg(feature = "ext-fs")]
mod fs_path;
