//! Tests of loading, evaluation and decisions, with their shared helpers;
//! module-local tests live in `ladder.rs`, `schedule.rs` and `windows.rs`.

mod decide;
mod evaluate;
mod load;
mod shipped;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::*;
use crate::money::Currency;

const SHIPPED: &[(&str, &str)] = &[
    ("policies/cloud-compute.toml", include_str!("../../../policies/cloud-compute.toml")),
    ("policies/demo.toml", include_str!("../../../policies/demo.toml")),
    ("policies/high-trust.toml", include_str!("../../../policies/high-trust.toml")),
    ("policies/low-trust.toml", include_str!("../../../policies/low-trust.toml")),
    ("policies/medium-trust.toml", include_str!("../../../policies/medium-trust.toml")),
    ("policies/retail.toml", include_str!("../../../policies/retail.toml")),
    ("policies/scopes.toml", include_str!("../../../policies/scopes.toml")),
];
const SHIPPED_CASES: &[(&str, &str)] =
    &[("policies/tests/shipped.toml", include_str!("../../../policies/tests/shipped.toml"))];

fn d(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap()
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// Thursday noon UTC.
fn noon() -> DateTime<Utc> {
    at("2026-11-26T12:00:00Z")
}

fn sources(files: &[(&str, &str)]) -> Vec<(String, String)> {
    files.iter().map(|(f, t)| (f.to_string(), t.to_string())).collect()
}

fn load(files: &[(&str, &str)]) -> PolicySet {
    PolicySet::from_sources(&sources(files)).unwrap_or_else(|e| panic!("load failed:\n{e}"))
}

/// A policy `p` with the given body and the USD/card basics unless given.
fn policy(body: &str) -> Arc<Policy> {
    let mut text = String::from("[policies.p]\n");
    if !body.contains("currency =") {
        text.push_str("currency = \"USD\"\n");
    }
    if !body.contains("rails =") {
        text.push_str("rails = [\"card\"]\n");
    }
    text.push_str(body);
    load(&[("p.toml", &text)]).get("p").unwrap()
}

fn load_errors(files: &[(&str, &str)]) -> Vec<Diagnostic> {
    match PolicySet::from_sources(&sources(files)) {
        Ok(_) => panic!("expected load errors"),
        Err(e) => e.0,
    }
}

/// The warnings of a set that loads.
fn load_warnings(files: &[(&str, &str)]) -> Vec<Diagnostic> {
    load(files).warnings().to_vec()
}

fn has_error(errors: &[Diagnostic], file: &str, line: usize, needle: &str) -> bool {
    errors.iter().any(|e| e.file == file && e.line == line && e.message.contains(needle))
}

fn assert_error(errors: &[Diagnostic], file: &str, line: usize, needle: &str) {
    assert!(
        has_error(errors, file, line, needle),
        "no error at {file}:{line} containing {needle:?}; got:\n{}",
        LoadErrors(errors.to_vec())
    );
}

fn low() -> AgentFacts {
    AgentFacts { trust_level: TrustLevel::Low, frozen: false }
}

fn agent(trust_level: TrustLevel) -> AgentFacts {
    AgentFacts { trust_level, frozen: false }
}

fn pay(amount: &str, merchant: &str, category: Option<&str>) -> PaymentFacts {
    PaymentFacts {
        amount: d(amount),
        fee: Decimal::ZERO,
        currency: Currency::Usd,
        merchant_id: merchant.to_owned(),
        merchant_category: category.map(str::to_owned),
        rail: "card".to_owned(),
    }
}

fn cloud(amount: &str) -> PaymentFacts {
    pay(amount, "aws.amazon.com", Some("cloud"))
}

fn seen() -> SpendSnapshot {
    SpendSnapshot { merchant_seen: true, ..SpendSnapshot::default() }
}

/// Evaluates with velocity counts padded to the rules that apply.
fn eval_at(
    p: &Policy,
    a: AgentFacts,
    pay: &PaymentFacts,
    spend: &SpendSnapshot,
    now: DateTime<Utc>,
) -> Decision {
    let mut spend = spend.clone();
    let n = p.velocity_rules(&a).len();
    if spend.velocity.len() < n {
        spend.velocity.resize(n, 0);
    }
    p.evaluate(&a, pay, &spend, now)
}

fn eval(p: &Policy, a: AgentFacts, pay: &PaymentFacts, spend: &SpendSnapshot) -> Decision {
    eval_at(p, a, pay, spend, noon())
}

fn codes(d: &Decision) -> Vec<ReasonCode> {
    d.reasons.iter().map(|r| r.code).collect()
}

fn assert_approve(d: &Decision) {
    assert_eq!(d.outcome, Outcome::Approve, "{:#?}", d.reasons);
    assert!(d.reasons.is_empty());
}

fn assert_deny(d: &Decision, want: &[ReasonCode]) {
    assert_eq!(d.outcome, Outcome::Deny, "{:#?}", d.reasons);
    assert_eq!(codes(d), want, "{:#?}", d.reasons);
}
