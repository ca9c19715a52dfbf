//! Evaluation: a payment, the agent's facts and its spend snapshot in, a
//! [`Decision`] out. Every rule is evaluated; the outcome does not depend on
//! the order. Any failing rule denies (and all failures are listed); else
//! approval may be required; else the payment is approved.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::{
    ladder, AgentFacts, Decision, Limits, MerchantRule, MerchantTarget, Outcome, PaymentFacts, Policy,
    Reason, ReasonCode, ScopeMap, SpendSnapshot, TrustLevel, UnknownMerchants, VelocityRule, WindowKeys,
};
use crate::money::{format_exact, Currency};

/// Provider for rails a policy does not map.
pub const DEFAULT_PROVIDER: &str = "sandbox";

impl Policy {
    /// The policy's rules on `payment` (see [`Policy::decide`] for the whole
    /// decision). `spend` must have been read for the windows of
    /// [`Policy::window_keys`] at `now` and the rules of
    /// [`Policy::velocity_rules`] for the same `agent`.
    pub(super) fn evaluate(
        &self,
        agent: &AgentFacts,
        payment: &PaymentFacts,
        spend: &SpendSnapshot,
        now: DateTime<Utc>,
    ) -> Decision {
        let mut reasons = Vec::new();
        let cur = self.currency;
        // Amounts compare with the limits at face value: accepted
        // stablecoins count at par, and a currency the policy does not accept
        // is denied anyway. Messages name the payment's own currency.
        let total = payment.amount + payment.fee;
        let paid = payment.currency;
        let category = payment.merchant_category.as_deref();

        if agent.frozen {
            reasons.push(reason(ReasonCode::AgentFrozen, "agent is frozen".to_owned(), None, None));
        }
        if !self.currencies.contains(&payment.currency) {
            reasons.push(reason(
                ReasonCode::CurrencyNotAllowed,
                format!(
                    "currency {} is not accepted; accepted: {}",
                    payment.currency,
                    codes(&self.currencies)
                ),
                None,
                None,
            ));
        }
        if !self.rails.contains(&payment.rail) {
            reasons.push(reason(
                ReasonCode::RailNotAllowed,
                format!("rail {:?} is not allowed; allowed: {}", payment.rail, self.rails.join(", ")),
                None,
                None,
            ));
        }

        // Amount limits (base currency; accepted stablecoins count at par).
        let limits = self.effective_limits(agent);
        if let Some(limit) = limits.per_tx {
            if total > limit {
                reasons.push(amount_reason(ReasonCode::PerTxLimit, cur, limit, total, |l, _| {
                    format!("amount {} is above the per-transaction limit of {l} {cur}", shown(total, paid))
                }));
            }
        }
        for (code, name, limit, spent) in [
            (ReasonCode::DailyLimit, "daily", limits.daily, spend.day),
            (ReasonCode::WeeklyLimit, "weekly", limits.weekly, spend.week),
            (ReasonCode::MonthlyLimit, "monthly", limits.monthly, spend.month),
            (ReasonCode::LifetimeLimit, "lifetime", limits.lifetime, spend.lifetime),
        ] {
            if let Some(limit) = limit {
                let after = spent + total;
                if after > limit {
                    reasons.push(amount_reason(code, cur, limit, after, |l, _| {
                        format!(
                            "{name} limit of {l} {cur} would be exceeded: {} spent, {} attempted",
                            format_exact(spent, cur),
                            beside(total, paid, cur)
                        )
                    }));
                }
            }
        }

        for (i, rule) in self.velocity_slice(agent).iter().enumerate() {
            // A count the store did not supply fails closed.
            let count = spend.velocity.get(i).copied();
            let after = count.map_or(u64::MAX, |c| u64::from(c) + 1);
            if after > u64::from(rule.max) {
                let per = humantime::format_duration(rule.per);
                let message = match count {
                    Some(c) => format!(
                        "velocity limit of {} payments per {per} would be exceeded: {c} already",
                        rule.max
                    ),
                    None => format!("velocity limit of {} payments per {per}: count not supplied", rule.max),
                };
                let attempted = count.map(|c| (u64::from(c) + 1).to_string());
                reasons.push(reason(
                    ReasonCode::VelocityLimit,
                    message,
                    Some(rule.max.to_string()),
                    attempted,
                ));
            }
        }

        // Merchant lists. Entries are active until `expires_at`; a denylist
        // entry with a schedule denies only inside it.
        let mut local = None;
        let mut local_now = || *local.get_or_insert_with(|| now.with_timezone(&self.timezone));
        if let Some(rule) = self.merchant_denylist.iter().find(|r| {
            active(r, now)
                && matches(r, payment, category)
                && r.schedule.is_none_or(|s| s.contains(&local_now()))
        }) {
            reasons.push(reason(
                ReasonCode::MerchantDenied,
                format!("{} is on the merchant denylist", describe(&rule.target)),
                None,
                None,
            ));
        }
        if !self.merchant_allowlist.is_empty() {
            match self.allow_entry(payment, category, now) {
                None => reasons.push(reason(
                    ReasonCode::MerchantNotAllowed,
                    match category {
                        Some(c) => format!(
                            "merchant {} (category {c}) is not on the merchant allowlist",
                            payment.merchant_id
                        ),
                        None => format!("merchant {} is not on the merchant allowlist", payment.merchant_id),
                    },
                    None,
                    None,
                )),
                Some(rule) => {
                    if let Some(cap) = rule.max_per_tx {
                        if total > cap {
                            let code = ReasonCode::MerchantPerTxLimit;
                            reasons.push(amount_reason(code, cur, cap, total, |l, _| {
                                let who = describe(&rule.target);
                                format!(
                                    "amount {} is above the {who} cap of {l} {cur} per transaction",
                                    shown(total, paid)
                                )
                            }));
                        }
                    }
                    if let Some(limit) = rule.lifetime_limit {
                        let spent = match rule.target {
                            MerchantTarget::MerchantId(_) => spend.merchant,
                            MerchantTarget::Category(_) => spend.category,
                        };
                        let after = spent + total;
                        if after > limit {
                            let code = ReasonCode::LifetimeLimit;
                            reasons.push(amount_reason(code, cur, limit, after, |l, _| {
                                format!(
                                    "lifetime limit of {l} {cur} for {} would be exceeded: {} spent, {} attempted",
                                    describe(&rule.target),
                                    format_exact(spent, cur),
                                    beside(total, paid, cur)
                                )
                            }));
                        }
                    }
                    if let Some(s) = &rule.schedule {
                        if !s.contains(&local_now()) {
                            reasons.push(reason(
                                ReasonCode::OutsideSchedule,
                                format!("{} is allowed only {s} ({})", describe(&rule.target), self.timezone),
                                None,
                                None,
                            ));
                        }
                    }
                }
            }
        }
        if let Some(s) = &self.schedule {
            if !s.contains(&local_now()) {
                reasons.push(reason(
                    ReasonCode::OutsideSchedule,
                    format!("payments are allowed only {s} ({})", self.timezone),
                    None,
                    None,
                ));
            }
        }

        let unknown = category.is_none() && self.categories_matter();
        match self.unknown_merchants {
            UnknownMerchants::Deny if unknown => reasons.push(reason(
                ReasonCode::CategoryUnknown,
                format!(
                    "merchant {} is not in the merchant directory and the payment has no category, which \
                     this policy's rules need",
                    payment.merchant_id
                ),
                None,
                None,
            )),
            UnknownMerchants::RequireApproval | UnknownMerchants::Approve if unknown => {}
            _ => reasons.extend(self.category_reasons(category)),
        }

        let outcome = if !reasons.is_empty() {
            reasons.sort_by_key(|r| r.code);
            Outcome::Deny
        } else if unknown && self.unknown_merchants == UnknownMerchants::RequireApproval {
            let message = format!(
                "merchant {} is not in the merchant directory and the payment has no category: a person \
                 must approve",
                payment.merchant_id
            );
            reasons.push(reason(ReasonCode::ApprovalRequired, message, None, None));
            Outcome::RequireApproval
        } else if let Some(approval) = self.approval_reason(payment, spend, total) {
            reasons.push(approval);
            Outcome::RequireApproval
        } else {
            Outcome::Approve
        };
        Decision { outcome, reasons, policy: self.name.clone(), policy_version: self.version.clone() }
    }

