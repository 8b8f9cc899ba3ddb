//! Connection settings.

use embassy_time::Duration;
use thinger_core::queue::Overflow;
use thinger_core::session::Config as SessionConfig;

/// The IOTMP port for plain TCP.
pub const PLAIN_PORT: u16 = 25204;
/// The IOTMP port for TLS.
pub const TLS_PORT: u16 = 25206;

#[cfg(feature = "tls")]
/// How the server's certificate is checked: against the trust anchors the firmware
/// carries, for a DNS name, optionally with SPKI pins and validity dates.
///
/// `server_name` is sent as SNI and must match a DNS name (SAN, or CN when there is no SAN)
/// of the server certificate; IP addresses are not matched, so connect by IP address if you
/// must but keep a DNS name here. `ca_der` holds one or more CA certificates in DER form,
/// one after the other (a bundle: `include_bytes!("ca.der")`, or
/// [`tls::roots::THINGER_CLOUD`](crate::tls::roots::THINGER_CLOUD); convert a PEM file with
/// `openssl x509 -in ca.pem -outform der -out ca.der`, join several with `cat`). See the
/// crate documentation for what is verified on a microcontroller.
///
/// ```
/// use thinger_embassy::Tls;
/// use thinger_embassy::tls::{SyncedClock, roots};
/// static CLOCK: SyncedClock = SyncedClock::new(); // set from SNTP
/// // SHA-256 of the server key's SubjectPublicKeyInfo (see `Tls::pins`).
/// static PINS: [[u8; 32]; 1] = [[0x1f; 32]];
/// let tls = Tls::new("iot.thinger.io", roots::THINGER_CLOUD).pins(&PINS).time_source(&CLOCK);
/// assert_eq!(tls.server_name, "iot.thinger.io");
/// assert_eq!(tls.pins.len(), 1);
/// ```
#[derive(Clone, Copy)]
#[cfg(feature = "tls")]
pub struct Tls<'d> {
    /// DNS name to verify the certificate for (and to send as SNI).
    pub server_name: &'d str,
    /// The trust anchors: one or more CA certificates, DER, concatenated. The chain the
    /// server sends must lead to one of them.
    pub ca_der: &'d [u8],
    /// SPKI pins: SHA-256 digests of DER `SubjectPublicKeyInfo`s. When not empty, one
    /// certificate of the verified chain (leaf, intermediate or anchor) must carry one of
    /// these keys. Compute one with
    /// `openssl x509 -in cert.pem -noout -pubkey | openssl pkey -pubin -outform der | openssl dgst -sha256`.
    pub pins: &'d [[u8; 32]],
    /// Where the current time comes from, to check validity dates (`None`: not checked).
    pub time: Option<&'d dyn crate::tls::TimeSource>,
}

#[cfg(feature = "tls")]
impl<'d> Tls<'d> {
    /// Verify the server as `server_name` against the CA certificate(s) `ca_der`.
    pub const fn new(server_name: &'d str, ca_der: &'d [u8]) -> Self {
        Tls { server_name, ca_der, pins: &[], time: None }
    }

    /// Also require one of these SPKI pins in the chain (see [`Tls::pins`]).
    pub const fn pins(mut self, pins: &'d [[u8; 32]]) -> Self {
        self.pins = pins;
        self
    }

    /// Check validity dates against this time source.
    pub const fn time_source(mut self, time: &'d dyn crate::tls::TimeSource) -> Self {
        self.time = Some(time);
        self
    }
}

#[cfg(feature = "tls")]
impl core::fmt::Debug for Tls<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Tls")
            .field("server_name", &self.server_name)
            .field("ca_der", &self.ca_der.len())
            .field("pins", &self.pins.len())
            .field("time", &self.time.map(|t| t.unix_time()))
            .finish()
    }
}

/// Settings of the client: the IOTMP session, where to connect, TLS, timeouts and the
/// reconnect backoff.
///
/// ```
/// use thinger_core::session::Config as SessionConfig;
/// use thinger_embassy::{Config, Tls, TLS_PORT};
/// use embassy_time::Duration;
///
/// static CA: &[u8] = &[0x30, 0x82]; // your CA certificate, DER
/// let session = SessionConfig::new("user", "device", "credential");
/// // Connect to an address, verify the certificate for a DNS name.
/// let config = Config::new(session, "192.168.1.10", Tls::new("thinger.local", CA))
///     .backoff(Duration::from_secs(1), Duration::from_secs(60));
/// assert_eq!(config.port, TLS_PORT);
/// assert!(config.tls.is_some());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Config<'d> {
    /// Credentials, keep-alive and the other session settings.
    pub session: SessionConfig<'d>,
    /// Host to connect to: a DNS name (resolved through the embassy-net stack) or an IPv4
    /// address literal.
    pub host: &'d str,
    /// TCP port.
    pub port: u16,
    /// TLS settings; `None` for plain TCP.
    #[cfg(feature = "tls")]
    pub tls: Option<Tls<'d>>,
    /// Limit for DNS, the TCP connect and the TLS handshake together.
    pub connect_timeout: Duration,
    /// First reconnect delay.
    pub backoff_initial: Duration,
    /// Longest reconnect delay.
    pub backoff_max: Duration,
    /// Entries the offline queue holds at most (its ring's bytes bound it too).
    pub queue_capacity: usize,
    /// What the offline queue does when full.
    pub queue_overflow: Overflow,
}

