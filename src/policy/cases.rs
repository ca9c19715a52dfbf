//! Table-driven policy cases (`policies/tests/*.toml`), run by
//! `purser policy test`. Each `[[case]]` names a policy, the agent's facts,
//! a payment, a spend snapshot and an instant, and the expected outcome and
//! reason codes:
//!
//! ```toml
//! [[case]]
//! name = "one cent over the daily limit is denied"
//! policy = "low-trust"
//! now = 2026-11-26T12:00:00Z                       # or an RFC 3339 string
//! agent = { trust_level = "low", frozen = false }   # optional; these are the defaults
//! payment = { amount = "10.01", merchant_id = "aws.amazon.com", category = "cloud", rail = "card" }
//! spend = { day = "90.00", merchant_seen = true }   # optional; zero / true / no velocity hits by default
//! expect = "deny"
//! reasons = ["daily_limit"]                        # optional; compared as a set of codes when given
//! ```
//!
//! `payment` also takes `fee` (default "0") and `currency` (default the
//! policy's base currency); `rail` defaults to the policy's first rail.
//! `spend` takes `day`, `week`, `month`, `lifetime`, `merchant`, `category`
//! (decimal strings), `merchant_seen` and `velocity` (counts aligned with the
//! policy's velocity rules for the agent; default all zero).

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::load::{line_col, parse_tree, Checker, Diagnostic, Entry, LoadErrors, Node, Val};
use super::{
    AgentFacts, Channel, Outcome, PaymentFacts, PolicySet, ReasonCode, Snapshot, SpendSnapshot, TrustLevel,
};
use crate::money::{self, Currency};

/// Result of running case files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseReport {
    pub passed: usize,
    pub failures: Vec<CaseFailure>,
}

impl CaseReport {
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }
}

/// A case whose decision did not match its expectation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseFailure {
    pub file: String,
    pub line: usize,
    pub name: String,
    pub message: String,
}

impl std::fmt::Display for CaseFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: case {:?}: {}", self.file, self.line, self.name, self.message)
    }
}

/// Runs every `*.toml` case file directly in `dir` against `set`. Malformed
/// case files (or cases naming unknown policies) are load errors.
pub fn run_cases(set: &PolicySet, dir: &Path) -> Result<CaseReport, LoadErrors> {
    let label = dir.display().to_string();
    let whole =
        |m: String| LoadErrors(vec![Diagnostic { file: label.clone(), line: 0, column: 0, message: m }]);
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| whole(format!("cannot read case directory: {e}")))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.extension().is_some_and(|x| x == "toml")
                && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(whole("no *.toml case files found".into()));
    }
    let mut sources = Vec::new();
    for p in files {
        let text =
            std::fs::read_to_string(&p).map_err(|e| whole(format!("cannot read {}: {e}", p.display())))?;
        sources.push((p.display().to_string(), text));
    }
    run_case_sources(set, &sources)
}

