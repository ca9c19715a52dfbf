//! Loading: versions and load errors.

use super::*;

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
fn a_limit_above_a_wider_one_is_a_warning_at_its_line() {
    let text = "\
[policies.p]
currency = \"USD\"
rails = [\"card\"]
per_tx_limit = \"200.00\"
daily_limit = \"100.00\"
";
    let warnings = load_warnings(&[("bad.toml", text)]);
    assert_eq!(warnings.len(), 1, "{}", LoadErrors(warnings.clone()));
    assert_eq!(
        warnings[0].to_string(),
        "bad.toml:4:16: per_tx_limit 200.00 is above daily_limit 100.00, so it never binds: daily_limit denies first"
    );
}

/// A custom policy has no ladder row to fill what it leaves out: it must set
/// its per-payment and daily limits, or nothing would limit them.
#[test]
fn a_custom_policy_must_set_its_limits() {
    let text = "[policies.p]\ntrust_level = \"custom\"\ncurrency = \"USD\"\nrails = [\"card\"]\nweekly_limit = \"900.00\"\n";
    let errors = load_errors(&[("p.toml", text)]);
    assert_error(&errors, "p.toml", 2, "must set `per_tx_limit`");
    assert_error(&errors, "p.toml", 2, "must set `daily_limit`");
    assert_eq!(errors.len(), 2);
    // An agent stored as custom before that was refused gets the low row.
    let p = policy("daily_limit = \"100.00\"\n");
    let d = eval(&p, agent(TrustLevel::Custom), &cloud("60.00"), &seen());
    assert_eq!(codes(&d), [ReasonCode::PerTxLimit], "the low row's 50.00 per payment applies");
}

#[test]
fn pinned_ladder_values_are_checked() {
    let text = "[policies.p]\ntrust_level = \"low\"\ncurrency = \"USD\"\nrails = [\"card\"]\ndaily_limit = \"20.00\"\n";
    let warnings = load_warnings(&[("p.toml", text)]);
    assert_error(
        &warnings,
        "p.toml",
        5,
        "per_tx_limit 50.00 (from the low trust ladder) is above daily_limit 20.00",
    );
    // Unpinned: the row depends on the agent, so only own values compare.
    assert!(load_warnings(&[(
        "p.toml",
        "[policies.p]\ncurrency = \"USD\"\nrails = [\"card\"]\ndaily_limit = \"20.00\"\n"
    )])
    .is_empty());
    let weekly = "[policies.p]\ntrust_level = \"high\"\ncurrency = \"USD\"\nrails = [\"card\"]\nweekly_limit = \"9000.00\"\n";
    let warnings = load_warnings(&[("p.toml", weekly)]);
    assert_error(
        &warnings,
        "p.toml",
        5,
        "daily_limit 10000.00 (from the high trust ladder) is above weekly_limit 9000.00",
    );
    assert_eq!(warnings.len(), 1);
}

/// The approval threshold is reachable when a payment the policy allows
/// can be above it, or, for a first payment to a merchant, above
/// threshold × new_merchant_approval_ratio: only when neither can happen
/// does it never trigger.
#[test]
fn an_approval_threshold_is_a_warning_only_when_nothing_reaches_it() {
    let with = |extra: &str| {
        format!("[policies.p]\ntrust_level = \"custom\"\ncurrency = \"USD\"\nrails = [\"card\"]\nper_tx_limit = \"100.00\"\ndaily_limit = \"1000.00\"\n{extra}")
    };
    // 150 × 0.5 = 75 < 100: a first payment of 80 to a merchant needs approval.
    let reachable = with("approval_threshold = \"150.00\"\n");
    assert!(load_warnings(&[("p.toml", &reachable)]).is_empty());
    let p = load(&[("p.toml", &reachable)]).get("p").unwrap();
    let d = eval(
        &p,
        agent(TrustLevel::Custom),
        &pay("80.00", "new.example", Some("cloud")),
        &SpendSnapshot::default(),
    );
    assert_eq!(codes(&d), [ReasonCode::ApprovalRequired], "{d:?}");
    // 150 × 0.7 = 105 and 150 are both above what per_tx allows.
    let never = with("approval_threshold = \"150.00\"\nnew_merchant_approval_ratio = 0.7\n");
    let warnings = load_warnings(&[("p.toml", &never)]);
    assert_eq!(warnings.len(), 1, "{}", LoadErrors(warnings.clone()));
    assert_error(
        &warnings,
        "p.toml",
        7,
        "approval_threshold 150.00 never triggers: payments above per_tx_limit 100.00 are denied",
    );
    // Exactly at per_tx: a payment of 100.00 is not above 100.00.
    assert_eq!(
        load_warnings(&[(
            "p.toml",
            &with("approval_threshold = \"100.00\"\nnew_merchant_approval_ratio = 1\n")
        )])
        .len(),
        1
    );
    assert!(load_warnings(&[(
        "p.toml",
        &with("approval_threshold = \"99.99\"\nnew_merchant_approval_ratio = 1\n")
    )])
    .is_empty());
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
fn list_entry_errors_and_rules_that_never_apply() {
    let text = "\
[policies.p]
currency = \"USD\"
rails = [\"card\"]

[[policies.p.merchant_allowlist]]
merchant_id = \"a\"
category = \"cloud\"

[[policies.p.merchant_allowlist]]
category = \"clod\"
expires_at = 2026-12-31T00:00:00

[[policies.p.merchant_denylist]]
merchant_id = \"evil.example\"
colour = \"red\"
";
    let errors = load_errors(&[("l.toml", text)]);
    assert_error(&errors, "l.toml", 5, "exactly one of `merchant_id` or `category`");
    assert_error(&errors, "l.toml", 10, "unknown merchant category \"clod\"; did you mean \"cloud\"?");
    assert_error(&errors, "l.toml", 11, "with an offset");
    assert_error(&errors, "l.toml", 15, "unknown key `colour`");
    assert_eq!(errors.len(), 4, "{}", LoadErrors(errors.clone()));

    let text = "\
[policies.p]
currency = \"USD\"
rails = [\"card\"]
per_tx_limit = \"50.00\"
approval_threshold = \"60.00\"
new_merchant_approval_ratio = 1

[[policies.p.merchant_allowlist]]
merchant_id = \"aws.amazon.com\"
max_per_tx = \"75.00\"

[[policies.p.merchant_denylist]]
merchant_id = \"evil.example\"
max_per_tx = \"1.00\"
";
    let warnings = load_warnings(&[("l.toml", text)]);
    assert_error(&warnings, "l.toml", 5, "approval_threshold 60.00 never triggers");
    assert_error(
        &warnings,
        "l.toml",
        10,
        "max_per_tx 75.00 is above the policy's per_tx_limit 50.00, so it never binds",
    );
    assert_error(&warnings, "l.toml", 14, "no effect on a denylist entry");
    assert_eq!(warnings.len(), 3, "{}", LoadErrors(warnings.clone()));
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
