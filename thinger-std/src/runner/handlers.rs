//! Async handler plumbing: the futures of async handlers, run next to the connection, and
//! their answers on their way back into the session.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use futures_util::stream::FuturesUnordered;
use thinger_core::resource::HandlerError;

use thinger_core::resource::{Call, Resource, ResourceKind, Thing};

use crate::channel::Start;

use crate::resources::{AsyncProxy, Captured, Completed, Handler};

/// The last value an async output computed, shown to the server while the next runs.
pub(super) type LastValue = Arc<Mutex<Option<Vec<u8>>>>;

/// An async handler's answer to a request.
pub(super) type Answer = Result<Option<Vec<u8>>, HandlerError>;
/// A running async handler: the stream id it answers, its resource index, its result.
pub(super) type Running = Pin<Box<dyn Future<Output = (u16, usize, Result<Completed, HandlerError>)>>>;

/// Starts the futures of async handlers called since the last batch. Each knows the
/// server request it answers (`Call::stream_id`), so replies can never be crossed; a future
/// started by stream data is run for its effect and answers nothing.
///
/// The set of running futures is made by the first one (a device without async handlers
/// never allocates it).
pub(super) fn start_async_handlers(captured: &RefCell<Vec<Captured>>, running: &mut Option<FuturesUnordered<Running>>) {
    for c in std::mem::take(&mut *captured.borrow_mut()) {
        let (id, resource, future) = (c.stream_id.unwrap_or(0), c.index, c.future);
        running.get_or_insert_with(FuturesUnordered::new).push(Box::pin(async move { (id, resource, future.await) }));
    }
}

/// The next async handler to finish; never, when none runs.
pub(super) async fn next_finished(
    running: &mut Option<FuturesUnordered<Running>>,
) -> (u16, usize, Result<Completed, HandlerError>) {
    use futures_util::StreamExt;
    match running.as_mut() {
        Some(set) if !set.is_empty() => match set.next().await {
            Some(done) => done,
            None => std::future::pending().await,
        },
        _ => std::future::pending().await,
    }
}

/// The last values of the async handlers (none for sync ones), by resource index.
pub(super) fn last_values(handlers: &[(String, Handler)]) -> Vec<Option<LastValue>> {
    handlers
        .iter()
        .map(|(_, h)| match h {
            Handler::Async(a) => Some(a.last_handle()),
            Handler::Sync(_) | Handler::Channel(_) => None,
        })
        .collect()
}

/// The start functions of the channel handlers, by resource index.
pub(super) fn channel_starts(handlers: &[(String, Handler)]) -> Vec<Option<Start>> {
    handlers
        .iter()
        .map(|(_, h)| match h {
            Handler::Channel(c) => Some(c.start.clone()),
            _ => None,
        })
        .collect()
}

/// What the session's table holds for a channel handler: it only says so.
struct ChannelMark;

impl Resource for ChannelMark {
    fn kind(&self) -> ResourceKind {
        ResourceKind::Run
    }
    fn handle(&mut self, _: &mut Call<'_>) -> Result<(), HandlerError> {
        Err(super::channels::NOT_RUNNABLE)
    }
    fn channel(&self) -> bool {
        true
    }
}

/// The core's resource table for one connection: sync handlers borrowed as they are, async
/// ones behind a proxy that starts their future into `captured` and defers the answer.
pub(super) fn resource_table<'a, const R: usize>(
    handlers: &'a mut [(String, Handler)],
    captured: &'a RefCell<Vec<Captured>>,
) -> Thing<'a, R> {
    let mut thing: Thing<'a, R> = Thing::new();
    for (index, (path, handler)) in handlers.iter_mut().enumerate() {
        let added = match handler {
            Handler::Sync(resource) => thing.add(path.as_str(), &mut **resource),
            Handler::Async(handler) => thing.add_owned(path.as_str(), AsyncProxy { handler, index, captured }),
            Handler::Channel(_) => thing.add_owned(path.as_str(), ChannelMark),
        };
        if let Err(e) = added {
            tracing::error!("resource {path}: {e}");
        }
    }
    thing
}

/// An async handler's future ended: its state becomes the resource's last value; returns
/// the answer to send, if it answers a request (stream id 0: stream data, no reply).
pub(super) fn finished(
    lasts: &[Option<LastValue>],
    stream_id: u16,
    index: usize,
    result: Result<Completed, HandlerError>,
) -> Option<Answer> {
    let (answer, state) = match result {
        Ok(done) => (Ok(done.reply), done.state),
        Err(e) => (Err(e), None),
    };
    if let (Some(state), Some(Some(last))) = (state, lasts.get(index)) {
        *last.lock().unwrap_or_else(|e| e.into_inner()) = Some(state);
    }
    (stream_id != 0).then_some(answer)
}
