//! The channels of one connection: handler futures, their inbound queues and the outbound
//! values on their way into the session.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use thinger_core::iotmp::DynEncodePson;
use thinger_core::pson::{PsonRef, Value};
use thinger_core::resource::HandlerError;
use thinger_core::session;
use thinger_core::time::Instant;
use tokio::sync::mpsc;

use crate::channel::{ChannelFuture, ChannelRequest, INBOUND_ITEMS, OUTBOUND_ITEMS, Out, Start, Wiring};
use crate::pson_util::RawPson;

use super::session::Sess;

struct Open {
    inbound: mpsc::Sender<Vec<u8>>,
    closed: Arc<AtomicBool>,
}

/// The outbound queue every channel of a connection writes into.
pub(super) type OutQueue = (mpsc::Sender<(u16, Out)>, mpsc::Receiver<(u16, Out)>);

/// The channels of one connection. The outbound queue, the set of handler futures and the
/// table of open channels are made when the server opens the first channel: a connection
/// without channels (most devices of a gateway) does not pay for them (about 2 KiB:
/// tokio's `mpsc` allocates its first block of slots up front; the table and the backlog
/// inline would add 112 bytes to every connection's future).
pub(super) struct Hub {
    /// Waited on apart from the rest (see [`Hub::next_out`]).
    pub(super) out: Option<OutQueue>,
    lines: Option<Box<Lines>>,
    /// Driven apart from the rest (see [`Hub::next_task`]).
    pub(super) tasks: Option<FuturesUnordered<ChannelFuture>>,
}

/// The open channels and the values waiting between them and the session.
#[derive(Default)]
struct Lines {
    open: HashMap<u16, Open>,
    /// Server data that found its channel's queue full: input waits until it is delivered.
    backlog: VecDeque<(u16, Vec<u8>)>,
    /// An outbound value taken from the queue that waits for the transmit buffer.
    pending: Option<(u16, Out)>,
}

impl Hub {
    pub(super) fn new() -> Hub {
        Hub { out: None, lines: None, tasks: None }
    }

    /// Whether an outbound value waits for the transmit buffer (then the queue is not read).
    pub(super) fn has_pending(&self) -> bool {
        self.lines.as_ref().is_some_and(|l| l.pending.is_some())
    }

    /// An outbound value taken from the queue, to send before the next one.
    pub(super) fn set_pending(&mut self, item: (u16, Out)) {
        self.lines.get_or_insert_with(Box::default).pending = Some(item);
    }

    /// Whether a channel handler is running (then [`Hub::next_task`] has something to wait on).
    pub(super) fn running(&self) -> bool {
        self.tasks.as_ref().is_some_and(|t| !t.is_empty())
    }

    /// The next value a channel sends, for `select!` (waits forever before the first channel).
    pub(super) async fn next_out(out: &mut Option<OutQueue>) -> Option<(u16, Out)> {
        match out {
            Some((_, rx)) => rx.recv().await,
            None => std::future::pending().await,
        }
    }

    /// Drives the channel handlers until one ends (waits forever without one).
    pub(super) async fn next_task(tasks: &mut Option<FuturesUnordered<ChannelFuture>>) -> Option<()> {
        match tasks {
            Some(t) if !t.is_empty() => t.next().await,
            _ => std::future::pending().await,
        }
    }

    /// The server opened channel `id`: starts its handler.
    pub(super) fn opened(&mut self, id: u16, path: String, params: Option<Vec<u8>>, start: &Start, max_value: usize) {
        tracing::debug!("channel {id} opened on {path}");
        self.close_local(id);
        let (inbound_tx, inbound) = mpsc::channel(INBOUND_ITEMS);
        let closed = Arc::new(AtomicBool::new(false));
        let lines = self.lines.get_or_insert_with(Box::default);
        lines.open.insert(id, Open { inbound: inbound_tx, closed: closed.clone() });
        let params = params.and_then(|p| PsonRef::decode(&p).ok().map(Value::from_ref));
        let (out_tx, _) = self.out.get_or_insert_with(|| mpsc::channel(OUTBOUND_ITEMS));
        let wiring = Wiring { id, out: out_tx.clone(), inbound, closed, max_value };
        let mut start = start.lock().unwrap_or_else(|e| e.into_inner());
        let future = (*start)(ChannelRequest::new(path, params, wiring));
        self.tasks.get_or_insert_with(FuturesUnordered::new).push(future);
    }