    /// Whether a payment's category changes what this policy decides: it
    /// blocks categories, allows only some scopes, or lists categories on
    /// its allowlist.
    pub fn categories_matter(&self) -> bool {
        !self.blocked_categories.is_empty()
            || self.allowed_categories.is_some()
            || self.merchant_allowlist.iter().any(|r| matches!(r.target, MerchantTarget::Category(_)))
    }

    /// What the policy says of a merchant category on its own: blocked, or
    /// outside the allowed scopes. Also asked of the category a card
    /// network reports for a purchase on a card purser issued.
    pub fn category_reasons(&self, category: Option<&str>) -> Vec<Reason> {
        let mut reasons = Vec::new();
        if let Some(c) = category {
            if self.blocked_categories.iter().any(|b| b == c) {
                reasons.push(reason(
                    ReasonCode::CategoryBlocked,
                    format!("merchant category {c} is blocked"),
                    None,
                    None,
                ));
            }
        }
        if let Some(allowed) = &self.allowed_categories {
            let ok = category.is_some_and(|c| allowed.binary_search_by(|a| a.as_str().cmp(c)).is_ok());
            if !ok {
                let scopes = self.allowed_scopes.join(", ");
                let message = match category {
                    Some(c) => {
                        format!("merchant category {c} is not in the allowed scopes ({scopes})")
                    }
                    None => {
                        format!("payment has no merchant category; allowed scopes are {scopes}")
                    }
                };
                reasons.push(reason(ReasonCode::ScopeNotAllowed, message, None, None));
            }
        }
        reasons
    }

