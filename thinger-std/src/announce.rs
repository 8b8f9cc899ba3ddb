//! The connection status and its events, published together.
//!
//! A status change and the event that reports it happen under one lock, and a new subscriber
//! takes its receiver and reads the status under the same lock. So a subscriber sees either
//! the event or the status it produced, never neither (a missed "connected") and never both
//! (a "connected" twice).

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Notify, broadcast};

use crate::event::{ClientEvent, Status};

/// What the lock guards.
#[derive(Debug)]
struct State {
    status: Status,
    /// The event channel, while someone listens.
    events: Option<broadcast::Sender<ClientEvent>>,
    /// The runner was dropped: the status will not change any more.
    runner_gone: bool,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Woken at every status change (and when the runner is gone).
    changed: Notify,
}

/// The status and the event channel, shared by the runner (which publishes) and the
/// handles (which read the status, wait for it, and subscribe to events).
///
/// The event channel exists only while someone listens: it is made by the first
/// [`Announcer::subscribe`] and dropped at the first event published after its last
/// receiver is gone. A gateway's thousands of clients that nobody watches keep no event
/// ring (a ring of 32 events is about 2.3 KiB); the status is a field under the same lock
/// with a [`Notify`] for waiters (a `watch` channel costs 344 bytes).
#[derive(Debug, Clone)]
pub(crate) struct Announcer {
    shared: Arc<Shared>,
    capacity: usize,
}

impl Announcer {
    /// An announcer in status `Connecting`, whose receivers keep up to `capacity` unread
    /// events.
    pub(crate) fn new(capacity: usize) -> Announcer {
        let state = State { status: Status::Connecting, events: None, runner_gone: false };
        Announcer {
            shared: Arc::new(Shared { state: Mutex::new(state), changed: Notify::new() }),
            capacity: capacity.max(1),
        }
    }

    fn guard(&self) -> MutexGuard<'_, State> {
        // Every change under the lock is a single field assignment: a panic elsewhere while
        // holding it leaves a consistent state.
        self.shared.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn send(state: &mut State, event: ClientEvent) {
        if let Some(tx) = state.events.as_ref()
            && tx.send(event).is_err()
        {
            // Nobody listens any more: free the ring.
            state.events = None;
        }
    }

    /// The current status.
    pub(crate) fn status(&self) -> Status {
        self.guard().status
    }

    /// Publishes an event that does not change the status.
    pub(crate) fn emit(&self, event: ClientEvent) {
        Self::send(&mut self.guard(), event);
    }

    /// Changes the status and publishes the event that reports it, as one step.
    pub(crate) fn transition(&self, to: Status, event: Option<ClientEvent>) {
        let mut state = self.guard();
        let changed = state.status != to;
        state.status = to;
        if let Some(event) = event {
            Self::send(&mut state, event);
        }
        drop(state);
        if changed {
            self.shared.changed.notify_waiters();
        }
    }

    /// The runner is gone (dropped, run or not): waiters stop waiting.
    pub(crate) fn runner_gone(&self) {
        self.guard().runner_gone = true;
        self.shared.changed.notify_waiters();
    }

    /// Waits until the status is one that `done` accepts and returns it; `None` when the
    /// runner is gone before that.
    pub(crate) async fn wait_for(&self, mut done: impl FnMut(Status) -> bool) -> Option<Status> {
        loop {
            // Registered before the status is read, so a change in between is not missed.
            let mut notified = std::pin::pin!(self.shared.changed.notified());
            notified.as_mut().enable();
            {
                let state = self.guard();
                if done(state.status) {
                    return Some(state.status);
                }
                if state.runner_gone {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// A receiver of the events from now on, and the status they continue from.
    pub(crate) fn subscribe(&self) -> (broadcast::Receiver<ClientEvent>, Status) {
        let mut state = self.guard();
        let rx = match state.events.as_ref() {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = broadcast::channel(self.capacity);
                state.events = Some(tx);
                rx
            }
        };
        (rx, state.status)
    }

    /// Whether an event channel is held (someone subscribed and an event has not yet found
    /// it without receivers).
    #[cfg(test)]
    fn has_channel(&self) -> bool {
        self.guard().events.is_some()
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
        // Nobody listens: publishing keeps no channel.
        announcer.emit(ClientEvent::Connected);
        assert!(!announcer.has_channel());
        let (mut rx, status) = announcer.subscribe();
        assert_eq!(status, Status::Connecting);
        announcer.transition(Status::Connected, Some(ClientEvent::Connected));
        assert_eq!(rx.try_recv().ok(), Some(ClientEvent::Connected));
        // A second subscriber shares the channel and sees what comes next.
        let (mut rx2, status) = announcer.subscribe();
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
        let (mut rx3, _) = announcer.subscribe();
        announcer.emit(ClientEvent::Stopped);
        assert_eq!(rx3.try_recv().ok(), Some(ClientEvent::Stopped));
    }

    #[tokio::test]
    async fn waiters_see_the_status_they_wait_for_or_that_the_runner_is_gone() {
        let announcer = Announcer::new(4);
        let waiter = {
            let a = announcer.clone();
            tokio::spawn(async move { a.wait_for(|s| s == Status::Connected).await })
        };
        tokio::task::yield_now().await;
        announcer.transition(Status::Disconnected, None);
        announcer.transition(Status::Connected, None);
        assert_eq!(waiter.await.unwrap(), Some(Status::Connected));
        assert_eq!(announcer.status(), Status::Connected);
        // Already there: no wait.
        assert_eq!(announcer.wait_for(|s| s == Status::Connected).await, Some(Status::Connected));
        let stopped = {
            let a = announcer.clone();
            tokio::spawn(async move { a.wait_for(|s| s == Status::Stopped).await })
        };
        tokio::task::yield_now().await;
        announcer.runner_gone();
        assert_eq!(stopped.await.unwrap(), None);
    }
}
