//! Tests of loading and evaluation together; module-local tests live in
//! `ladder.rs`, `schedule.rs` and `windows.rs`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::*;
use crate::money::Currency;

const SHIPPED: &[(&str, &str)] = &[
    ("policies/cloud-compute.toml", include_str!("../../policies/cloud-compute.toml")),
    ("policies/demo.toml", include_str!("../../policies/demo.toml")),
    ("policies/high-trust.toml", include_str!("../../policies/high-trust.toml")),
    ("policies/low-trust.toml", include_str!("../../policies/low-trust.toml")),
    ("policies/medium-trust.toml", include_str!("../../policies/medium-trust.toml")),
    ("policies/retail.toml", include_str!("../../policies/retail.toml")),
    ("policies/scopes.toml", include_str!("../../policies/scopes.toml")),
];
const SHIPPED_CASES: &[(&str, &str)] =
    &[("policies/tests/shipped.toml", include_str!("../../policies/tests/shipped.toml"))];

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

fn load_errors(files: &[(&str, &str)]) -> Vec<LoadError> {
    match PolicySet::from_sources(&sources(files)) {
        Ok(_) => panic!("expected load errors"),
        Err(e) => e.0,
    }
}

fn has_error(errors: &[LoadError], file: &str, line: usize, needle: &str) -> bool {
    errors.iter().any(|e| e.file == file && e.line == line && e.message.contains(needle))
}

