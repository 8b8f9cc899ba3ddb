use crate::pson::DecodeOptions;
use crate::time::Duration;

/// The keep-alive interval the server assumes when the device sends none.
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(60);

/// Session settings. Only `user`, `device` and `credential` are required.
///
/// The session keeps time in 32-bit milliseconds internally, so very long spans are
/// clamped: a stream interval, `request_timeout` and `deferred_timeout` to 2^30 − 1 ms
/// (about 12.4 days), `keep_alive` to 20/23 of that (about 10.8 days, so the dead-peer
/// watchdog at 1.15 × it still fits; CONNECT announces the clamped value). A cloud call
/// whose wait is longer than 12.4 days (`lock_sync` with a long or no server timeout)
/// waits until the connection ends instead. Gaps between calls of any length, and a clock
/// set back, are handled (the session rebuilds its times from the `Instant` it is given);
/// a `now` older than the previous call's by less than that span counts as the previous.
///
/// ```
/// use thinger_core::session::Config;
/// use thinger_core::time::Duration;
/// let config = Config::new("user1", "dev1", "secret").keep_alive(Duration::from_secs(120));
/// assert_eq!(config.keep_alive.as_millis(), 120_000);
/// ```
///
/// `Debug` never prints the credential:
///
/// ```
/// # use thinger_core::session::Config;
/// let shown = format!("{:?}", Config::new("user1", "dev1", "secret"));
/// assert!(shown.contains("dev1") && !shown.contains("secret"));
/// ```
#[derive(Clone, Copy)]
pub struct Config<'a> {
    /// Account user name.
    pub user: &'a str,
    /// Device id.
    pub device: &'a str,
    /// Device credential.
    pub credential: &'a str,
    /// Keep-alive interval; a value other than 60 s is sent to the server as `ka`.
    pub keep_alive: Duration,
    /// Protocol version to announce as `pv` (none by default, like the official clients).
    /// With the feature `connect-info` (on with `std`), like the two below.
    #[cfg(feature = "connect-info")]
    pub protocol_version: Option<u32>,
    /// Client type to announce as `ct`.
    #[cfg(feature = "connect-info")]
    pub client_type: Option<&'a str>,
    /// Firmware version to announce as `fw`.
    #[cfg(feature = "connect-info")]
    pub firmware: Option<&'a str>,
    /// How long a cloud call or subscription waits for its reply.
    pub request_timeout: Duration,
    /// How long a deferred handler may take before the server is told `ERROR 504`.
    pub deferred_timeout: Duration,
    /// Largest frame accepted from the server (header + body); also bounded by the receive
    /// buffer.
    pub max_frame_size: usize,
    /// PSON decoding limits.
    pub pson: DecodeOptions,
    /// Bytes of the session buffer used to receive frames (default 3/8 of it).
    pub rx_buffer: Option<usize>,
    /// Bytes of the session buffer used to queue outgoing frames (default 3/8 of it); the
    /// rest holds event payloads. Every frame is written with 16 bytes of room in front of
    /// its body for the header: CONNECT needs its body (credentials and parameters) plus
    /// 16 bytes, or `Session::connect` closes the session (`DisconnectReason::Local`).
    pub tx_buffer: Option<usize>,
}

impl core::fmt::Debug for Config<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut d = f.debug_struct("Config");
        d.field("user", &self.user)
            .field("device", &self.device)
            .field("credential", &"<redacted>")
            .field("keep_alive", &self.keep_alive);
        #[cfg(feature = "connect-info")]
        d.field("protocol_version", &self.protocol_version)
            .field("client_type", &self.client_type)
            .field("firmware", &self.firmware);
        d.field("request_timeout", &self.request_timeout)
            .field("deferred_timeout", &self.deferred_timeout)
            .field("max_frame_size", &self.max_frame_size)
            .field("pson", &self.pson)
            .field("rx_buffer", &self.rx_buffer)
            .field("tx_buffer", &self.tx_buffer)
            .finish()
    }
}

