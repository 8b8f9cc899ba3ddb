//! State shared by all connections: who is connected, sync locks, retained topics, events.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use thinger_core::pson::Value;
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::ServerConfig;
use crate::error::DeviceError;
use crate::guard::Guard;
use crate::store::Store;
use crate::util::{constant_time_eq, now_ms};
use crate::vocab::{Command, DeviceRequest, EventTx, HubEvent, REASON_REPLACED, RawReply};

/// A live connection of a device.
pub(crate) struct Live {
    pub conn_id: u64,
    pub tx: mpsc::UnboundedSender<Command>,
    pub since: u64,
    pub address: String,
    pub transport: &'static str,
}

#[derive(Default)]
struct DeviceEntry {
    live: Option<Live>,
    /// When it last connected or disconnected (0: never).
    last_change: u64,
    last_address: Option<String>,
}

/// A device as the REST API lists it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DeviceInfo {
    pub device: String,
    pub connected: bool,
    pub ts: u64,
    pub address: Option<String>,
    pub transport: Option<&'static str>,
}

/// Result of looking a device up.
pub(crate) enum Lookup {
    Unknown,
    Offline,
    Live(mpsc::UnboundedSender<Command>),
}

/// Why a device could not be registered.
pub(crate) enum RegisterError {
    Full,
}

struct Waiter {
    id: u64,
    lock: String,
    conn: u64,
    slots: usize,
    grant: oneshot::Sender<()>,
}

#[derive(Default)]
struct SyncState {
    holders: Vec<(String, u64)>,
    waiters: VecDeque<Waiter>,
}

impl SyncState {
    /// Grants the lock to waiters, first come first served, while slots are free.
    fn promote(&mut self) {
        while let Some(w) = self.waiters.front() {
            if self.holders.len() >= w.slots.max(1) {
                break;
            }
            if let Some(w) = self.waiters.pop_front()
                && w.grant.send(()).is_ok()
            {
                self.holders.push((w.lock, w.conn));
            }
        }
    }
}

/// Outcome of a lock request.
pub(crate) enum LockOutcome {
    Granted,
    Wait { waiter: u64, granted: oneshot::Receiver<()> },
}

/// Devices by user, and how many are connected.
#[derive(Default)]
struct Devices {
    users: HashMap<String, BTreeMap<String, DeviceEntry>>,
    live: usize,
}

/// Shared server state.
pub(crate) struct Hub {
    pub config: ServerConfig,
    pub store: Store,
    /// Admission before authentication and credential throttling.
    pub guard: Guard,
    credentials: HashMap<(String, String), String>,
    devices: Mutex<Devices>,
    /// Connections that subscribed to something, by user: the only ones events go to.
    subscribers: Mutex<HashMap<String, HashMap<u64, EventTx>>>,
    syncs: Mutex<HashMap<(String, String), SyncState>>,
    retained: Mutex<HashMap<String, BTreeMap<String, Value>>>,
    ids: AtomicU64,
    /// Events not delivered: too large for a device, or its event queue was full.
    dropped_events: AtomicU64,
    pub shutdown: watch::Receiver<bool>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks cannot leave the data half-updated in a way
    // that matters more than stopping the server; keep serving.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Hub {
    pub(crate) fn new(config: ServerConfig, store: Store, shutdown: watch::Receiver<bool>) -> Hub {
        let mut credentials = HashMap::new();
        let mut devices = Devices::default();
        for c in &config.credentials {
            credentials.insert((c.user.clone(), c.device.clone()), c.credential.clone());
            devices.users.entry(c.user.clone()).or_default().entry(c.device.clone()).or_default();
        }
        Hub {
            guard: Guard::new(config.limits.clone()),
            config,
            store,
            credentials,
            devices: Mutex::new(devices),
            subscribers: Mutex::new(HashMap::new()),
            syncs: Mutex::new(HashMap::new()),
            retained: Mutex::new(HashMap::new()),
            ids: AtomicU64::new(1),
            dropped_events: AtomicU64::new(0),
            shutdown,
        }
    }