    fn approval_reason(
        &self,
        payment: &PaymentFacts,
        spend: &SpendSnapshot,
        total: Decimal,
    ) -> Option<Reason> {
        let threshold = self.approval_threshold?;
        let cur = self.currency;
        if total > threshold {
            let code = ReasonCode::ApprovalRequired;
            return Some(amount_reason(code, cur, threshold, total, |l, _| {
                format!(
                    "amount {} is above the approval threshold of {l} {cur}",
                    shown(total, payment.currency)
                )
            }));
        }
        let new_limit = threshold * self.new_merchant_approval_ratio;
        if !spend.merchant_seen && total > new_limit {
            let code = ReasonCode::ApprovalRequired;
            return Some(amount_reason(code, cur, new_limit, total, |l, _| {
                format!(
                    "first payment to merchant {}: amounts above {l} {cur} ({} of the approval threshold) need approval",
                    payment.merchant_id, self.new_merchant_approval_ratio
                )
            }));
        }
        None
    }

    /// The allowlist entry that applies to the payment: the first active
    /// entry for its merchant id, else the first active one for its
    /// category (the most specific entry wins).
    fn allow_entry(
        &self,
        payment: &PaymentFacts,
        category: Option<&str>,
        now: DateTime<Utc>,
    ) -> Option<&MerchantRule> {
        let mut by_category = None;
        for r in &self.merchant_allowlist {
            if !active(r, now) {
                continue;
            }
            match &r.target {
                MerchantTarget::MerchantId(id) if *id == payment.merchant_id => return Some(r),
                MerchantTarget::Category(c) if by_category.is_none() && Some(c.as_str()) == category => {
                    by_category = Some(r)
                }
                _ => {}
            }
        }
        by_category
    }

    /// The amount counted against the limits: `amount + fee` when the
    /// currency is accepted (stablecoins at par), else `None`.
    pub fn counted_amount(&self, payment: &PaymentFacts) -> Option<Decimal> {
        self.currencies.contains(&payment.currency).then(|| payment.amount + payment.fee)
    }

