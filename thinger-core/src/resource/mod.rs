//! Resources: what a device offers the server, and the table that holds them.
//!
//! A resource is a path (`"led"`, `"sensors/:id"`, `"$fs/get/*path"`) bound to a handler
//! implementing [`Resource`]. The handler's [`ResourceKind`] says what it takes and gives:
//! run (nothing), input, output, or input+output. Handlers get a [`Call`] with the
//! [`Input`], an [`Output`] to write into, and the path captures ([`Params`]).
//!
//! ```
//! use thinger_core::resource::{Call, HandlerError, Resource, ResourceKind, Thing};
//!
//! struct Counter(u32);
//! impl Resource for Counter {
//!     fn kind(&self) -> ResourceKind { ResourceKind::Output }
//!     fn handle(&mut self, call: &mut Call<'_>) -> Result<(), HandlerError> {
//!         self.0 += 1;
//!         call.output().set(&self.0)?;
//!         Ok(())
//!     }
//! }
//!
//! let mut counter = Counter(0);
//! let mut thing: Thing<'_, 4> = Thing::new();
//! thing.add("counter", &mut counter).unwrap();
//! assert_eq!(thing.len(), 1);
//! ```

mod call;
mod io;
mod path;
#[cfg(feature = "serde")]
mod sample;
mod table;
#[cfg(feature = "serde")]
mod typed;

pub use call::{Call, CallMode};
pub use io::{Input, Output};
pub use path::{MAX_PARAMS, Params, match_path};
#[cfg(feature = "serde")]
pub use sample::{encode_sample, write_sample, zero_value};
pub use table::{CapacityError, Entry, Thing};
#[cfg(feature = "serde")]
pub use typed::{
    SerdeInput, SerdeInputOutput, SerdeOutput, TryInputOutput, TryOutput, input, input_output, output,
    try_input_output, try_output,
};

use crate::pson;

/// What a resource takes and gives; the numbers are the `fn` codes of DESCRIBE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[repr(u8)]
pub enum ResourceKind {
    /// Takes nothing, gives nothing (a command such as `reboot`).
    Run = 1,
    /// Takes an input (and reports its state when asked with no input).
    Input = 2,
    /// Gives an output.
    Output = 3,
    /// Takes an input and gives an output.
    InputOutput = 4,
}

/// A handler's failure: sent to the server as `ERROR F2=code F3={"error": message}`.
///
/// ```
/// use thinger_core::resource::HandlerError;
/// let e = HandlerError::new(418, "teapot");
/// assert_eq!((e.code, e.message), (418, "teapot"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HandlerError {
    /// An HTTP-like status code.
    pub code: u16,
    /// A short reason.
    pub message: &'static str,
}

impl HandlerError {
    /// An error with a code and a message.
    pub const fn new(code: u16, message: &'static str) -> Self {
        HandlerError { code, message }
    }
    /// 400: the input was not what the handler expects.
    pub const fn bad_input() -> Self {
        HandlerError::new(400, "bad input")
    }
}

impl From<pson::Error> for HandlerError {
    /// Output or input encoding problems: an output that does not fit the transmit buffer
    /// is 413, anything else 400 (input) or 500.
    // Out of line: each inlined copy of the match was three 14-entry lookup tables (code,
    // message, length: 136 B of rodata), and there were three. The class goes through
    // `black_box` so the optimizer does not build the table again from the three answers
    // (−136 B on thumbv7em "z", docs/footprint.md).
    #[inline(never)]
    fn from(e: pson::Error) -> Self {
        use pson::Error::{BufferFull, Custom, InvalidUtf8, TrailingBytes, Truncated, UnexpectedType};
        let class = core::hint::black_box(match e {
            BufferFull => 0u8,
            UnexpectedType | Custom | Truncated | InvalidUtf8 | TrailingBytes => 1,
            _ => 2,
        });
        match class {
            0 => HandlerError::new(413, "output too large"),
            1 => HandlerError::new(400, "bad input"),
            _ => HandlerError::new(500, "output encoding failed"),
        }
    }
}

impl core::fmt::Display for HandlerError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