fn assert_error(errors: &[LoadError], file: &str, line: usize, needle: &str) {
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

// ---------------------------------------------------------------------------
// Limits at their boundaries.

#[test]
fn per_tx_limit_exactly_at_passes_one_cent_over_fails() {
    let p = policy("trust_level = \"custom\"\nper_tx_limit = \"50.00\"\n");
    assert_approve(&eval(&p, low(), &cloud("50.00"), &seen()));
    let dec = eval(&p, low(), &cloud("50.01"), &seen());
    assert_deny(&dec, &[ReasonCode::PerTxLimit]);
    assert_eq!(dec.reasons[0].limit.as_deref(), Some("50.00"));
    assert_eq!(dec.reasons[0].attempted.as_deref(), Some("50.01"));
    assert_eq!(dec.policy, "p");
    assert!(dec.policy_version.starts_with("sha256:"));
}

#[test]
fn fee_counts_towards_limits() {
    let p = policy("trust_level = \"custom\"\nper_tx_limit = \"50.00\"\n");
    let mut pay = cloud("49.99");
    pay.fee = d("0.01");
    assert_approve(&eval(&p, low(), &pay, &seen()));
    pay.fee = d("0.02");
    assert_deny(&eval(&p, low(), &pay, &seen()), &[ReasonCode::PerTxLimit]);
    assert_eq!(p.counted_amount(&pay), Some(d("50.01")));
}

#[test]
fn window_limits_exactly_at_pass_one_cent_over_fail() {
    let p = policy(
        "trust_level = \"custom\"\ndaily_limit = \"100.00\"\nweekly_limit = \"300.00\"\nmonthly_limit = \"500.00\"\nlifetime_limit = \"800.00\"\n",
    );
    type SetSpent = fn(&mut SpendSnapshot, Decimal);
    let cases: [(SetSpent, ReasonCode, &str, &str); 4] = [
        (|s, v| s.day = v, ReasonCode::DailyLimit, "90.00", "100.00"),
        (|s, v| s.week = v, ReasonCode::WeeklyLimit, "290.00", "300.00"),
        (|s, v| s.month = v, ReasonCode::MonthlyLimit, "490.00", "500.00"),
        (|s, v| s.lifetime = v, ReasonCode::LifetimeLimit, "790.00", "800.00"),
    ];
    for (set, code, spent, limit) in cases {
        let mut spend = seen();
        set(&mut spend, d(spent));
        assert_approve(&eval(&p, low(), &cloud("10.00"), &spend));
        let dec = eval(&p, low(), &cloud("10.01"), &spend);
        assert_deny(&dec, &[code]);
        let r = &dec.reasons[0];
        assert_eq!(r.limit.as_deref(), Some(limit));
        let attempted = (d(spent) + d("10.01")).to_string();
        assert_eq!(r.attempted.as_deref(), Some(attempted.as_str()));
        assert!(r.message.contains(&format!("{spent} spent, 10.01 attempted")), "{}", r.message);
    }
}

#[test]
fn daily_reason_message_and_amounts() {
    let p = policy("trust_level = \"custom\"\ndaily_limit = \"100.00\"\n");
    let spend = SpendSnapshot { day: d("95"), ..seen() };
    let dec = eval(&p, low(), &cloud("10"), &spend);
    let r = &dec.reasons[0];
    assert_eq!(r.message, "daily limit of 100.00 USD would be exceeded: 95.00 spent, 10.00 attempted");
    assert_eq!((r.limit.as_deref(), r.attempted.as_deref()), (Some("100.00"), Some("105.00")));
}

#[test]
fn merchant_cap_exactly_at_passes_one_cent_over_fails() {
    let p = policy(
        "[[policies.p.merchant_allowlist]]\nmerchant_id = \"aws.amazon.com\"\nmax_per_tx = \"30.00\"\n\
         [[policies.p.merchant_allowlist]]\ncategory = \"cloud\"\nmax_per_tx = \"45.00\"\n",
    );
    assert_approve(&eval(&p, low(), &cloud("30.00"), &seen()));
    let dec = eval(&p, low(), &cloud("30.01"), &seen());
    assert_deny(&dec, &[ReasonCode::MerchantPerTxLimit]);
    assert_eq!(dec.reasons[0].limit.as_deref(), Some("30.00"));
    // Another cloud merchant gets the category entry's cap.
    let other = pay("45.00", "hetzner.com", Some("cloud"));
    assert_approve(&eval(&p, low(), &other, &seen()));
    let other = pay("45.01", "hetzner.com", Some("cloud"));
    let dec = eval(&p, low(), &other, &seen());
    assert_deny(&dec, &[ReasonCode::MerchantPerTxLimit]);
    assert_eq!(dec.reasons[0].limit.as_deref(), Some("45.00"));
}

#[test]
fn usdc_sub_cent_amounts_are_not_rounded_onto_the_limit() {
    let p = policy("trust_level = \"custom\"\ncurrencies = [\"USD\", \"USDC\"]\nper_tx_limit = \"50.00\"\n");
    let mut pay = cloud("50.000001");
    pay.currency = Currency::Usdc;
    let dec = eval(&p, low(), &pay, &seen());
    assert_deny(&dec, &[ReasonCode::PerTxLimit]);
    assert_eq!(dec.reasons[0].attempted.as_deref(), Some("50.000001"));
    pay.amount = d("50.000000");
    assert_approve(&eval(&p, low(), &pay, &seen()));
}

// ---------------------------------------------------------------------------
// Several rules, approvals.

#[test]
fn every_failing_rule_is_listed_in_code_order() {
    let p = policy("trust_level = \"custom\"\nper_tx_limit = \"50.00\"\napproval_threshold = \"10.00\"\n");
    let frozen = AgentFacts { trust_level: TrustLevel::Low, frozen: true };
    let dec = eval(&p, frozen, &pay("60.00", "casino.example", Some("gambling")), &seen());
    assert_deny(&dec, &[ReasonCode::PerTxLimit, ReasonCode::CategoryBlocked, ReasonCode::AgentFrozen]);
    // Same result whatever else is going on: the list is sorted by code.
    let mut sorted = dec.reasons.clone();
    sorted.sort_by_key(|r| r.code);
    assert_eq!(sorted, dec.reasons);
}

#[test]
fn deny_beats_approval() {
    let p = policy("approval_threshold = \"20.00\"\n");
    let dec = eval(&p, low(), &pay("30.00", "liquor.example", Some("alcohol")), &SpendSnapshot::default());
    assert_deny(&dec, &[ReasonCode::CategoryBlocked]);
}

#[test]
fn approval_threshold_boundary() {
    let p = policy("approval_threshold = \"40.00\"\n");
    assert_approve(&eval(&p, low(), &cloud("40.00"), &seen()));
    let dec = eval(&p, low(), &cloud("40.01"), &seen());
    assert_eq!(dec.outcome, Outcome::RequireApproval);
    assert_eq!(codes(&dec), [ReasonCode::ApprovalRequired]);
    assert_eq!(dec.reasons[0].limit.as_deref(), Some("40.00"));
    assert_eq!(dec.reasons[0].attempted.as_deref(), Some("40.01"));
    assert!(dec.reasons[0].message.contains("approval threshold"));
}

#[test]
fn new_merchant_needs_approval_above_ratio() {
    let p = policy("approval_threshold = \"40.00\"\n");
    let new = SpendSnapshot { merchant_seen: false, ..SpendSnapshot::default() };
    assert_approve(&eval(&p, low(), &cloud("20.00"), &new));
    let dec = eval(&p, low(), &cloud("20.01"), &new);
    assert_eq!(dec.outcome, Outcome::RequireApproval);
    assert_eq!(dec.reasons[0].limit.as_deref(), Some("20.00"));
    assert!(
        dec.reasons[0].message.contains("first payment to merchant aws.amazon.com"),
        "{}",
        dec.reasons[0].message
    );
    // A merchant seen before only needs approval above the full threshold.
    assert_approve(&eval(&p, low(), &cloud("20.01"), &seen()));

    let quarter = policy("approval_threshold = \"40.00\"\nnew_merchant_approval_ratio = 0.25\n");
    assert_approve(&eval(&quarter, low(), &cloud("10.00"), &new));
    assert_eq!(eval(&quarter, low(), &cloud("10.01"), &new).outcome, Outcome::RequireApproval);
    let zero = policy("approval_threshold = \"40.00\"\nnew_merchant_approval_ratio = \"0\"\n");
    assert_eq!(eval(&zero, low(), &cloud("0.01"), &new).outcome, Outcome::RequireApproval);
}

#[test]
fn no_threshold_means_no_approval() {
    let p = policy("");
    let new = SpendSnapshot { merchant_seen: false, ..SpendSnapshot::default() };
    assert_approve(&eval(&p, low(), &cloud("50.00"), &new));
}

// ---------------------------------------------------------------------------
// The ladder.

#[test]
fn unpinned_policy_follows_the_agents_level() {
    let p = policy("");
    assert_deny(&eval(&p, low(), &cloud("50.01"), &seen()), &[ReasonCode::PerTxLimit]);
    assert_approve(&eval(&p, agent(TrustLevel::Medium), &cloud("50.01"), &seen()));
    let spend = SpendSnapshot { day: d("95.00"), ..seen() };
    assert_deny(&eval(&p, low(), &cloud("10.00"), &spend), &[ReasonCode::DailyLimit]);
    assert_approve(&eval(&p, agent(TrustLevel::Medium), &cloud("10.00"), &spend));
    let l = p.effective_limits(&agent(TrustLevel::High));
    assert_eq!(
        (l.per_tx, l.daily, l.weekly, l.monthly),
        (Some(d("5000")), Some(d("10000")), Some(d("50000")), Some(d("100000")))
    );
    assert_eq!(l.lifetime, None);
    // Own limits win over the ladder; the rest still comes from it.
    let own = policy("daily_limit = \"70.00\"\n");
    let l = own.effective_limits(&low());
    assert_eq!((l.per_tx, l.daily), (Some(d("50")), Some(d("70.00"))));
}

#[test]
fn pinned_policy_ignores_the_agents_level() {
    let p = policy("trust_level = \"medium\"\n");
    for level in [TrustLevel::Low, TrustLevel::High, TrustLevel::Custom] {
        assert_approve(&eval(&p, agent(level), &cloud("500.00"), &seen()));
        assert_deny(&eval(&p, agent(level), &cloud("500.01"), &seen()), &[ReasonCode::PerTxLimit]);
    }
}

#[test]
fn custom_has_no_ladder() {
    let p = policy("trust_level = \"custom\"\ndaily_limit = \"10000.00\"\n");
    assert_eq!(p.effective_limits(&low()).per_tx, None);
    assert!(p.velocity_rules(&low()).is_empty());
    assert_approve(&eval(&p, low(), &cloud("9000.00"), &seen()));
    // A custom agent under an unpinned policy: only the policy's own limits.
    let unpinned = policy("per_tx_limit = \"20.00\"\n");
    let custom = agent(TrustLevel::Custom);
    let l = unpinned.effective_limits(&custom);
    assert_eq!(l, Limits { per_tx: Some(d("20.00")), ..Limits::default() });
    assert_approve(&eval(&unpinned, custom, &cloud("20.00"), &seen()));
}

#[test]
fn velocity_boundary_and_ladder_rules() {
    let p = policy("");
    let rules = p.velocity_rules(&low());
    assert_eq!(rules.iter().map(|r| (r.max, r.per.as_secs())).collect::<Vec<_>>(), [(5, 60), (60, 3600)]);
    let with = |v: Vec<u32>| SpendSnapshot { velocity: v, ..seen() };
    assert_approve(&eval(&p, low(), &cloud("1.00"), &with(vec![4, 59])));
    let dec = eval(&p, low(), &cloud("1.00"), &with(vec![5, 5]));
    assert_deny(&dec, &[ReasonCode::VelocityLimit]);
    assert_eq!(
        (dec.reasons[0].limit.as_deref(), dec.reasons[0].attempted.as_deref()),
        (Some("5"), Some("6"))
    );
    assert_deny(&eval(&p, low(), &cloud("1.00"), &with(vec![0, 60])), &[ReasonCode::VelocityLimit]);
    // Counts the store did not supply fail closed.
    let dec = p.evaluate(&low(), &cloud("1.00"), &seen(), noon());
    assert_deny(&dec, &[ReasonCode::VelocityLimit, ReasonCode::VelocityLimit]);

    let own = policy("velocity = { max = 2, per = \"10m\" }\n");
    let rules = own.velocity_rules(&agent(TrustLevel::High));
    assert_eq!(rules, [VelocityRule { max: 2, per: std::time::Duration::from_secs(600) }]);
    assert_approve(&eval(&own, low(), &cloud("1.00"), &with(vec![1])));
    assert_deny(&eval(&own, low(), &cloud("1.00"), &with(vec![2])), &[ReasonCode::VelocityLimit]);
    let none = policy("velocity = []\n");
    assert!(none.velocity_rules(&low()).is_empty());
}

// ---------------------------------------------------------------------------
// Merchant lists, scopes, schedules.

#[test]
fn denylist_beats_allowlist() {
    let p = policy(
        "[[policies.p.merchant_allowlist]]\nmerchant_id = \"aws.amazon.com\"\n\
         [[policies.p.merchant_denylist]]\nmerchant_id = \"aws.amazon.com\"\n",
    );
    assert_deny(&eval(&p, low(), &cloud("1.00"), &seen()), &[ReasonCode::MerchantDenied]);
    let by_category = policy(
        "[[policies.p.merchant_allowlist]]\nmerchant_id = \"aws.amazon.com\"\n\
         [[policies.p.merchant_denylist]]\ncategory = \"cloud\"\n",
    );
    assert_deny(&eval(&by_category, low(), &cloud("1.00"), &seen()), &[ReasonCode::MerchantDenied]);
    let other = pay("1.00", "shop.example", Some("retail"));
    assert_deny(&eval(&by_category, low(), &other, &seen()), &[ReasonCode::MerchantNotAllowed]);
}

#[test]
fn expired_entries_do_not_apply() {
    let p = policy(
        "[[policies.p.merchant_allowlist]]\nmerchant_id = \"aws.amazon.com\"\nexpires_at = 2026-11-26T12:00:00Z\n\
         [[policies.p.merchant_allowlist]]\nmerchant_id = \"gcp.example\"\n\
         [[policies.p.merchant_denylist]]\nmerchant_id = \"gcp.example\"\nexpires_at = \"2026-11-26T12:00:00Z\"\n",
    );
    let before = at("2026-11-26T11:59:59Z");
    assert_approve(&eval_at(&p, low(), &cloud("1.00"), &seen(), before));
    assert_deny(&eval_at(&p, low(), &cloud("1.00"), &seen(), noon()), &[ReasonCode::MerchantNotAllowed]);
    let gcp = pay("1.00", "gcp.example", Some("cloud"));
    assert_deny(&eval_at(&p, low(), &gcp, &seen(), before), &[ReasonCode::MerchantDenied]);
    assert_approve(&eval_at(&p, low(), &gcp, &seen(), noon()));
}

#[test]
fn merchant_id_entry_wins_over_category_entry() {
    let p = policy(
        "[[policies.p.merchant_allowlist]]\ncategory = \"cloud\"\nlifetime_limit = \"1000.00\"\n\
         [[policies.p.merchant_allowlist]]\nmerchant_id = \"aws.amazon.com\"\nmax_per_tx = \"20.00\"\nlifetime_limit = \"100.00\"\n",
    );
    let spend = SpendSnapshot { merchant: d("90.00"), category: d("990.00"), ..seen() };
    // The merchant entry applies (its cap and its lifetime on spend.merchant).
    assert_approve(&eval(&p, low(), &cloud("10.00"), &spend));
    let dec = eval(&p, low(), &cloud("10.01"), &spend);
    assert_deny(&dec, &[ReasonCode::LifetimeLimit]);
    assert_eq!(dec.reasons[0].limit.as_deref(), Some("100.00"));
    assert_eq!(dec.reasons[0].attempted.as_deref(), Some("100.01"));
    assert_deny(&eval(&p, low(), &cloud("20.01"), &seen()), &[ReasonCode::MerchantPerTxLimit]);
    // Another cloud merchant gets the category entry: lifetime on spend.category.
    let other = pay("10.01", "hetzner.com", Some("cloud"));
    let dec = eval(&p, low(), &other, &spend);
    assert_deny(&dec, &[ReasonCode::LifetimeLimit]);
    assert_eq!(dec.reasons[0].limit.as_deref(), Some("1000.00"));
    assert_approve(&eval(&p, low(), &pay("10.00", "hetzner.com", Some("cloud")), &spend));
}

#[test]
fn scopes_restrict_categories() {
    let p = policy("allowed_scopes = [\"compute\"]\n");
    assert_approve(&eval(&p, low(), &cloud("1.00"), &seen()));
    assert_approve(&eval(&p, low(), &pay("1.00", "openai.com", Some("ai")), &seen()));
    assert_deny(
        &eval(&p, low(), &pay("1.00", "shop", Some("retail")), &seen()),
        &[ReasonCode::ScopeNotAllowed],
    );
    assert_deny(&eval(&p, low(), &pay("1.00", "shop", None), &seen()), &[ReasonCode::ScopeNotAllowed]);
    let all = policy("");
    assert_approve(&eval(&all, low(), &pay("1.00", "shop", None), &seen()));
    assert_approve(&eval(&all, low(), &pay("1.00", "shop", Some("something-new")), &seen()));
}

#[test]
fn scope_tables_merge_across_files() {
    let set = load(&[
        ("a.toml", "[scopes]\ncompute = [\"GPU\"]\noffice = [\"printing\"]\n"),
        ("b.toml", "[scopes]\noffice = [\"stationery\"]\n"),
        ("c.toml", "[policies.p]\ncurrency = \"USD\"\nrails = [\"card\"]\nallowed_scopes = [\"office\", \"compute\"]\nblocked_categories = [\"gpu\"]\n"),
    ]);
    let p = set.get("p").unwrap();
    assert_eq!(p.scopes()["office"], ["printing", "stationery"]);
    assert!(p.scopes()["compute"].contains(&"gpu".to_owned()));
    assert!(p.scopes()["compute"].contains(&"cloud".to_owned()));
    assert_approve(&eval(&p, low(), &pay("1.00", "x", Some("stationery")), &seen()));
    assert_approve(&eval(&p, low(), &cloud("1.00"), &seen()));
    assert_deny(&eval(&p, low(), &pay("1.00", "x", Some("gpu")), &seen()), &[ReasonCode::CategoryBlocked]);
    // blocked_categories replaces the default list.
    assert_approve(&eval(
        &policy("blocked_categories = []\n"),
        low(),
        &pay("1.00", "x", Some("gambling")),
        &seen(),
    ));
}

#[test]
fn policy_schedule_in_local_time() {
    let p = policy(
        "timezone = \"America/New_York\"\nschedule = { days = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"], hours = \"09:00-17:00\" }\n",
    );
    // Thursday 09:00 EST = 14:00Z; 17:00 EST = 22:00Z.
    assert_deny(
        &eval_at(&p, low(), &cloud("1.00"), &seen(), at("2026-11-26T13:59:59Z")),
        &[ReasonCode::OutsideSchedule],
    );
    assert_approve(&eval_at(&p, low(), &cloud("1.00"), &seen(), at("2026-11-26T14:00:00Z")));
    assert_approve(&eval_at(&p, low(), &cloud("1.00"), &seen(), at("2026-11-26T21:59:59Z")));
    assert_deny(
        &eval_at(&p, low(), &cloud("1.00"), &seen(), at("2026-11-26T22:00:00Z")),
        &[ReasonCode::OutsideSchedule],
    );
    // Saturday noon local.
    assert_deny(
        &eval_at(&p, low(), &cloud("1.00"), &seen(), at("2026-11-28T17:00:00Z")),
        &[ReasonCode::OutsideSchedule],
    );
}

