//! One connection: the session driven over the transport until it ends.

use std::cell::{Cell, RefCell};
use std::io;
use std::time::Duration;

use futures_util::stream::FuturesUnordered;
use rand_core::OsRng;
use thinger_core::queue::Settled;
use thinger_core::session::{self, Config, DisconnectReason, RequestId, Session};
use thinger_core::time::Instant;
use typed_arena::Arena;

use crate::command::{CallSpec, Settings};
use crate::error::Error;
use crate::event::{ClientEvent, Status};
use crate::resources::{Captured, Handler};
use crate::transport::Conn;

use super::buffer::LentBuffer;
use super::channels::Hub;
use super::convert::{Ev, own, queue_answer, send_call};
use super::driver::Driver;
use super::handlers::{
    LastValue, Running, channel_starts, finished, next_finished, resource_table, start_async_handlers,
};
use super::link::Link;
use super::session::{Clock, Sess, core_duration};

pub(super) enum Outcome {
    AuthRefused,
    Ended(DisconnectReason),
}

pub(super) struct Ended {
    /// When the session authenticated, if it did.
    pub(super) authenticated: Option<Instant>,
    pub(super) outcome: Outcome,
    pub(super) detail: Option<String>,
}

thread_local! {
    /// A transmit buffer the connections on this thread lend each other: a connection
    /// takes it while it writes and gives it back when done, so an idle connection holds
    /// none. Connections writing at the same time get a buffer of their own.
    static SPARE_TX: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// A transmit buffer kept for reuse is at most this big.
const SPARE_TX_MAX: usize = 64 * 1024;

/// Writes everything the session has queued.
async fn flush<const R: usize, const S: usize, const P: usize, const E: usize>(
    session: &mut Sess<'_, R, S, P, E>,
    conn: &mut Conn,
    limit: Duration,
) -> io::Result<()> {
    let mut buf = SPARE_TX.try_with(Cell::take).unwrap_or_default();
    let result = flush_with(session, conn, &mut buf, limit).await;
    if buf.len() <= SPARE_TX_MAX {
        // Keep the larger of this buffer and one another connection gave back meanwhile.
        let _ = SPARE_TX.try_with(|spare| {
            let other = spare.take();
            spare.set(if other.len() > buf.len() { other } else { buf });
        });
    }
    result
}

async fn flush_with<const R: usize, const S: usize, const P: usize, const E: usize>(
    session: &mut Sess<'_, R, S, P, E>,
    conn: &mut Conn,
    buf: &mut Vec<u8>,
    limit: Duration,
) -> io::Result<()> {
    if buf.len() < 1024 {
        buf.resize(1024, 0);
    }
    loop {
        let n = match session.poll_transmit(buf) {
            Ok(n) => n,
            Err(too_small) => {
                buf.resize(too_small.needed, 0);
                continue;
            }
        };
        if n == 0 {
            return Ok(());
        }
        tracing::trace!("sending {n} bytes");
        let chunk = buf.get(..n).unwrap_or(&[]);
        match tokio::time::timeout(limit, conn.write(chunk)).await {
            Ok(result) => result?,
            Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out")),
        }
    }
}

/// Serves one connection until it ends.
pub(super) async fn serve<const R: usize, const S: usize, const P: usize, const E: usize>(
    settings: &Settings,
    handlers: &mut [(String, Handler)],
    lasts: &[Option<LastValue>],
    paths: &[String],
    driver: &mut Driver,
    conn: &mut Conn,
    clock: &Clock,
) -> Ended {
    // Strings of this connection's subscriptions (the default arena starts at 1 KiB).
    let arena: Arena<String> = Arena::with_capacity(driver.subs.len().max(1));
    let captured: RefCell<Vec<Captured>> = RefCell::new(Vec::new());
    let starts = channel_starts(handlers);
    let mut hub = Hub::new();
    let thing = resource_table(handlers, &captured);
    let mut config = Config::new(&settings.user, &settings.device, &settings.credential)
        .keep_alive(core_duration(settings.keep_alive))
        .request_timeout(core_duration(settings.request_timeout))
        .deferred_timeout(core_duration(settings.request_timeout));
    if let Some(firmware) = &settings.firmware {
        config = config.firmware(firmware);
    }
    let session: Sess<'_, R, S, P, E> = Session::new(config, thing, LentBuffer::new(settings.buffer_size), &mut OsRng);
    let mut link = Link::new(session, &arena, clock);
    // Subscriptions go in before CONNECT; the session opens them after authentication.
    for spec in &driver.subs {
        if let Err(e) = link.register(spec) {
            tracing::warn!("subscription not registered: {e}");
        }
    }
    let write_limit = settings.keep_alive + Duration::from_secs(5);
    // Reading takes a quarter of the session buffer at a time (into a buffer of the
    // thread's); `inbuf` holds only input the session could not take yet.
    let read_chunk = (settings.buffer_size / 4).clamp(1024, 16 * 1024);
    let mut inbuf: Vec<u8> = Vec::new();
    let mut inpos = 0usize;
    let mut running: Option<FuturesUnordered<Running>> = None;
    let mut authenticated = None;
    let mut refused = false;
    let mut reason: Option<DisconnectReason> = None;
    let mut detail: Option<String> = None;
    let mut closing = false;
    let mut idle_spins = 0u32;

    link.session.connect(clock.now());
    loop {
        // 1. Send what the session queued.
        if let Err(e) = flush(&mut link.session, conn, write_limit).await {
            if e.kind() == io::ErrorKind::TimedOut {
                reason.get_or_insert(DisconnectReason::WriteTimeout);
            }
            detail.get_or_insert_with(|| e.to_string());
            link.session.handle_close(clock.now());
        }
        // 2. Events, copied out, then acted on.
        let mut batch = Vec::new();
        while let Some(event) = link.session.poll_event() {
            batch.push(own(event));
        }
        let progressed = !batch.is_empty();
        start_async_handlers(&captured, &mut running);
        for event in batch {
            match event {
                Ev::Connected => {
                    authenticated = Some(clock.now());
                    driver.stats.authentications += 1;
                    driver.transition(Status::Connected, ClientEvent::Connected);
                    tracing::info!("connected to {}", settings.target.address());
                }
                Ev::AuthRefused { code, message } => {
                    refused = true;
                    match (code, &message) {
                        (Some(code), Some(message)) => {
                            tracing::warn!("authentication refused (code {code}: {message})")
                        }
                        (Some(code), None) => tracing::warn!("authentication refused (code {code})"),
                        (None, Some(message)) => tracing::warn!("authentication refused: {message}"),
                        (None, None) => tracing::warn!("authentication refused"),
                    }
                    driver.emit(ClientEvent::AuthFailed { code, message });
                }
                Ev::Ended(r) => {
                    reason.get_or_insert(r);
                }
                Ev::Call { id, result } => {
                    if let Some(reply) = link.calls.remove(&id) {
                        let lock = link.locks.remove(&id);
                        if let (Err(Ok(_)), Some((sync, lock))) = (reply.send(result), lock) {
                            // Granted after its caller gave up: give it back.
                            tracing::info!("releasing lock {lock} of {sync}, granted too late");
                            let now = clock.now();
                            let _ = send_call(&mut link.session, now, &CallSpec::UnlockSync { sync, lock });
                        }
                    } else if let Some(Settled::Done(seq)) =
                        link.queued.as_mut().and_then(|q| q.answered(RequestId(id), queue_answer(&result)))
                    {
                        // Answered (stored, or refused for good): it leaves the queue. A lost
                        // answer sends everything again from the front, in order.
                        driver.complete_queued(seq, result.map(drop));
                    }
                }
                Ev::Subscribed { id, initial } => {
                    if let Some(key) = link.key_of(id) {
                        link.subs.open.insert(key);
                        if let Some(initial) = initial {
                            driver.deliver(&mut link, key, Ok(Some(initial)));
                        }
                    }
                }
                Ev::SubscriptionFailed { id, error } => {
                    if let Some(key) = link.key_of(id) {
                        link.subs.open.remove(&key);
                        if let Some(spec) = driver.spec_mut(key) {
                            for (_, reply) in spec.outbox.drain(..) {
                                let _ = reply.send(Err(error.clone()));
                            }
                        }
                        driver.deliver(&mut link, key, Err(error));
                    }
                }
                Ev::SubscriptionData { id, data } => {
                    if let Some(key) = link.key_of(id) {
                        driver.deliver(&mut link, key, Ok(data));
                    }
                }
                Ev::Deferred => {}
                Ev::StreamStarted { resource } => {
                    let path = paths.get(resource).cloned().unwrap_or_default();
                    driver.emit(ClientEvent::StreamStarted { resource: path });
                }
                Ev::StreamStopped { stream_id } => driver.emit(ClientEvent::StreamStopped { stream_id }),
                Ev::ChannelOpened { id, resource, path, params } => match starts.get(resource) {
                    Some(Some(start)) => {
                        let max_value = link.session.max_channel_value();
                        hub.opened(id, path, params, start, max_value);
                    }
                    _ => {
                        let e = thinger_core::resource::HandlerError::new(404, "no channel handler");
                        let _ = link.session.reject_channel(clock.now(), id, e);
                    }
                },
                Ev::ChannelData { id, data } => hub.data(id, data),
                Ev::ChannelClosed { id } => {
                    tracing::debug!("channel {id} stopped by the server");
                    hub.close_local(id);
                }
                Ev::Dropped(session::Dropped::TooLarge { size, stream_id, .. }) => {
                    tracing::warn!("skipped a frame of {size} bytes (stream {stream_id})");
                    driver.emit(ClientEvent::FrameSkipped { size, stream_id });
                }
                Ev::Dropped(d) => tracing::debug!("dropped frame: {d:?}"),
            }
        }
        hub.deliver();
        // 3. The end.
        if link.session.is_closed() || link.session.phase() == session::Phase::Idle {
            hub.end();
            let _ = flush(&mut link.session, conn, Duration::from_secs(1)).await;
            let _ = tokio::time::timeout(Duration::from_secs(1), conn.close()).await;
            // Completions of requests that were pending.
            while let Some(event) = link.session.poll_event() {
                if let Ev::Call { id, result } = own(event)
                    && let Some(reply) = link.calls.remove(&id)
                {
                    let _ = reply.send(result);
                }
            }
            for (_, reply) in link.calls.drain() {
                let _ = reply.send(Err(Error::Disconnected));
            }
            let outcome = if refused {
                Outcome::AuthRefused
            } else {
                Outcome::Ended(reason.unwrap_or(DisconnectReason::TransportClosed))
            };
            return Ended { authenticated, outcome, detail };
        }
        if driver.stop && !closing {
            closing = true;
            link.session.close(clock.now());
            continue;
        }
        // 4. Work for the session, sent right away.
        if link.session.is_connected() {
            let blocked = driver.pump(&mut link, settings.queue_window);
            let blocked = hub.pump(&mut link.session, clock.now()) || blocked;
            if let Err(e) = flush(&mut link.session, conn, write_limit).await {
                if e.kind() == io::ErrorKind::TimedOut {
                    reason.get_or_insert(DisconnectReason::WriteTimeout);
                }
                detail.get_or_insert_with(|| e.to_string());
                link.session.handle_close(clock.now());
                continue;
            }
            if blocked {
                continue;
            }
        }
        // 5. Input that waited for room.
        if inpos < inbuf.len() {
            let taken = link.session.handle_input(clock.now(), inbuf.get(inpos..).unwrap_or(&[]));
            inpos += taken;
            if inpos >= inbuf.len() {
                inbuf = Vec::new();
                inpos = 0;
            }
            if taken > 0 || progressed {
                idle_spins = 0;
                continue;
            }
            idle_spins += 1;
            if idle_spins > 1000 {
                detail.get_or_insert_with(|| "receive stalled".to_owned());
                link.session.handle_close(clock.now());
                continue;
            }
        }
        // 6. Wait for the socket, a command, an async handler or the next deadline.
        let now = clock.now();
        let deadline = link.session.poll_timeout();
        if let Some(d) = deadline
            && d <= now
        {
            link.session.handle_timeout(now);
            continue;
        }
        let sleep_until = deadline.map(|d| clock.at(d));
        // Waiting with nothing in the session buffer: its memory goes back to the thread.
        if let Some(buffer) = link.session.idle_buffer_mut() {
            buffer.give_back();
        }
        // Server data a channel has no room for yet holds the socket back (backpressure).
        let reading = inpos >= inbuf.len() && !hub.holding();
        // Boxed, and only while a channel's queue is full: the wait is rare, and inline it
        // would be part of every connection's future.
        let room = hub.blocked_on().map(|queue| Box::pin(room(queue)));
        tokio::select! {
            read = conn.read(&mut inbuf, read_chunk), if reading => {
                match read {
                    Ok(0) => {
                        detail.get_or_insert_with(|| "closed by the server".to_owned());
                        link.session.handle_close(clock.now());
                    }
                    Ok(_) => {
                        let taken = link.session.handle_input(clock.now(), inbuf.get(inpos..).unwrap_or(&[]));
                        inpos += taken;
                        if inpos >= inbuf.len() {
                            inbuf = Vec::new();
                            inpos = 0;
                        }
                    }
                    Err(e) => {
                        detail.get_or_insert_with(|| e.to_string());
                        link.session.handle_close(clock.now());
                    }
                }
            }
            cmd = driver.cmd_rx.recv(), if !driver.stop => driver.on_command(cmd.map(|c| *c), Some(&mut link)),
            (stream_id, index, result) = next_finished(&mut running) => {
                if let Some(answer) = finished(lasts, stream_id, index, result) {
                    link.replies.push_back((stream_id, answer));
                }
            }
            Some(item) = Hub::next_out(&mut hub.out), if !hub.has_pending() => hub.set_pending(item),
            Some(()) = Hub::next_task(&mut hub.tasks), if hub.running() => {}
            () = waiting(room) => hub.deliver(),
            () = sleep(sleep_until) => {
                link.session.handle_timeout(clock.now());
            }
        }
    }
}

/// Waits until `queue` has room.
async fn room(queue: tokio::sync::mpsc::Sender<Vec<u8>>) {
    // A closed queue counts as room: delivery drops its data.
    let _ = queue.reserve().await;
}

/// Runs `wait` to its end, or waits forever without one.
async fn waiting<F: std::future::Future<Output = ()>>(wait: Option<std::pin::Pin<Box<F>>>) {
    match wait {
        Some(wait) => wait.await,
        None => std::future::pending::<()>().await,
    }
}

/// Sleeps until `until`, or forever.
async fn sleep(until: Option<tokio::time::Instant>) {
    match until {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending::<()>().await,
    }
}
