//! The five `$ota` resources over one shared [`Ota`].

use core::cell::RefCell;

use super::{BEGIN, END, OPTIONS, Ota, OtaError, REBOOT, Updater, WRITE};
use crate::pson;
use crate::resource::{Call, CallMode, CapacityError, HandlerError, Output, Resource, ResourceKind, Thing};

/// Which `$ota` resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Action {
    /// `$ota/options`.
    Options,
    /// `$ota/begin`.
    Begin,
    /// `$ota/write`.
    Write,
    /// `$ota/end`.
    End,
    /// `$ota/reboot`.
    Reboot,
}

impl Action {
    /// All five, in the order a push uses them.
    pub const ALL: [Action; 5] = [Action::Options, Action::Begin, Action::Write, Action::End, Action::Reboot];

    /// The resource path.
    pub const fn path(self) -> &'static str {
        match self {
            Action::Options => OPTIONS,
            Action::Begin => BEGIN,
            Action::Write => WRITE,
            Action::End => END,
            Action::Reboot => REBOOT,
        }
    }

    /// The resource kind (what DESCRIBE reports).
    pub const fn kind(self) -> ResourceKind {
        match self {
            Action::Options | Action::End => ResourceKind::Output,
            Action::Begin | Action::Write => ResourceKind::InputOutput,
            Action::Reboot => ResourceKind::Run,
        }
    }
}

impl<U: Updater> Ota<U> {
    /// Serves one call of the `action` resource: what every adapter's `$ota` handler does.
    ///
    /// DESCRIBE and stream samples have no side effects (options still reports its map).
    pub fn handle(&mut self, action: Action, call: &mut Call<'_>) -> Result<(), HandlerError> {
        if call.mode() != CallMode::Run {
            if action == Action::Options && call.mode() != CallMode::DescribeInput {
                self.options(call.output())?;
            }
            return Ok(());
        }
        match action {
            Action::Options => self.options(call.output())?,
            Action::Begin => {
                let input = call.input();
                answer(call.output(), self.begin(&input).map(Some))?;
            }
            Action::Write => {
                let data = call.input().value().and_then(|v| v.as_bytes());
                let result = data.ok_or(OtaError::NotBytes).and_then(|d| self.write(d));
                answer(call.output(), result.map(Some))?;
            }
            Action::End => answer(call.output(), self.end().map(|_| None))?,
            Action::Reboot => {
                if let Err(e) = self.reboot() {
                    return Err(HandlerError::new(500, e.message()));
                }
            }
        }
        Ok(())
    }
}

/// `{success: true, offset}` or `{success: false, error}`.
fn answer(out: &mut Output<'_>, result: Result<Option<u32>, OtaError>) -> Result<(), pson::Error> {
    match result {
        Ok(offset) => {
            out.field("success", &true)?;
            if let Some(offset) = offset {
                out.field("offset", &offset)?;
            }
        }
        Err(e) => {
            out.field("success", &false)?;
            out.field("error", e.message())?;
        }
    }
    Ok(())
}

/// One `$ota` resource over a shared `RefCell<Ota<U>>` (no heap).
#[derive(Debug)]
pub struct OtaResource<'r, U> {
    ota: &'r RefCell<Ota<U>>,
    action: Action,
}

impl<'r, U: Updater> OtaResource<'r, U> {
    /// The `action` resource over `ota`.
    pub const fn new(ota: &'r RefCell<Ota<U>>, action: Action) -> Self {
        OtaResource { ota, action }
    }
}

impl<U: Updater> Resource for OtaResource<'_, U> {
    fn kind(&self) -> ResourceKind {
        self.action.kind()
    }
    fn handle(&mut self, call: &mut Call<'_>) -> Result<(), HandlerError> {
        // Handlers never nest, so the borrow only fails if the application holds the
        // `Ota` borrowed across a session poll.
        let mut ota = self.ota.try_borrow_mut().map_err(|_| HandlerError::new(503, "OTA state in use"))?;
        ota.handle(self.action, call)
    }
}

/// The five `$ota` resources, ready to register on a [`Thing`].
///
/// ```
/// use core::cell::RefCell;
/// use thinger_core::ota::{Ota, OtaConfig, OtaResources, RamUpdater};
/// use thinger_core::resource::Thing;
///
/// let mut area = [0u8; 1024];
/// let ota = RefCell::new(Ota::new(RamUpdater::new(&mut area), OtaConfig::new(512)));
/// let mut resources = OtaResources::new(&ota);
/// let mut thing: Thing<'_, 5> = Thing::new();
/// resources.register(&mut thing).unwrap();
/// assert_eq!(thing.len(), 5);
/// ```
#[derive(Debug)]
pub struct OtaResources<'r, U> {
    resources: [OtaResource<'r, U>; 5],
}

impl<'r, U: Updater> OtaResources<'r, U> {
    /// The resources over `ota`.
    pub fn new(ota: &'r RefCell<Ota<U>>) -> Self {
        OtaResources { resources: Action::ALL.map(|a| OtaResource::new(ota, a)) }
    }

    /// Adds the five resources under their official paths.
    pub fn register<const N: usize>(&'r mut self, thing: &mut Thing<'r, N>) -> Result<(), CapacityError>
    where
        U: 'r,
    {
        for resource in self.resources.iter_mut() {
            thing.add(resource.action.path(), resource)?;
        }
        Ok(())
    }
}
