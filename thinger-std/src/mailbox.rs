//! The channel from the handles to the runner: bounded, many senders, one receiver.
//!
//! A queue under a mutex and two [`Notify`]s: about 150 bytes per client while empty,
//! where a tokio `mpsc` channel allocates its 512-byte channel state and a first block of
//! 32 slots up front. A gateway has one per virtual device, and they are empty nearly
//! always.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

struct State<T> {
    queue: VecDeque<T>,
    senders: usize,
    receiver_gone: bool,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    capacity: usize,
    /// A message arrived, or the last sender left.
    to_receiver: Notify,
    /// Room freed, or the receiver left.
    to_senders: Notify,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Every change under the lock leaves the state consistent: a panic elsewhere while
        // holding it breaks nothing.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The sending side; cheap to clone.
pub(crate) struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// The receiving side.
pub(crate) struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

/// The receiver is gone: the message comes back.
#[derive(Debug)]
pub(crate) struct Closed<T>(pub(crate) T);

/// Why [`Sender::try_send`] did not send.
#[derive(Debug)]
pub(crate) enum TrySendError<T> {
    /// The channel holds `capacity` messages.
    Full(T),
    /// The receiver is gone.
    Closed(T),
}

/// A channel holding up to `capacity` (at least 1) messages.
pub(crate) fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State { queue: VecDeque::new(), senders: 1, receiver_gone: false }),
        capacity: capacity.max(1),
        to_receiver: Notify::new(),
        to_senders: Notify::new(),
    });
    (Sender { shared: shared.clone() }, Receiver { shared })
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Sender { shared: self.shared.clone() }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let last = {
            let mut state = self.shared.lock();
            state.senders -= 1;
            state.senders == 0
        };
        if last {
            self.shared.to_receiver.notify_one();
        }
    }
}

impl<T> std::fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

impl<T> Sender<T> {
    /// Sends `message` now if there is room.
    pub(crate) fn try_send(&self, message: T) -> Result<(), TrySendError<T>> {
        let mut state = self.shared.lock();
        if state.receiver_gone {
            return Err(TrySendError::Closed(message));
        }
        if state.queue.len() >= self.shared.capacity {
            return Err(TrySendError::Full(message));
        }
        state.queue.push_back(message);
        drop(state);
        self.shared.to_receiver.notify_one();
        Ok(())
    }

    /// Sends `message`, waiting for room.
    pub(crate) async fn send(&self, mut message: T) -> Result<(), Closed<T>> {
        loop {
            // Registered before trying, so room freed in between is not missed.
            let mut room = std::pin::pin!(self.shared.to_senders.notified());
            room.as_mut().enable();
            match self.try_send(message) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Closed(m)) => return Err(Closed(m)),
                Err(TrySendError::Full(m)) => message = m,
            }
            room.await;
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let queued = {
            let mut state = self.shared.lock();
            state.receiver_gone = true;
            std::mem::take(&mut state.queue)
        };
        // Dropped outside the lock: a message may hold a sender of this channel.
        drop(queued);
        self.shared.to_senders.notify_waiters();
    }
}

impl<T> std::fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}

impl<T> Receiver<T> {
    /// The next message; `None` once every sender is gone and the queue is empty.
    /// Cancel safe: a message is taken only when this returns it.
    pub(crate) async fn recv(&mut self) -> Option<T> {
        loop {
            {
                let mut state = self.shared.lock();
                if let Some(message) = state.queue.pop_front() {
                    if state.queue.is_empty() && state.queue.capacity() > 8 {
                        // A burst is over: give its memory back.
                        state.queue = VecDeque::new();
                    }
                    drop(state);
                    self.shared.to_senders.notify_one();
                    return Some(message);
                }
                if state.senders == 0 {
                    return None;
                }
            }
            // `notify_one` keeps a permit when nobody waits, so a message sent between the
            // check and here still wakes this.
            self.shared.to_receiver.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn messages_arrive_in_order_and_the_end_is_seen() {
        let (tx, mut rx) = channel::<u32>(4);
        let tx2 = tx.clone();
        tx.send(1).await.unwrap();
        tx2.try_send(2).unwrap();
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(rx.recv().await, Some(2));
        drop(tx);
        tx2.send(3).await.unwrap();
        drop(tx2);
        assert_eq!(rx.recv().await, Some(3));
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn a_full_channel_makes_senders_wait_and_a_gone_receiver_gives_messages_back() {
        let (tx, mut rx) = channel::<u32>(2);
        tx.send(1).await.unwrap();
        tx.send(2).await.unwrap();
        assert!(matches!(tx.try_send(3), Err(TrySendError::Full(3))));
        let waiting = {
            let tx = tx.clone();
            tokio::spawn(async move { tx.send(3).await.map_err(|c| c.0) })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "sent into a full channel");
        assert_eq!(rx.recv().await, Some(1));
        waiting.await.unwrap().unwrap();
        assert_eq!(rx.recv().await, Some(2));
        assert_eq!(rx.recv().await, Some(3));
        // Full again, then the receiver goes: the waiting sender gets its message back.
        tx.send(4).await.unwrap();
        tx.send(5).await.unwrap();
        let blocked = {
            let tx = tx.clone();
            tokio::spawn(async move { tx.send(6).await.map_err(|c| c.0) })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(rx);
        assert_eq!(blocked.await.unwrap().unwrap_err(), 6);
        assert!(matches!(tx.try_send(7), Err(TrySendError::Closed(7))));
    }

    #[tokio::test]
    async fn a_receiver_waiting_is_woken_by_a_message_from_another_task() {
        let (tx, mut rx) = channel::<u32>(8);
        let receiver = tokio::spawn(async move { rx.recv().await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        tx.send(9).await.unwrap();
        assert_eq!(receiver.await.unwrap(), Some(9));
    }
}