/// Runs case files given as `(file label, TOML text)` pairs.
pub fn run_case_sources(set: &PolicySet, sources: &[(String, String)]) -> Result<CaseReport, LoadErrors> {
    let mut errors = Vec::new();
    let mut cases = Vec::new();
    for (file, text) in sources {
        let root = match parse_tree(file, text) {
            Ok(r) => r,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let mut ck = Checker::new(file, text);
        for e in root.table().unwrap_or(&[]) {
            if e.key != "case" {
                ck.unknown_key(e, "a case file (use [[case]] tables)", &["case"]);
                continue;
            }
            let Some(items) = ck.array("case", &e.node) else {
                continue;
            };
            for item in items {
                if let Some(c) = parse_case(&mut ck, set, item) {
                    cases.push(c);
                }
            }
        }
        errors.extend(ck.errors);
    }
    if !errors.is_empty() {
        return Err(LoadErrors(errors));
    }
    let mut report = CaseReport::default();
    for c in cases {
        let policy = set.get(&c.policy).expect("checked while parsing");
        let mut spend = c.spend;
        if spend.velocity.is_empty() {
            spend.velocity = vec![0; policy.velocity_rules(&c.agent).len()];
        }
        let at = Snapshot { agent: c.agent, spend: &spend, halted: None, now: c.now };
        let d = policy.decide(&c.payment, &at, Channel::Request).decision;
        let mut problems = Vec::new();
        if d.outcome != c.expect {
            problems.push(format!("expected {}, got {}", outcome_name(c.expect), outcome_name(d.outcome)));
        }
        if let Some(mut want) = c.reasons {
            let mut got: Vec<ReasonCode> = d.reasons.iter().map(|r| r.code).collect();
            want.sort();
            got.sort();
            if want != got {
                problems.push(format!("expected reasons [{}], got [{}]", code_list(&want), code_list(&got)));
            }
        }
        if problems.is_empty() {
            report.passed += 1;
        } else {
            let detail: Vec<String> =
                d.reasons.iter().map(|r| format!("{}: {}", code_name(r.code), r.message)).collect();
            let mut message = problems.join("; ");
            if !detail.is_empty() {
                message.push_str(&format!(" ({})", detail.join(" | ")));
            }
            report.failures.push(CaseFailure { file: c.file, line: c.line, name: c.name, message });
        }
    }
    Ok(report)
}

struct Case {
    file: String,
    line: usize,
    name: String,
    policy: String,
    agent: AgentFacts,
    payment: PaymentFacts,
    spend: SpendSnapshot,
    now: DateTime<Utc>,
    expect: Outcome,
    reasons: Option<Vec<ReasonCode>>,
}

const CASE_KEYS: &[&str] = &["name", "policy", "now", "agent", "payment", "spend", "expect", "reasons"];
const AGENT_KEYS: &[&str] = &["trust_level", "frozen"];
const PAYMENT_KEYS: &[&str] = &["amount", "fee", "currency", "merchant_id", "category", "rail"];
const SPEND_KEYS: &[&str] =
    &["day", "week", "month", "lifetime", "merchant", "category", "merchant_seen", "velocity"];

fn fields<'n>(
    ck: &mut Checker,
    what: &str,
    entries: &'n [Entry],
    known: &[&str],
) -> BTreeMap<&'n str, &'n Node> {
    let mut out = BTreeMap::new();
    for e in entries {
        if known.contains(&e.key.as_str()) {
            out.insert(e.key.as_str(), &e.node);
        } else {
            ck.unknown_key(e, what, known);
        }
    }
    out
}

