//! Sends payments to their providers, off the request path: approved ones
//! are forwarded, `processing` ones are asked about until their outcome is
//! final (reconciling).
//!
//! Exactly once. A payment is claimed in the store before any provider call
//! is made for it, by one gateway's forwarder, until the claim's lease ends:
//! a decision that approves claims its payment in the same transaction (so
//! the hot path writes nothing more), the sweeps claim what is unclaimed or
//! whose lease lapsed (a gateway that died mid-forward) with a conditional
//! UPDATE that only one replica can win, and an outcome is recorded only
//! under the claim that sent it, and only once (`succeeded` and `failed` are
//! final). Every call is cut off at its deadline (`PURSER_PROVIDER_DEADLINE`)
//! as `processing`, and a lease is twice that plus a margin, so a lease
//! never runs out under a call still in flight. A crash between the call and the record leaves the payment
//! claimed; when the lease ends a sweep forwards it again under the same
//! reference (the provider's idempotency key), so it is never paid twice.
//!
//! Isolation. Each (provider, rail) lane forwards on its own, every payment
//! in a task of its own under the lane's concurrency bound: a provider that
//! hangs holds up only its own payments. Outcomes from all lanes are
//! recorded together, in batches, as they arrive.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;

use super::{ForwardRequest, Provider, Providers};
use crate::audit::AuditEvent;
use crate::clock::{format_ts, Clock};
use crate::model::{Failure, Payment, PaymentStatus};
use crate::store::{Claim, ForwardOutcome, Store, StoreError, WriteTx};

/// Most payments one sweep claims, and most outcomes one write records.
const BATCH: usize = 256;
/// How often unclaimed approved payments are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(2);
/// Added to a claim's lease beyond twice the call deadline: time for the
/// outcome to be recorded.
const LEASE_MARGIN: Duration = Duration::from_secs(5);
/// Provider calls in flight per lane.
const LANE_CONCURRENCY: usize = 64;

/// Handle to the forwarder; cheap to clone.
#[derive(Clone)]
pub struct Forwarder {
    approved: mpsc::UnboundedSender<Payment>,
    claims: Claims,
}

/// This gateway's claims: its token, and how long each lasts.
#[derive(Clone)]
struct Claims {
    token: Arc<str>,
    lease: chrono::Duration,
}

impl Claims {
    /// `deadline` is bounded by the configuration (at most half an hour).
    fn new(deadline: Duration) -> Claims {
        let lease = chrono::Duration::from_std(deadline * 2 + LEASE_MARGIN).expect("a bounded deadline");
        Claims { token: crate::ids::new("fwd").into(), lease }
    }

    fn at(&self, now: DateTime<Utc>) -> Claim {
        Claim { token: self.token.to_string(), until: format_ts(now + self.lease) }
    }
}

/// What is done with a claimed payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Forward,
    Status,
}

/// A finished call, waiting to be recorded.
enum Done {
    Outcome(Box<Payment>, ForwardOutcome),
    /// Not sent: the kill switch is engaged. The claim is given back so
    /// that the sweep forwards the payment once the switch is released.
    Halted(String),
}

impl Done {
    /// The agent whose data recording this changes (a halted payment only
    /// gives its claim back).
    fn agent_id(&self) -> Option<String> {
        match self {
            Done::Outcome(payment, _) => Some(payment.agent_id.clone()),
            Done::Halted(_) => None,
        }
    }
}

struct Worker {
    store: Store,
    providers: Providers,
    clock: Arc<dyn Clock>,
    claims: Claims,
    deadline: Duration,
    lanes: Mutex<HashMap<String, Arc<Semaphore>>>,
    done: mpsc::UnboundedSender<Done>,
}

