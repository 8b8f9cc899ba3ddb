//! How big a client's session tables are: resources, open streams and subscriptions,
//! requests in flight.
//!
//! The core session keeps these tables inline at a size fixed when it is compiled, so they
//! are a large part of what one client costs on a 64-bit host: 6.3 KiB for
//! [`Capacity::Standard`], 2.0 KiB for [`Capacity::Compact`]. A desktop device keeps the default; a gateway running
//! thousands of small virtual devices picks `Compact` with
//! [`ClientBuilder::capacity`](crate::ClientBuilder::capacity).

/// The sizes of a client's session tables: resources, open streams and subscriptions,
/// requests in flight ([`ClientBuilder::capacity`](crate::ClientBuilder::capacity)).
///
/// The core session keeps these tables inline at a size fixed when it is compiled, so they
/// are a large part of what one client costs on a 64-bit host: 6.3 KiB for `Standard`,
/// 2.0 KiB for `Compact`. A desktop device keeps the default; a gateway running thousands of small
/// virtual devices picks `Compact`.
///
/// ```
/// use thinger_std::Capacity;
/// assert_eq!(Capacity::default(), Capacity::Standard);
/// assert_eq!(Capacity::Standard.resources(), thinger_std::resources::MAX_RESOURCES);
/// assert_eq!(
///     (Capacity::Compact.resources(), Capacity::Compact.streams(), Capacity::Compact.requests()),
///     (8, 4, 16)
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Capacity {
    /// 32 resources, 16 streams the server opens, 16 subscriptions, 64 requests in flight
    /// (cloud calls, queued writes, subscriptions being opened and deferred answers
    /// together).
    #[default]
    Standard,
    /// 8 resources, 4 streams, 4 subscriptions, 16 requests in flight and 8 session events
    /// waiting to be polled (the run loop drains them after every read, so input is only
    /// taken in smaller steps): for one of many virtual devices in a gateway.
    Compact,
}

/// The tables as const generic parameters of the core `Session`.
pub(crate) mod tables {
    /// [`Capacity::Standard`](super::Capacity::Standard): resources.
    pub(crate) const STANDARD_R: usize = 32;
    /// Streams, and subscriptions.
    pub(crate) const STANDARD_S: usize = 16;
    /// Requests in flight.
    pub(crate) const STANDARD_P: usize = 64;
    /// Events waiting to be polled (the core's default).
    pub(crate) const STANDARD_E: usize = thinger_core::session::EVENT_QUEUE;
    /// [`Capacity::Compact`](super::Capacity::Compact): resources.
    pub(crate) const COMPACT_R: usize = 8;
    /// Streams, and subscriptions.
    pub(crate) const COMPACT_S: usize = 4;
    /// Requests in flight.
    pub(crate) const COMPACT_P: usize = 16;
    /// Events waiting to be polled: the run loop drains them after every read, so a short
    /// queue only makes the session take input in smaller steps (40 bytes an event saved).
    pub(crate) const COMPACT_E: usize = 8;
}

impl Capacity {
    /// The most resources a client can register.
    pub const fn resources(self) -> usize {
        match self {
            Capacity::Standard => tables::STANDARD_R,
            Capacity::Compact => tables::COMPACT_R,
        }
    }

    /// The most streams the server can hold open at once; the client can hold as many
    /// subscriptions (event, property and MQTT topic subscriptions, and topics it publishes
    /// on).
    pub const fn streams(self) -> usize {
        match self {
            Capacity::Standard => tables::STANDARD_S,
            Capacity::Compact => tables::COMPACT_S,
        }
    }

    /// The most requests waiting for an answer at once: cloud calls, queued writes in
    /// flight, subscriptions being opened and requests an async handler has not answered
    /// yet. More wait in the client until answers free room.
    pub const fn requests(self) -> usize {
        match self {
            Capacity::Standard => tables::STANDARD_P,
            Capacity::Compact => tables::COMPACT_P,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tables::*;
    use thinger_core::session::Session;

    /// The figures the docs above give, on a 64-bit host: fails when the tables grow.
    #[test]
    fn session_tables_fit_the_documented_sizes() {
        let standard =
            core::mem::size_of::<Session<'static, Vec<u8>, STANDARD_R, STANDARD_S, STANDARD_P, STANDARD_E>>();
        let compact = core::mem::size_of::<Session<'static, Vec<u8>, COMPACT_R, COMPACT_S, COMPACT_P, COMPACT_E>>();
        println!("core session: Standard {standard} B, Compact {compact} B");
        if cfg!(target_pointer_width = "64") {
            assert!(standard <= 6_464, "Standard session {standard} B");
            assert!(compact <= 2_064, "Compact session {compact} B");
        }
        assert!(compact < standard);
    }
}
