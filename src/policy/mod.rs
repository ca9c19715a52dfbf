//! The policy engine: pure, synchronous, no I/O.
//!
//! `load` turns `policies/*.toml` into a validated [`PolicySet`];
//! [`Policy::decide`] turns a payment and a [`Snapshot`] (the agent's facts,
//! its spend, the kill switch, the time) into a [`Verdict`]. The store
//! supplies the snapshot and applies the verdict atomically; nothing here
//! knows about storage or HTTP.

mod cases;
mod decide;
mod directory;
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
use utoipa::ToSchema;

use crate::money::Currency;

pub use cases::{run_case_sources, run_cases, CaseFailure, CaseReport};
pub use decide::{Channel, Crossing, Snapshot, Verdict, WARN_AT_PERCENT};
pub use directory::{Categorized, Directory, UnknownMerchants};
pub use load::{
    Diagnostic, LoadErrors, ALL_SCOPE, BUILTIN_SCOPES, DEFAULT_BLOCKED_CATEGORIES, EXTRA_CATEGORIES,
};
pub use schedule::Schedule;
pub use windows::{WindowEnds, WindowKeys};

/// Picks the row of the default limit ladder for limits the agent's policy
/// leaves unset (low 50/100/500/1000, medium 500/1000/5000/10000, high
/// 5000/10000/50000/100000 per tx/day/week/month; see `ladder.rs`).
/// `custom` means no ladder: only the policy's own limits apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TrustLevel {
    Low,
    Medium,
    High,
    /// No ladder: only limits the policy sets apply. Valid as a policy pin,
    /// and as an agent level (then only policies' own limits apply).
    Custom,
}

/// Stable reason codes:
/// - `per_tx_limit`: The amount (plus fee) is above the per-transaction limit.
/// - `daily_limit`, `weekly_limit`, `monthly_limit`: The payment would take
///   the window's reserved spend above its limit.
/// - `lifetime_limit`: A lifetime limit (of the policy or of a matching
///   merchant entry) would be exceeded.
/// - `velocity_limit`: Too many payments in a trailing window
///   (`limit`/`attempted` are counts).
/// - `merchant_not_allowed`: The policy has a merchant allowlist and neither
///   the merchant id nor the category is on it (or the entry expired).
/// - `merchant_denied`: The merchant id or category is on the policy's
///   denylist (a deny match wins over any allow).
/// - `merchant_per_tx_limit`: The amount is above the matching allowlist
///   entry's `max_per_tx`.
/// - `category_blocked`: The merchant category is blocked (default:
///   gambling, alcohol, tobacco, adult, weapons).
/// - `outside_schedule`: The payment is outside the allowed days/hours in
///   the policy's time zone.
/// - `scope_not_allowed`: The merchant category is not covered by the
///   policy's `allowed_scopes`.
/// - `category_unknown`: The payment declares no category, the merchant
///   directory does not know the merchant, and the policy's rules depend on
///   categories (`unknown_merchants = "deny"`, the default).
/// - `currency_not_allowed`: The policy does not accept this currency.
/// - `rail_not_allowed`: The policy does not allow this rail.
/// - `agent_frozen`: The agent is frozen by an admin.
/// - `approval_required`: The amount is above the approval threshold (or
///   above the new-merchant share of it for a first payment to a merchant):
///   a human must approve. On a standing card's authorization, which cannot
///   wait, the payment is denied with this reason instead.
/// - `kill_switch`: not a policy rule: the gateway's kill switch is engaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
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
    CategoryUnknown,
    CurrencyNotAllowed,
    RailNotAllowed,
    AgentFrozen,
    ApprovalRequired,
    /// Not a policy rule: the gateway's kill switch is engaged (added by
    /// the payment service, never by the engine).
    KillSwitch,
}

/// All rules are evaluated; any failed deny rule gives `deny`; otherwise,
/// if approval is needed, `require_approval`; otherwise `approve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Approve,
    Deny,
    RequireApproval,
}

/// One rule that failed (or, for `approval_required`, why a human must
/// approve).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Reason {
    pub code: ReasonCode,
    /// Human-readable explanation.
    pub message: String,
    /// The limit that applied, in the policy's base currency (a count for
    /// `velocity_limit`). Present for amount and count rules only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub limit: Option<String>,
    /// What the payment would have reached, in the same unit as `limit`.
    /// Present for amount and count rules only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub attempted: Option<String>,
}

/// The policy decision. A denial lists every rule that failed, not only the
/// first (in the order of the `ReasonCode` enum); `approve` has no reasons;
/// `require_approval` has one `approval_required` reason. A standing card's
/// authorization cannot wait for a human: what would be `require_approval`
/// is `deny`, with that one `approval_required` reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Decision {
    pub outcome: Outcome,
    pub reasons: Vec<Reason>,
    /// Name of the policy that decided.
    #[schema(example = "low-trust")]
    pub policy: String,
    /// Content hash of the policy version that decided.
    #[schema(pattern = "^sha256:[0-9a-f]{64}$")]
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
    /// The merchant directory of the whole set (from `[merchants]` tables).
    pub directory: Arc<Directory>,
    /// What to do with an unknown merchant and no category, where
    /// categories matter.
    pub unknown_merchants: UnknownMerchants,
}

/// scope name -> merchant categories it covers.
pub type ScopeMap = BTreeMap<String, Vec<String>>;

/// All policies loaded from a directory.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    policies: BTreeMap<String, Arc<Policy>>,
    /// Rules that can never apply (see `load/checks.rs`): the set loads,
    /// and `policy check` and the server's log say where they are.
    warnings: Vec<Diagnostic>,
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

    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    /// Every policy, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Policy>> {
        self.policies.values()
    }
}

#[cfg(test)]
mod tests;
