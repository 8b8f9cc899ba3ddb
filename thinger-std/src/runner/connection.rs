//! One connection: the session driven over the transport until it ends.

use std::cell::RefCell;
use std::io;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use rand_core::OsRng;
use thinger_core::session::{self, Config, DisconnectReason, Session};
use thinger_core::time::Instant;
use typed_arena::Arena;

use crate::command::{CallSpec, Settings};
use crate::error::Error;
use crate::event::{ClientEvent, Status};
use crate::resources::{Captured, Handler};
use crate::transport::Conn;

use super::convert::{Ev, own, send_call};
use super::driver::Driver;
use super::handlers::{LastValue, Running, finished, resource_table, start_async_handlers};
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

/// Writes everything the session has queued.
async fn flush(session: &mut Sess<'_>, conn: &mut Conn, buf: &mut Vec<u8>, limit: Duration) -> io::Result<()> {
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
pub(super) async fn serve(
    settings: &Settings,
    handlers: &mut [(String, Handler)],
    lasts: &[Option<LastValue>],
    paths: &[String],
    driver: &mut Driver,
    conn: &mut Conn,
    clock: &Clock,
) -> Ended {
    let arena: Arena<String> = Arena::new();
    let captured: RefCell<Vec<Captured>> = RefCell::new(Vec::new());
    let thing = resource_table(handlers, &captured);
    let mut config = Config::new(&settings.user, &settings.device, &settings.credential)
        .keep_alive(core_duration(settings.keep_alive))
        .request_timeout(core_duration(settings.request_timeout))
        .deferred_timeout(core_duration(settings.request_timeout));
    if let Some(firmware) = &settings.firmware {
        config = config.firmware(firmware);
    }
    let session: Sess<'_> = Session::new(config, thing, vec![0u8; settings.buffer_size], &mut OsRng);
    let mut link = Link::new(session, &arena, clock);
    // Subscriptions go in before CONNECT; the session opens them after authentication.
    for spec in &driver.subs {
        if let Err(e) = link.register(spec) {
            tracing::warn!("subscription not registered: {e}");
        }
    }
    let write_limit = settings.keep_alive + Duration::from_secs(5);
    // Grown on demand (up to the session's transmit region); reading takes a quarter of the
    // session buffer at a time.
    let mut txbuf = vec![0u8; settings.buffer_size.min(1024)];
    let read_chunk = (settings.buffer_size / 4).clamp(1024, 16 * 1024);
    let mut inbuf: Vec<u8> = Vec::new();
    let mut inpos = 0usize;
    let mut running: FuturesUnordered<Running> = FuturesUnordered::new();
    let mut authenticated = None;
    let mut refused = false;
    let mut reason: Option<DisconnectReason> = None;
    let mut detail: Option<String> = None;
    let mut closing = false;
    let mut idle_spins = 0u32;

    link.session.connect(clock.now());
    loop {
        // 1. Send what the session queued.
        if let Err(e) = flush(&mut link.session, conn, &mut txbuf, write_limit).await {
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
                    } else if let Some(seq) = link.queued.remove(&id) {
                        match result {
                            Err(Error::Disconnected) => {}
                            Err(Error::Timeout) => {
                                // Resend from the oldest unacknowledged entry, in order.
                                link.queued.clear();
                                link.sent = 0;
                            }
                            other => {
                                link.sent = link.sent.saturating_sub(1);
                                driver.complete_queued(seq, other.map(drop));
                            }
                        }
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
                Ev::Dropped(session::Dropped::TooLarge { size, stream_id, .. }) => {
                    tracing::warn!("skipped a frame of {size} bytes (stream {stream_id})");
                    driver.emit(ClientEvent::FrameSkipped { size, stream_id });
                }
                Ev::Dropped(d) => tracing::debug!("dropped frame: {d:?}"),
            }
        }
        // 3. The end.
        if link.session.is_closed() || link.session.phase() == session::Phase::Idle {
            let _ = flush(&mut link.session, conn, &mut txbuf, Duration::from_secs(1)).await;
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
            if let Err(e) = flush(&mut link.session, conn, &mut txbuf, write_limit).await {
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
                inbuf.clear();
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
        let reading = inpos >= inbuf.len();
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
                            inbuf.clear();
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
            Some((stream_id, index, result)) = running.next(), if !running.is_empty() => {
                if let Some(answer) = finished(lasts, stream_id, index, result) {
                    link.replies.push_back((stream_id, answer));
                }
            }
            () = sleep(sleep_until) => {
                link.session.handle_timeout(clock.now());
            }
        }
    }
}

/// Sleeps until `until`, or forever.
async fn sleep(until: Option<tokio::time::Instant>) {
    match until {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending::<()>().await,
    }
}
