//! Evaluation: limits at their boundaries, several rules, approvals, the
//! ladder, merchant lists, scopes and schedules.

use super::*;

#[test]
fn per_tx_limit_exactly_at_passes_one_cent_over_fails() {
    let p = policy("trust_level = \"custom\"\nper_tx_limit = \"50.00\"\ndaily_limit = \"100000.00\"\n");
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
    let p = policy("trust_level = \"custom\"\nper_tx_limit = \"50.00\"\ndaily_limit = \"100000.00\"\n");
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
        "trust_level = \"custom\"\nper_tx_limit = \"100.00\"\ndaily_limit = \"100.00\"\nweekly_limit = \"300.00\"\nmonthly_limit = \"500.00\"\nlifetime_limit = \"800.00\"\n",
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
    let p = policy("trust_level = \"custom\"\nper_tx_limit = \"100.00\"\ndaily_limit = \"100.00\"\n");
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
    let p = policy("trust_level = \"custom\"\ncurrencies = [\"USD\", \"USDC\"]\nper_tx_limit = \"50.00\"\ndaily_limit = \"100000.00\"\n");
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
    let p = policy("trust_level = \"custom\"\nper_tx_limit = \"50.00\"\ndaily_limit = \"100000.00\"\napproval_threshold = \"10.00\"\n");
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
    let p = policy("trust_level = \"custom\"\nper_tx_limit = \"9500.00\"\ndaily_limit = \"10000.00\"\n");
    assert_eq!(p.effective_limits(&low()).weekly, None, "no ladder row fills it");
    assert!(p.velocity_rules(&low()).is_empty());
    assert_approve(&eval(&p, low(), &cloud("9000.00"), &seen()));
    // An agent recorded as custom under an unpinned policy gets the low
    // row where the policy is silent: nothing fails open.
    let unpinned = policy("per_tx_limit = \"20.00\"\n");
    let custom = agent(TrustLevel::Custom);
    let l = unpinned.effective_limits(&custom);
    let low_row = Limits {
        per_tx: Some(d("20.00")),
        daily: Some(d("100")),
        weekly: Some(d("500")),
        monthly: Some(d("1000")),
        lifetime: None,
    };
    assert_eq!(l, low_row);
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
    // No category and a merchant the directory does not know: fail closed.
    assert_deny(&eval(&p, low(), &pay("1.00", "shop", None), &seen()), &[ReasonCode::CategoryUnknown]);
    let all = policy("");
    // Blocked categories (the default list) make categories matter too.
    assert_deny(&eval(&all, low(), &pay("1.00", "shop", None), &seen()), &[ReasonCode::CategoryUnknown]);
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

/// The merchant directory decides a known merchant's category, whatever the
/// agent declares; an unknown merchant without a category is what
/// `unknown_merchants` says (deny by default, where categories matter).
#[test]
fn the_directory_decides_categories_and_unknown_merchants_fail_closed() {
    let text = "[merchants.\"casino.example\"]\ncategory = \"gambling\"\n[merchants.\"*.amazonaws.com\"]\ncategory = \"cloud\"\n\n[policies.p]\ncurrency = \"USD\"\nrails = [\"card\"]\n\n[policies.asks]\ncurrency = \"USD\"\nrails = [\"card\"]\nunknown_merchants = \"require_approval\"\n\n[policies.open]\ncurrency = \"USD\"\nrails = [\"card\"]\nunknown_merchants = \"approve\"\n";
    let set = load(&[("p.toml", text)]);
    let p = set.get("p").unwrap();
    let facts = |merchant: &str, declared: Option<&str>| {
        let mut f = pay("20.00", merchant, None);
        f.merchant_category = p.directory.categorize(merchant, declared).category;
        f
    };
    // A casino declared as cloud is evaluated as gambling.
    assert_deny(
        &eval(&p, low(), &facts("casino.example", Some("cloud")), &seen()),
        &[ReasonCode::CategoryBlocked],
    );
    assert_approve(&eval(&p, low(), &facts("s3.amazonaws.com", None), &seen()));
    assert_deny(&eval(&p, low(), &facts("new.example", None), &seen()), &[ReasonCode::CategoryUnknown]);
    // Declared, the category of an unknown merchant is taken as given.
    assert_approve(&eval(&p, low(), &facts("new.example", Some("saas")), &seen()));
    let asks = set.get("asks").unwrap();
    let d = eval(&asks, low(), &facts("new.example", None), &seen());
    assert_eq!((d.outcome, codes(&d)), (Outcome::RequireApproval, vec![ReasonCode::ApprovalRequired]));
    assert_approve(&eval(&set.get("open").unwrap(), low(), &facts("new.example", None), &seen()));
}
