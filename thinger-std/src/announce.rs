//! The connection status and its events, published together.
//!
//! A status change and the event that reports it happen under one lock, and a new subscriber
//! takes its receiver and reads the status under the same lock. So a subscriber sees either
//! the event or the status it produced, never neither (a missed "connected") and never both
//! (a "connected" twice).

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{broadcast, watch};

use crate::event::{ClientEvent, Status};

/// The sending side: the runner publishes through it, handles subscribe through it.
#[derive(Debug, Clone)]
pub(crate) struct Announcer {
    events: broadcast::Sender<ClientEvent>,
    lock: Arc<Mutex<()>>,
}

impl Announcer {
    /// An announcer whose receivers keep up to `capacity` unread events.
    pub(crate) fn new(capacity: usize) -> Announcer {
        let (events, _) = broadcast::channel(capacity);
        Announcer { events, lock: Arc::new(Mutex::new(())) }
    }

    fn guard(&self) -> MutexGuard<'_, ()> {
        // The lock guards no data: a panic elsewhere while holding it leaves nothing broken.
        self.lock.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Publishes an event that does not change the status.
    pub(crate) fn emit(&self, event: ClientEvent) {
        let _held = self.guard();
        let _ = self.events.send(event);
    }

    /// Changes the status and publishes the event that reports it, as one step.
    pub(crate) fn transition(&self, status: &watch::Sender<Status>, to: Status, event: Option<ClientEvent>) {
        let _held = self.guard();
        status.send_replace(to);
        if let Some(event) = event {
            let _ = self.events.send(event);
        }
    }

    /// A receiver of the events from now on, and the status they continue from.
    pub(crate) fn subscribe(&self, status: &watch::Receiver<Status>) -> (broadcast::Receiver<ClientEvent>, Status) {
        let _held = self.guard();
        (self.events.subscribe(), *status.borrow())
    }
}

/// The event a new subscriber starts with: where the client already is, when that is a
/// state someone waits for.
pub(crate) fn initial_event(status: Status) -> Option<ClientEvent> {
    match status {
        Status::Connected => Some(ClientEvent::Connected),
        Status::Stopped => Some(ClientEvent::Stopped),
        Status::Connecting | Status::Disconnected => None,
    }
}
