//! Async handler plumbing: the futures of async handlers, run next to the connection, and
//! their answers on their way back into the session.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use futures_util::stream::FuturesUnordered;
use thinger_core::resource::HandlerError;

use crate::resources::{Captured, Completed};

/// The last value an async output computed, shown to the server while the next runs.
pub(super) type LastValue = Arc<Mutex<Option<Vec<u8>>>>;

/// An async handler's answer to a request.
pub(super) type Answer = Result<Option<Vec<u8>>, HandlerError>;
/// A running async handler: the stream id it answers, its resource index, its result.
pub(super) type Running = Pin<Box<dyn Future<Output = (u16, usize, Result<Completed, HandlerError>)>>>;

/// Starts the futures of async handlers called since the last batch. Each knows the
/// server request it answers (`Call::stream_id`), so replies can never be crossed; a future
/// started by stream data is run for its effect and answers nothing.
pub(super) fn start_async_handlers(captured: &RefCell<Vec<Captured>>, running: &mut FuturesUnordered<Running>) {
    for c in std::mem::take(&mut *captured.borrow_mut()) {
        let (id, resource, future) = (c.stream_id.unwrap_or(0), c.index, c.future);
        running.push(Box::pin(async move { (id, resource, future.await) }));
    }
}
