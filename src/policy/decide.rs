//! The whole decision on a payment, as creation, the dry run and card
//! authorizations all make it: the policy's evaluation, then what the
//! gateway's state and the way the answer is used change about it, and what
//! the payment would reserve and cross. A pure function of the policy, the
//! payment and a [`Snapshot`]: anything that can read a snapshot (a
//! transaction, a replay of history, a shadow policy) gets the same answer.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::{AgentFacts, Decision, Outcome, PaymentFacts, Policy, Reason, ReasonCode, SpendSnapshot};

/// What a decision depends on besides the policy and the payment, all read
/// at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot<'a> {
    pub agent: AgentFacts,
    /// Reserved spend for the windows of [`Policy::window_keys`] at `now` and
    /// the rules of [`Policy::velocity_rules`] for `agent`.
    pub spend: &'a SpendSnapshot,
    /// The reason given for the gateway's kill switch, when it is engaged.
    pub halted: Option<&'a str>,
    pub now: DateTime<Utc>,
}

/// How the answer is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// A request that can wait for a human: `require_approval` stands.
    Request,
    /// A card network authorization waiting for this answer: it cannot wait
    /// for a human, so what would need approval is denied (with its
    /// `approval_required` reason).
    CardAuthorization,
}

/// A decision and what follows from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub decision: Decision,
    /// What the payment reserves in the policy's base currency: amount plus
    /// fee unless it is denied.
    pub reserved: Decimal,
    /// Calendar windows whose warning mark (80% of the limit) this payment
    /// crosses, if it is not denied.
    pub crossings: Vec<Crossing>,
}

/// A payment moved a window's reserved spend across 80% of its limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crossing {
    /// `daily`, `weekly` or `monthly`.
    pub window: &'static str,
    /// Reserved in the window with this payment.
    pub spent: Decimal,
    pub limit: Decimal,
}

/// Share of a window's limit past which a crossing is reported, in percent.
pub const WARN_AT_PERCENT: i64 = 80;

impl Policy {
    /// Decides `payment` as of `at`, for an answer used through `channel`.
    pub fn decide(&self, payment: &PaymentFacts, at: &Snapshot, channel: Channel) -> Verdict {
        let mut decision = self.evaluate(&at.agent, payment, at.spend, at.now);
        if channel == Channel::CardAuthorization && decision.outcome == Outcome::RequireApproval {
            decision.outcome = Outcome::Deny;
        }
        if let Some(why) = at.halted {
            decision.outcome = Outcome::Deny;
            decision.reasons.insert(
                0,
                Reason {
                    code: ReasonCode::KillSwitch,
                    message: format!("all payments are halted: {why}"),
                    limit: None,
                    attempted: None,
                },
            );
        }
        let reserved = match decision.outcome {
            Outcome::Deny => Decimal::ZERO,
            // Not denied implies an accepted currency.
            Outcome::Approve | Outcome::RequireApproval => self.counted_amount(payment).unwrap_or_default(),
        };
        let crossings = self.crossings(&at.agent, at.spend, reserved);
        Verdict { decision, reserved, crossings }
    }

    /// The calendar windows whose warning mark `reserved` more takes the
    /// spend across (once per crossing: not for later payments in the same
    /// window).
    fn crossings(&self, agent: &AgentFacts, before: &SpendSnapshot, reserved: Decimal) -> Vec<Crossing> {
        if reserved.is_zero() {
            return Vec::new();
        }
        let limits = self.effective_limits(agent);
        [
            ("daily", before.day, limits.daily),
            ("weekly", before.week, limits.weekly),
            ("monthly", before.month, limits.monthly),
        ]
        .into_iter()
        .filter_map(|(window, spent, limit)| {
            let limit = limit?;
            let mark = limit * Decimal::new(WARN_AT_PERCENT, 2);
            let after = spent + reserved;
            (spent < mark && after >= mark).then_some(Crossing { window, spent: after, limit })
        })
        .collect()
    }
}
