//! The handshake: the first frame must be a CONNECT with good credentials.

use std::time::Duration;

use thinger_core::iotmp::{MessageType, RawFrame, parse_frame};
use thinger_core::pson::PsonRef;

use crate::hub::Hub;
use crate::transport::{Outbox, Reader};
use crate::util::{disconnect, error};
use crate::vocab::{REASON_PROTOCOL, REFUSE_CREDENTIALS, REFUSE_ENCODING, REFUSE_KEEPALIVE};

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
    let sid = msg.stream_id;
    let creds: Option<Vec<&str>> = match msg.payload.map(|p| p.as_pson()) {
        Some(PsonRef::Array(a)) if a.len() == 3 => a.iter().map(|v| v.as_str()).collect(),
        _ => None,
    };
    let Some([user, device, credential]) = creds.as_deref().map(|c| <[&str; 3]>::try_from(c).ok()).unwrap_or(None)
    else {
        out.send(error(sid, REFUSE_CREDENTIALS, "CONNECT payload must be [user, device, credential]"));
        return Err(Refused::Other("malformed CONNECT credentials".into()));
    };
    let mut keepalive = hub.config.keepalive;
    if let Some(PsonRef::Map(params)) = msg.parameters.map(|p| p.as_pson()) {
        if let Some(ka) = params.get("ka") {
            match ka.as_u64() {
                Some(s @ 1..=1800) => keepalive = Duration::from_secs(s),
                _ => {
                    out.send(error(sid, REFUSE_KEEPALIVE, "keep-alive must be 1..=1800 seconds"));
                    return Err(format!("bad keep-alive from {user}/{device}").into());
                }
            }
        }
        if let Some(pv) = params.get("pv")
            && pv.as_u64() != Some(1)
        {
            out.send(error(sid, REFUSE_ENCODING, "only protocol version 1 (PSON) is supported"));
            return Err(format!("unsupported protocol version from {user}/{device}").into());
        }
    }
    if !hub.authenticate(user, device, credential) {
        return Err(Refused::Credentials { sid, user: user.to_owned(), device: device.to_owned() });
    }
    Ok(Authenticated { sid, user: user.to_owned(), device: device.to_owned(), keepalive, consumed })
}