/// A resource handler.
///
/// The session calls [`Resource::handle`] for RUN requests, stream samples and describe
/// requests; [`Call::mode`] says which. Handlers must not block: a handler that needs
/// time calls [`Call::defer`] and the application answers later through the session.
pub trait Resource {
    /// What the resource takes and gives.
    fn kind(&self) -> ResourceKind;
    /// Handles one call.
    fn handle(&mut self, call: &mut Call<'_>) -> Result<(), HandlerError>;
    /// Whether a START_STREAM on this resource opens a byte channel (a terminal, a proxy, a
    /// file transfer: see [`Session`](crate::session::Session)'s channel methods) instead of
    /// a sampled stream. `false` unless the resource says so. Only with feature `channels`:
    /// without it no vtable carries the method (flash).
    #[cfg(feature = "channels")]
    fn channel(&self) -> bool {
        false
    }
}

impl<R: Resource + ?Sized> Resource for &mut R {
    fn kind(&self) -> ResourceKind {
        (**self).kind()
    }
    fn handle(&mut self, call: &mut Call<'_>) -> Result<(), HandlerError> {
        (**self).handle(call)
    }
    #[cfg(feature = "channels")]
    fn channel(&self) -> bool {
        (**self).channel()
    }
}

#[cfg(feature = "alloc")]
impl<R: Resource + ?Sized> Resource for alloc::boxed::Box<R> {
    fn kind(&self) -> ResourceKind {
        (**self).kind()
    }
    fn handle(&mut self, call: &mut Call<'_>) -> Result<(), HandlerError> {
        (**self).handle(call)
    }
    #[cfg(feature = "channels")]
    fn channel(&self) -> bool {
        (**self).channel()
    }
}

/// A resource of any kind from a closure over the whole [`Call`].
///
/// ```
/// use thinger_core::resource::{handler, ResourceKind, Resource};
/// let sum = handler(ResourceKind::InputOutput, |call| {
///     let a = call.input().i64("a").unwrap_or(0);
///     let b = call.input().i64("b").unwrap_or(0);
///     call.output().field("sum", &(a + b))?;
///     Ok(())
/// });
/// assert_eq!(sum.kind(), ResourceKind::InputOutput);
/// ```
pub fn handler<F>(kind: ResourceKind, f: F) -> FnResource<F>
where
    F: FnMut(&mut Call<'_>) -> Result<(), HandlerError>,
{
    FnResource { kind, f }
}

/// A resource made by [`handler`].
#[derive(Debug, Clone)]
pub struct FnResource<F> {
    kind: ResourceKind,
    f: F,
}

impl<F> Resource for FnResource<F>
where
    F: FnMut(&mut Call<'_>) -> Result<(), HandlerError>,
{
    fn kind(&self) -> ResourceKind {
        self.kind
    }
    fn handle(&mut self, call: &mut Call<'_>) -> Result<(), HandlerError> {
        (self.f)(call)
    }
}

/// What a handler closure may return: `()` or `Result<(), E>` for any error that converts
/// into a [`HandlerError`] (such as [`HandlerError`] itself or [`pson::Error`],
/// so `?` works on [`Output`] writes).
///
/// ```
/// use thinger_core::dsl::{HandlerError, IntoHandlerResult};
/// assert_eq!(().into_handler_result(), Ok(()));
/// let failed: Result<(), HandlerError> = Err(HandlerError::new(418, "teapot"));
/// assert_eq!(failed.into_handler_result().unwrap_err().code, 418);
/// let full: Result<(), thinger_core::pson::Error> = Err(thinger_core::pson::Error::BufferFull);
/// assert_eq!(full.into_handler_result().unwrap_err().code, 413);
/// ```
pub trait IntoHandlerResult {
    /// The handler's outcome.
    fn into_handler_result(self) -> Result<(), HandlerError>;
}

impl IntoHandlerResult for () {
    #[inline]
    fn into_handler_result(self) -> Result<(), HandlerError> {
        Ok(())
    }
}

impl<E: Into<HandlerError>> IntoHandlerResult for Result<(), E> {
    #[inline]
    fn into_handler_result(self) -> Result<(), HandlerError> {
        self.map_err(Into::into)
    }
}
