//! The device's resources: the same DSL and handlers as `thinger-core`, owned by the
//! client, plus async handlers.
//!
//! Any [`Resource`] of the core (`input(|v: T| …)`, `output(|| …)`, `digital_pin(…)`,
//! `handler(kind, |call| …)`, …) is bound with `<<=` / `>>=` exactly as on a `Thing`; it must
//! be `Send + 'static` because the client owns it. Async handlers ([`async_input`],
//! [`async_output`], [`async_input_output`], [`async_run`]) return a future: the session
//! defers the request, the client polls the future and answers with the core's deferred
//! reply when it completes (the core answers `ERROR 504` itself if it takes longer than the
//! request timeout).
//!
//! ```
//! use thinger_std::resources::{async_input_output, Resources};
//! use thinger_std::dsl::{input, output, HandlerError};
//!
//! let mut thing = Resources::new();
//! thing["led"] <<= input(|on: bool| println!("led {on}"));
//! thing["temperature"] >>= output(|| 21.5f32);
//! thing["double"] >>= async_input_output(|x: i64| async move {
//!     tokio::time::sleep(std::time::Duration::from_millis(10)).await;
//!     Ok::<_, HandlerError>(x * 2)
//! });
//! assert_eq!(thing.len(), 3);
//! assert!(thing.contains("double"));
//! ```

use std::cell::RefCell;
use std::future::Future;
use std::ops::{Index, IndexMut, ShlAssign, ShrAssign};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde::de::DeserializeOwned;
use thinger_core::pson;
use thinger_core::resource::{
    Call, CallMode, HandlerError, Input, Output, Resource, ResourceKind, write_sample, zero_value,
};

use crate::pson_util::to_pson;

/// The most resources one client can register.
pub const MAX_RESOURCES: usize = crate::capacity::tables::STANDARD_R;

/// What an async handler's future yields inside the client: the reply value and the state
/// to report for samples, both as PSON.
#[derive(Debug, Default)]
pub(crate) struct Completed {
    pub(crate) reply: Option<Vec<u8>>,
    pub(crate) state: Option<Vec<u8>>,
}

pub(crate) type HandlerFuture = Pin<Box<dyn Future<Output = Result<Completed, HandlerError>> + Send>>;
type Start = Box<dyn FnMut(Input<'_>) -> Result<HandlerFuture, HandlerError> + Send>;
type SampleFn = fn(&mut Output<'_>) -> Result<(), pson::Error>;

/// An async resource handler; made by [`async_run`], [`async_input`], [`async_output`] or
/// [`async_input_output`] and bound with `thing["path"] <<=` / `>>=`.
pub struct AsyncHandler {
    kind: ResourceKind,
    start: Start,
    sample_in: Option<SampleFn>,
    /// The last output (or input state) a future produced: answered for stream samples and
    /// DESCRIBE, which cannot wait.
    last: Arc<Mutex<Option<Vec<u8>>>>,
    /// An output's future started by a stream sample is running (one at a time).
    refreshing: Arc<AtomicBool>,
}

impl std::fmt::Debug for AsyncHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncHandler").field("kind", &self.kind).finish_non_exhaustive()
    }
}

impl AsyncHandler {
    /// What the resource takes and gives.
    ///
    /// ```
    /// use thinger_std::resources::async_run;
    /// use thinger_std::dsl::ResourceKind;
    /// assert_eq!(async_run(|| async { Ok(()) }).kind(), ResourceKind::Run);
    /// ```
    pub fn kind(&self) -> ResourceKind {
        self.kind
    }

    pub(crate) fn last_handle(&self) -> Arc<Mutex<Option<Vec<u8>>>> {
        self.last.clone()
    }
}

fn decode<T: DeserializeOwned>(input: Input<'_>) -> Result<T, HandlerError> {
    input.deserialize().map_err(|_| HandlerError::bad_input())
}

fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, HandlerError> {
    to_pson(value).map_err(|_| HandlerError::new(500, "output encoding failed"))
}

/// An async run resource: `f()` runs on every RUN.
///
/// ```
/// use thinger_std::resources::async_run;
/// let reboot = async_run(|| async {
///     // e.g. stop services, then reboot
///     Ok(())
/// });
/// # let _ = reboot;
/// ```
pub fn async_run<F, Fut>(mut f: F) -> AsyncHandler
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    let start: Start = Box::new(move |_input: Input<'_>| {
        let fut = f();
        let boxed: HandlerFuture = Box::pin(async move {
            fut.await?;
            Ok(Completed::default())
        });
        Ok(boxed)
    });
    AsyncHandler { kind: ResourceKind::Run, start, sample_in: None, last: Arc::default(), refreshing: Arc::default() }
}