#[test]
fn wrapping_schedule_and_entry_schedules() {
    // Night window in India (UTC+05:30): 22:00-06:00 local.
    let p = policy(
        "timezone = \"Asia/Kolkata\"\n\
         [[policies.p.merchant_allowlist]]\ncategory = \"cloud\"\nschedule = { hours = \"22:00-06:00\" }\n",
    );
    // 22:00 IST = 16:30Z; 06:00 IST = 00:30Z.
    assert_deny(
        &eval_at(&p, low(), &cloud("1.00"), &seen(), at("2026-11-26T16:29:00Z")),
        &[ReasonCode::OutsideSchedule],
    );
    assert_approve(&eval_at(&p, low(), &cloud("1.00"), &seen(), at("2026-11-26T16:30:00Z")));
    assert_approve(&eval_at(&p, low(), &cloud("1.00"), &seen(), at("2026-11-26T23:00:00Z")));
    assert_approve(&eval_at(&p, low(), &cloud("1.00"), &seen(), at("2026-11-27T00:29:59Z")));
    assert_deny(
        &eval_at(&p, low(), &cloud("1.00"), &seen(), at("2026-11-27T00:30:00Z")),
        &[ReasonCode::OutsideSchedule],
    );

    // A denylist entry with a schedule denies only inside it: no weekend travel.
    let q = policy(
        "[[policies.p.merchant_denylist]]\ncategory = \"travel\"\nschedule = { days = [\"sat\", \"sun\"] }\n",
    );
    let trip = pay("1.00", "airline.example", Some("travel"));
    assert_approve(&eval_at(&q, low(), &trip, &seen(), noon()));
    assert_deny(
        &eval_at(&q, low(), &trip, &seen(), at("2026-11-28T12:00:00Z")),
        &[ReasonCode::MerchantDenied],
    );
}

