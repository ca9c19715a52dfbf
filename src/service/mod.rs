//! Business operations: what the API, the console and the CLI call. They
//! combine the pure policy engine with the store; they know nothing about
//! HTTP. Every change to the store goes through a function here, and every
//! admin change is one [`Services::audited`] operation.

pub mod admins;
pub mod agents;
pub mod alerts;
pub mod allowance;
pub mod approvals;
pub mod audit;
pub mod cards;
pub mod console;
pub mod dev;
pub mod kill_switch;
pub mod payments;
pub mod retention;
pub mod secrets;
pub mod signing;
pub mod webhooks;

use std::path::Path;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;

use crate::audit::{Actor, AuditEvent};
use crate::clock::{format_ts, Clock};
use crate::error::{Error, Result};
use crate::policy::{LoadErrors, Policy, PolicySet};
use crate::providers::Forwarder;
use crate::store::{Store, WriteTx};
use crate::webhooks::secretbox::SecretBox;
use crate::webhooks::ssrf::TargetPolicy;

/// What the operations need: the store, the policies, the clock and the
/// few collaborators that act on their behalf. The HTTP layer wraps it with
/// its own state; background workers get only the parts they use.
pub struct Services {
    pub store: Store,
    pub policies: Policies,
    pub clock: Arc<dyn Clock>,
    pub forwarder: Forwarder,
    /// Seals and opens webhook signing secrets.
    pub secrets: SecretBox,
    /// Where webhook deliveries may go.
    pub webhook_targets: TargetPolicy,
    /// The anomaly signals' thresholds and per-minute counts.
    pub alerts: alerts::Alerts,
}

/// The moment and the author of one audited operation.
pub struct Act {
    pub now: DateTime<Utc>,
    /// `now` as stored (RFC 3339, fixed width).
    pub ts: String,
    actor: Actor,
}

impl Act {
    fn new(actor: Actor, now: DateTime<Utc>) -> Act {
        Act { now, ts: format_ts(now), actor }
    }

    /// An audit record of this operation, naming its actor and address.
    pub fn event(&self, kind: &'static str) -> AuditEvent {
        AuditEvent::by(kind, &self.actor)
    }
}

impl Services {
    /// Runs one audited operation: `op` gets a write transaction and the
    /// [`Act`] (time and actor) and answers its result with the audit record
    /// of what it did (or `None` when it found nothing to do). The change and
    /// the record commit together or not at all; an error undoes the
    /// operation alone.
    pub async fn audited<T, A, F>(&self, actor: &Actor, op: F) -> Result<T>
    where
        T: Send + 'static,
        A: Into<Option<AuditEvent>> + Send,
        F: for<'c> FnOnce(&'c mut WriteTx, &'c Act) -> BoxFuture<'c, Result<(T, A)>> + Send + 'static,
    {
        let (clock, actor) = (self.clock.clone(), actor.to_owned());
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    // Read under the write lock: the time the change commits.
                    let act = Act::new(actor, clock.now());
                    let (value, event) = op(tx, &act).await?;
                    if let Some(event) = event.into() {
                        tx.append_audit(event, act.now).await?;
                    }
                    Ok(value)
                })
            })
            .await
    }
}

/// The loaded policies. Reads clone an `Arc`, so a reload never blocks or
/// changes a decision in flight; a failed reload keeps the last good set.
pub struct Policies(RwLock<Arc<PolicySet>>);

impl Policies {
    pub fn new(set: PolicySet) -> Self {
        log_warnings(&set);
        Policies(RwLock::new(Arc::new(set)))
    }

    pub fn current(&self) -> Arc<PolicySet> {
        self.0.read().expect("policy lock").clone()
    }

    /// The policy named `name`; fail closed when it is not loaded (a reload
    /// removed it): nothing bound to it can be decided.
    pub fn require(&self, name: &str) -> Result<Arc<Policy>> {
        require(&self.current(), name)
    }

    pub fn reload(&self, dir: &Path) -> Result<usize, LoadErrors> {
        let set = PolicySet::load_dir(dir)?;
        log_warnings(&set);
        let n = set.len();
        *self.0.write().expect("policy lock") = Arc::new(set);
        Ok(n)
    }
}

/// A rule that can never apply loads, but the operator should hear of it.
fn log_warnings(set: &PolicySet) {
    for warning in set.warnings() {
        tracing::warn!(%warning, "policy rule never applies (`purser policy check` lists them)");
    }
}

/// `name` in `set`, or the fail-closed error for an agent bound to a policy
/// that is not loaded.
pub fn require(set: &PolicySet, name: &str) -> Result<Arc<Policy>> {
    set.get(name).ok_or_else(|| Error::PolicyUnavailable(format!("policy {name:?} is not loaded")))
}