/// An async input resource: `f(value)` for every non-empty input, deserialized into `T`;
/// once the future succeeds the value becomes the state reported for empty RUNs and samples.
///
/// ```
/// use thinger_std::resources::async_input;
/// let setpoint = async_input(|celsius: f32| async move {
///     println!("new setpoint {celsius}");
///     Ok(())
/// });
/// # let _ = setpoint;
/// ```
pub fn async_input<T, F, Fut>(mut f: F) -> AsyncHandler
where
    T: DeserializeOwned + Serialize + 'static,
    F: FnMut(T) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    let start: Start = Box::new(move |input: Input<'_>| {
        let value: T = decode(input)?;
        let state = encode(&value)?;
        let fut = f(value);
        let boxed: HandlerFuture = Box::pin(async move {
            fut.await?;
            Ok(Completed { reply: None, state: Some(state) })
        });
        Ok(boxed)
    });
    AsyncHandler {
        kind: ResourceKind::Input,
        start,
        sample_in: Some(write_sample::<T>),
        last: Arc::default(),
        refreshing: Arc::default(),
    }
}

/// An async output resource: the value the future yields answers the RUN; the last value is
/// also what stream samples and DESCRIBE report (nothing before the first RUN).
///
/// ```
/// use thinger_std::resources::async_output;
/// let weather = async_output(|| async { Ok(serde_json::json!({"t": 21.5})) });
/// # let _ = weather;
/// ```
pub fn async_output<O, F, Fut>(mut f: F) -> AsyncHandler
where
    O: Serialize + 'static,
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<O, HandlerError>> + Send + 'static,
{
    let start: Start = Box::new(move |_input: Input<'_>| {
        let fut = f();
        let boxed: HandlerFuture = Box::pin(async move {
            let out = encode(&fut.await?)?;
            Ok(Completed { reply: Some(out.clone()), state: Some(out) })
        });
        Ok(boxed)
    });
    AsyncHandler {
        kind: ResourceKind::Output,
        start,
        sample_in: None,
        last: Arc::default(),
        refreshing: Arc::default(),
    }
}

/// An async input+output resource: the input is deserialized into `I` (the zero value of `I`
/// when the RUN has none), the future's value answers the RUN.
///
/// ```
/// use thinger_std::resources::async_input_output;
/// let square = async_input_output(|x: f64| async move { Ok(x * x) });
/// # let _ = square;
/// ```
pub fn async_input_output<I, O, F, Fut>(mut f: F) -> AsyncHandler
where
    I: DeserializeOwned + 'static,
    O: Serialize + 'static,
    F: FnMut(I) -> Fut + Send + 'static,
    Fut: Future<Output = Result<O, HandlerError>> + Send + 'static,
{
    let start: Start = Box::new(move |input: Input<'_>| {
        let value: I = if input.is_empty() {
            zero_value().map_err(|_| HandlerError::new(500, "no zero value for the input type"))?
        } else {
            decode(input)?
        };
        let fut = f(value);
        let boxed: HandlerFuture = Box::pin(async move {
            let out = encode(&fut.await?)?;
            Ok(Completed { reply: Some(out.clone()), state: Some(out) })
        });
        Ok(boxed)
    });
    AsyncHandler {
        kind: ResourceKind::InputOutput,
        start,
        sample_in: Some(write_sample::<I>),
        last: Arc::default(),
        refreshing: Arc::default(),
    }
}

/// A registered handler.
pub(crate) enum Handler {
    Sync(Box<dyn Resource + Send>),
    Async(AsyncHandler),
    Channel(crate::channel::ChannelHandler),
}

/// One row of [`Resources`]: a path and its handler, set with `<<=` or `>>=`.
pub struct ResourceEntry {
    pub(crate) path: String,
    pub(crate) handler: Option<Handler>,
}

impl std::fmt::Debug for ResourceEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceEntry").field("path", &self.path).field("kind", &self.kind()).finish()
    }
}

impl ResourceEntry {
    /// The path (or pattern such as `sensors/:id`).
    ///
    /// ```
    /// let mut thing = thinger_std::resources::Resources::new();
    /// assert_eq!(thing.entry("sensors/:id").path(), "sensors/:id");
    /// ```
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The handler's kind, `None` until one is bound.
    ///
    /// ```
    /// use thinger_std::dsl::{output, ResourceKind};
    /// let mut thing = thinger_std::resources::Resources::new();
    /// assert_eq!(thing.entry("t").kind(), None);
    /// thing["t"] >>= output(|| 1u8);
    /// assert_eq!(thing["t"].kind(), Some(ResourceKind::Output));
    /// ```
    pub fn kind(&self) -> Option<ResourceKind> {
        match &self.handler {
            None => None,
            Some(Handler::Sync(r)) => Some(r.kind()),
            Some(Handler::Async(a)) => Some(a.kind),
            Some(Handler::Channel(_)) => Some(ResourceKind::Run),
        }
    }