impl Forwarder {
    /// Starts the forwarder: the lanes, the recorder, and the sweeps (approved
    /// payments every two seconds, `processing` ones every `reconcile_every`).
    /// A provider call is cut off after `deadline`.
    pub fn start(
        store: Store,
        providers: Providers,
        clock: Arc<dyn Clock>,
        reconcile_every: Duration,
        deadline: Duration,
    ) -> (Forwarder, Vec<JoinHandle<()>>) {
        let claims = Claims::new(deadline);
        let (approved, approved_rx) = mpsc::unbounded_channel();
        let (done, done_rx) = mpsc::unbounded_channel();
        let worker = Arc::new(Worker {
            store: store.clone(),
            providers,
            clock: clock.clone(),
            claims: claims.clone(),
            deadline,
            lanes: Mutex::default(),
            done,
        });
        let recorder = tokio::spawn(record_loop(store, clock, claims.token.clone(), done_rx));
        let sweeps = tokio::spawn(worker.clone().sweep_loop(reconcile_every));
        let fresh = tokio::spawn(worker.fresh_loop(approved_rx));
        (Forwarder { approved, claims }, vec![fresh, sweeps, recorder])
    }

    /// The claim a decision that approves a payment takes for this
    /// forwarder, in its own transaction; then [`Forwarder::notify`].
    pub fn claim(&self, now: DateTime<Utc>) -> Claim {
        self.claims.at(now)
    }

    /// Forwards a payment approved with [`Forwarder::claim`] now.
    pub fn notify(&self, payment: Payment) {
        // A closed channel means shutdown: the claim lapses and a sweep
        // (here after a restart, or on another replica) forwards it.
        let _ = self.approved.send(payment);
    }
}

impl Worker {
    async fn fresh_loop(self: Arc<Self>, mut approved: mpsc::UnboundedReceiver<Payment>) {
        while let Some(payment) = approved.recv().await {
            self.dispatch(payment, Call::Forward);
        }
    }

    async fn sweep_loop(self: Arc<Self>, reconcile_every: Duration) {
        let mut forward = tokio::time::interval(SWEEP_EVERY);
        let mut reconcile = tokio::time::interval(reconcile_every);
        loop {
            let (status, call, idle) = tokio::select! {
                _ = forward.tick() => (PaymentStatus::Approved, Call::Forward, Duration::ZERO),
                _ = reconcile.tick() => (PaymentStatus::Processing, Call::Status, reconcile_every),
            };
            if call == Call::Forward && self.store.kill_switch().is_some() {
                // Halted: approved payments wait, reserved, until release.
                continue;
            }
            match self.claim_stale(status, idle).await {
                Ok(payments) => payments.into_iter().for_each(|p| self.dispatch(p, call)),
                Err(e) => tracing::warn!(error = %e, ?status, "forwarder sweep could not claim payments"),
            }
        }
    }

    /// Claims payments in `status`, untouched for `idle`, that no live claim
    /// holds. A read first, so that an idle sweep writes nothing.
    async fn claim_stale(&self, status: PaymentStatus, idle: Duration) -> Result<Vec<Payment>, StoreError> {
        let now = self.clock.now();
        let before = format_ts(now - chrono::Duration::from_std(idle).unwrap_or_default());
        if !self.store.claimable(status, &before, &format_ts(now)).await? {
            return Ok(Vec::new());
        }
        let claim = self.claims.at(now);
        self.store
            .write(move |tx| {
                Box::pin(async move {
                    tx.claim_payments(status, &before, &claim, &format_ts(now), BATCH as u32).await
                })
            })
            .await
    }

    /// Calls the payment's provider in a task of its own, in its lane.
    fn dispatch(self: &Arc<Self>, payment: Payment, call: Call) {
        let worker = self.clone();
        let lane = self.lane(&payment);
        tokio::spawn(async move {
            let Ok(_permit) = lane.acquire_owned().await else { return };
            if worker.store.kill_switch().is_some() {
                let _ = worker.done.send(Done::Halted(payment.id));
                return;
            }
            let outcome = worker.call(&payment, call).await;
            let _ = worker.done.send(Done::Outcome(Box::new(payment), outcome));
        });
    }

