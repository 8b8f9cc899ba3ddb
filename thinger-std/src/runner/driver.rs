//! The runner's state that outlives connections, and the commands of the handles.

use std::collections::{HashMap, VecDeque};
use std::future::Future;

use thinger_core::iotmp::DynEncodePson;
use thinger_core::resource::HandlerError;
use thinger_core::session;
use tokio::sync::{mpsc, oneshot};

use crate::announce::Announcer;
use crate::command::{CallReply, CallSpec, Command, CommandRx, Stats, SubItem, SubKind};
use crate::error::Error;
use crate::event::{ClientEvent, Status};
use crate::pson_util::RawPson;
use crate::queue::{OfflineQueue, Op, Pushed};
use thinger_core::queue::{InFlight, Pumped};

use super::convert::{send_call, send_op, session_error};
use super::link::Link;
use super::subscriptions::{Registered, SubSpec};

/// Direct calls in flight at once (the rest wait in the runner).
const MAX_CALLS_IN_FLIGHT: usize = 16;
/// Publishes waiting for their topic stream to open, per topic.
const MAX_OUTBOX: usize = 256;

/// The runner's state that outlives connections.
pub(super) struct Driver {
    pub(super) cmd_rx: CommandRx,
    pub(super) events: Announcer,
    pub(super) queue: OfflineQueue,
    pub(super) acks: HashMap<u64, oneshot::Sender<Result<(), Error>>>,
    pub(super) flushes: Vec<oneshot::Sender<Result<(), Error>>>,
    pub(super) calls: VecDeque<(CallSpec, CallReply)>,
    pub(super) subs: Vec<SubSpec>,
    pub(super) next_key: u64,
    pub(super) shutdown: Vec<oneshot::Sender<()>>,
    pub(super) stop: bool,
    pub(super) stats: Stats,
}

impl Drop for Driver {
    /// Whoever waits for a status change stops waiting: there will be none.
    fn drop(&mut self) {
        self.events.runner_gone();
    }
}

impl Driver {
    pub(super) fn new(cmd_rx: CommandRx, events: Announcer, queue: OfflineQueue) -> Driver {
        Driver {
            cmd_rx,
            events,
            queue,
            acks: HashMap::new(),
            flushes: Vec::new(),
            calls: VecDeque::new(),
            subs: Vec::new(),
            next_key: 1,
            shutdown: Vec::new(),
            stop: false,
            stats: Stats::default(),
        }
    }

    pub(super) fn emit(&self, event: ClientEvent) {
        self.events.emit(event);
    }

    pub(super) fn set_status(&self, status: Status) {
        self.events.transition(status, None);
    }

    /// A status change and the event that reports it, seen together by every subscriber.
    pub(super) fn transition(&self, status: Status, event: ClientEvent) {
        self.events.transition(status, Some(event));
    }

    /// Runs `fut` while answering commands; `None` when the client is told to stop.
    pub(super) async fn service_while<F: Future>(&mut self, fut: F) -> Option<F::Output> {
        let mut fut = std::pin::pin!(fut);
        loop {
            if self.stop {
                return None;
            }
            tokio::select! {
                out = &mut fut => return Some(out),
                // No connection: the table sizes do not matter.
                cmd = self.cmd_rx.recv() => self.on_command::<0, 0, 0, 0>(cmd.map(|c| *c), None),
            }
        }
    }

    pub(super) fn finish(&mut self) {
        self.transition(Status::Stopped, ClientEvent::Stopped);
        for (_, reply) in self.calls.drain(..) {
            let _ = reply.send(Err(Error::Stopped));
        }
        for (_, ack) in self.acks.drain() {
            let _ = ack.send(Err(Error::Stopped));
        }
        for flush in self.flushes.drain(..) {
            let _ = flush.send(Err(Error::Stopped));
        }
        for spec in self.subs.drain(..) {
            for (_, reply) in spec.outbox {
                let _ = reply.send(Err(Error::Stopped));
            }
        }
        for waiter in self.shutdown.drain(..) {
            let _ = waiter.send(());
        }
    }