    /// Data from the server on channel `id`.
    pub(super) fn data(&mut self, id: u16, data: Vec<u8>) {
        let Some(lines) = self.lines.as_mut().filter(|l| l.open.contains_key(&id)) else { return };
        lines.backlog.push_back((id, data));
        self.deliver();
    }

    /// Moves waiting server data into the channels' queues, in order.
    pub(super) fn deliver(&mut self) {
        let Some(lines) = self.lines.as_mut() else { return };
        while let Some((id, _)) = lines.backlog.front() {
            let id = *id;
            let Some(open) = lines.open.get(&id) else {
                lines.backlog.pop_front();
                continue;
            };
            let Some((_, data)) = lines.backlog.pop_front() else { break };
            match open.inbound.try_send(data) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(data)) => {
                    lines.backlog.push_front((id, data));
                    return;
                }
                // The handler no longer reads: its data is dropped.
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
    }

    /// Whether server data waits (then the socket is not read).
    pub(super) fn holding(&self) -> bool {
        self.lines.as_ref().is_some_and(|l| !l.backlog.is_empty())
    }

    /// The queue the first waiting value is for, to wait on.
    pub(super) fn blocked_on(&self) -> Option<mpsc::Sender<Vec<u8>>> {
        let lines = self.lines.as_ref()?;
        let (id, _) = lines.backlog.front()?;
        lines.open.get(id).map(|o| o.inbound.clone())
    }

    /// The server stopped channel `id` (or it went away).
    pub(super) fn close_local(&mut self, id: u16) {
        if let Some(open) = self.lines.as_mut().and_then(|l| l.open.remove(&id)) {
            open.closed.store(true, Ordering::Release);
        }
    }

    /// Every channel ends with the connection.
    pub(super) fn end(&mut self) {
        let Some(lines) = self.lines.as_mut() else { return };
        for (_, open) in lines.open.drain() {
            open.closed.store(true, Ordering::Release);
        }
        lines.backlog.clear();
    }

    /// Moves outbound values into the session; true when the transmit buffer must be drained.
    pub(super) fn pump<const R: usize, const S: usize, const P: usize, const E: usize>(
        &mut self,
        session: &mut Sess<'_, R, S, P, E>,
        now: Instant,
    ) -> bool {
        loop {
            let item = match self.lines.as_mut().and_then(|l| l.pending.take()) {
                Some(item) => item,
                None => match self.out.as_mut().map(|(_, rx)| rx.try_recv()) {
                    Some(Ok(item)) => item,
                    _ => return false,
                },
            };
            let (id, out) = item;
            let result = match &out {
                Out::Accept(reply) => {
                    let raw = reply.as_deref().map(RawPson);
                    session.accept_channel(now, id, raw.as_ref().map(|r| r as &dyn DynEncodePson))
                }
                Out::Reject(e) => {
                    self.close_local(id);
                    session.reject_channel(now, id, *e)
                }
                Out::Data(bytes) => session.channel_send(now, id, &RawPson(bytes)),
                Out::Close => {
                    self.close_local(id);
                    session.close_channel(now, id)
                }
            };
            match result {
                Ok(()) => {}
                Err(session::Error::TransmitBufferFull) => {
                    self.set_pending((id, out));
                    return true;
                }
                Err(session::Error::TooLarge) => {
                    tracing::warn!("channel {id}: value larger than a frame dropped");
                }
                // Gone (stopped by the server, or disconnected).
                Err(_) => self.close_local(id),
            }
        }
    }
}

/// A handler error for a channel resource asked with RUN.
pub(super) const NOT_RUNNABLE: HandlerError = HandlerError::new(405, "channel resource: open it as a stream");