    /// The concurrency bound of the payment's (provider, rail) lane.
    fn lane(&self, payment: &Payment) -> Arc<Semaphore> {
        let provider = payment.provider.as_ref().map_or("", |p| p.name.as_str());
        let key = format!("{provider}/{}", payment.rail);
        let mut lanes = self.lanes.lock().expect("lanes lock");
        lanes.entry(key).or_insert_with(|| Arc::new(Semaphore::new(LANE_CONCURRENCY))).clone()
    }

    async fn call(&self, payment: &Payment, call: Call) -> ForwardOutcome {
        let (provider, request) = match target(&self.providers, payment) {
            Ok(target) => target,
            Err(not_configured) if call == Call::Forward => return not_configured,
            // Not configured here says nothing about money that may have
            // moved: it stays processing.
            Err(_) => return ForwardOutcome::Processing { transaction_id: None },
        };
        let txn = payment.provider.as_ref().and_then(|p| p.transaction_id.clone());
        let sent = match call {
            Call::Forward => provider.forward(&request),
            Call::Status => provider.status(&request, txn.as_deref()),
        };
        match tokio::time::timeout(self.deadline, sent).await {
            Ok(outcome) if call == Call::Status => settled(outcome),
            Ok(outcome) => outcome,
            Err(_) => {
                tracing::warn!(payment = %payment.id, ?call, "provider call passed its deadline; left processing");
                ForwardOutcome::Processing { transaction_id: None }
            }
        }
    }
}

/// What a status answer means for a payment that may already have paid:
/// only the provider's word settles it. Not reaching the provider (circuit
/// open, connection refused) keeps it `processing`.
fn settled(outcome: ForwardOutcome) -> ForwardOutcome {
    match outcome {
        ForwardOutcome::Failed { code, .. } if code == "provider_unavailable" => {
            ForwardOutcome::Processing { transaction_id: None }
        }
        other => other,
    }
}

/// Records finished calls as they come, many per write.
async fn record_loop(
    store: Store,
    clock: Arc<dyn Clock>,
    token: Arc<str>,
    mut done: mpsc::UnboundedReceiver<Done>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while done.recv_many(&mut batch, BATCH).await > 0 {
        let (now, claim) = (clock.now(), token.clone());
        let finished = std::mem::take(&mut batch);
        // Only these payments' agents are touched: beside decisions.
        let agents = finished.iter().filter_map(Done::agent_id).collect();
        let recorded =
            store.write_for_agents(agents, move |tx| Box::pin(record(tx, finished, claim, now))).await;
        if let Err(e) = recorded {
            // Nothing was recorded; the payments keep their claim until
            // the lease ends, and are then sent again under the same
            // references.
            tracing::warn!(error = %e, "forwarder could not record provider outcomes");
        }
    }
}

