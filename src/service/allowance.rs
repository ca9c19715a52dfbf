//! What an agent may still spend: its policy as it applies to that agent
//! (ladder limits filled in), and its reserved spend in each window. Agents
//! read their own (`policies:read`) to plan instead of probing with
//! payments; admins read anyone's; approvers see the daily part.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use utoipa::ToSchema;

use super::Services;
use crate::clock::format_ts;
use crate::error::{Error, Result};
use crate::model::{Agent, DecimalString, Timestamp};
use crate::money::{format_exact, Currency};
use crate::policy::{
    AgentFacts, MerchantRule, MerchantTarget, Policy, SpendSnapshot, TrustLevel, VelocityRule, WindowEnds,
};
use crate::store::SpendQuery;

/// An agent's policy as it applies to that agent (ladder limits filled in
/// for the ones the policy leaves unset) and its reserved spend now. Reading
/// it changes nothing; a payment is still decided on its own, atomically,
/// so the numbers may have moved by then.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = AgentPolicy)]
pub struct Allowance {
    #[schema(pattern = "^agt_[0-9a-z]{26}$")]
    pub agent_id: String,
    /// The policy's name.
    pub policy: String,
    /// As in a payment's `decision.policy_version`.
    #[schema(pattern = "^sha256:[0-9a-f]{64}$")]
    pub policy_version: String,
    pub description: Option<String>,
    /// The ladder row that applies: the policy's pin, else the agent's.
    pub trust_level: TrustLevel,
    /// A frozen agent's payments are all denied (`agent_frozen`), whatever
    /// remains below.
    pub frozen: bool,
    /// The policy's base currency: every limit and amount here is in it.
    #[schema(value_type = Currency)]
    pub currency: &'static str,
    /// Currencies payments may be made in.
    #[schema(value_type = Vec<Currency>)]
    pub currencies: Vec<&'static str>,
    pub rails: Vec<String>,
    /// IANA time zone of the calendar windows, e.g. `America/New_York`.
    pub timezone: &'static str,
    /// Largest single payment; null = none.
    #[schema(value_type = Option<DecimalString>)]
    pub per_tx_limit: Option<String>,
    /// Payments above it wait for human approval; null = never.
    #[schema(value_type = Option<DecimalString>)]
    pub approval_threshold: Option<String>,
    #[schema(minimum = 1)]
    pub approvals_required: u32,
    /// When payments are allowed, e.g. `mon,tue,wed,thu,fri 09:00-17:00`
    /// in `timezone`; null = always.
    pub schedule: Option<String>,
    /// Spending scopes (groups of merchant categories); `all` = any.
    pub allowed_scopes: Vec<String>,
    pub blocked_categories: Vec<String>,
    /// Empty = any merchant not otherwise refused.
    pub merchant_allowlist: Vec<MerchantRuleView>,
    pub merchant_denylist: Vec<MerchantRuleView>,
    pub spend: SpendWindows,
    /// Each velocity rule: at most `max` payments in any trailing
    /// `per_seconds`.
    pub velocity: Vec<VelocityView>,
    /// When the spend was read.
    #[schema(value_type = Timestamp)]
    pub as_of: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SpendWindows {
    pub daily: Window,
    pub weekly: Window,
    pub monthly: Window,
    pub lifetime: Window,
}

/// Reserved spend (approved, pending-approval, processing and succeeded
/// payments; denied, rejected, expired and failed ones reserve nothing) in
/// one window, against the limit that applies to the agent, in the policy's
/// base currency.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = SpendWindow)]
pub struct Window {
    /// The effective limit of this window (the policy's own, else its
    /// trust-level ladder row); null when none applies.
    #[schema(value_type = Option<DecimalString>)]
    pub limit: Option<String>,
    #[schema(value_type = DecimalString)]
    pub spent: String,
    /// `limit - spent`, never below zero; null without a limit.
    #[schema(value_type = Option<DecimalString>)]
    pub remaining: Option<String>,
    /// When the next window starts: local midnight (the next day, Monday,
    /// or the first of the month) in the policy's `timezone`, or the first
    /// instant of that date where daylight saving skips midnight. Null for
    /// the lifetime window.
    #[schema(value_type = Option<Timestamp>)]
    pub resets_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct VelocityView {
    pub max: u32,
    pub per_seconds: u64,
    /// Reservations in the trailing `per_seconds`.
    pub used: u32,
    /// `max - used`, never below zero.
    pub remaining: u32,
}

/// One merchant allowlist or denylist entry: by `merchant_id` or by
/// `category` (exactly one is present).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MerchantRuleView {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub merchant_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub category: Option<String>,
    /// Largest single payment at this merchant; null = the policy's limits
    /// only.
    #[schema(value_type = Option<DecimalString>)]
    pub max_per_tx: Option<String>,
    /// Most ever reserved at this merchant or category; null = none.
    #[schema(value_type = Option<DecimalString>)]
    pub lifetime_limit: Option<String>,
    /// The entry stops matching after this instant; null = never.
    #[schema(value_type = Option<Timestamp>)]
    pub expires_at: Option<String>,
    /// Days and hours the entry matches, e.g. `mon,tue 09:00-17:00`; null =
    /// always.
    pub schedule: Option<String>,
}

/// An agent, its policy and its reserved spend now: what both views read.
struct Standing {
    agent: Agent,
    policy: Arc<Policy>,
    facts: AgentFacts,
    velocity: Vec<VelocityRule>,
    spent: SpendSnapshot,
    now: DateTime<Utc>,
}

/// `with_velocity` also counts recent payments for each velocity rule (a
/// subquery per rule), which only the full view shows: the approval lists
/// read the daily window for every pending approval.
async fn standing(svc: &Services, agent_id: &str, with_velocity: bool) -> Result<Standing> {
    let agent = svc.store.agent(agent_id).await?.ok_or(Error::NotFound("agent"))?;
    let policy = svc.policies.require(&agent.policy)?;
    let now = svc.clock.now();
    let facts = AgentFacts { trust_level: agent.trust_level, frozen: agent.frozen };
    let windows = policy.window_keys(now);
    let velocity = if with_velocity { policy.velocity_rules(&facts) } else { Vec::new() };
    let query =
        SpendQuery { agent_id, windows: &windows, merchant_id: "", category: None, velocity: &velocity, now };
    let spent = svc.store.spend(&query).await?;
    Ok(Standing { agent, policy, facts, velocity, spent, now })
}

/// Amounts are exact: spend in a stablecoin with more fraction digits than
/// the base currency is shown with all of them, never rounded (a `remaining`
/// rounded up would promise more than a payment can then spend).
fn window(currency: Currency, limit: Option<Decimal>, spent: Decimal, end: Option<DateTime<Utc>>) -> Window {
    let amount = |v: Decimal| format_exact(v, currency);
    Window {
        limit: limit.map(amount),
        spent: amount(spent),
        remaining: limit.map(|l| amount((l - spent).max(Decimal::ZERO))),
        resets_at: end.map(format_ts),
    }
}

/// The agent's daily window and the currency it is in.
pub async fn today(svc: &Services, agent_id: &str) -> Result<(Window, Currency)> {
    let Standing { policy, facts, spent, now, .. } = standing(svc, agent_id, false).await?;
    let limit = policy.effective_limits(&facts).daily;
    let end = WindowEnds::at(now, policy.timezone).day;
    Ok((window(policy.currency, limit, spent.day, Some(end)), policy.currency))
}

pub async fn allowance(svc: &Services, agent_id: &str) -> Result<Allowance> {
    let Standing { agent, policy, facts, velocity, spent, now } = standing(svc, agent_id, true).await?;
    let limits = policy.effective_limits(&facts);
    let ends = WindowEnds::at(now, policy.timezone);
    let currency = policy.currency;
    let amount = |v: Decimal| format_exact(v, currency);
    let rules = |rules: &[MerchantRule]| rules.iter().map(|r| rule_view(r, currency)).collect();
    Ok(Allowance {
        agent_id: agent.id,
        policy: policy.name.clone(),
        policy_version: policy.version.clone(),
        description: policy.description.clone(),
        trust_level: policy.effective_trust_level(&facts),
        frozen: agent.frozen,
        currency: currency.code(),
        currencies: policy.currencies.iter().map(|c| c.code()).collect(),
        rails: policy.rails.clone(),
        timezone: policy.timezone.name(),
        per_tx_limit: limits.per_tx.map(amount),
        approval_threshold: policy.approval_threshold.map(amount),
        approvals_required: policy.approvals_required,
        schedule: policy.schedule.map(|s| s.to_string()),
        allowed_scopes: policy.allowed_scopes.clone(),
        blocked_categories: policy.blocked_categories.clone(),
        merchant_allowlist: rules(&policy.merchant_allowlist),
        merchant_denylist: rules(&policy.merchant_denylist),
        spend: SpendWindows {
            daily: window(currency, limits.daily, spent.day, Some(ends.day)),
            weekly: window(currency, limits.weekly, spent.week, Some(ends.week)),
            monthly: window(currency, limits.monthly, spent.month, Some(ends.month)),
            lifetime: window(currency, limits.lifetime, spent.lifetime, None),
        },
        velocity: velocity
            .iter()
            .zip(spent.velocity.iter().copied())
            .map(|(rule, used)| VelocityView {
                max: rule.max,
                per_seconds: rule.per.as_secs(),
                used,
                remaining: rule.max.saturating_sub(used),
            })
            .collect(),
        as_of: format_ts(now),
    })
}

fn rule_view(rule: &MerchantRule, currency: Currency) -> MerchantRuleView {
    let (merchant_id, category) = match &rule.target {
        MerchantTarget::MerchantId(id) => (Some(id.clone()), None),
        MerchantTarget::Category(c) => (None, Some(c.clone())),
    };
    MerchantRuleView {
        merchant_id,
        category,
        max_per_tx: rule.max_per_tx.map(|v| format_exact(v, currency)),
        lifetime_limit: rule.lifetime_limit.map(|v| format_exact(v, currency)),
        expires_at: rule.expires_at.map(format_ts),
        schedule: rule.schedule.map(|s| s.to_string()),
    }
}
