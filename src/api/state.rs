//! What every handler and middleware shares: the services, plus what only
//! the HTTP layer needs (its settings, the rate limits, the credentials it
//! checks itself).

use std::sync::Arc;

use super::shared_budgets::SharedBudgets;
use super::RateLimits;
use crate::auth;
use crate::config::Config;
use crate::providers::Secret;
use crate::service::Services;
use crate::store::Backend;

pub struct AppState {
    pub svc: Arc<Services>,
    pub config: Config,
    pub limits: RateLimits,
    /// SHA-256 of the configured admin token; the token itself is dropped.
    admin_token_hash: Option<String>,
    /// SHA-256 of the metrics-only token, likewise.
    metrics_token_hash: Option<String>,
    /// Lithic's ASA signing secret, when card authorizations are enabled.
    pub asa_secret: Option<Secret>,
}

impl AppState {
    /// Takes the admin and metrics tokens out of `config` and keeps only
    /// their hashes.
    pub fn new(svc: Arc<Services>, mut config: Config, asa_secret: Option<Secret>) -> AppState {
        let admin_token_hash = config.admin_token.take().map(|t| auth::hash(&t));
        let metrics_token_hash = config.metrics_token.take().map(|t| auth::hash(&t));
        // Replicas share a PostgreSQL database, and so their budgets.
        let shared =
            (svc.store.backend() == Backend::Postgres).then(|| SharedBudgets::new(svc.store.clone()));
        let limits = RateLimits::new(&config, shared);
        AppState { svc, config, limits, admin_token_hash, metrics_token_hash, asa_secret }
    }

    /// Whether an admin token was configured (not minted by `--dev`).
    pub fn has_config_admin_token(&self) -> bool {
        self.admin_token_hash.is_some()
    }

    /// Whether `token` is the configured admin token (constant time).
    pub fn is_config_admin_token(&self, token: &str) -> bool {
        self.admin_token_hash.as_deref().is_some_and(|h| auth::ct_eq(h, &auth::hash(token)))
    }

    /// Whether `token` is the metrics-only token (constant time).
    pub fn is_metrics_token(&self, token: &str) -> bool {
        self.metrics_token_hash.as_deref().is_some_and(|h| auth::ct_eq(h, &auth::hash(token)))
    }
}