#[test]
fn currencies_rails_and_providers() {
    let p = policy(
        "currencies = [\"USD\", \"USDC\"]\nrails = [\"card\", \"usdc\"]\nproviders = { usdc = \"circle\" }\n",
    );
    let mut usdc = cloud("10.500000");
    usdc.currency = Currency::Usdc;
    usdc.rail = "usdc".into();
    assert_approve(&eval(&p, low(), &usdc, &seen()));
    assert_eq!(p.counted_amount(&usdc), Some(d("10.5")));
    let mut eur = cloud("10.00");
    eur.currency = Currency::Eur;
    assert_deny(&eval(&p, low(), &eur, &seen()), &[ReasonCode::CurrencyNotAllowed]);
    assert_eq!(p.counted_amount(&eur), None);
    let mut wire = cloud("10.00");
    wire.rail = "wire".into();
    assert_deny(&eval(&p, low(), &wire, &seen()), &[ReasonCode::RailNotAllowed]);
    assert_eq!(p.provider_for("usdc"), "circle");
    assert_eq!(p.provider_for("card"), "sandbox");
    // The default: only the base currency.
    assert_eq!(policy("").currencies, [Currency::Usd]);
}

#[test]
fn window_keys_use_the_policy_time_zone() {
    let p = policy("timezone = \"America/New_York\"\n");
    let before = p.window_keys(at("2026-11-27T04:59:59Z"));
    let after = p.window_keys(at("2026-11-27T05:00:00Z"));
    assert_eq!(
        (before.day.as_str(), before.week.as_str(), before.month.as_str()),
        ("2026-11-26", "2026-W48", "2026-11")
    );
    assert_eq!(after.day, "2026-11-27");
    let utc = policy("");
    assert_eq!(utc.window_keys(at("2026-11-27T04:59:59Z")).day, "2026-11-27");
}