    /// Binds a handler (the same as `<<=` / `>>=`).
    ///
    /// ```
    /// use thinger_std::dsl::run;
    /// let mut thing = thinger_std::resources::Resources::new();
    /// thing.entry("reboot").set(run(|| ()));
    /// assert!(thing["reboot"].kind().is_some());
    /// ```
    pub fn set<R: Resource + Send + 'static>(&mut self, resource: R) {
        self.handler = Some(Handler::Sync(Box::new(resource)));
    }

    /// Binds an async handler.
    ///
    /// ```
    /// use thinger_std::resources::{async_run, Resources};
    /// let mut thing = Resources::new();
    /// thing.entry("restart").set_async(async_run(|| async { Ok(()) }));
    /// assert!(thing.contains("restart"));
    /// ```
    pub fn set_async(&mut self, handler: AsyncHandler) {
        self.handler = Some(Handler::Async(handler));
    }

    /// Binds a channel handler: the server opens streams on this path (see
    /// [`channel`](crate::channel)).
    ///
    /// ```
    /// use thinger_std::channel::channel;
    /// let mut thing = thinger_std::resources::Resources::new();
    /// thing.entry("$echo/:session").set_channel(channel(|request| async move { drop(request) }));
    /// assert!(thing["$echo/:session"].kind().is_some());
    /// ```
    pub fn set_channel(&mut self, handler: crate::channel::ChannelHandler) {
        self.handler = Some(Handler::Channel(handler));
    }
}

impl<R: Resource + Send + 'static> ShlAssign<R> for ResourceEntry {
    /// `thing["led"] <<= input(…)`: binds an input (or run) handler.
    fn shl_assign(&mut self, resource: R) {
        self.set(resource);
    }
}

impl<R: Resource + Send + 'static> ShrAssign<R> for ResourceEntry {
    /// `thing["temperature"] >>= output(…)`: binds an output handler.
    fn shr_assign(&mut self, resource: R) {
        self.set(resource);
    }
}

impl ShlAssign<AsyncHandler> for ResourceEntry {
    /// `thing["setpoint"] <<= async_input(…)`.
    fn shl_assign(&mut self, handler: AsyncHandler) {
        self.set_async(handler);
    }
}

impl ShrAssign<AsyncHandler> for ResourceEntry {
    /// `thing["weather"] >>= async_output(…)`.
    fn shr_assign(&mut self, handler: AsyncHandler) {
        self.set_async(handler);
    }
}

/// The client's resource table, written like the core's `Thing`:
/// `thing["led"] <<= input(…)`. Paths are owned; handlers must be `Send + 'static`.
/// At most [`MAX_RESOURCES`] resources.
///
/// ```
/// use thinger_std::resources::Resources;
/// use thinger_std::dsl::{run, ResourceKind};
/// let mut thing = Resources::new();
/// thing["reboot"] <<= run(|| println!("reboot"));
/// assert_eq!(thing["reboot"].kind(), Some(ResourceKind::Run));
/// assert!(thing.get("missing").is_none());
/// ```
#[derive(Debug, Default)]
pub struct Resources {
    pub(crate) entries: Vec<ResourceEntry>,
}

impl Resources {
    /// An empty table.
    ///
    /// ```
    /// assert!(thinger_std::resources::Resources::new().is_empty());
    /// ```
    pub fn new() -> Self {
        Resources::default()
    }

    /// Number of paths.
    ///
    /// ```
    /// let mut thing = thinger_std::resources::Resources::new();
    /// thing.entry("a");
    /// assert_eq!(thing.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no path was added.
    ///
    /// ```
    /// assert!(thinger_std::resources::Resources::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `path` was added.
    ///
    /// ```
    /// let mut thing = thinger_std::resources::Resources::new();
    /// thing.entry("a");
    /// assert!(thing.contains("a") && !thing.contains("b"));
    /// ```
    pub fn contains(&self, path: &str) -> bool {
        self.get(path).is_some()
    }

    /// The entry for `path`.
    ///
    /// ```
    /// let thing = thinger_std::resources::Resources::new();
    /// assert!(thing.get("led").is_none());
    /// ```
    pub fn get(&self, path: &str) -> Option<&ResourceEntry> {
        self.entries.iter().find(|e| e.path == path)
    }

