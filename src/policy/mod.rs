//! The policy engine: pure, synchronous, no I/O.
//!
//! `load` turns `policies/*.toml` into a validated [`PolicySet`];
//! [`Policy::evaluate`] turns a payment, the agent's facts and a snapshot of
//! its spend into a [`Decision`]. The store supplies the snapshot and applies
//! the decision atomically; nothing here knows about storage or HTTP.

mod cases;
mod evaluate;
pub mod ladder;
mod load;
mod schedule;
mod windows;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::money::Currency;

pub use cases::{run_case_sources, run_cases, CaseFailure, CaseReport};
pub use load::{
    LoadError, LoadErrors, ALL_SCOPE, BUILTIN_SCOPES, DEFAULT_BLOCKED_CATEGORIES, EXTRA_CATEGORIES,
};
pub use schedule::Schedule;
pub use windows::{WindowEnds, WindowKeys};

/// Trust levels pick a row of the default limit ladder (see `ladder.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrustLevel {
    Low,
    Medium,
    High,
    /// No ladder: only limits the policy sets apply. Valid as a policy pin,
    /// and as an agent level (then only policies' own limits apply).
    Custom,
}

/// Stable reason codes; the wire contract (DESIGN.md) names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonCode {
    PerTxLimit,
    DailyLimit,
    WeeklyLimit,
    MonthlyLimit,
    LifetimeLimit,
    VelocityLimit,
    MerchantNotAllowed,
    MerchantDenied,
    MerchantPerTxLimit,
    CategoryBlocked,
    OutsideSchedule,
    ScopeNotAllowed,
    CurrencyNotAllowed,
    RailNotAllowed,
    AgentFrozen,
    ApprovalRequired,
    /// Not a policy rule: the gateway's kill switch is engaged (added by
    /// the payment service, never by the engine).
    KillSwitch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Approve,
    Deny,
    RequireApproval,
}

/// One failed rule. `limit` and `attempted` are in the policy's base
/// currency and present for amount rules (and as counts for velocity).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    pub code: ReasonCode,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempted: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub outcome: Outcome,
    pub reasons: Vec<Reason>,
    pub policy: String,
    pub policy_version: String,
}

/// What the engine needs to know about the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentFacts {
    pub trust_level: TrustLevel,
    pub frozen: bool,
}

/// A payment as the engine sees it. `amount`/`fee` are already validated for
/// `currency`'s precision by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentFacts {
    pub amount: Decimal,
    pub fee: Decimal,
    pub currency: Currency,
    /// Lower-cased by the caller.
    pub merchant_id: String,
    /// Lower-cased by the caller; `None` when the client sent none.
    pub merchant_category: Option<String>,
    pub rail: String,
}

/// Reserved spend the store read inside the same transaction that will apply
/// the decision. Amounts are in the policy's base currency.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpendSnapshot {
    pub day: Decimal,
    pub week: Decimal,
    pub month: Decimal,
    pub lifetime: Decimal,
    /// Lifetime reserved at this merchant id.
    pub merchant: Decimal,
    /// Lifetime reserved in this merchant category.
    pub category: Decimal,
    /// Whether the agent has any reserved or succeeded payment at this
    /// merchant before (drives the new-merchant approval rule).
    pub merchant_seen: bool,
    /// Reservations in each velocity rule's trailing window, aligned with
    /// [`Policy::velocity_rules`] for the same agent facts.
    pub velocity: Vec<u32>,
}

/// Max `max` reservations in any trailing `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VelocityRule {
    pub max: u32,
    pub per: Duration,
}

/// Allowlist or denylist entry: matches by merchant id or by category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerchantRule {
    pub target: MerchantTarget,
    pub max_per_tx: Option<Decimal>,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub lifetime_limit: Option<Decimal>,
    pub schedule: Option<Schedule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MerchantTarget {
    MerchantId(String),
    Category(String),
}

/// The limits a policy sets itself; unset ones fall back to the ladder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    pub per_tx: Option<Decimal>,
    pub daily: Option<Decimal>,
    pub weekly: Option<Decimal>,
    pub monthly: Option<Decimal>,
    pub lifetime: Option<Decimal>,
}

/// One validated, named policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub name: String,
    /// `sha256:<hex>` of the policy's canonical content and the scope table
    /// it was evaluated with.
    pub version: String,
    /// File it came from, for messages.
    pub source: String,
    /// Free text from the policy's optional `description` key.
    pub description: Option<String>,
    pub trust_level: Option<TrustLevel>,
    pub currency: Currency,
    /// Accepted currencies: the base currency plus stablecoins pegged to it.
    pub currencies: Vec<Currency>,
    pub rails: Vec<String>,
    /// rail -> provider name; rails not listed use "sandbox".
    pub providers: BTreeMap<String, String>,
    pub limits: Limits,
    /// `None` = take the ladder's velocity rules.
    pub velocity: Option<Vec<VelocityRule>>,
    pub timezone: Tz,
    pub allowed_scopes: Vec<String>,
    pub blocked_categories: Vec<String>,
    pub merchant_allowlist: Vec<MerchantRule>,
    pub merchant_denylist: Vec<MerchantRule>,
    pub schedule: Option<Schedule>,
    pub approval_threshold: Option<Decimal>,
    pub new_merchant_approval_ratio: Decimal,
    pub approvals_required: u32,
    pub approval_timeout: Duration,
    /// The merged scope table (built-in defaults plus every file's
    /// `[scopes]`) this policy was validated with.
    pub(crate) scopes: Arc<ScopeMap>,
    /// Categories covered by `allowed_scopes`, sorted; `None` when "all".
    pub(crate) allowed_categories: Option<Vec<String>>,
}

/// scope name -> merchant categories it covers.
pub type ScopeMap = BTreeMap<String, Vec<String>>;

/// All policies loaded from a directory.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    policies: BTreeMap<String, Arc<Policy>>,
}

impl PolicySet {
    pub fn get(&self, name: &str) -> Option<Arc<Policy>> {
        self.policies.get(name).cloned()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.policies.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.policies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// Every policy, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Policy>> {
        self.policies.values()
    }
}

#[cfg(test)]
mod tests;