    pub(super) fn on_command<const R: usize, const S: usize, const P: usize, const E: usize>(
        &mut self,
        cmd: Option<Command>,
        mut link: Option<&mut Link<'_, R, S, P, E>>,
    ) {
        let Some(cmd) = cmd else {
            // Every client handle is gone.
            self.stop = true;
            return;
        };
        match cmd {
            Command::Call { spec, reply } => {
                self.calls.retain(|(_, r)| !r.is_closed());
                self.calls.push_back((spec, reply));
            }
            Command::Enqueue { op, queued, ack } => {
                let result = match self.queue.push(op) {
                    Ok(Pushed::Queued(seq)) => Ok(seq),
                    Ok(Pushed::QueuedDropping { seq, dropped }) => {
                        if let Some(l) = link.as_deref_mut() {
                            l.forget_queued(dropped);
                        }
                        if let Some(w) = self.acks.remove(&dropped) {
                            let _ = w.send(Err(Error::Dropped));
                        }
                        Ok(seq)
                    }
                    Ok(Pushed::Rejected) => Err(Error::QueueFull),
                    Ok(Pushed::Dropped) => Err(Error::Dropped),
                    Err(e) => Err(Error::Storage(e.to_string())),
                };
                match result {
                    Ok(seq) => {
                        if let Some(ack) = ack {
                            self.acks.insert(seq, ack);
                        }
                        let _ = queued.send(Ok(()));
                    }
                    Err(e) => {
                        let _ = queued.send(Err(e));
                    }
                }
            }
            Command::Flush { reply } => {
                if self.queue.is_empty() {
                    let _ = reply.send(Ok(()));
                } else {
                    self.flushes.push(reply);
                }
            }
            Command::Stats { reply } => {
                let mut stats = self.stats;
                stats.queued = self.queue.len();
                stats.in_flight = link.as_ref().map_or(0, |l| l.queued_in_flight());
                stats.session_buffer = link.map_or(0, |l| l.session.buffer().held());
                let _ = reply.send(stats);
            }
            Command::Subscribe { kind, data, reply } => {
                let key = self.next_key;
                self.next_key += 1;
                self.subs.push(SubSpec { key, kind, data: Some(data), outbox: VecDeque::new() });
                let _ = reply.send(Ok(key));
            }
            Command::Unsubscribe { key } => {
                self.subs.retain(|s| s.key != key);
                if let Some(l) = link {
                    l.unregister(key);
                }
            }
            Command::Publish { topic, qos, retained, payload, reply } => {
                let kind = SubKind::Publish { topic, qos, retained };
                let index = match self.subs.iter().position(|s| s.kind == kind) {
                    Some(i) => i,
                    None => {
                        let key = self.next_key;
                        self.next_key += 1;
                        self.subs.push(SubSpec { key, kind, data: None, outbox: VecDeque::new() });
                        self.subs.len() - 1
                    }
                };
                match self.subs.get_mut(index) {
                    Some(spec) if spec.outbox.len() < MAX_OUTBOX => spec.outbox.push_back((payload, reply)),
                    _ => {
                        let _ = reply.send(Err(Error::QueueFull));
                    }
                }
            }
            Command::Stream { resource, reply } => {
                let sent = match link {
                    Some(l) => {
                        let now = l.clock.now();
                        l.session.stream(now, &resource)
                    }
                    None => false,
                };
                let _ = reply.send(sent);
            }
            Command::Answer { stream_id, answer, reply } => {
                let result = match link {
                    Some(l) if l.session.is_connected() => {
                        l.replies.push_back((stream_id, answer));
                        Ok(())
                    }
                    _ => Err(Error::Disconnected),
                };
                let _ = reply.send(result);
            }
            Command::Shutdown { reply } => {
                self.shutdown.push(reply);
                self.stop = true;
            }
        }
    }

    /// A queued entry got its answer: remove it and tell its waiter.
    pub(super) fn complete_queued(&mut self, seq: u64, result: Result<(), Error>) {
        if let Err(error) = &result {
            let op = self.queue.position(seq).and_then(|i| self.queue.get(i)).map(|e| e.op);
            let (target, endpoint) = match op {
                Some(Op::WriteBucket { bucket, .. }) => (bucket, false),
                Some(Op::CallEndpoint { endpoint, .. }) => (endpoint, true),
                None => (String::new(), false),
            };
            tracing::warn!("queued write to {target} dropped: {error}");
            self.emit(ClientEvent::QueuedWriteFailed { target, endpoint, error: error.clone() });
        }
        if let Err(e) = self.queue.remove(seq) {
            tracing::error!("offline queue storage: {e}");
        }
        if let Some(w) = self.acks.remove(&seq) {
            let _ = w.send(result);
        }
        if self.queue.is_empty() {
            for f in self.flushes.drain(..) {
                let _ = f.send(Ok(()));
            }
        }
    }