    /// Labels of the calendar windows containing `now`, in the policy's time
    /// zone. The store keys day/week/month counters by these.
    pub fn window_keys(&self, now: DateTime<Utc>) -> WindowKeys {
        WindowKeys::at(now, self.timezone)
    }

    /// The trust level whose ladder row applies: the policy's pin, else the
    /// agent's level. An agent recorded as `custom` (before agents were
    /// refused that level) gets the `low` row: a policy that leaves a limit
    /// to the ladder never meets an agent without one, so nothing fails open.
    pub fn effective_trust_level(&self, agent: &AgentFacts) -> TrustLevel {
        match (self.trust_level, agent.trust_level) {
            (Some(pinned), _) => pinned,
            (None, TrustLevel::Custom) => TrustLevel::Low,
            (None, level) => level,
        }
    }

    /// Velocity rules for this agent: the policy's own, else the ladder's.
    /// `SpendSnapshot::velocity` must be aligned with this list.
    pub fn velocity_rules(&self, agent: &AgentFacts) -> Vec<VelocityRule> {
        self.velocity_slice(agent).to_vec()
    }

    fn velocity_slice(&self, agent: &AgentFacts) -> &[VelocityRule] {
        match &self.velocity {
            Some(own) => own,
            None => ladder::row(self.effective_trust_level(agent)).map_or(&[], |r| r.velocity),
        }
    }

    /// Provider name for a rail ("sandbox" unless the policy maps it).
    pub fn provider_for(&self, rail: &str) -> &str {
        self.providers.get(rail).map_or(DEFAULT_PROVIDER, String::as_str)
    }

    /// The limits that apply to this agent: the policy's own, with unset
    /// ones from the ladder row of [`Policy::effective_trust_level`].
    pub fn effective_limits(&self, agent: &AgentFacts) -> Limits {
        ladder::resolve(&self.limits, ladder::row(self.effective_trust_level(agent)))
    }

    /// The merged scope table (scope -> categories) the policy uses.
    pub fn scopes(&self) -> &ScopeMap {
        &self.scopes
    }
}

/// An amount with its currency, e.g. `70.00 EUR`.
fn shown(value: Decimal, currency: Currency) -> String {
    format!("{} {currency}", format_exact(value, currency))
}

/// An amount paid in `paid` beside others in `base`: its currency is named
/// only when it differs.
fn beside(value: Decimal, paid: Currency, base: Currency) -> String {
    if paid == base {
        format_exact(value, base)
    } else {
        shown(value, paid)
    }
}

fn reason(code: ReasonCode, message: String, limit: Option<String>, attempted: Option<String>) -> Reason {
    Reason { code, message, limit, attempted }
}

/// A reason with `limit` and `attempted` amounts; `message` gets both
/// already formatted.
fn amount_reason(
    code: ReasonCode,
    currency: Currency,
    limit: Decimal,
    attempted: Decimal,
    message: impl FnOnce(&str, &str) -> String,
) -> Reason {
    let (limit, attempted) = (format_exact(limit, currency), format_exact(attempted, currency));
    let message = message(&limit, &attempted);
    Reason { code, message, limit: Some(limit), attempted: Some(attempted) }
}

fn active(rule: &MerchantRule, now: DateTime<Utc>) -> bool {
    rule.expires_at.is_none_or(|t| now < t)
}

fn matches(rule: &MerchantRule, payment: &PaymentFacts, category: Option<&str>) -> bool {
    match &rule.target {
        MerchantTarget::MerchantId(id) => *id == payment.merchant_id,
        MerchantTarget::Category(c) => Some(c.as_str()) == category,
    }
}

fn describe(target: &MerchantTarget) -> String {
    match target {
        MerchantTarget::MerchantId(id) => format!("merchant {id}"),
        MerchantTarget::Category(c) => format!("category {c}"),
    }
}

fn codes(list: &[Currency]) -> String {
    list.iter().map(|c| c.code()).collect::<Vec<_>>().join(", ")
}
