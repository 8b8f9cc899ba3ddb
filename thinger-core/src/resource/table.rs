use core::ops::{Index, IndexMut, ShlAssign, ShrAssign};

use heapless::Vec;

use super::{Params, Resource, ResourceKind};
#[cfg(feature = "patterns")]
use super::{match_path, path::is_pattern};

/// The resource table is full: raise its capacity `N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CapacityError {
    /// The table's capacity.
    pub capacity: usize,
}

impl core::fmt::Display for CapacityError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "resource table is full ({} resources)", self.capacity)
    }
}

impl core::error::Error for CapacityError {}

enum Slot<'a> {
    Empty,
    Borrowed(&'a mut (dyn Resource + 'a)),
    #[cfg(feature = "alloc")]
    Boxed(alloc::boxed::Box<dyn Resource + 'a>),
}

impl<'a> Slot<'a> {
    fn get(&mut self) -> Option<&mut (dyn Resource + 'a)> {
        match self {
            Slot::Empty => None,
            Slot::Borrowed(r) => Some(&mut **r),
            #[cfg(feature = "alloc")]
            Slot::Boxed(r) => Some(&mut **r),
        }
    }
    fn kind(&self) -> Option<ResourceKind> {
        match self {
            Slot::Empty => None,
            Slot::Borrowed(r) => Some(r.kind()),
            #[cfg(feature = "alloc")]
            Slot::Boxed(r) => Some(r.kind()),
        }
    }
}

/// One row of the resource table: a path and its handler.
///
/// Obtained with `thing["path"]`; the DSL operators set its handler:
/// `thing["led"] <<= …` (an input), `thing["millis"] >>= …` (an output), or
/// [`Entry::set`] for any kind.
pub struct Entry<'a> {
    path: &'a str,
    slot: Slot<'a>,
}

impl core::fmt::Debug for Entry<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Entry").field("path", &self.path).field("kind", &self.slot.kind()).finish()
    }
}

impl<'a> Entry<'a> {
    /// The path or pattern.
    pub fn path(&self) -> &'a str {
        self.path
    }
    /// The handler's kind, `None` when no handler is set yet.
    pub fn kind(&self) -> Option<ResourceKind> {
        self.slot.kind()
    }
    /// Sets a borrowed handler (no heap).
    pub fn set(&mut self, resource: &'a mut (dyn Resource + 'a)) {
        self.slot = Slot::Borrowed(resource);
    }
    /// Sets an owned handler (boxed).
    #[cfg(feature = "alloc")]
    pub fn set_owned<R: Resource + 'a>(&mut self, resource: R) {
        self.slot = Slot::Boxed(alloc::boxed::Box::new(resource));
    }
    /// Whether a handler is set: what `kind().is_some()` says, without the virtual call.
    pub(crate) fn has_handler(&self) -> bool {
        !matches!(self.slot, Slot::Empty)
    }
    /// The handler, if set.
    pub fn resource(&mut self) -> Option<&mut (dyn Resource + 'a)> {
        self.slot.get()
    }
}

// Without a heap, the operators take handlers by `&mut` (the table borrows them).
#[cfg(not(feature = "alloc"))]
impl<'a, R: Resource + 'a> ShlAssign<&'a mut R> for Entry<'a> {
    /// `thing["led"] <<= &mut handler;` — binds an input handler.
    fn shl_assign(&mut self, resource: &'a mut R) {
        self.slot = Slot::Borrowed(resource);
    }
}

#[cfg(not(feature = "alloc"))]
impl<'a, R: Resource + 'a> ShrAssign<&'a mut R> for Entry<'a> {
    /// `thing["millis"] >>= &mut handler;` — binds an output handler.
    fn shr_assign(&mut self, resource: &'a mut R) {
        self.slot = Slot::Borrowed(resource);
    }
}

// With `alloc`, handlers may also be passed by value; `&mut R` is itself a `Resource`, so the
// borrowed form keeps working.
#[cfg(feature = "alloc")]
impl<'a, R: Resource + 'a> ShlAssign<R> for Entry<'a> {
    /// `thing["led"] <<= digital_pin(p);` — binds an input handler.
    fn shl_assign(&mut self, resource: R) {
        self.slot = Slot::Boxed(alloc::boxed::Box::new(resource));
    }
}

#[cfg(feature = "alloc")]
impl<'a, R: Resource + 'a> ShrAssign<R> for Entry<'a> {
    /// `thing["millis"] >>= output_value(…);` — binds an output handler.
    fn shr_assign(&mut self, resource: R) {
        self.slot = Slot::Boxed(alloc::boxed::Box::new(resource));
    }
}

/// The resource table: up to `N` resources by path, in registration order.
///
/// The capacity is a const generic so the table lives in static memory on firmware. Without
/// the `alloc` feature the table *borrows* its handlers (`&'a mut dyn Resource`), which the
/// caller owns (on the stack, or in a `static_cell`); with `alloc` it can also own them.
///
/// `thing["path"]` adds the path if it is new. Indexing a full table panics at setup time
/// with a clear message; use [`Thing::try_entry`] or [`Thing::add`] to get an error instead.
///
/// ```
/// use thinger_core::resource::{handler, ResourceKind, Thing};
/// let mut reboot = handler(ResourceKind::Run, |_| Ok(()));
/// let mut thing: Thing<'_, 2> = Thing::new();
/// thing["reboot"].set(&mut reboot);
/// assert_eq!(thing.get("reboot").unwrap().kind(), Some(ResourceKind::Run));
/// ```
pub struct Thing<'a, const N: usize> {
    entries: Vec<Entry<'a>, N>,
}

