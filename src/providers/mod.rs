//! Payment providers. The payment flow talks to [`Provider`] without knowing
//! which one it is; the policy maps a payment's rail to a provider name and
//! [`Providers`] resolves the name.

mod forwarder;
mod sandbox;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::future::BoxFuture;

pub use forwarder::Forwarder;
pub use sandbox::Sandbox;

use crate::store::ForwardOutcome;

/// What is sent to a provider for one approved payment.
#[derive(Debug, Clone)]
pub struct ForwardRequest {
    /// Purser's reference for this forward; providers that support it get
    /// it as their idempotency key, so a retried forward never pays twice.
    pub reference: String,
    pub payment_id: String,
    pub amount: String,
    pub currency: String,
    pub merchant_id: String,
    pub rail: String,
}

pub trait Provider: Send + Sync {
    fn name(&self) -> &'static str;
    fn forward<'a>(&'a self, req: &'a ForwardRequest) -> BoxFuture<'a, ForwardOutcome>;
}

/// The configured providers by name.
#[derive(Clone, Default)]
pub struct Providers(BTreeMap<&'static str, Arc<dyn Provider>>);

impl Providers {
    /// The providers available in this build: the sandbox.
    pub fn builtin() -> Self {
        let mut map: BTreeMap<&'static str, Arc<dyn Provider>> = BTreeMap::new();
        let sandbox = Arc::new(Sandbox);
        map.insert(sandbox.name(), sandbox);
        Providers(map)
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn Provider>> {
        self.0.get(name).cloned()
    }
}
