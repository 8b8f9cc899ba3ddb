//! The time from an SNTP server (RFC 4330): one request, the server's transmit timestamp.
//!
//! Plain SNTP is not authenticated: someone on the network path can set the clock. It
//! keeps an expired certificate from being accepted by a device whose network is honest;
//! against an attacker on the path the dates add nothing (the chain and name checks do
//! not depend on them).

use embassy_net::udp::{PacketMetadata, UdpSocket};
use embassy_net::{IpEndpoint, Stack, dns::DnsQueryType};
use embassy_time::{Duration, with_timeout};

/// Seconds between 1900-01-01 (NTP era 0) and 1970-01-01.
const NTP_TO_UNIX: u64 = 2_208_988_800;

/// Asks `server` for the time; `None` if it does not answer within 5 s.
pub async fn unix_time(stack: Stack<'_>, server: &str) -> Option<u64> {
    stack.wait_config_up().await;
    let address = *stack.dns_query(server, DnsQueryType::A).await.ok()?.first()?;
    let (mut rx_meta, mut tx_meta) = ([PacketMetadata::EMPTY; 2], [PacketMetadata::EMPTY; 2]);
    let (mut rx, mut tx) = ([0u8; 128], [0u8; 128]);
    let mut socket = UdpSocket::new(stack, &mut rx_meta, &mut rx, &mut tx_meta, &mut tx);
    socket.bind(0).ok()?;
    // LI 0, version 4, mode 3 (client); the rest zero.
    let mut request = [0u8; 48];
    request[0] = 0x23;
    socket.send_to(&request, IpEndpoint::new(address, 123)).await.ok()?;
    let mut reply = [0u8; 48];
    let (n, _) = with_timeout(Duration::from_secs(5), socket.recv_from(&mut reply)).await.ok()?.ok()?;
    // Mode 4 (server) and a transmit timestamp at bytes 40..44 (seconds since 1900).
    if n < 48 || reply[0] & 0x07 != 4 {
        return None;
    }
    let seconds = u32::from_be_bytes([reply[40], reply[41], reply[42], reply[43]]);
    // Era 1 starts in 2036: timestamps below 2^31 belong to it.
    let era = if seconds < 0x8000_0000 { 1u64 << 32 } else { 0 };
    (u64::from(seconds) + era).checked_sub(NTP_TO_UNIX)
}
