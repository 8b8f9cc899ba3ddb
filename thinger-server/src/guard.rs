//! Admission before authentication: a cap on connections that have not authenticated
//! (global and per address), and throttling of wrong credentials (per address and per
//! device) with failures logged in aggregate.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use crate::limits::Limits;

/// Entries kept before expired ones are pruned.
const PRUNE_AT: usize = 4096;
/// First delay after the allowed failures; it doubles with every further failure.
const BASE_DELAY: Duration = Duration::from_millis(100);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Failed authentications of one address or one device.
struct Failures {
    count: u32,
    /// Until when the next attempt is delayed (address: refused; device: answered late).
    until: Instant,
    /// Failures not yet logged, and when the last log line was written.
    unlogged: u64,
    logged_at: Option<Instant>,
}

#[derive(Default)]
struct Pending {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// Shared admission state.
pub(crate) struct Guard {
    limits: Limits,
    pending: Arc<Mutex<Pending>>,
    by_address: Mutex<HashMap<IpAddr, Failures>>,
    by_device: Mutex<HashMap<(String, String), Failures>>,
    refused: AtomicUsize,
}

/// A place among the connections that have not authenticated; given back when dropped.
pub(crate) struct Permit {
    pending: Arc<Mutex<Pending>>,
    address: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut p = lock(&self.pending);
        p.total = p.total.saturating_sub(1);
        if let Some(n) = p.by_address.get_mut(&self.address) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                p.by_address.remove(&self.address);
            }
        }
    }
}

/// Why a new connection is not let in.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Too many connections are waiting to authenticate (globally or from this address).
    Busy,
    /// This address sent wrong credentials too often; it may retry after the delay.
    LockedOut(Duration),
}

impl Guard {
    pub(crate) fn new(limits: Limits) -> Guard {
        Guard {
            limits,
            pending: Arc::default(),
            by_address: Mutex::default(),
            by_device: Mutex::default(),
            refused: AtomicUsize::new(0),
        }
    }

    /// Lets a new connection in (until it authenticates or closes), or says why not.
    pub(crate) fn admit(&self, address: IpAddr) -> Result<Permit, Refusal> {
        let now = Instant::now();
        if let Some(f) = lock(&self.by_address).get(&address)
            && f.until > now
        {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::LockedOut(f.until - now));
        }
        let mut p = lock(&self.pending);
        let here = p.by_address.get(&address).copied().unwrap_or(0);
        if p.total >= self.limits.max_unauthenticated || here >= self.limits.max_unauthenticated_per_address {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::Busy);
        }
        p.total += 1;
        *p.by_address.entry(address).or_default() += 1;
        Ok(Permit { pending: Arc::clone(&self.pending), address })
    }

    /// Connections refused so far (busy or locked out).
    pub(crate) fn refused(&self) -> usize {
        self.refused.load(Ordering::Relaxed)
    }

    /// Records wrong credentials from `address` for `user`/`device`; returns how long to wait
    /// before answering (the device's delay). Logs one line per address per interval.
    pub(crate) fn failed(&self, address: IpAddr, user: &str, device: &str) -> Duration {
        let now = Instant::now();
        {
            let mut map = lock(&self.by_address);
            let f = record(&mut map, address, now, &self.limits);
            f.unlogged += 1;
            let due = f.logged_at.is_none_or(|at| now.duration_since(at) >= self.limits.auth_log_interval);
            if due {
                tracing::warn!(
                    %address,
                    failures = f.unlogged,
                    total = f.count,
                    "failed authentications from this address (last: {user}/{device})"
                );
                f.unlogged = 0;
                f.logged_at = Some(now);
            }
        }
        let mut map = lock(&self.by_device);
        let f = record(&mut map, (user.to_owned(), device.to_owned()), now, &self.limits);
        f.until.saturating_duration_since(now)
    }

    /// Forgets the failures of a device that authenticated.
    pub(crate) fn succeeded(&self, user: &str, device: &str) {
        let mut map = lock(&self.by_device);
        if !map.is_empty() {
            map.remove(&(user.to_owned(), device.to_owned()));
        }
    }
}

/// Counts one failure under `key` and sets its delay (none within the allowed failures).
fn record<'a, K: std::hash::Hash + Eq>(
    map: &'a mut HashMap<K, Failures>,
    key: K,
    now: Instant,
    limits: &Limits,
) -> &'a mut Failures {
    if map.len() >= PRUNE_AT {
        // Forget what has been quiet for the longest delay.
        map.retain(|_, f| f.until + limits.auth_max_delay > now);
    }
    let f = map.entry(key).or_insert(Failures { count: 0, until: now, unlogged: 0, logged_at: None });
    f.count = f.count.saturating_add(1);
    if let Some(over) = f.count.checked_sub(limits.auth_failures_allowed).filter(|o| *o > 0) {
        let delay = BASE_DELAY.saturating_mul(1u32 << (over - 1).min(20)).min(limits.auth_max_delay);
        f.until = now + delay;
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_address_and_global() {
        let limits = Limits { max_unauthenticated: 3, max_unauthenticated_per_address: 2, ..Limits::default() };
        let guard = Guard::new(limits);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let p1 = guard.admit(a).unwrap();
        let _p2 = guard.admit(a).unwrap();
        assert_eq!(guard.admit(a).err(), Some(Refusal::Busy));
        let _p3 = guard.admit(b).unwrap();
        assert_eq!(guard.admit(b).err(), Some(Refusal::Busy), "global cap");
        drop(p1);
        assert!(guard.admit(a).is_ok());
    }

    #[tokio::test]
    async fn failures_lock_the_address_out_with_a_growing_delay() {
        let limits = Limits { auth_failures_allowed: 2, ..Limits::default() };
        let guard = Guard::new(limits);
        let a: IpAddr = [10, 0, 0, 1].into();
        assert_eq!(guard.failed(a, "u", "d"), Duration::ZERO);
        assert!(guard.admit(a).is_ok());
        assert_eq!(guard.failed(a, "u", "d"), Duration::ZERO);
        let first = guard.failed(a, "u", "d");
        assert!(first > Duration::ZERO && first <= BASE_DELAY);
        assert!(matches!(guard.admit(a), Err(Refusal::LockedOut(_))));
        let second = guard.failed(a, "u", "d");
        assert!(second > first);
        assert!(guard.admit([10, 0, 0, 2].into()).is_ok(), "another address is not affected");
        guard.succeeded("u", "d");
    }
}
