//! The handshake: the first frame must be a CONNECT with good credentials.

use std::time::Duration;

use thinger_core::iotmp::{MessageType, RawFrame, parse_frame};

use crate::hub::Hub;
use crate::transport::{Outbox, Reader};
use crate::util::{disconnect, error};
use crate::vocab::{REASON_PROTOCOL, REFUSE_ENCODING};
use crate::wire::{ConnectRequest, parse_connect};

/// A CONNECT that was accepted.
pub(super) struct Authenticated {
    pub(super) sid: u16,
    pub(super) user: String,
    pub(super) device: String,
    pub(super) keepalive: Duration,
    pub(super) consumed: usize,
}

/// Why a handshake failed.
pub(super) enum Refused {
    /// Answered (or not answerable) here; the text says why, for the log.
    Other(String),
    /// Wrong credentials: not answered yet, so that the answer can be delayed.
    Credentials { sid: u16, user: String, device: String },
}

impl From<String> for Refused {
    fn from(reason: String) -> Self {
        Refused::Other(reason)
    }
}

/// Reads the first frame, which must be a CONNECT with good credentials (refusals other
/// than wrong credentials are answered here).
pub(super) async fn authenticate(
    hub: &Hub,
    reader: &mut Reader,
    buf: &mut Vec<u8>,
    out: &Outbox,
) -> Result<Authenticated, Refused> {
    loop {
        match parse_frame(buf, hub.config.max_frame_size) {
            Err(e) => {
                out.send(disconnect(REASON_PROTOCOL, &e.to_string()));
                return Err(format!("protocol error: {e}").into());
            }
            Ok(Some((frame, consumed))) => return check_connect(hub, frame, consumed, out),
            Ok(None) => {}
        }
        match reader.read(buf).await {
            Ok(0) => return Err(Refused::Other("connection closed".into())),
            Ok(_) => {}
            Err(e) => return Err(format!("read error: {e}").into()),
        }
    }
}

fn check_connect(hub: &Hub, frame: RawFrame<'_>, consumed: usize, out: &Outbox) -> Result<Authenticated, Refused> {
    if frame.msg_type != MessageType::Connect as u32 {
        out.send(disconnect(REASON_PROTOCOL, "the first frame must be CONNECT"));
        return Err(format!("first frame was of type {}, not CONNECT", frame.msg_type).into());
    }
    let msg = match frame.message() {
        Ok(m) => m,
        Err(e) => {
            out.send(error(e.stream_id, REFUSE_ENCODING, &e.to_string()));
            return Err(format!("bad CONNECT: {e}").into());
        }
    };
    let request = match parse_connect(&msg) {
        Ok(r) => r,
        Err(refusal) => {
            out.send(error(msg.stream_id, refusal.code, refusal.message));
            return Err(Refused::Other(format!("bad CONNECT: {}", refusal.message)));
        }
    };
    let ConnectRequest { sid, user, device, credential, keepalive_s } = request;
    let keepalive = keepalive_s.map_or(hub.config.keepalive, Duration::from_secs);
    if !hub.authenticate(user, device, credential) {
        return Err(Refused::Credentials { sid, user: user.to_owned(), device: device.to_owned() });
    }
    Ok(Authenticated { sid, user: user.to_owned(), device: device.to_owned(), keepalive, consumed })
}