impl<const N: usize> core::fmt::Debug for Thing<'_, N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.entries.iter()).finish()
    }
}

impl<const N: usize> Default for Thing<'_, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a, const N: usize> Thing<'a, N> {
    /// An empty table.
    pub const fn new() -> Self {
        Thing { entries: Vec::new() }
    }
    /// Number of resources.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    /// The table's capacity.
    pub const fn capacity(&self) -> usize {
        N
    }
    /// The entry for `path`, added if new; an error when the table is full.
    ///
    /// ```
    /// use thinger_core::resource::{Thing, CapacityError};
    /// let mut thing: Thing<'_, 1> = Thing::new();
    /// assert!(thing.try_entry("a").is_ok());
    /// assert!(thing.try_entry("a").is_ok()); // same entry
    /// assert_eq!(thing.try_entry("b").unwrap_err(), CapacityError { capacity: 1 });
    /// ```
    pub fn try_entry(&mut self, path: &'a str) -> Result<&mut Entry<'a>, CapacityError> {
        let index = match self.entries.iter().position(|e| crate::bytes::str_eq(e.path, path)) {
            Some(i) => i,
            None => {
                self.entries.push(Entry { path, slot: Slot::Empty }).map_err(|_| CapacityError { capacity: N })?;
                self.entries.len() - 1
            }
        };
        self.entries.get_mut(index).ok_or(CapacityError { capacity: N })
    }
    /// Adds (or replaces) a borrowed handler for `path`.
    pub fn add(&mut self, path: &'a str, resource: &'a mut (dyn Resource + 'a)) -> Result<(), CapacityError> {
        self.try_entry(path)?.set(resource);
        Ok(())
    }
    /// Adds (or replaces) an owned handler for `path`.
    #[cfg(feature = "alloc")]
    pub fn add_owned<R: Resource + 'a>(&mut self, path: &'a str, resource: R) -> Result<(), CapacityError> {
        self.try_entry(path)?.set_owned(resource);
        Ok(())
    }
    /// The entry registered under exactly `path` (a pattern is looked up as written).
    pub fn get(&self, path: &str) -> Option<&Entry<'a>> {
        self.entries.iter().find(|e| crate::bytes::str_eq(e.path, path))
    }
    /// Entries in registration order.
    pub fn iter(&self) -> impl Iterator<Item = &Entry<'a>> {
        self.entries.iter()
    }
    /// Finds the resource serving `path`: an exact match first, else the first pattern that
    /// matches, with its captures. Without the feature `patterns`, only the exact match:
    /// a path with placeholders is then an ordinary name, and nothing is captured.
    pub fn lookup<'p>(&self, path: &'p str, params: &mut Params<'p>) -> Option<usize>
    where
        'a: 'p,
    {
        let has_handler = |e: &Entry<'_>| e.has_handler();
        if let Some(i) = self.entries.iter().position(|e| crate::bytes::str_eq(e.path, path) && has_handler(e)) {
            *params = Params::new();
            return Some(i);
        }
        #[cfg(feature = "patterns")]
        return self
            .entries
            .iter()
            .position(|e| has_handler(e) && is_pattern(e.path) && match_path(e.path, path, params));
        #[cfg(not(feature = "patterns"))]
        None
    }
    /// The entry at `index` (as returned by [`Thing::lookup`]).
    pub fn entry_mut(&mut self, index: usize) -> Option<&mut Entry<'a>> {
        self.entries.get_mut(index)
    }
    /// The entry at `index`.
    pub fn entry(&self, index: usize) -> Option<&Entry<'a>> {
        self.entries.get(index)
    }
}

impl<'a, const N: usize> Index<&'a str> for Thing<'a, N> {
    type Output = Entry<'a>;
    /// The entry for `path`.
    ///
    /// # Panics
    /// If no resource has that path (reading cannot add one).
    #[allow(clippy::panic)] // setup-time programming error, documented above
    fn index(&self, path: &'a str) -> &Entry<'a> {
        match self.get(path) {
            Some(e) => e,
            None => panic!("thinger: no resource named {path:?}"),
        }
    }
}

impl<'a, const N: usize> IndexMut<&'a str> for Thing<'a, N> {
    /// The entry for `path`, added if new.
    ///
    /// # Panics
    /// When the table is full: registering more resources than the capacity `N` is a setup
    /// error that must not pass silently. Use [`Thing::try_entry`] to handle it instead.
    #[allow(clippy::panic)] // setup-time programming error, documented above
    fn index_mut(&mut self, path: &'a str) -> &mut Entry<'a> {
        match self.try_entry(path) {
            Ok(e) => e,
            Err(e) => panic!("thinger: cannot add resource {path:?}: {e}; raise the Thing capacity"),
        }
    }
}
