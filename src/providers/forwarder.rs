//! Forwards approved payments to their providers, off the request path.
//!
//! `approved` is a durable queue: the decision commits first, then this
//! worker forwards and records the outcome. A crash in between leaves the
//! payment `approved`, and the sweep forwards it again after restart under
//! the same reference (the provider's idempotency key), so it is never paid
//! twice. Outcomes of one batch are written in one transaction.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::{ForwardRequest, Provider, Providers};
use crate::audit::AuditEvent;
use crate::clock::format_ts;
use crate::clock::Clock;
use crate::model::{Failure, Payment, PaymentStatus};
use crate::store::{ForwardOutcome, Store, StoreError, WriteTx};

pub(super) const BATCH: usize = 256;
const SWEEP_EVERY: Duration = Duration::from_secs(2);

/// Handle to the forwarding worker; cheap to clone.
#[derive(Clone)]
pub struct Forwarder {
    tx: mpsc::UnboundedSender<Payment>,
}

struct Worker {
    store: Store,
    providers: Providers,
    clock: Arc<dyn Clock>,
}

impl Forwarder {
    pub fn start(
        store: Store,
        providers: Providers,
        clock: Arc<dyn Clock>,
    ) -> (Forwarder, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let worker = Worker { store, providers, clock };
        (Forwarder { tx }, tokio::spawn(worker.run(rx)))
    }

    /// Asks for a just-approved payment to be forwarded now rather than at
    /// the next sweep.
    pub fn notify(&self, payment: Payment) {
        // A closed channel means shutdown; the sweep after restart covers it.
        let _ = self.tx.send(payment);
    }
}

impl Worker {
    async fn run(self, mut rx: mpsc::UnboundedReceiver<Payment>) {
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        loop {
            let mut batch = Vec::new();
            tokio::select! {
                n = rx.recv_many(&mut batch, BATCH) => if n == 0 { return },
                _ = sweep.tick() => {
                    // Only payments approved a while ago: fresh ones arrive
                    // through the channel, and forwarding twice, while harmless
                    // (same reference), is wasted work.
                    let before = self.clock.now() - chrono::Duration::from_std(SWEEP_EVERY).unwrap_or_default();
                    match self.store.stale_payments(PaymentStatus::Approved, before, BATCH as u32).await {
                        Ok(payments) => batch = payments,
                        Err(e) => {
                            tracing::warn!(error = %e, "forwarder sweep could not read the store");
                            continue;
                        }
                    }
                }
            }
            if self.store.kill_switch().is_some() {
                // Halted: the payments stay `approved` (reserved) and the
                // sweep forwards them once the switch is released.
                continue;
            }
            let outcomes = call_providers(&self.providers, batch, |provider, request, _| {
                Box::pin(async move { provider.forward(&request).await })
            })
            .await;
            if let Err(e) = record(&self.store, outcomes, self.clock.now()).await {
                // Nothing was recorded; the payments stay `approved` and the
                // next sweep retries them under the same references.
                tracing::warn!(error = %e, "forwarder could not record provider outcomes");
            }
        }
    }
}

/// One provider call: the provider, the request, and the provider's
/// transaction id if one is known.
type Call = fn(
    Arc<dyn Provider>,
    ForwardRequest,
    Option<String>,
) -> futures_util::future::BoxFuture<'static, ForwardOutcome>;

/// Runs `call` for every payment concurrently and collects the outcomes.
/// A payment whose provider is not configured here fails at once.
pub(super) async fn call_providers(
    providers: &Providers,
    payments: Vec<Payment>,
    call: Call,
) -> Vec<(Payment, ForwardOutcome)> {
    let mut calls = JoinSet::new();
    for payment in payments {
        match target(providers, &payment) {
            Ok((provider, request)) => {
                let txn = payment.provider.as_ref().and_then(|p| p.transaction_id.clone());
                calls.spawn(async move {
                    let outcome = call(provider, request, txn).await;
                    (payment, outcome)
                });
            }
            Err(outcome) => {
                calls.spawn(async move { (payment, outcome) });
            }
        }
    }
    let mut outcomes = Vec::new();
    while let Some(done) = calls.join_next().await {
        match done {
            Ok(pair) => outcomes.push(pair),
            Err(e) => tracing::error!(error = %e, "provider call panicked; left for the next sweep"),
        }
    }
    outcomes
}

pub(super) async fn record(
    store: &Store,
    outcomes: Vec<(Payment, ForwardOutcome)>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if outcomes.is_empty() {
        return Ok(());
    }
    store.write(move |tx| Box::pin(record_outcomes(tx, outcomes, now))).await
}

/// Records each outcome and its audit record; a payment whose outcome was
/// already recorded is skipped. Successes, the common case, are one
/// statement for the whole batch.
async fn record_outcomes(
    tx: &mut WriteTx,
    outcomes: Vec<(Payment, ForwardOutcome)>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let successes: Vec<(String, String)> = outcomes
        .iter()
        .filter_map(|(p, o)| match o {
            ForwardOutcome::Succeeded { transaction_id } => Some((p.id.clone(), transaction_id.clone())),
            _ => None,
        })
        .collect();
    let recorded: HashSet<String> = tx.record_successes(&successes, now).await?.into_iter().collect();
    for (payment, outcome) in outcomes {
        // The record as it now stands, for the webhook: the stored row plus
        // the outcome just written.
        let mut after = payment.clone();
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
                if !tx.record_failure(&payment.id, code, message, now).await? {
                    continue;
                }
                after.status = PaymentStatus::Failed;
                after.failure = Some(Failure { code: code.clone(), message: message.clone() });
                ("payment.failed", json!({ "code": code, "message": message }))
            }
            ForwardOutcome::Processing { transaction_id } => {
                let changed = tx.record_processing(&payment.id, transaction_id.as_deref(), now).await?;
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

/// The provider a payment goes to and what it is sent.
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
