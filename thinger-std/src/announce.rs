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
///
/// The event channel exists only while someone listens: it is made by the first
/// [`Announcer::subscribe`] and dropped at the first event published after its last
/// receiver is gone. A gateway's thousands of clients that nobody watches keep no event
/// ring (a ring of 32 events is about 2.3 KiB).
#[derive(Debug, Clone)]
pub(crate) struct Announcer {
    events: Arc<Mutex<Option<broadcast::Sender<ClientEvent>>>>,
    capacity: usize,
}

impl Announcer {
    /// An announcer whose receivers keep up to `capacity` unread events.
    pub(crate) fn new(capacity: usize) -> Announcer {
        Announcer { events: Arc::new(Mutex::new(None)), capacity: capacity.max(1) }
    }

    fn guard(&self) -> MutexGuard<'_, Option<broadcast::Sender<ClientEvent>>> {
        // A panic elsewhere while holding the lock leaves at worst a channel without
        // receivers, which the next event drops.
        self.events.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn send(events: &mut Option<broadcast::Sender<ClientEvent>>, event: ClientEvent) {
        if let Some(tx) = events.as_ref()
            && tx.send(event).is_err()
        {
            // Nobody listens any more: free the ring.
            *events = None;
        }
    }

    /// Publishes an event that does not change the status.
    pub(crate) fn emit(&self, event: ClientEvent) {
        Self::send(&mut self.guard(), event);
    }

    /// Changes the status and publishes the event that reports it, as one step.
    pub(crate) fn transition(&self, status: &watch::Sender<Status>, to: Status, event: Option<ClientEvent>) {
        let mut events = self.guard();
        status.send_replace(to);
        if let Some(event) = event {
            Self::send(&mut events, event);
        }
    }

    /// A receiver of the events from now on, and the status they continue from.
    pub(crate) fn subscribe(&self, status: &watch::Receiver<Status>) -> (broadcast::Receiver<ClientEvent>, Status) {
        let mut events = self.guard();
        let rx = match events.as_ref() {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = broadcast::channel(self.capacity);
                *events = Some(tx);
                rx
            }
        };
        (rx, *status.borrow())
    }

    /// Whether an event channel is held (someone subscribed and an event has not yet found
    /// it without receivers).
    #[cfg(test)]
    fn has_channel(&self) -> bool {
        self.guard().is_some()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_ring_lives_only_while_someone_listens() {
        let announcer = Announcer::new(4);
        let (status_tx, status_rx) = watch::channel(Status::Connecting);
        // Nobody listens: publishing keeps no channel.
        announcer.emit(ClientEvent::Connected);
        assert!(!announcer.has_channel());
        let (mut rx, status) = announcer.subscribe(&status_rx);
        assert_eq!(status, Status::Connecting);
        announcer.transition(&status_tx, Status::Connected, Some(ClientEvent::Connected));
        assert_eq!(rx.try_recv().ok(), Some(ClientEvent::Connected));
        // A second subscriber shares the channel and sees what comes next.
        let (mut rx2, status) = announcer.subscribe(&status_rx);
        assert_eq!(status, Status::Connected);
        announcer.emit(ClientEvent::Stopped);
        assert_eq!(rx.try_recv().ok(), Some(ClientEvent::Stopped));
        assert_eq!(rx2.try_recv().ok(), Some(ClientEvent::Stopped));
        drop((rx, rx2));
        assert!(announcer.has_channel());
        // The first event after the last receiver left frees it.
        announcer.emit(ClientEvent::Connected);
        assert!(!announcer.has_channel());
        // And a new subscriber gets a new one.
        let (mut rx3, _) = announcer.subscribe(&status_rx);
        announcer.emit(ClientEvent::Stopped);
        assert_eq!(rx3.try_recv().ok(), Some(ClientEvent::Stopped));
    }
}
