//! The shipped policies and their cases.

use super::*;

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