    /// The entry for `path`, added if new.
    ///
    /// ```
    /// let mut thing = thinger_std::resources::Resources::new();
    /// thing.entry("led");
    /// thing.entry("led");
    /// assert_eq!(thing.len(), 1);
    /// ```
    #[allow(clippy::indexing_slicing)] // the index comes from `position` or is the row just pushed
    pub fn entry(&mut self, path: &str) -> &mut ResourceEntry {
        let index = match self.entries.iter().position(|e| e.path == path) {
            Some(i) => i,
            None => {
                self.entries.push(ResourceEntry { path: path.to_owned(), handler: None });
                self.entries.len() - 1
            }
        };
        &mut self.entries[index]
    }

    /// Paths in registration order.
    ///
    /// ```
    /// let mut thing = thinger_std::resources::Resources::new();
    /// thing.entry("b");
    /// thing.entry("a");
    /// assert_eq!(thing.paths().collect::<Vec<_>>(), ["b", "a"]);
    /// ```
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.path.as_str())
    }
}

impl Index<&str> for Resources {
    type Output = ResourceEntry;
    /// The entry for `path`.
    ///
    /// # Panics
    /// If no resource has that path (use [`Resources::get`] to get an `Option`).
    #[allow(clippy::panic)] // setup-time programming error, documented above
    fn index(&self, path: &str) -> &ResourceEntry {
        match self.get(path) {
            Some(e) => e,
            None => panic!("thinger-std: no resource named {path:?}"),
        }
    }
}

impl IndexMut<&str> for Resources {
    /// The entry for `path`, added if new.
    fn index_mut(&mut self, path: &str) -> &mut ResourceEntry {
        self.entry(path)
    }
}

/// A deferred call's future, waiting to be paired with the session's `Deferred` event.
pub(crate) struct Captured {
    pub(crate) index: usize,
    pub(crate) future: HandlerFuture,
    /// The server request to answer; `None` for stream data (applied, never answered).
    pub(crate) stream_id: Option<u16>,
}

/// What the session's table holds for an async handler: it starts the future and defers.
pub(crate) struct AsyncProxy<'x> {
    pub(crate) handler: &'x mut AsyncHandler,
    pub(crate) index: usize,
    pub(crate) captured: &'x RefCell<Vec<Captured>>,
}

impl AsyncProxy<'_> {
    fn write_last(&self, call: &mut Call<'_>) -> Result<(), HandlerError> {
        let last = self.handler.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bytes) = last.as_ref() {
            call.output().set(&crate::pson_util::RawPson(bytes))?;
        }
        Ok(())
    }
}

