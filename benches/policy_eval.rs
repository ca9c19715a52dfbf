//! Cost of one `Policy::decide` call, the engine's hot path (it runs inside
//! the store's check-and-reserve transaction). Target: well under 5 µs.
//!
//! Run with `cargo bench --bench policy_eval`.

use std::hint::black_box;

use chrono::{DateTime, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use rust_decimal::Decimal;

use purser::money::Currency;
use purser::policy::{
    AgentFacts, Channel, Decision, Outcome, PaymentFacts, Policy, PolicySet, Snapshot, SpendSnapshot,
    TrustLevel,
};

const STRICT: &str = r#"
[policies.strict]
trust_level = "low"
currency = "USD"
rails = ["card"]
per_tx_limit = "50.00"
daily_limit = "100.00"
timezone = "America/New_York"
allowed_scopes = ["compute"]
schedule = { days = ["mon", "tue", "wed", "thu", "fri"], hours = "09:00-17:00" }
approval_threshold = "40.00"

[[policies.strict.merchant_allowlist]]
merchant_id = "aws.amazon.com"
max_per_tx = "30.00"

[[policies.strict.merchant_allowlist]]
category = "cloud"
"#;

/// A policy whose allowlist has 20 entries; the payment matches the last.
fn allowlist_policy() -> String {
    let mut text = String::from(
        "[policies.allow20]\ncurrency = \"USD\"\nrails = [\"card\"]\nper_tx_limit = \"500.00\"\n\
         daily_limit = \"1000.00\"\napproval_threshold = \"400.00\"\n",
    );
    for i in 0..19 {
        text.push_str(&format!(
            "[[policies.allow20.merchant_allowlist]]\nmerchant_id = \"merchant-{i}.example.com\"\nmax_per_tx = \"250.00\"\n"
        ));
    }
    text.push_str("[[policies.allow20.merchant_allowlist]]\nmerchant_id = \"aws.amazon.com\"\nmax_per_tx = \"300.00\"\n");
    text
}

fn payment(amount: &str, currency: Currency, merchant: &str, category: &str, rail: &str) -> PaymentFacts {
    PaymentFacts {
        amount: Decimal::from_str_exact(amount).unwrap(),
        fee: Decimal::ZERO,
        currency,
        merchant_id: merchant.to_owned(),
        merchant_category: Some(category.to_owned()),
        rail: rail.to_owned(),
    }
}

fn decide(
    policy: &Policy,
    agent: &AgentFacts,
    payment: &PaymentFacts,
    spend: &SpendSnapshot,
    now: DateTime<Utc>,
) -> Decision {
    let at = Snapshot { agent: *agent, spend, halted: None, now };
    policy.decide(payment, &at, Channel::Request).decision
}

fn bench(c: &mut Criterion) {
    let set = PolicySet::from_sources(&[
        ("demo.toml".to_owned(), include_str!("../policies/demo.toml").to_owned()),
        ("strict.toml".to_owned(), STRICT.to_owned()),
        ("allow20.toml".to_owned(), allowlist_policy()),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    // A Thursday, 12:00 UTC (07:00 in New York: before the strict schedule).
    let now: DateTime<Utc> = "2026-11-26T12:00:00Z".parse().unwrap();
    let agent = AgentFacts { trust_level: TrustLevel::Low, frozen: false };

    let demo = set.get("demo").unwrap();
    let ok = payment("42.50", Currency::Usd, "aws.amazon.com", "cloud", "card");
    let spend = SpendSnapshot {
        day: Decimal::new(12000, 2),
        week: Decimal::new(30000, 2),
        month: Decimal::new(90000, 2),
        merchant_seen: true,
        velocity: vec![3],
        ..SpendSnapshot::default()
    };
    assert_eq!(decide(&demo, &agent, &ok, &spend, now).outcome, Outcome::Approve);
    c.bench_function("decide/approve", |b| {
        b.iter(|| decide(&demo, black_box(&agent), black_box(&ok), black_box(&spend), black_box(now)))
    });

    let strict = set.get("strict").unwrap();
    let frozen = AgentFacts { trust_level: TrustLevel::Low, frozen: true };
    let bad = payment("60.00", Currency::Usd, "casino.example", "gambling", "wire");
    let spend_bad =
        SpendSnapshot { day: Decimal::new(9000, 2), velocity: vec![5, 10], ..SpendSnapshot::default() };
    let decision = decide(&strict, &frozen, &bad, &spend_bad, now);
    assert_eq!(decision.outcome, Outcome::Deny);
    assert!(decision.reasons.len() >= 8, "{:#?}", decision.reasons);
    c.bench_function(&format!("decide/deny_{}_reasons", decision.reasons.len()), |b| {
        b.iter(|| decide(&strict, black_box(&frozen), black_box(&bad), black_box(&spend_bad), black_box(now)))
    });

    let allow20 = set.get("allow20").unwrap();
    assert_eq!(allow20.merchant_allowlist.len(), 20);
    let last = payment("120.00", Currency::Usd, "aws.amazon.com", "cloud", "card");
    let spend20 = SpendSnapshot { merchant_seen: true, velocity: vec![1, 4], ..SpendSnapshot::default() };
    let medium = AgentFacts { trust_level: TrustLevel::Medium, frozen: false };
    assert_eq!(decide(&allow20, &medium, &last, &spend20, now).outcome, Outcome::Approve);
    c.bench_function("decide/allowlist_20_entries", |b| {
        b.iter(|| decide(&allow20, black_box(&medium), black_box(&last), black_box(&spend20), black_box(now)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
