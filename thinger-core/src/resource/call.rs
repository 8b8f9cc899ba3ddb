use super::{Input, Output, Params};
use crate::pson::PsonRef;

/// Why a handler is being called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CallMode {
    /// A RUN from the server (or STREAM_DATA into an input): act on the input, write the
    /// output.
    Run,
    /// A stream sample: write the current output (outputs) or state (inputs); no input.
    Sample,
    /// DESCRIBE asks for a sample *input*: write a typical input value (e.g. zeros) into the
    /// output, without side effects.
    DescribeInput,
    /// DESCRIBE asks for a sample *output*: write the output for a default input, without
    /// side effects.
    DescribeOutput,
}

/// One call of a resource handler: input, output, path captures and mode.
///
/// ```
/// use thinger_core::resource::{Call, CallMode, Input, Output, Params};
/// let mut buf = [0u8; 16];
/// let params = Params::new();
/// let mut call = Call::new(CallMode::Run, Input::empty(), Output::new(&mut buf), &params);
/// call.output().set(&7u8).unwrap();
/// assert_eq!(call.into_output().finish(), Ok(1));
/// ```
#[derive(Debug)]
pub struct Call<'c> {
    mode: CallMode,
    input: Input<'c>,
    output: Output<'c>,
    params: &'c Params<'c>,
    code: Option<u16>,
    deferred: bool,
    request: Option<u16>,
}

impl<'c> Call<'c> {
    /// A call (the session builds these; public for tests of handlers).
    pub fn new(mode: CallMode, input: Input<'c>, output: Output<'c>, params: &'c Params<'c>) -> Self {
        Call::new_request(mode, input, output, params, None)
    }
    /// [`Call::new`] with the request id as it is (the session's calls: `Some` for a RUN).
    pub(crate) fn new_request(
        mode: CallMode,
        input: Input<'c>,
        output: Output<'c>,
        params: &'c Params<'c>,
        request: Option<u16>,
    ) -> Self {
        Call { mode, input, output, params, code: None, deferred: false, request }
    }
    /// Why the handler runs.
    pub fn mode(&self) -> CallMode {
        self.mode
    }
    /// Whether this is a DESCRIBE (no side effects allowed).
    pub fn is_describe(&self) -> bool {
        matches!(self.mode, CallMode::DescribeInput | CallMode::DescribeOutput)
    }
    /// The input (empty for samples and describes).
    pub fn input(&self) -> Input<'c> {
        self.input
    }
    /// The input's value, borrowed (no copy of the `PsonRef`: the DSL handlers read it
    /// this way, which is less code on microcontrollers).
    pub(crate) fn input_value(&self) -> Option<&PsonRef<'c>> {
        self.input.value_ref()
    }
    /// Where to write the output.
    pub fn output(&mut self) -> &mut Output<'c> {
        &mut self.output
    }
    /// Sets the whole output (shorthand for `call.output().set(value)`).
    ///
    /// Being a method of `Call`, it can take values read from the same call:
    ///
    /// ```
    /// use thinger_core::resource::{Call, CallMode, Input, Output, Params};
    /// let mut buf = [0u8; 16];
    /// let params = Params::new();
    /// let input = Input::from_pson(&[0x05]).unwrap();
    /// let mut call = Call::new(CallMode::Run, input, Output::new(&mut buf), &params);
    /// call.set(&call.input().value()).unwrap(); // echo the input
    /// assert_eq!(call.into_output().finish(), Ok(1));
    /// ```
    pub fn set<T: crate::pson::EncodePson + ?Sized>(&mut self, value: &T) -> Result<(), crate::pson::Error> {
        self.output.set(value)
    }
    /// Adds `key: value` to a map output (shorthand for `call.output().field(key, value)`).
    ///
    /// ```
    /// use thinger_core::resource::{Call, CallMode, Input, Output, Params, match_path};
    /// let mut buf = [0u8; 32];
    /// let mut params = Params::new();
    /// assert!(match_path("sensors/:id", "sensors/7", &mut params));
    /// let mut call = Call::new(CallMode::Run, Input::empty(), Output::new(&mut buf), &params);
    /// call.field("id", call.param("id").unwrap()).unwrap();
    /// assert_eq!(call.into_output().finish(), Ok(6));
    /// ```
    pub fn field<T: crate::pson::EncodePson + ?Sized>(
        &mut self,
        key: &str,
        value: &T,
    ) -> Result<(), crate::pson::Error> {
        self.output.field(key, value)
    }
    /// The value captured by `:name` / `*name` in the resource's path.
    pub fn param(&self, name: &str) -> Option<&'c str> {
        self.params.get(name)
    }
    /// All path captures.
    pub fn params(&self) -> &'c Params<'c> {
        self.params
    }
    /// Sets a return code without failing: the reply is `OK F2=code`.
    pub fn set_code(&mut self, code: u16) {
        self.code = Some(code);
    }
    /// The return code set by [`Call::set_code`].
    pub fn code(&self) -> Option<u16> {
        self.code
    }
    /// Marks the call as the server request with stream id `id` (the session does this for
    /// RUN requests; only such calls can be deferred).
    ///
    /// ```
    /// use thinger_core::resource::{Call, CallMode, Input, Output, Params};
    /// let mut buf = [0u8; 4];
    /// let params = Params::new();
    /// let mut call = Call::new(CallMode::Run, Input::empty(), Output::new(&mut buf), &params).with_request(70);
    /// assert_eq!(call.stream_id(), Some(70));
    /// // Only with the `deferred` feature (on by default) can a call answer later.
    /// assert_eq!(call.defer(), cfg!(feature = "deferred"));
    /// ```
    pub fn with_request(mut self, id: u16) -> Self {
        self.request = Some(id);
        self
    }
    /// The stream id of the server request being answered, when the call answers one (a
    /// RUN); `None` for stream samples, stream data and describes.
    pub fn stream_id(&self) -> Option<u16> {
        self.request
    }
    /// Answers later: the session hands the request out as `Event::Deferred` with this
    /// call's [`Call::stream_id`] and waits for `Session::reply`. Only a RUN request can be
    /// deferred: elsewhere (stream samples and data, describes), and without the feature
    /// `deferred`, this returns `false` and nothing is deferred.
    pub fn defer(&mut self) -> bool {
        self.deferred = cfg!(feature = "deferred") && self.mode == CallMode::Run && self.request.is_some();
        self.deferred
    }
    /// Whether [`Call::defer`] took effect.
    pub fn is_deferred(&self) -> bool {
        self.deferred
    }
    /// The output, to finish it.
    pub fn into_output(self) -> Output<'c> {
        self.output
    }
}
