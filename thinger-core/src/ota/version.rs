//! The `version` resource: `{major, minor, patch, version}` of the running firmware.

use crate::resource::{Call, HandlerError, Resource, ResourceKind};

/// The running firmware's version as an output resource, conventionally at `version`.
///
/// `major`, `minor` and `patch` are the leading numbers of a `MAJOR.MINOR.PATCH` string
/// (0 where missing); `version` is the string as given.
///
/// ```
/// use thinger_core::ota::Version;
/// let v = Version::new("1.4.2-rc1");
/// assert_eq!((v.major, v.minor, v.patch), (1, 4, 2));
/// let mut version = Version::new(env!("CARGO_PKG_VERSION"));
/// let mut thing: thinger_core::resource::Thing<'_, 2> = thinger_core::resource::Thing::new();
/// thing[Version::PATH] >>= &mut version;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
    /// Patch number.
    pub patch: u32,
    /// The version string.
    pub version: &'static str,
}

impl Version {
    /// The conventional resource path.
    pub const PATH: &'static str = "version";

    /// Parses `MAJOR.MINOR.PATCH` (anything after the numbers is kept only in `version`).
    // `get` is not const: the indexes are bounded by the loop condition.
    #[allow(clippy::indexing_slicing)]
    pub const fn new(version: &'static str) -> Self {
        let bytes = version.as_bytes();
        let mut parts = [0u32; 3];
        let (mut part, mut i) = (0, 0);
        while i < bytes.len() && part < 3 {
            let c = bytes[i];
            if c.is_ascii_digit() {
                parts[part] = parts[part].saturating_mul(10).saturating_add((c - b'0') as u32);
            } else if c == b'.' {
                part += 1;
            } else {
                break;
            }
            i += 1;
        }
        Version { major: parts[0], minor: parts[1], patch: parts[2], version }
    }
}

impl Resource for Version {
    fn kind(&self) -> ResourceKind {
        ResourceKind::Output
    }
    fn handle(&mut self, call: &mut Call<'_>) -> Result<(), HandlerError> {
        let out = call.output();
        out.field("major", &self.major)?;
        out.field("minor", &self.minor)?;
        out.field("patch", &self.patch)?;
        out.field("version", self.version)?;
        Ok(())
    }
}