/// Records each outcome held by `claim`, with its event and audit record;
/// a payment whose outcome was already recorded, or that another claim
/// holds, is skipped. Successes, the common case, are one statement for
/// the whole batch.
async fn record(
    tx: &mut WriteTx,
    finished: Vec<Done>,
    claim: Arc<str>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let claim = &*claim;
    let mut outcomes = Vec::with_capacity(finished.len());
    for done in finished {
        match done {
            Done::Outcome(payment, outcome) => outcomes.push((payment, outcome)),
            Done::Halted(id) => tx.release_claim(&id, claim).await?,
        }
    }
    let successes: Vec<(String, String)> = outcomes
        .iter()
        .filter_map(|(p, o)| match o {
            ForwardOutcome::Succeeded { transaction_id } => Some((p.id.clone(), transaction_id.clone())),
            _ => None,
        })
        .collect();
    let recorded: HashSet<String> =
        tx.record_successes(&successes, Some(claim), now).await?.into_iter().collect();
    for (payment, outcome) in outcomes {
        // The record as it now stands, for the webhook: the stored row plus
        // the outcome just written.
        let mut after = (*payment).clone();
        after.updated_at = format_ts(now);
        let (kind, data) = match &outcome {
            ForwardOutcome::Succeeded { transaction_id } => {
                if !recorded.contains(&payment.id) {
                    continue;
                }
                after.status = PaymentStatus::Succeeded;
                if let Some(p) = after.provider.as_mut() {
                    p.transaction_id = Some(transaction_id.clone());
                }
                ("payment.succeeded", json!({ "transaction_id": transaction_id }))
            }
            ForwardOutcome::Failed { code, message } => {
                if !tx.record_failure(&payment.id, code, message, claim, now).await? {
                    continue;
                }
                after.status = PaymentStatus::Failed;
                after.failure = Some(Failure { code: code.clone(), message: message.clone() });
                ("payment.failed", json!({ "code": code, "message": message }))
            }
            ForwardOutcome::Processing { transaction_id } => {
                let changed =
                    tx.record_processing(&payment.id, transaction_id.as_deref(), claim, now).await?;
                // Only the move into `processing` is news; later looks that
                // learn nothing new just push the next look out.
                if !changed || payment.status == PaymentStatus::Processing {
                    continue;
                }
                after.status = PaymentStatus::Processing;
                if let (Some(p), Some(id)) = (after.provider.as_mut(), transaction_id) {
                    p.transaction_id = Some(id.clone());
                }
                ("payment.processing", json!({ "transaction_id": transaction_id }))
            }
        };
        tx.emit(kind, &after, now);
        let provider = payment.provider.as_ref().map_or("none", |p| p.name.as_str());
        metrics::counter!("purser_provider_outcomes_total", "provider" => provider.to_owned(), "outcome" => kind)
            .increment(1);
        let event = AuditEvent::new(kind, format!("provider:{provider}"))
            .agent(&payment.agent_id)
            .subject(&payment.id)
            .data(data);
        tx.append_audit(event, now).await?;
    }
    Ok(())
}

/// The provider a payment goes to and what it is sent; a payment whose
/// provider is not configured here fails at once.
fn target(
    providers: &Providers,
    payment: &Payment,
) -> Result<(Arc<dyn Provider>, ForwardRequest), ForwardOutcome> {
    let not_configured =
        |message: String| ForwardOutcome::Failed { code: "provider_not_configured".into(), message };
    let Some(target) = &payment.provider else {
        return Err(not_configured("payment has no provider".into()));
    };
    let Some(provider) = providers.get(&target.name) else {
        return Err(not_configured(format!("provider {:?} is not configured on this gateway", target.name)));
    };
    let request = ForwardRequest {
        reference: target.reference.clone(),
        payment_id: payment.id.clone(),
        agent_id: payment.agent_id.clone(),
        amount: payment.amount.value,
        currency: payment.currency,
        merchant_id: payment.merchant_id.clone(),
        merchant_category: payment.merchant_category.clone(),
        rail: payment.rail.clone(),
        description: payment.description.clone(),
    };
    Ok((provider, request))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_providers_word_settles_a_payment() {
        let failed = |code: &str| ForwardOutcome::Failed { code: code.into(), message: String::new() };
        let unknown = ForwardOutcome::Processing { transaction_id: None };
        assert_eq!(settled(failed("provider_unavailable")), unknown);
        assert_eq!(settled(failed("insufficient_funds")), failed("insufficient_funds"));
        let done = ForwardOutcome::Succeeded { transaction_id: "t".into() };
        assert_eq!(settled(done.clone()), done);
    }

    #[test]
    fn a_claim_outlasts_its_call_and_a_recording_as_slow() {
        let claims = Claims::new(Duration::from_secs(60));
        assert_eq!(claims.lease, chrono::Duration::seconds(125));
        let now = DateTime::parse_from_rfc3339("2026-11-26T17:00:00Z").unwrap().to_utc();
        assert_eq!(claims.at(now).until, format_ts(now + chrono::Duration::seconds(125)));
        assert!(claims.token.starts_with("fwd_"));
    }
}