#[test]
fn names_are_case_insensitive() {
    let p = policy(
        "allowed_scopes = [\"Compute\"]\nblocked_categories = [\"Gambling\"]\n\
         [[policies.p.merchant_allowlist]]\nmerchant_id = \"AWS.Amazon.com\"\n\
         [[policies.p.merchant_allowlist]]\ncategory = \"AI\"\n",
    );
    assert_eq!(p.allowed_scopes, ["compute"]);
    assert_eq!(p.blocked_categories, ["gambling"]);
    assert_approve(&eval(&p, low(), &cloud("1.00"), &seen()));
    assert_approve(&eval(&p, low(), &pay("1.00", "openai.com", Some("ai")), &seen()));
}

// ---------------------------------------------------------------------------
// Versions.

#[test]
fn versions_hash_each_policy_and_the_scope_table() {
    let a = "[policies.a]\ncurrency = \"USD\"\nrails = [\"card\"]\nper_tx_limit = \"10.00\"\n";
    let b = "[policies.b]\ncurrency = \"USD\"\nrails = [\"card\"]\n";
    let base = load(&[("a.toml", a), ("b.toml", b)]);
    let va = base.get("a").unwrap().version.clone();
    let vb = base.get("b").unwrap().version.clone();
    assert!(va.starts_with("sha256:") && va.len() == 7 + 64, "{va}");
    assert_ne!(va, vb);
    // Editing b does not change a.
    let b2 = "[policies.b]\ncurrency = \"USD\"\nrails = [\"card\", \"usdc\"]\n";
    let edited = load(&[("a.toml", a), ("b.toml", b2)]);
    assert_eq!(edited.get("a").unwrap().version, va);
    assert_ne!(edited.get("b").unwrap().version, vb);
    // Key order, comments and the file a policy lives in do not matter.
    let a_reordered =
        "# comment\n[policies.a]\nper_tx_limit = \"10.00\"\nrails = [\"card\"]\ncurrency = \"USD\"\n";
    let moved = load(&[("z.toml", a_reordered), ("b.toml", b)]);
    assert_eq!(moved.get("a").unwrap().version, va);
    // The scope table is part of every version.
    let scoped = load(&[("a.toml", a), ("b.toml", b), ("s.toml", "[scopes]\noffice = [\"printing\"]\n")]);
    assert_ne!(scoped.get("a").unwrap().version, va);
    assert_ne!(scoped.get("b").unwrap().version, vb);
}