impl<'a> Config<'a> {
    /// Settings with the defaults: keep-alive 60 s, 30 s timeouts, frames up to the receive
    /// buffer's size, PSON depth 32.
    pub const fn new(user: &'a str, device: &'a str, credential: &'a str) -> Self {
        Config {
            user,
            device,
            credential,
            keep_alive: DEFAULT_KEEP_ALIVE,
            #[cfg(feature = "connect-info")]
            protocol_version: None,
            #[cfg(feature = "connect-info")]
            client_type: None,
            #[cfg(feature = "connect-info")]
            firmware: None,
            request_timeout: Duration::from_secs(30),
            deferred_timeout: Duration::from_secs(30),
            max_frame_size: usize::MAX,
            pson: DecodeOptions::new(),
            rx_buffer: None,
            tx_buffer: None,
        }
    }
    /// Sets the keep-alive interval (1 s to 1800 s; clamped). The server is told it in whole
    /// seconds, rounded up.
    pub const fn keep_alive(mut self, interval: Duration) -> Self {
        let ms = interval.as_millis();
        let ms = if ms < 1000 {
            1000
        } else if ms > 1_800_000 {
            1_800_000
        } else {
            ms
        };
        self.keep_alive = Duration::from_millis(ms);
        self
    }
    /// Sets the cloud-call timeout.
    pub const fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }
    /// Sets the deferred-handler timeout.
    pub const fn deferred_timeout(mut self, timeout: Duration) -> Self {
        self.deferred_timeout = timeout;
        self
    }
    /// Sets the largest accepted frame.
    pub const fn max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame_size = bytes;
        self
    }
    /// Sets the firmware version announced at connect (feature `connect-info`).
    #[cfg(feature = "connect-info")]
    pub const fn firmware(mut self, version: &'a str) -> Self {
        self.firmware = Some(version);
        self
    }
    /// Sets the client type announced at connect (feature `connect-info`).
    #[cfg(feature = "connect-info")]
    pub const fn client_type(mut self, client_type: &'a str) -> Self {
        self.client_type = Some(client_type);
        self
    }
    /// Sets the protocol version announced at connect (feature `connect-info`).
    #[cfg(feature = "connect-info")]
    pub const fn protocol_version(mut self, version: u32) -> Self {
        self.protocol_version = Some(version);
        self
    }
    /// Splits the session buffer: `rx` bytes to receive, `tx` bytes to send, the rest for
    /// event payloads. `tx` must hold CONNECT's body plus 16 bytes (see
    /// [`Config::tx_buffer`]).
    pub const fn buffers(mut self, rx: usize, tx: usize) -> Self {
        self.rx_buffer = Some(rx);
        self.tx_buffer = Some(tx);
        self
    }
}

/// The optional CONNECT parameters, keys in ascending order.
pub(crate) struct ConnectParams<'c, 'a> {
    /// Read for the announcements of the feature `connect-info`.
    #[cfg_attr(not(feature = "connect-info"), allow(dead_code))]
    config: &'c Config<'a>,
    /// Whether the keep-alive differs from the server's default.
    ka: bool,
    /// The keep-alive interval the session keeps, as a tick span.
    ka_span: u32,
    /// How many parameters differ from the server's defaults (0: no F2 field).
    pub(crate) count: u8,
}

impl<'c, 'a> ConnectParams<'c, 'a> {
    /// The parameters of `config`, counted once (the count decides the field and is the
    /// map's header); `ka_span` is the session's keep-alive span (computed once).
    pub(crate) fn new(config: &'c Config<'a>, ka_span: u32) -> Self {
        // On the span (a 32-bit compare): it is the default exactly when the configured
        // interval is (the default is not clamped, and the clamp is another value).
        const DEFAULT_SPAN: u32 = crate::time::keep_alive_span(DEFAULT_KEEP_ALIVE);
        const _: () = assert!(
            DEFAULT_SPAN as u64 == DEFAULT_KEEP_ALIVE.as_millis() && crate::time::MAX_KEEP_ALIVE != DEFAULT_SPAN
        );
        let ka = ka_span != DEFAULT_SPAN;
        #[cfg(feature = "connect-info")]
        let count = u8::from(config.client_type.is_some())
            + u8::from(config.firmware.is_some())
            + u8::from(ka)
            + u8::from(config.protocol_version.is_some());
        #[cfg(not(feature = "connect-info"))]
        let count = u8::from(ka);
        ConnectParams { config, ka, ka_span, count }
    }
}