fn parse_case(ck: &mut Checker, set: &PolicySet, item: &Node) -> Option<Case> {
    let before = ck.errors.len();
    let t = ck.table("case", item)?;
    let f = fields(ck, "a case", t, CASE_KEYS);
    let span = item.span();
    let require = |ck: &mut Checker, key: &str| {
        let n = f.get(key).copied();
        if n.is_none() {
            ck.at(&span, format!("case needs `{key}`"));
        }
        n
    };
    let name = require(ck, "name").and_then(|n| ck.string("name", n)).unwrap_or("").to_owned();
    let policy_node = require(ck, "policy");
    let policy = policy_node.and_then(|n| {
        let s = ck.string("policy", n)?;
        if set.get(s).is_none() {
            ck.at(&n.span(), format!("unknown policy {s:?}"));
            return None;
        }
        set.get(s)
    });
    let now = require(ck, "now").and_then(|n| match &n.val {
        Val::Str(s) | Val::Datetime(s) => match DateTime::parse_from_rfc3339(s) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => {
                ck.at(&n.span(), format!("`now` {s:?} must be an RFC 3339 date-time with an offset"));
                None
            }
        },
        _ => {
            ck.at(&n.span(), "`now` must be an RFC 3339 date-time");
            None
        }
    });
    let expect = require(ck, "expect").and_then(|n| {
        let s = ck.string("expect", n)?;
        let o = match s {
            "approve" => Some(Outcome::Approve),
            "deny" => Some(Outcome::Deny),
            "require_approval" => Some(Outcome::RequireApproval),
            _ => None,
        };
        if o.is_none() {
            ck.at(&n.span(), format!("`expect` {s:?} must be approve, deny or require_approval"));
        }
        o
    });
    let reasons = f.get("reasons").and_then(|n| {
        let items = ck.array("reasons", n)?;
        let mut out = Vec::new();
        for i in items {
            let s = ck.string("reasons", i)?;
            match serde_json::from_value::<ReasonCode>(serde_json::Value::String(s.to_owned())) {
                Ok(c) => out.push(c),
                Err(_) => ck.at(&i.span(), format!("unknown reason code {s:?}")),
            }
        }
        Some(out)
    });

    let mut agent = AgentFacts { trust_level: TrustLevel::Low, frozen: false };
    if let Some(n) = f.get("agent") {
        if let Some(t) = ck.table("agent", n) {
            let a = fields(ck, "case agent", t, AGENT_KEYS);
            if let Some(n) = a.get("trust_level") {
                if let Some(s) = ck.string("trust_level", n) {
                    match TrustLevel::parse(s) {
                        Some(l) => agent.trust_level = l,
                        None => ck.at(&n.span(), format!("unknown trust_level {s:?}")),
                    }
                }
            }
            if let Some(n) = a.get("frozen") {
                match n.val {
                    Val::Bool(b) => agent.frozen = b,
                    _ => ck.at(&n.span(), "`frozen` must be true or false"),
                }
            }
        }
    }

    let payment = require(ck, "payment").and_then(|n| {
        let t = ck.table("payment", n)?;
        let p = fields(ck, "case payment", t, PAYMENT_KEYS);
        let policy = policy.as_ref()?;
        let currency = match p.get("currency") {
            None => policy.currency,
            Some(n) => {
                let s = ck.string("currency", n)?;
                match Currency::from_str(s) {
                    Ok(c) => c,
                    Err(e) => {
                        ck.at(&n.span(), e.to_string());
                        return None;
                    }
                }
            }
        };
        let amount = match p.get("amount") {
            Some(n) => ck.amount("amount", n, Some(currency))?,
            None => {
                ck.at(&n.span(), "case payment needs `amount`");
                return None;
            }
        };
        let fee = match p.get("fee") {
            Some(n) => decimal(ck, "fee", n)?,
            None => Decimal::ZERO,
        };
        let merchant_id = match p.get("merchant_id") {
            Some(n) => ck.string("merchant_id", n)?.to_lowercase(),
            None => {
                ck.at(&n.span(), "case payment needs `merchant_id`");
                return None;
            }
        };
        let merchant_category = match p.get("category") {
            Some(n) => Some(ck.string("category", n)?.to_lowercase()),
            None => None,
        };
        let rail = match p.get("rail") {
            Some(n) => ck.string("rail", n)?.to_owned(),
            None => policy.rails.first().cloned().unwrap_or_default(),
        };
        // As the gateway does: the directory's category wins.
        let merchant_category =
            policy.directory.categorize(&merchant_id, merchant_category.as_deref()).category;
        Some(PaymentFacts { amount, fee, currency, merchant_id, merchant_category, rail })
    });

    let mut spend = SpendSnapshot { merchant_seen: true, ..SpendSnapshot::default() };
    if let Some(n) = f.get("spend") {
        if let Some(t) = ck.table("spend", n) {
            let s = fields(ck, "case spend", t, SPEND_KEYS);
            for (key, slot) in [
                ("day", &mut spend.day),
                ("week", &mut spend.week),
                ("month", &mut spend.month),
                ("lifetime", &mut spend.lifetime),
                ("merchant", &mut spend.merchant),
                ("category", &mut spend.category),
            ] {
                if let Some(v) = s.get(key).and_then(|n| decimal(ck, key, n)) {
                    *slot = v;
                }
            }
            if let Some(n) = s.get("merchant_seen") {
                match n.val {
                    Val::Bool(b) => spend.merchant_seen = b,
                    _ => ck.at(&n.span(), "`merchant_seen` must be true or false"),
                }
            }
            if let Some(n) = s.get("velocity") {
                if let Some(items) = ck.array("velocity", n) {
                    for i in items {
                        match i.val {
                            Val::Int(c) if c >= 0 && c <= i64::from(u32::MAX) => {
                                spend.velocity.push(c as u32)
                            }
                            _ => ck.at(&i.span(), "velocity counts must be whole numbers"),
                        }
                    }
                }
            }
        }
    }

    if ck.errors.len() != before {
        return None;
    }
    let (line, _) = line_col(ck.text, span.start);
    Some(Case {
        file: ck.file.to_owned(),
        line,
        name,
        policy: policy?.name.clone(),
        agent,
        payment: payment?,
        spend,
        now: now?,
        expect: expect?,
        reasons,
    })
}

/// A non-negative decimal string (spend and fees may be zero).
fn decimal(ck: &mut Checker, key: &str, n: &Node) -> Option<Decimal> {
    let s = ck.string(key, n)?;
    match money::parse_decimal(s) {
        Ok(v) => Some(v),
        Err(_) => {
            ck.at(
                &n.span(),
                format!("`{key}` {s:?} must be a non-negative decimal string such as \"10.00\""),
            );
            None
        }
    }
}

fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Approve => "approve",
        Outcome::Deny => "deny",
        Outcome::RequireApproval => "require_approval",
    }
}

fn code_name(c: ReasonCode) -> String {
    serde_json::to_value(c).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

fn code_list(codes: &[ReasonCode]) -> String {
    codes.iter().map(|c| code_name(*c)).collect::<Vec<_>>().join(", ")
}