impl Resource for AsyncProxy<'_> {
    fn kind(&self) -> ResourceKind {
        self.handler.kind
    }

    fn handle(&mut self, call: &mut Call<'_>) -> Result<(), HandlerError> {
        match call.mode() {
            CallMode::Run => {
                if self.handler.kind == ResourceKind::Input && call.input().is_empty() {
                    // "Report your state": answered now from the last accepted value.
                    return self.write_last(call);
                }
                let future = (self.handler.start)(call.input())?;
                // A RUN is deferred and answered when the future ends; stream data into an
                // async input cannot be deferred, but its future still runs (unanswered).
                let stream_id = if call.defer() { call.stream_id() } else { None };
                self.captured.borrow_mut().push(Captured { index: self.index, future, stream_id });
                Ok(())
            }
            CallMode::Sample if self.handler.kind == ResourceKind::Output => {
                // Samples cannot wait: send the last value, and compute the next one now, so
                // that an output streamed without ever being RUN still streams values.
                self.write_last(call)?;
                if !self.handler.refreshing.swap(true, Ordering::AcqRel) {
                    let flag = self.handler.refreshing.clone();
                    let future = match (self.handler.start)(call.input()) {
                        Ok(f) => f,
                        Err(e) => {
                            flag.store(false, Ordering::Release);
                            return Err(e);
                        }
                    };
                    let future: HandlerFuture = Box::pin(async move {
                        let result = future.await;
                        flag.store(false, Ordering::Release);
                        result
                    });
                    self.captured.borrow_mut().push(Captured { index: self.index, future, stream_id: None });
                }
                Ok(())
            }
            CallMode::Sample | CallMode::DescribeOutput => self.write_last(call),
            CallMode::DescribeInput => {
                let has_state = self.handler.last.lock().unwrap_or_else(|e| e.into_inner()).is_some();
                match self.handler.sample_in {
                    Some(_) if has_state && self.handler.kind == ResourceKind::Input => self.write_last(call),
                    Some(sample) => Ok(sample(call.output())?),
                    None => Ok(()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use thinger_core::resource::{Params, input, output};

    fn run_call(r: &mut dyn Resource, mode: CallMode, input: &[u8]) -> (Result<(), HandlerError>, Vec<u8>, bool) {
        let mut out = [0u8; 64];
        let params = Params::new();
        let input = if input.is_empty() { Input::empty() } else { Input::from_pson(input).unwrap() };
        let mut call = Call::new(mode, input, Output::new(&mut out), &params);
        if mode == CallMode::Run {
            // As the session does for a RUN request.
            call = call.with_request(1);
        }
        let result = r.handle(&mut call);
        let deferred = call.is_deferred();
        let n = call.into_output().finish().unwrap_or(0);
        (result, out[..n].to_vec(), deferred)
    }

    #[test]
    fn dsl_binds_sync_and_async_handlers() {
        let mut thing = Resources::new();
        thing["led"] <<= input(|_on: bool| ());
        thing["t"] >>= output(|| 1u8);
        thing["slow"] >>= async_output(|| async { Ok(5u8) });
        thing["t"] >>= output(|| 2u8); // replaces
        assert_eq!(thing.len(), 3);
        assert_eq!(thing.paths().collect::<Vec<_>>(), vec!["led", "t", "slow"]);
        assert_eq!(thing["slow"].kind(), Some(ResourceKind::Output));
        assert_eq!(thing.entry("new").kind(), None);
    }

    #[tokio::test]
    async fn proxy_defers_runs_and_answers_samples_from_the_last_value() {
        let mut handler = async_input_output(|x: i64| async move { Ok(x * 2) });
        let captured = RefCell::new(Vec::new());
        let mut proxy = AsyncProxy { handler: &mut handler, index: 3, captured: &captured };
        // Describe input: the zero value of i64.
        assert_eq!(run_call(&mut proxy, CallMode::DescribeInput, &[]).1, vec![0x00]);
        // No sample before the first result.
        assert_eq!(run_call(&mut proxy, CallMode::Sample, &[]).1, Vec::<u8>::new());
        let (result, out, deferred) = run_call(&mut proxy, CallMode::Run, &[0x05]);
        assert!(result.is_ok() && deferred && out.is_empty());
        // Bad input is refused right away, without deferring.
        let (result, _, deferred) = run_call(&mut proxy, CallMode::Run, &[0x84, b'a', b'b', b'c', b'd']);
        assert_eq!(result.unwrap_err().code, 400);
        assert!(!deferred);
        let mut list = std::mem::take(&mut *captured.borrow_mut());
        assert_eq!(list.len(), 1);
        let c = list.pop().unwrap();
        assert_eq!(c.index, 3);
        let done = c.future.await.unwrap();
        assert_eq!(done.reply, Some(vec![0x0a])); // 10
        *handler.last.lock().unwrap() = done.state;
        let mut proxy = AsyncProxy { handler: &mut handler, index: 3, captured: &captured };
        assert_eq!(run_call(&mut proxy, CallMode::Sample, &[]).1, vec![0x0a]);
    }

    #[tokio::test]
    async fn async_input_reports_state_without_deferring() {
        let mut handler = async_input(|_on: bool| async { Ok(()) });
        let captured = RefCell::new(Vec::new());
        let mut proxy = AsyncProxy { handler: &mut handler, index: 0, captured: &captured };
        let (result, out, deferred) = run_call(&mut proxy, CallMode::Run, &[]);
        assert!(result.is_ok() && !deferred && out.is_empty());
        let (_, _, deferred) = run_call(&mut proxy, CallMode::Run, &[0x61]);
        assert!(deferred);
        let c = std::mem::take(&mut *captured.borrow_mut()).pop().unwrap();
        let done = c.future.await.unwrap();
        assert_eq!(done.state, Some(vec![0x61]));
        assert_eq!(done.reply, None);
    }

    #[tokio::test]
    async fn failing_future_reports_its_error() {
        let mut handler = async_run(|| async { Err(HandlerError::new(503, "busy")) });
        let captured = RefCell::new(Vec::new());
        let mut proxy = AsyncProxy { handler: &mut handler, index: 0, captured: &captured };
        assert!(run_call(&mut proxy, CallMode::Run, &[]).2);
        // Describe and samples never run the future.
        assert!(!run_call(&mut proxy, CallMode::DescribeOutput, &[]).2);
        assert_eq!(captured.borrow().len(), 1);
        let c = std::mem::take(&mut *captured.borrow_mut()).pop().unwrap();
        assert_eq!(c.future.await.unwrap_err().code, 503);
    }
}
