//! What an agent may still spend: its policy as it applies to that agent
//! (ladder limits filled in), and its reserved spend in each window. Agents
//! read their own (`policies:read`) to plan instead of probing with
//! payments; admins read anyone's; approvers see the daily part.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::app::AppState;
use crate::clock::format_ts;
use crate::error::{Error, Result};
use crate::model::Agent;
use crate::money::{format_amount, Currency};
use crate::policy::{
    AgentFacts, MerchantRule, MerchantTarget, Policy, SpendSnapshot, TrustLevel, VelocityRule, WindowEnds,
};
use crate::store::SpendQuery;

#[derive(Debug, Clone, Serialize)]
pub struct Allowance {
    pub agent_id: String,
    pub policy: String,
    pub policy_version: String,
    pub description: Option<String>,
    /// The ladder row that applies: the policy's pin, else the agent's.
    pub trust_level: TrustLevel,
    /// A frozen agent's payments are all denied, whatever remains below.
    pub frozen: bool,
    /// Limits and spend are in this currency.
    pub currency: &'static str,
    pub currencies: Vec<&'static str>,
    pub rails: Vec<String>,
    /// The time zone calendar windows follow.
    pub timezone: &'static str,
    pub per_tx_limit: Option<String>,
    /// Payments above this wait for human approval.
    pub approval_threshold: Option<String>,
    pub approvals_required: u32,
    /// When payments are allowed at all, e.g. `mon,tue,wed,thu,fri 09:00-17:00`.
    pub schedule: Option<String>,
    pub allowed_scopes: Vec<String>,
    pub blocked_categories: Vec<String>,
    pub merchant_allowlist: Vec<MerchantRuleView>,
    pub merchant_denylist: Vec<MerchantRuleView>,
    pub spend: SpendWindows,
    pub velocity: Vec<VelocityView>,
    /// The instant the spend was read at.
    pub as_of: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SpendWindows {
    pub daily: Window,
    pub weekly: Window,
    pub monthly: Window,
    pub lifetime: Window,
}

/// Reserved spend (approved, pending approval, processing and succeeded
/// payments) in one window against its limit.
#[derive(Debug, Clone, Serialize)]
pub struct Window {
    /// `null`: no limit in this window.
    pub limit: Option<String>,
    pub spent: String,
    /// `limit - spent`, never below zero; `null` without a limit.
    pub remaining: Option<String>,
    /// When the next window starts (local midnight in `timezone`); `null`
    /// for the lifetime window.
    pub resets_at: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VelocityView {
    pub max: u32,
    pub per_seconds: u64,
    /// Reservations in the trailing `per_seconds`.
    pub used: u32,
    pub remaining: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct MerchantRuleView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merchant_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    pub max_per_tx: Option<String>,
    pub lifetime_limit: Option<String>,
    pub expires_at: Option<String>,
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
async fn standing(state: &AppState, agent_id: &str, with_velocity: bool) -> Result<Standing> {
    let agent = state.store.agent(agent_id).await?.ok_or(Error::NotFound("agent"))?;
    let policy = state.policies.require(&agent.policy)?;
    let now = state.clock.now();
    let facts = AgentFacts { trust_level: agent.trust_level, frozen: agent.frozen };
    let windows = policy.window_keys(now);
    let velocity = if with_velocity { policy.velocity_rules(&facts) } else { Vec::new() };
    let query =
        SpendQuery { agent_id, windows: &windows, merchant_id: "", category: None, velocity: &velocity, now };
    let spent = state.store.spend(&query).await?;
    Ok(Standing { agent, policy, facts, velocity, spent, now })
}

fn window(currency: Currency, limit: Option<Decimal>, spent: Decimal, end: Option<DateTime<Utc>>) -> Window {
    let amount = |v: Decimal| format_amount(v, currency);
    Window {
        limit: limit.map(amount),
        spent: amount(spent),
        remaining: limit.map(|l| amount((l - spent).max(Decimal::ZERO))),
        resets_at: end.map(format_ts),
    }
}

/// The agent's daily window and the currency it is in.
pub async fn today(state: &AppState, agent_id: &str) -> Result<(Window, Currency)> {
    let Standing { policy, facts, spent, now, .. } = standing(state, agent_id, false).await?;
    let limit = policy.effective_limits(&facts).daily;
    let end = WindowEnds::at(now, policy.timezone).day;
    Ok((window(policy.currency, limit, spent.day, Some(end)), policy.currency))
}

pub async fn allowance(state: &AppState, agent_id: &str) -> Result<Allowance> {
    let Standing { agent, policy, facts, velocity, spent, now } = standing(state, agent_id, true).await?;
    let limits = policy.effective_limits(&facts);
    let ends = WindowEnds::at(now, policy.timezone);
    let currency = policy.currency;
    let amount = |v: Decimal| format_amount(v, currency);
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
        max_per_tx: rule.max_per_tx.map(|v| format_amount(v, currency)),
        lifetime_limit: rule.lifetime_limit.map(|v| format_amount(v, currency)),
        expires_at: rule.expires_at.map(format_ts),
        schedule: rule.schedule.map(|s| s.to_string()),
    }
}
