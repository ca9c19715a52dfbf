//! Rate-limit budgets that every replica on one PostgreSQL database spends
//! together, so N replicas do not grant N times a credential's budget.
//!
//! The budget lives in the database (`Store::take_from_budget`, a GCRA on
//! the database's clock). To keep the round trip off most requests, a
//! replica takes a lease of a tenth of a budget (at least one request) at a
//! time and spends it locally; the lease lapses after the time those
//! requests stand for. Every request a replica grants was taken from the
//! shared budget first, so all replicas together never grant more than the
//! budget: leases can only make a replica refuse a little early (its
//! neighbour holds part of the budget), never overshoot.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::store::Store;

/// Takes from the database between two clean-ups of full budgets.
const FORGET_EVERY: u64 = 10_000;

/// What the replica may still grant of a subject's budget without asking.
struct Lease {
    requests: u32,
    until: Instant,
}

pub struct SharedBudgets {
    store: Store,
    leases: Mutex<HashMap<String, Lease>>,
    takes: AtomicU64,
}

impl SharedBudgets {
    pub fn new(store: Store) -> Self {
        SharedBudgets { store, leases: Mutex::default(), takes: AtomicU64::new(0) }
    }

    /// Grants one request of `key` from its budget of `per_minute`, or
    /// answers how long until one would be granted.
    pub async fn take(&self, key: &str, per_minute: NonZeroU32) -> Result<(), Wait> {
        if self.spend_leased(key) {
            return Ok(());
        }
        let interval_us = 60_000_000 / i64::from(per_minute.get());
        let period_us = interval_us * i64::from(per_minute.get());
        let lease = (per_minute.get() / 10).max(1);
        if self.takes.fetch_add(1, Ordering::Relaxed) % FORGET_EVERY == FORGET_EVERY - 1 {
            if let Err(e) = self.store.forget_full_budgets().await {
                tracing::warn!(error = %e, "could not forget full rate-limit budgets");
            }
        }
        let mut wait_us = 0;
        // A whole lease if the budget has it, else the one request.
        for requests in if lease > 1 { vec![lease, 1] } else { vec![1] } {
            match self.store.take_from_budget(key, requests, interval_us, period_us).await {
                Ok(None) => {
                    if requests > 1 {
                        // Added to what a concurrent request may have
                        // leased meanwhile: both were paid for.
                        let until = Instant::now()
                            + Duration::from_micros((interval_us * i64::from(requests)) as u64);
                        let mut leases = self.leases.lock().expect("lease lock");
                        let lease = leases.entry(key.to_owned()).or_insert(Lease { requests: 0, until });
                        lease.requests += requests - 1;
                        lease.until = lease.until.max(until);
                    }
                    return Ok(());
                }
                Ok(Some(wait)) => wait_us = wait,
                Err(e) => return Err(Wait::Unavailable(e.into())),
            }
        }
        Err(Wait::For(Duration::from_micros(wait_us as u64)))
    }

    fn spend_leased(&self, key: &str) -> bool {
        let mut leases = self.leases.lock().expect("lease lock");
        match leases.get_mut(key) {
            Some(lease) if lease.requests > 0 && lease.until > Instant::now() => {
                lease.requests -= 1;
                true
            }
            Some(_) => {
                leases.remove(key);
                false
            }
            None => false,
        }
    }

    /// Drops lapsed leases (memory stays bounded by recent callers).
    pub fn sweep(&self) {
        let now = Instant::now();
        self.leases.lock().expect("lease lock").retain(|_, lease| lease.until > now && lease.requests > 0);
    }
}

/// Why a request was not granted.
pub enum Wait {
    /// The budget is spent; one request is granted again after this.
    For(Duration),
    /// The database could not be asked: the request is refused (fail
    /// closed), as it could not be served anyway.
    Unavailable(Error),
}