// ---------------------------------------------------------------------------
// Load errors.

#[test]
fn per_tx_above_daily_points_at_the_line() {
    let text = "\
[policies.p]
currency = \"USD\"
rails = [\"card\"]
per_tx_limit = \"200.00\"
daily_limit = \"100.00\"
";
    let errors = load_errors(&[("bad.toml", text)]);
    assert_eq!(errors.len(), 1, "{}", LoadErrors(errors.clone()));
    assert_eq!(errors[0].to_string(), "bad.toml:4:16: per_tx_limit 200.00 is above daily_limit 100.00");
}

#[test]
fn pinned_ladder_values_are_checked() {
    let text = "[policies.p]\ntrust_level = \"low\"\ncurrency = \"USD\"\nrails = [\"card\"]\ndaily_limit = \"20.00\"\n";
    let errors = load_errors(&[("p.toml", text)]);
    assert_error(
        &errors,
        "p.toml",
        5,
        "per_tx_limit 50.00 (from the low trust ladder) is above daily_limit 20.00",
    );
    // Unpinned: the row depends on the agent, so only own values compare.
    policy("daily_limit = \"20.00\"\n");
    let weekly = "[policies.p]\ntrust_level = \"high\"\ncurrency = \"USD\"\nrails = [\"card\"]\nweekly_limit = \"9000.00\"\n";
    let errors = load_errors(&[("p.toml", weekly)]);
    assert_error(
        &errors,
        "p.toml",
        5,
        "daily_limit 10000.00 (from the high trust ladder) is above weekly_limit 9000.00",
    );
    assert_eq!(errors.len(), 1);
}

#[test]
fn many_errors_are_all_reported_with_lines() {
    let text = "\
[policies.p]
currency = \"USD\"
rails = [\"card\", \"Card\"]
per_tx_limit = \"-5.00\"
daily_limit = \"0\"
weekly_limit = 100
monthly_limit = \"10.001\"
dialy_limit = \"1.00\"
timezone = \"Mars/Olympus\"
allowed_scopes = [\"compute\", \"cmopute\"]
blocked_categories = [\"gambling\", \"gamblng\"]
currencies = [\"USD\", \"EUR\"]
velocity = { max = 0, per = \"1h\" }
approvals_required = 0
approval_timeout = \"soon\"
new_merchant_approval_ratio = 1.5
trust_level = \"extreme\"
schedule = { days = [\"mon\", \"funday\"] }
";
    let errors = load_errors(&[("bad.toml", text)]);
    let f = "bad.toml";
    assert_error(&errors, f, 3, "rail \"Card\" must be lower-case");
    assert_error(&errors, f, 4, "per_tx_limit` must be greater than zero");
    assert_error(&errors, f, 5, "daily_limit` must be greater than zero");
    assert_error(&errors, f, 6, "amounts are strings");
    assert_error(&errors, f, 7, "more fraction digits than USD allows");
    assert_error(&errors, f, 8, "did you mean `daily_limit`?");
    assert_error(&errors, f, 9, "unknown time zone \"Mars/Olympus\"");
    assert_error(&errors, f, 10, "unknown scope \"cmopute\"; did you mean \"compute\"?");
    assert_error(&errors, f, 11, "unknown merchant category \"gamblng\"; did you mean \"gambling\"?");
    assert_error(&errors, f, 12, "currency EUR cannot be counted against USD limits");
    assert_error(&errors, f, 13, "velocity `max` must be a whole number of at least 1");
    assert_error(&errors, f, 14, "approvals_required");
    assert_error(&errors, f, 15, "approval_timeout");
    assert_error(&errors, f, 16, "new_merchant_approval_ratio");
    assert_error(&errors, f, 17, "unknown trust_level \"extreme\"");
    assert_error(&errors, f, 18, "unknown day \"funday\"");
    assert_eq!(errors.len(), 16, "{}", LoadErrors(errors.clone()));
    // Sorted by line.
    assert!(errors.windows(2).all(|w| w[0].line <= w[1].line));
}

#[test]
fn list_entry_and_threshold_errors() {
    let text = "\
[policies.p]
currency = \"USD\"
rails = [\"card\"]
per_tx_limit = \"50.00\"
approval_threshold = \"60.00\"

[[policies.p.merchant_allowlist]]
merchant_id = \"aws.amazon.com\"
max_per_tx = \"75.00\"

[[policies.p.merchant_allowlist]]
merchant_id = \"a\"
category = \"cloud\"

[[policies.p.merchant_allowlist]]
category = \"clod\"
expires_at = 2026-12-31T00:00:00

[[policies.p.merchant_denylist]]
merchant_id = \"evil.example\"
max_per_tx = \"1.00\"
colour = \"red\"
";
    let errors = load_errors(&[("l.toml", text)]);
    assert_error(
        &errors,
        "l.toml",
        5,
        "approval_threshold 60.00 is above per_tx_limit 50.00, so it never triggers",
    );
    assert_error(&errors, "l.toml", 9, "max_per_tx 75.00 is above the policy's per_tx_limit 50.00");
    assert_error(&errors, "l.toml", 11, "exactly one of `merchant_id` or `category`");
    assert_error(&errors, "l.toml", 16, "unknown merchant category \"clod\"; did you mean \"cloud\"?");
    assert_error(&errors, "l.toml", 17, "with an offset");
    assert_error(&errors, "l.toml", 21, "no effect on a denylist entry");
    assert_error(&errors, "l.toml", 22, "unknown key `colour`");
    assert_eq!(errors.len(), 7, "{}", LoadErrors(errors.clone()));
}

#[test]
fn missing_required_keys_and_bad_structure() {
    let errors = load_errors(&[(
        "m.toml",
        "[policies.p]\nper_tx_limit = \"5.00\"\n\n[policies.q]\ncurrency = \"USDC\"\nrails = []\n",
    )]);
    assert_error(&errors, "m.toml", 1, "needs `currency`");
    assert_error(&errors, "m.toml", 1, "needs `rails`");
    assert_error(&errors, "m.toml", 5, "base currency must be a fiat currency");
    assert_error(&errors, "m.toml", 6, "`rails` is empty");
    let errors = load_errors(&[("x.toml", "[polices.p]\ncurrency = \"USD\"\n")]);
    assert_error(&errors, "x.toml", 1, "unknown key `polices`");
    let errors = load_errors(&[("x.toml", "[policies.p]\ncurrency = \"USD\"\nrails = [\"card\"]\nmerchant_allowlist = { category = \"cloud\" }\n")]);
    assert_error(&errors, "x.toml", 4, "must be an array of tables");
}

#[test]
fn syntax_errors_and_duplicates_across_files() {
    let ok = "[policies.p]\ncurrency = \"USD\"\nrails = [\"card\"]\n";
    let dup = "# the same name again\n\n[policies.p]\ncurrency = \"USD\"\nrails = [\"card\"]\n";
    let broken = "[policies.q]\ncurrency = \"USD\"\nrails = [\"card\"\n";
    let errors = load_errors(&[("a.toml", ok), ("b.toml", dup), ("c.toml", broken)]);
    assert_error(&errors, "b.toml", 3, "policy \"p\" is already defined at a.toml:1:11");
    assert!(errors.iter().any(|e| e.file == "c.toml" && e.line >= 3), "{}", LoadErrors(errors.clone()));
    assert_eq!(errors.len(), 2);
    // Display: one error per line, file:line:column: message.
    let shown = LoadErrors(errors).to_string();
    assert_eq!(shown.lines().count(), 2);
    assert!(shown.starts_with("b.toml:3:11: policy \"p\""), "{shown}");
}

#[test]
fn empty_sets_are_errors() {
    assert!(PolicySet::from_sources(&[]).is_err());
    let errors = load_errors(&[("s.toml", "[scopes]\noffice = [\"printing\"]\n")]);
    assert!(errors[0].message.contains("no policies defined"));
}

#[test]
fn load_dir_reads_toml_files_only() {
    let dir = std::env::temp_dir().join(format!("purser-policy-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    assert!(PolicySet::load_dir(&dir).is_err(), "a directory without policies is an error");
    std::fs::write(dir.join("b.toml"), "[policies.b]\ncurrency = \"EUR\"\nrails = [\"sepa\"]\n").unwrap();
    std::fs::write(dir.join("a.toml"), "[policies.a]\ncurrency = \"USD\"\nrails = [\"card\"]\n").unwrap();
    std::fs::write(dir.join("README.md"), "not toml").unwrap();
    std::fs::write(dir.join("tests/cases.toml"), "this is [ not a policy").unwrap();
    let set = PolicySet::load_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(set.names().collect::<Vec<_>>(), ["a", "b"]);
    assert!(set.get("a").unwrap().source.ends_with("a.toml"));
    std::fs::write(dir.join("c.toml"), "[policies.c]\ncurrency = \"USD\"\n").unwrap();
    let errors = PolicySet::load_dir(&dir).unwrap_err().0;
    assert_eq!(errors.len(), 1);
    assert!(errors[0].file.ends_with("c.toml") && errors[0].line == 1);
    std::fs::remove_dir_all(&dir).unwrap();
    let missing = PolicySet::load_dir(&dir).unwrap_err();
    assert!(missing.to_string().contains("cannot read policy directory"), "{missing}");
}

// ---------------------------------------------------------------------------
// The shipped policies and cases.

#[test]
fn shipped_policies_load() {
    let set = load(SHIPPED);
    let names: Vec<&str> = set.names().collect();
    assert_eq!(names, ["cloud-compute", "demo", "high-trust", "low-trust", "medium-trust", "retail"]);
    let demo = set.get("demo").unwrap();
    assert_eq!(demo.limits.per_tx, Some(d("500.00")));
    assert_eq!(demo.limits.daily, Some(d("1000.00")));
    assert_eq!(demo.approval_threshold, Some(d("100.00")));
    assert!(demo.merchant_allowlist.is_empty());
    assert_eq!(demo.rails, ["card", "usdc"]);
    assert_eq!(demo.velocity_rules(&low())[0].max, 600);
    assert_eq!(demo.blocked_categories, DEFAULT_BLOCKED_CATEGORIES);
    let low_trust = set.get("low-trust").unwrap();
    assert_eq!(low_trust.trust_level, Some(TrustLevel::Low));
    assert_eq!(low_trust.limits.per_tx, Some(d("50.00")));
    assert_eq!(set.get("cloud-compute").unwrap().allowed_scopes, ["compute"]);
    assert!(set.get("retail").unwrap().schedule.is_some());
}

#[test]
fn shipped_cases_pass() {
    let set = load(SHIPPED);
    let report = run_case_sources(&set, &sources(SHIPPED_CASES)).unwrap_or_else(|e| panic!("{e}"));
    let failures: Vec<String> = report.failures.iter().map(ToString::to_string).collect();
    assert!(report.ok(), "{}", failures.join("\n"));
    assert!(report.passed >= 15, "{}", report.passed);
}

#[test]
fn failing_cases_are_reported() {
    let set = load(SHIPPED);
    let cases = "\
[[case]]
name = \"wrong on purpose\"
policy = \"demo\"
now = \"2026-11-26T12:00:00Z\"
payment = { amount = \"100.01\", merchant_id = \"m\", category = \"retail\" }
expect = \"approve\"
reasons = [\"per_tx_limit\"]
";
    let report = run_case_sources(&set, &sources(&[("t.toml", cases)])).unwrap();
    assert_eq!(report.passed, 0);
    assert_eq!(report.failures.len(), 1);
    let f = &report.failures[0];
    assert_eq!((f.file.as_str(), f.line), ("t.toml", 1));
    assert!(f.message.contains("expected approve, got require_approval"), "{}", f.message);
    let bad = "[[case]]\nname = \"x\"\npolicy = \"nope\"\nnow = 2026-11-26T12:00:00Z\npayment = { amount = \"1\", merchant_id = \"m\" }\nexpect = \"approve\"\n";
    let errors = run_case_sources(&set, &sources(&[("t.toml", bad)])).unwrap_err().0;
    assert_error(&errors, "t.toml", 3, "unknown policy \"nope\"");
}
