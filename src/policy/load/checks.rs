//! Rules that can never apply: warnings, not errors. A policy whose
//! `per_tx_limit` is above its `daily_limit`, or whose approval threshold
//! no allowed payment can reach, is still well defined (the tighter rule
//! wins); it is probably not what its author meant, so `policy check`
//! says so, and `--deny-warnings` turns that into a failure for CI.

use std::ops::Range;

use rust_decimal::Decimal;

use super::checker::Checker;
use super::compile::{RuleWithSpan, Written};
use crate::money::{self, Currency};
use crate::policy::{ladder, Limits, TrustLevel};

/// What the checks look at: the policy's values, and where it wrote them.
pub(super) struct Rules<'a> {
    pub trust_level: Option<TrustLevel>,
    pub currency: Option<Currency>,
    pub limits: &'a Limits,
    /// The written `per_tx_limit`, `daily_limit`, `weekly_limit` and
    /// `monthly_limit`, in that order.
    pub written: [&'a Written; 4],
    pub approval_threshold: &'a Written,
    pub new_merchant_ratio: Option<Decimal>,
    pub allowlist: &'a [RuleWithSpan],
    /// Where to point when a value comes from the trust ladder rather than
    /// from the policy: its `trust_level`, else its header.
    pub fallback: Range<usize>,
}

impl Rules<'_> {
    fn amount(&self, v: Decimal) -> String {
        match self.currency {
            Some(c) => money::format_amount(v, c),
            None => v.to_string(),
        }
    }

    /// `per_tx_limit 50.00`, or with `(from the low trust ladder)` when the
    /// policy does not set it itself.
    fn describe(&self, key: &str, v: Decimal, own: &Written) -> String {
        let level = self.trust_level.map(|l| l.as_str()).unwrap_or("custom");
        match own {
            Some(_) => format!("{key} {}", self.amount(v)),
            None => format!("{key} {} (from the {level} trust ladder)", self.amount(v)),
        }
    }
}

/// `true` when the policy wrote a value that failed to parse (already
/// reported as an error, so nothing is compared against it).
fn failed(w: &Written) -> bool {
    w.as_ref().is_some_and(|(v, _)| v.is_none())
}

pub(super) fn unreachable_rules(ck: &mut Checker, rules: &Rules) {
    // per_tx <= daily <= weekly <= monthly, with the ladder filled in when
    // the policy pins a level (otherwise the row depends on the agent, so
    // only the policy's own values are compared).
    let resolved = ladder::resolve(rules.limits, rules.trust_level.and_then(ladder::row));
    let [per_tx_written, daily, weekly, monthly] = rules.written;
    let chain = [
        ("per_tx_limit", resolved.per_tx, per_tx_written),
        ("daily_limit", resolved.daily, daily),
        ("weekly_limit", resolved.weekly, weekly),
        ("monthly_limit", resolved.monthly, monthly),
    ];
    let present: Vec<_> = chain.iter().filter_map(|(k, v, own)| v.map(|v| (*k, v, *own))).collect();
    for pair in present.windows(2) {
        let ((ka, va, oa), (kb, vb, ob)) = (pair[0], pair[1]);
        if failed(oa) || failed(ob) || va <= vb {
            continue;
        }
        let span = oa.as_ref().or(ob.as_ref()).map_or(rules.fallback.clone(), |(_, s)| s.clone());
        ck.warn(
            &span,
            format!(
                "{} is above {}, so it never binds: {kb} denies first",
                rules.describe(ka, va, oa),
                rules.describe(kb, vb, ob)
            ),
        );
    }

    let Some(per_tx) = resolved.per_tx.filter(|_| !failed(per_tx_written)) else { return };
    if let (Some((Some(threshold), span)), Some(ratio)) = (rules.approval_threshold, rules.new_merchant_ratio)
    {
        // Approval is asked above the threshold, and for a first payment to
        // a merchant above threshold × ratio; amounts above per_tx are
        // denied. The threshold is reachable if either is below per_tx.
        let first_payment = *threshold * ratio;
        if *threshold >= per_tx && first_payment >= per_tx {
            ck.warn(
                span,
                format!(
                    "approval_threshold {} never triggers: payments above {} are denied, and a first \
                     payment to a merchant needs approval only above {} (new_merchant_approval_ratio {})",
                    rules.amount(*threshold),
                    rules.describe("per_tx_limit", per_tx, per_tx_written),
                    rules.amount(first_payment),
                    ratio.normalize()
                ),
            );
        }
    }
    for (rule, span) in rules.allowlist {
        if let (Some(cap), Some(span)) = (rule.max_per_tx, span) {
            if cap > per_tx {
                ck.warn(
                    span,
                    format!(
                        "max_per_tx {} is above the policy's {}, so it never binds",
                        rules.amount(cap),
                        rules.describe("per_tx_limit", per_tx, per_tx_written)
                    ),
                );
            }
        }
    }
}