    /// Moves waiting work into the session. Returns true when the transmit buffer must be
    /// drained first.
    pub(super) fn pump<const R: usize, const S: usize, const P: usize, const E: usize>(
        &mut self,
        link: &mut Link<'_, R, S, P, E>,
        window: usize,
    ) -> bool {
        let now = link.clock.now();
        // Answers of async handlers.
        while let Some((stream_id, result)) = link.replies.pop_front() {
            let raw = match &result {
                Ok(Some(bytes)) => Some(RawPson(bytes)),
                _ => None,
            };
            let answer: Result<Option<&dyn DynEncodePson>, HandlerError> = match &result {
                Ok(_) => Ok(raw.as_ref().map(|r| r as &dyn DynEncodePson)),
                Err(e) => Err(*e),
            };
            match link.session.reply(now, stream_id, answer) {
                Err(session::Error::TransmitBufferFull) => {
                    link.replies.push_front((stream_id, result));
                    return true;
                }
                Err(e) => tracing::debug!("deferred reply to {stream_id} not sent: {e}"),
                Ok(()) => {}
            }
        }
        // Subscriptions not registered with this session yet.
        let mut failed = Vec::new();
        for spec in &self.subs {
            if link.slot_of(spec.key).is_some() {
                continue;
            }
            match link.register(spec) {
                Ok(Registered::Yes) => {}
                Ok(Registered::AfterFlush) => return true,
                // The session's request table is full: try again after some answers.
                Ok(Registered::Later) => break,
                Err(e) => failed.push((spec.key, e)),
            }
        }
        for (key, error) in failed {
            if let Some(i) = self.subs.iter().position(|s| s.key == key) {
                let spec = self.subs.swap_remove(i);
                if let Some(data) = spec.data {
                    let _ = data.try_send(Err(error.clone()));
                }
                for (_, reply) in spec.outbox {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
        // Direct calls.
        while link.calls.len() < MAX_CALLS_IN_FLIGHT {
            let Some((spec, reply)) = self.calls.front() else { break };
            if reply.is_closed() {
                self.calls.pop_front();
                continue;
            }
            match send_call(&mut link.session, now, spec) {
                Ok(id) => {
                    if let Some((spec, reply)) = self.calls.pop_front() {
                        if let CallSpec::LockSync { sync, lock, .. } = spec {
                            link.locks.insert(id.0, (sync, lock));
                        }
                        link.calls.insert(id.0, reply);
                    }
                }
                Err(session::Error::TransmitBufferFull) => return true,
                Err(session::Error::TooManyPending) => break,
                Err(e) => {
                    if let Some((_, reply)) = self.calls.pop_front() {
                        let _ = reply.send(Err(session_error(e)));
                    }
                }
            }
        }
        // Queued writes, in order, up to the window. The in-flight table is made by the
        // first entry to send (see `Link::queued`).
        if !self.queue.is_empty() || link.queued.is_some() {
            loop {
                let Link { queued, session, .. } = link;
                let queued = queued.get_or_insert_with(|| Box::new(InFlight::new()));
                let queue = &self.queue;
                match queued.pump(window, |position| {
                    let entry = queue.get(position)?;
                    Some((entry.seq, send_op(session, now, &entry.op)))
                }) {
                    Pumped::Idle => break,
                    Pumped::Blocked => return true,
                    Pumped::Failed { seq, error } => self.complete_queued(seq, Err(session_error(error))),
                }
            }
        }
        self.pump_publishes(link, now)
    }

    /// Sends the MQTT publishes waiting on open topic streams. Returns true when the
    /// transmit buffer must be drained first.
    fn pump_publishes<const R: usize, const S: usize, const P: usize, const E: usize>(
        &mut self,
        link: &mut Link<'_, R, S, P, E>,
        now: thinger_core::time::Instant,
    ) -> bool {
        for spec in &mut self.subs {
            if !matches!(spec.kind, SubKind::Publish { .. }) || !link.subs.open.contains(&spec.key) {
                continue;
            }
            let Some(slot) = link.slot_of(spec.key) else { continue };
            while let Some((payload, _)) = spec.outbox.front() {
                match link.session.publish(now, slot, &RawPson(payload)) {
                    Ok(()) => {
                        if let Some((_, reply)) = spec.outbox.pop_front() {
                            let _ = reply.send(Ok(()));
                        }
                    }
                    Err(session::Error::TransmitBufferFull) => return true,
                    Err(session::Error::UnknownId) => {
                        link.subs.open.remove(&spec.key);
                        break;
                    }
                    Err(e) => {
                        if let Some((_, reply)) = spec.outbox.pop_front() {
                            let _ = reply.send(Err(session_error(e)));
                        }
                    }
                }
            }
        }
        false
    }

    pub(super) fn spec_mut(&mut self, key: u64) -> Option<&mut SubSpec> {
        self.subs.iter_mut().find(|s| s.key == key)
    }

    /// Hands subscription data to its stream; a stream that was dropped is unsubscribed.
    pub(super) fn deliver<const R: usize, const S: usize, const P: usize, const E: usize>(
        &mut self,
        link: &mut Link<'_, R, S, P, E>,
        key: u64,
        item: SubItem,
    ) {
        let Some(spec) = self.spec_mut(key) else { return };
        let Some(data) = &spec.data else { return };
        match data.try_send(item) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => tracing::warn!("subscription reader too slow: item dropped"),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.subs.retain(|s| s.key != key);
                link.unregister(key);
            }
        }
    }
}
