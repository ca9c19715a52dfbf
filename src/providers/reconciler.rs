//! Settles `processing` payments: asks their providers where each stands,
//! every `PURSER_RECONCILE_INTERVAL`, until the answer is final.
//!
//! A payment only leaves `processing` on the provider's word. Not reaching
//! the provider (circuit open, connection refused) or not finding it in
//! this gateway's configuration says nothing about money that may already
//! have moved, so those keep the payment, and its reservation, as it is.

use std::sync::Arc;
use std::time::Duration;

use super::forwarder::{call_providers, record, BATCH};
use super::Providers;
use crate::clock::Clock;
use crate::model::PaymentStatus;
use crate::store::{ForwardOutcome, Store};

pub struct Reconciler {
    store: Store,
    providers: Providers,
    clock: Arc<dyn Clock>,
    every: Duration,
}

impl Reconciler {
    pub fn start(
        store: Store,
        providers: Providers,
        clock: Arc<dyn Clock>,
        every: Duration,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(Reconciler { store, providers, clock, every }.run())
    }

    async fn run(self) {
        let mut tick = tokio::time::interval(self.every);
        loop {
            tick.tick().await;
            if let Err(e) = self.round().await {
                tracing::warn!(error = %e, "reconciler round failed; retrying next interval");
            }
        }
    }

    async fn round(&self) -> Result<(), crate::store::StoreError> {
        let before = self.clock.now() - chrono::Duration::from_std(self.every).unwrap_or_default();
        let due = self.store.stale_payments(PaymentStatus::Processing, before, BATCH as u32).await?;
        if due.is_empty() {
            return Ok(());
        }
        let outcomes = call_providers(&self.providers, due, |provider, request, txn| {
            Box::pin(async move { provider.status(&request, txn.as_deref()).await })
        })
        .await;
        let outcomes = outcomes.into_iter().map(|(p, o)| (p, settled(o))).collect();
        record(&self.store, outcomes, self.clock.now()).await
    }
}

/// What a status answer means for a payment that may already have paid.
fn settled(outcome: ForwardOutcome) -> ForwardOutcome {
    match outcome {
        ForwardOutcome::Failed { code, .. }
            if code == "provider_unavailable" || code == "provider_not_configured" =>
        {
            ForwardOutcome::Processing { transaction_id: None }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_providers_word_settles_a_payment() {
        let failed = |code: &str| ForwardOutcome::Failed { code: code.into(), message: String::new() };
        let unknown = ForwardOutcome::Processing { transaction_id: None };
        assert_eq!(settled(failed("provider_unavailable")), unknown);
        assert_eq!(settled(failed("provider_not_configured")), unknown);
        assert_eq!(settled(failed("insufficient_funds")), failed("insufficient_funds"));
        let done = ForwardOutcome::Succeeded { transaction_id: "t".into() };
        assert_eq!(settled(done.clone()), done);
    }
}