    /// A process-unique id (connections, stream sinks, lock waiters).
    pub(crate) fn next_id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::Relaxed)
    }

    /// Counts an event that was not delivered to a connection.
    pub(crate) fn count_dropped_event(&self) {
        self.dropped_events.fetch_add(1, Ordering::Relaxed);
    }

    /// Events not delivered so far (too large for a device, or its queue was full).
    pub(crate) fn dropped_events(&self) -> u64 {
        self.dropped_events.load(Ordering::Relaxed)
    }

    /// Whether these credentials may connect.
    pub(crate) fn authenticate(&self, user: &str, device: &str, credential: &str) -> bool {
        match self.credentials.get(&(user.to_owned(), device.to_owned())) {
            Some(expected) => constant_time_eq(expected.as_bytes(), credential.as_bytes()),
            None => self.config.allow_any,
        }
    }

    /// Registers a live connection. A previous connection of the same device is told to
    /// disconnect (the newest wins).
    pub(crate) fn register(&self, user: &str, device: &str, live: Live) -> Result<(), RegisterError> {
        let replaced = {
            let mut devices = lock(&self.devices);
            let live_count = devices.live;
            let entry = devices.users.entry(user.to_owned()).or_default().entry(device.to_owned()).or_default();
            if entry.live.is_none() && live_count >= self.config.max_devices {
                return Err(RegisterError::Full);
            }
            entry.last_change = live.since;
            entry.last_address = Some(live.address.clone());
            let replaced = entry.live.replace(live);
            if replaced.is_none() {
                devices.live += 1;
            }
            replaced
        };
        if let Some(old) = replaced {
            let _ =
                old.tx.send(Command::Disconnect { code: REASON_REPLACED, reason: "replaced by a newer connection" });
        }
        self.dispatch(HubEvent::State { user: user.to_owned(), device: device.to_owned(), connected: true });
        Ok(())
    }

    /// Removes a connection (if it is still the device's current one) and releases its locks.
    pub(crate) fn unregister(&self, user: &str, device: &str, conn_id: u64) {
        let removed = {
            let mut devices = lock(&self.devices);
            let removed = match devices.users.get_mut(user).and_then(|d| d.get_mut(device)) {
                Some(entry) if entry.live.as_ref().is_some_and(|l| l.conn_id == conn_id) => {
                    entry.live = None;
                    entry.last_change = now_ms();
                    true
                }
                _ => false,
            };
            if removed {
                devices.live = devices.live.saturating_sub(1);
            }
            removed
        };
        self.release_locks(conn_id);
        if removed {
            self.dispatch(HubEvent::State { user: user.to_owned(), device: device.to_owned(), connected: false });
        }
    }

    /// Number of connected devices.
    pub(crate) fn connected(&self) -> usize {
        lock(&self.devices).live
    }

    /// Finds a device's connection.
    pub(crate) fn lookup(&self, user: &str, device: &str) -> Lookup {
        match lock(&self.devices).users.get(user).and_then(|d| d.get(device)) {
            None => Lookup::Unknown,
            Some(DeviceEntry { live: Some(l), .. }) => Lookup::Live(l.tx.clone()),
            Some(_) => Lookup::Offline,
        }
    }

    /// Every device of a user (configured or seen), with its connection state.
    pub(crate) fn list_devices(&self, user: &str) -> Vec<DeviceInfo> {
        lock(&self.devices)
            .users
            .get(user)
            .map(|d| d.iter().map(|(name, e)| info(name, e)).collect())
            .unwrap_or_default()
    }

    /// One device, if known.
    pub(crate) fn device_info(&self, user: &str, device: &str) -> Option<DeviceInfo> {
        lock(&self.devices).users.get(user).and_then(|d| d.get(device)).map(|e| info(device, e))
    }

    /// Delivers an event to the subscribed connections of its user, outside every lock and
    /// without waiting: a connection whose queue is full misses it (counted).
    pub(crate) fn dispatch(&self, event: HubEvent) {
        let targets: Vec<EventTx> =
            lock(&self.subscribers).get(event.user()).map(|m| m.values().cloned().collect()).unwrap_or_default();
        if targets.is_empty() {
            return;
        }
        let event = Arc::new(event);
        for tx in targets {
            match tx.try_send(Arc::clone(&event)) {
                Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
                Err(mpsc::error::TrySendError::Full(_)) => self.count_dropped_event(),
            }
        }
    }

    /// Adds a connection to its user's subscribers (it opened a subscription).
    pub(crate) fn subscribe(&self, user: &str, conn_id: u64, tx: EventTx) {
        lock(&self.subscribers).entry(user.to_owned()).or_default().insert(conn_id, tx);
    }

    /// Removes a connection from its user's subscribers.
    pub(crate) fn unsubscribe(&self, user: &str, conn_id: u64) {
        let mut subs = lock(&self.subscribers);
        if let Some(m) = subs.get_mut(user) {
            m.remove(&conn_id);
            if m.is_empty() {
                subs.remove(user);
            }
        }
    }

    /// Sends a request to a device and waits (up to the device timeout) for its reply.
    pub(crate) async fn request(
        &self,
        user: &str,
        device: &str,
        request: DeviceRequest,
    ) -> Result<RawReply, DeviceError> {
        let tx = match self.lookup(user, device) {
            Lookup::Unknown => return Err(DeviceError::UnknownDevice),
            Lookup::Offline => return Err(DeviceError::Offline),
            Lookup::Live(tx) => tx,
        };
        let (reply, wait) = oneshot::channel();
        tx.send(Command::Request { request, reply }).map_err(|_| DeviceError::Offline)?;
        match tokio::time::timeout(self.config.device_timeout, wait).await {
            Err(_) => Err(DeviceError::Timeout),
            Ok(Err(_)) => Err(DeviceError::Offline),
            Ok(Ok(result)) => result,
        }
    }

    /// Stores (or, for an empty payload, clears) a retained topic message.
    pub(crate) fn retain(&self, user: &str, topic: &str, payload: &Value) {
        let mut retained = lock(&self.retained);
        let topics = retained.entry(user.to_owned()).or_default();
        if payload.is_null() || payload.as_str() == Some("") {
            topics.remove(topic);
        } else {
            topics.insert(topic.to_owned(), payload.clone());
        }
    }

    /// Retained messages whose topic matches an MQTT filter.
    pub(crate) fn retained_matching(&self, user: &str, filter: &str) -> Vec<(String, Value)> {
        lock(&self.retained)
            .get(user)
            .map(|t| {
                t.iter()
                    .filter(|(topic, _)| topic_matches(filter, topic))
                    .map(|(t, v)| (t.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Asks for a sync lock.
    pub(crate) fn lock_sync(&self, user: &str, sync: &str, name: &str, slots: usize, conn: u64) -> LockOutcome {
        let mut syncs = lock(&self.syncs);
        let state = syncs.entry((user.to_owned(), sync.to_owned())).or_default();
        if state.holders.iter().any(|(holder, _)| holder == name) {
            return LockOutcome::Granted;
        }
        if state.waiters.is_empty() && state.holders.len() < slots.max(1) {
            state.holders.push((name.to_owned(), conn));
            return LockOutcome::Granted;
        }
        let (grant, granted) = oneshot::channel();
        let waiter = self.next_id();
        state.waiters.push_back(Waiter { id: waiter, lock: name.to_owned(), conn, slots, grant });
        LockOutcome::Wait { waiter, granted }
    }

    /// Gives up waiting; true if the waiter was still queued (so the lock was not granted).
    pub(crate) fn cancel_wait(&self, user: &str, sync: &str, waiter: u64) -> bool {
        let mut syncs = lock(&self.syncs);
        let key = (user.to_owned(), sync.to_owned());
        let Some(state) = syncs.get_mut(&key) else { return false };
        let before = state.waiters.len();
        state.waiters.retain(|w| w.id != waiter);
        let removed = state.waiters.len() != before;
        state.promote();
        if state.holders.is_empty() && state.waiters.is_empty() {
            syncs.remove(&key);
        }
        removed
    }

    /// Releases a sync lock; false if `name` does not hold it.
    pub(crate) fn unlock_sync(&self, user: &str, sync: &str, name: &str) -> bool {
        let mut syncs = lock(&self.syncs);
        let key = (user.to_owned(), sync.to_owned());
        let Some(state) = syncs.get_mut(&key) else { return false };
        let Some(pos) = state.holders.iter().position(|(holder, _)| holder == name) else { return false };
        state.holders.remove(pos);
        state.promote();
        if state.holders.is_empty() && state.waiters.is_empty() {
            syncs.remove(&key);
        }
        true
    }

    /// Releases every lock held, and every wait queued, by a connection.
    fn release_locks(&self, conn: u64) {
        let mut syncs = lock(&self.syncs);
        for state in syncs.values_mut() {
            state.holders.retain(|(_, c)| *c != conn);
            state.waiters.retain(|w| w.conn != conn);
            state.promote();
        }
        syncs.retain(|_, s| !s.holders.is_empty() || !s.waiters.is_empty());
    }

    /// The device timeout, for spawned waits.
    pub(crate) fn device_timeout(&self) -> Duration {
        self.config.device_timeout
    }
}

fn info(name: &str, e: &DeviceEntry) -> DeviceInfo {
    DeviceInfo {
        device: name.to_owned(),
        connected: e.live.is_some(),
        ts: e.live.as_ref().map_or(e.last_change, |l| l.since),
        address: e.live.as_ref().map(|l| l.address.clone()).or_else(|| e.last_address.clone()),
        transport: e.live.as_ref().map(|l| l.transport),
    }
}

/// MQTT topic filter matching: `+` matches one level, a final `#` the rest (including none).
pub(crate) fn topic_matches(filter: &str, topic: &str) -> bool {
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return f.next().is_none(),
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mqtt_filters() {
        assert!(topic_matches("home/t", "home/t"));
        assert!(!topic_matches("home/t", "home/h"));
        assert!(topic_matches("home/+", "home/t"));
        assert!(!topic_matches("home/+", "home/t/x"));
        assert!(topic_matches("home/#", "home/t/x"));
        assert!(topic_matches("home/#", "home"));
        assert!(topic_matches("#", "a/b"));
        assert!(!topic_matches("home/#/x", "home/a/x"));
        assert!(!topic_matches("a", "a/b"));
    }

    #[test]
    fn sync_slots_and_fifo() {
        let (_tx, rx) = watch::channel(false);
        let (ev, _) = mpsc::unbounded_channel();
        let store = Store::open(None, ev).unwrap();
        let hub = Hub::new(ServerConfig::local(), store, rx);
        assert!(matches!(hub.lock_sync("u", "s", "a", 2, 1), LockOutcome::Granted));
        assert!(matches!(hub.lock_sync("u", "s", "b", 2, 2), LockOutcome::Granted));
        let LockOutcome::Wait { mut granted, .. } = hub.lock_sync("u", "s", "c", 2, 3) else { panic!() };
        assert!(granted.try_recv().is_err());
        assert!(!hub.unlock_sync("u", "s", "zzz"));
        assert!(hub.unlock_sync("u", "s", "a"));
        assert!(granted.try_recv().is_ok());
        // c's connection goes away: its lock is released.
        hub.release_locks(3);
        assert!(!hub.unlock_sync("u", "s", "c"));
        assert!(hub.unlock_sync("u", "s", "b"));
    }
}
