//! Payment providers. The payment flow talks to [`Provider`] without knowing
//! which one it is; the policy maps a payment's rail to a provider name and
//! [`Providers`] resolves the name.
//!
//! Exactly-once is a contract every adapter keeps:
//! - `forward` is idempotent on [`ForwardRequest::reference`]: calling it
//!   again for the same payment never moves money twice (the reference, or
//!   a key derived from it, is the provider's idempotency key);
//! - an answer that does not prove the money did *not* move is
//!   [`ForwardOutcome::Processing`], never `Failed`: the payment keeps its
//!   reservation and the [`Forwarder`] asks `status` until it is final.

pub mod circle;
mod config;
mod forwarder;
mod http;
pub mod lithic;
mod sandbox;
mod secret;
pub mod turnkey;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use rust_decimal::Decimal;

pub use config::{ProviderSettings, ProvidersFile};
pub use forwarder::Forwarder;
pub use http::{CallError, HttpSettings, ProviderClient, Reply, Retry};
pub use sandbox::Sandbox;
pub use secret::Secret;

use crate::money::Currency;
pub use crate::store::ForwardOutcome;

/// What is sent to a provider for one approved payment.
#[derive(Debug, Clone)]
pub struct ForwardRequest {
    /// Purser's reference for this forward (`fwd_` + the payment's ULID);
    /// adapters derive their idempotency keys from it, so a retried forward
    /// never pays twice.
    pub reference: String,
    pub payment_id: String,
    pub agent_id: String,
    pub amount: Decimal,
    pub currency: Currency,
    pub merchant_id: String,
    pub merchant_category: Option<String>,
    pub rail: String,
    pub description: Option<String>,
}

impl ForwardRequest {
    /// When purser decided to forward this payment: the time in the
    /// reference's ULID, minted at approval. Stable across retries, so it
    /// can go into bodies that must be byte-identical on every attempt
    /// (Turnkey's `timestampMs`) or bound a search for an earlier attempt
    /// (Lithic's card listing).
    pub fn decided_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        let ulid =
            ulid::Ulid::from_string(&self.reference.strip_prefix("fwd_")?.to_ascii_uppercase()).ok()?;
        chrono::DateTime::from_timestamp_millis(i64::try_from(ulid.timestamp_ms()).ok()?)
    }
}

pub trait Provider: Send + Sync {
    fn name(&self) -> &'static str;

    /// Submits the payment. Idempotent on `req.reference`.
    fn forward<'a>(&'a self, req: &'a ForwardRequest) -> BoxFuture<'a, ForwardOutcome>;

    /// Where a payment that answered `Processing` stands now.
    /// `transaction_id` is the provider's id if one is known; without it,
    /// adapters resubmit under the same idempotency key, which returns the
    /// existing transaction if the first request was accepted.
    fn status<'a>(
        &'a self,
        req: &'a ForwardRequest,
        transaction_id: Option<&'a str>,
    ) -> BoxFuture<'a, ForwardOutcome>;
}

/// The configured providers by name.
#[derive(Clone, Default)]
pub struct Providers(BTreeMap<&'static str, Arc<dyn Provider>>);

impl Providers {
    /// The sandbox plus every provider configured in `settings`.
    pub fn new(settings: &ProviderSettings) -> anyhow::Result<Self> {
        let mut providers = Providers::default();
        providers.insert(Arc::new(Sandbox));
        for provider in settings.build()? {
            providers.insert(provider);
        }
        Ok(providers)
    }

    fn insert(&mut self, provider: Arc<dyn Provider>) {
        self.0.insert(provider.name(), provider);
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn Provider>> {
        self.0.get(name).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_carry_the_time_of_the_decision() {
        let mut req = ForwardRequest {
            reference: crate::model::ProviderRef::forward("sandbox").reference,
            payment_id: "pay_1".into(),
            agent_id: "agt_1".into(),
            amount: Decimal::ONE,
            currency: Currency::Usd,
            merchant_id: "m".into(),
            merchant_category: None,
            rail: "card".into(),
            description: None,
        };
        let at = req.decided_at().unwrap();
        assert!((chrono::Utc::now() - at).num_seconds().abs() < 5);
        req.reference = format!("fwd_{}", ulid::Ulid::from_parts(1_764_176_400_000, 7));
        assert_eq!(req.decided_at().unwrap().timestamp_millis(), 1_764_176_400_000);
        for bad in ["fwd_1", "pay_01jdxzq0000000000000000000", "01jdxzq0000000000000000000"] {
            req.reference = bad.into();
            assert_eq!(req.decided_at(), None, "{bad}");
        }
    }
}