impl ConnectParams<'_, '_> {
    /// F2 with its key, `{…}` of the `count` pairs; nothing when `count` is 0.
    pub(crate) fn encode_field<S: crate::pson::Sink>(
        &self,
        enc: &mut crate::pson::Encoder<S>,
    ) -> Result<(), crate::pson::Error> {
        if self.count == 0 {
            return Ok(());
        }
        // The F2 key and the map's header (`0xc0 | count`, at most 4 pairs) in one write.
        #[cfg(feature = "connect-info")]
        enc.raw(&[0x12, 0xc0 | self.count])?;
        #[cfg(feature = "connect-info")]
        let c = self.config;
        #[cfg(feature = "connect-info")]
        if let Some(ct) = c.client_type {
            enc.str("ct")?;
            enc.str(ct)?;
        }
        #[cfg(feature = "connect-info")]
        if let Some(fw) = c.firmware {
            enc.str("fw")?;
            enc.str(fw)?;
        }
        if self.ka {
            // Without the announcements `ka` is the only pair: the F2 key, the map's header
            // and the key in one write (−24 B on thumbv7em "z").
            #[cfg(feature = "connect-info")]
            enc.str("ka")?;
            #[cfg(not(feature = "connect-info"))]
            enc.raw(b"\x12\xc1\x82ka")?;
            // Whole seconds, rounded up: announcing less than we wait gets us dropped. Of the
            // interval the session keeps (clamped, see `time::MAX_KEEP_ALIVE`).
            enc.u64(u64::from(ceil_seconds(self.ka_span)))?;
        }
        #[cfg(feature = "connect-info")]
        if let Some(pv) = c.protocol_version {
            enc.str("pv")?;
            enc.u64(u64::from(pv))?;
        }
        Ok(())
    }
}

/// Whether the target divides in hardware: hosts, RISC-V with `M`, and the Arm
/// microcontrollers with 32-bit atomics (Armv7-M and later; Armv6-M has neither). A wrong
/// guess costs bytes, never a value.
const HARDWARE_DIVIDE: bool =
    cfg!(any(not(target_os = "none"), target_feature = "m", all(target_arch = "arm", target_has_atomic = "32")));

/// `⌈ms / 1000⌉` for `ms` up to [`MAX_SPAN`](crate::time::MAX_SPAN): one divide instruction
/// where there is one (−32 / −36 B on thumbv7em / riscv32imc "z" against the loop below),
/// else [`ceil_seconds_soft`].
fn ceil_seconds(ms: u32) -> u32 {
    if HARDWARE_DIVIDE { ms.div_ceil(1000) } else { ceil_seconds_soft(ms) }
}

/// `⌈ms / 1000⌉` for `ms` up to [`MAX_SPAN`](crate::time::MAX_SPAN), without a division or
/// a 64-bit multiply: at opt-level "z" a `/ 1000` stays a division, and on thumbv6m, which
/// has no divide instruction, that was the one call linking the 398-byte `u32_div_rem`
/// (docs/footprint.md).
fn ceil_seconds_soft(ms: u32) -> u32 {
    // Restoring division by 1000 in 32 bits: the quotient has at most 23 bits, and
    // 1000 << 22 still fits.
    let mut rest = ms.saturating_add(999);
    let mut quotient = 0;
    for bit in (0..23).rev() {
        if rest >= 1000 << bit {
            rest -= 1000 << bit;
            quotient |= 1 << bit;
        }
    }
    quotient
}

#[cfg(test)]
mod tests {
    use super::{Config, ConnectParams, ceil_seconds_soft};
    use crate::pson::{Encoder, SliceSink};
    use crate::time::{Duration, MAX_SPAN};
    use proptest::prelude::*;

    /// F2 as `connect` writes it, with and without the feature `connect-info` (the lean
    /// test run has it off): nothing for the default keep-alive, else `{"ka": seconds}`.
    #[test]
    fn connect_parameters_field() {
        for (ka_ms, want) in [
            (60_000, &[][..]),
            (30_000, &[0x12, 0xc1, 0x82, b'k', b'a', 0x1e][..]),
            (1_800_500, &[0x12, 0xc1, 0x82, b'k', b'a', 0x1f, 0x89, 0x0e][..]),
        ] {
            let mut config = Config::new("u", "d", "c");
            config.keep_alive = Duration::from_millis(ka_ms);
            let span = crate::time::keep_alive_span(config.keep_alive);
            let mut buf = [0u8; 16];
            let mut enc = Encoder::new(SliceSink::new(&mut buf));
            ConnectParams::new(&config, span).encode_field(&mut enc).unwrap();
            let n = enc.into_sink().written();
            assert_eq!(&buf[..n], want, "{ka_ms}");
        }
    }

    #[test]
    fn ceil_seconds_soft_is_div_ceil() {
        for ms in [0, 1, 999, 1000, 1001, 59_999, 60_000, 1_800_000, MAX_SPAN - 1, MAX_SPAN] {
            assert_eq!(ceil_seconds_soft(ms), ms.div_ceil(1000), "{ms}");
        }
        // A sweep over the whole range a span can take.
        for ms in (0..=MAX_SPAN).step_by(997) {
            assert_eq!(ceil_seconds_soft(ms), ms.div_ceil(1000), "{ms}");
        }
    }

    proptest! {
        #[test]
        fn ceil_seconds_matches(ms in 0..=MAX_SPAN) {
            prop_assert_eq!(ceil_seconds_soft(ms), ms.div_ceil(1000));
        }
    }
}