impl<'d> Config<'d> {
    /// TLS to `host` on port [`TLS_PORT`], the certificate checked as `tls` says.
    #[cfg(feature = "tls")]
    pub const fn new(session: SessionConfig<'d>, host: &'d str, tls: Tls<'d>) -> Self {
        Config {
            session,
            host,
            port: TLS_PORT,
            tls: Some(tls),
            connect_timeout: Duration::from_secs(20),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(120),
            queue_capacity: usize::MAX,
            queue_overflow: Overflow::Reject,
        }
    }

    /// Plain TCP to `host` on port [`PLAIN_PORT`]: credentials and data travel in clear
    /// text. Use it only on a network you trust (or for a local server).
    ///
    /// ```
    /// use thinger_core::session::Config as SessionConfig;
    /// use thinger_embassy::{Config, PLAIN_PORT};
    /// let config = Config::plain(SessionConfig::new("user", "device", "credential"), "10.0.0.2");
    /// assert_eq!(config.port, PLAIN_PORT);
    /// ```
    pub const fn plain(session: SessionConfig<'d>, host: &'d str) -> Self {
        Config {
            session,
            host,
            port: PLAIN_PORT,
            #[cfg(feature = "tls")]
            tls: None,
            connect_timeout: Duration::from_secs(20),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(120),
            queue_capacity: usize::MAX,
            queue_overflow: Overflow::Reject,
        }
    }

    /// Sets the TCP port.
    pub const fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Sets the time allowed for DNS, TCP connect and TLS handshake together.
    pub const fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the offline queue's limits: at most `capacity` entries (and what fits its
    /// ring, `Buffers`' `QUEUE` bytes), and what happens to a new entry when it is full.
    ///
    /// ```
    /// use thinger_core::session::Config as SessionConfig;
    /// use thinger_embassy::{Config, Overflow};
    /// let config = Config::plain(SessionConfig::new("u", "d", "c"), "10.0.0.2").queue(50, Overflow::DropOldest);
    /// assert_eq!((config.queue_capacity, config.queue_overflow), (50, Overflow::DropOldest));
    /// ```
    pub const fn queue(mut self, capacity: usize, overflow: Overflow) -> Self {
        self.queue_capacity = capacity;
        self.queue_overflow = overflow;
        self
    }

    /// Sets the reconnect backoff: the delay starts at `initial`, doubles after every failed
    /// attempt up to `max`, and each wait is drawn at random from its upper half (jitter),
    /// so that many devices restarted together do not reconnect in step.
    pub const fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff_initial = initial;
        self.backoff_max = max;
        self
    }
}

/// The reconnect delay after `failures` consecutive failed attempts (1 = the first failure):
/// `initial × 2^(failures-1)`, capped at `max`, then placed at random in its upper half
/// (`random` is a uniformly random `u32`: the jitter).
///
/// ```
/// use embassy_time::Duration;
/// use thinger_embassy::backoff_delay;
/// let (initial, max) = (Duration::from_secs(1), Duration::from_secs(60));
/// // The first wait lies in [0.5 s, 1 s], the fourth in [4 s, 8 s], and never above 60 s.
/// let d = backoff_delay(initial, max, 1, 0);
/// assert_eq!(d, Duration::from_millis(500));
/// let d = backoff_delay(initial, max, 4, u32::MAX);
/// assert!(d >= Duration::from_secs(4) && d <= Duration::from_secs(8));
/// assert!(backoff_delay(initial, max, 40, u32::MAX) <= max);
/// ```
pub fn backoff_delay(initial: Duration, max: Duration, failures: u32, random: u32) -> Duration {
    // The core's backoff (shared with the std client): doubling, 50 % jitter. Its `random`
    // takes off more as it grows; ours places the delay higher, hence the flip.
    let core = |d: Duration| core::time::Duration::from_millis(d.as_millis());
    let policy = thinger_core::backoff::Backoff::new(core(initial), core(max));
    let delay = policy.delay(failures.saturating_sub(1), u32::MAX - random);
    Duration::from_millis(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX))
}

/// How long a connection must stay up before the reconnect delays start over (as in
/// thinger-std): a server that authenticates and then drops the device at once still sees
/// growing delays.
pub const HEALTHY_AFTER: Duration = Duration::from_secs(30);

/// The reconnect loop's bookkeeping: thinger-core's `Reconnect` on embassy time.
pub(crate) struct Retry {
    reconnect: thinger_core::backoff::Reconnect,
}

impl Retry {
    pub(crate) fn new(config: &Config<'_>) -> Retry {
        let core = |d: Duration| core::time::Duration::from_millis(d.as_millis());
        let policy = thinger_core::backoff::Backoff::new(core(config.backoff_initial), core(config.backoff_max));
        Retry { reconnect: thinger_core::backoff::Reconnect::new(policy, core(HEALTHY_AFTER)) }
    }

    /// The delay before the next attempt, after one that began at `started` and was served
    /// (authenticated) or not; `random` is a uniformly random `u32` (the jitter).
    pub(crate) fn after(&mut self, started: embassy_time::Instant, served: bool, random: u32) -> Duration {
        let at = |t: embassy_time::Instant| thinger_core::time::Instant::from_millis(t.as_millis());
        if served {
            // From the attempt's start: the handshake's seconds do not matter next to 30 s.
            self.reconnect.connected(at(started));
            self.reconnect.disconnected(at(embassy_time::Instant::now()));
        }
        let delay = self.reconnect.next_delay(u32::MAX - random);
        Duration::from_millis(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX))
    }
}
