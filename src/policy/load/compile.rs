//! One `[policies.<name>]` table to a [`Policy`]: each field is read by its
//! own function, which reports what is wrong with it at its position.

use std::collections::BTreeMap;
use std::ops::Range;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};

use super::checker::{is_name, suggest, Checker};
use super::checks::{self, Rules};
use super::tree::{Entry, Node, Val};
use super::{Context, ALL_SCOPE, DEFAULT_BLOCKED_CATEGORIES};
use crate::money::Currency;
use crate::policy::{
    Limits, MerchantRule, MerchantTarget, Policy, TrustLevel, UnknownMerchants, VelocityRule,
};

const POLICY_KEYS: &[&str] = &[
    "description",
    "trust_level",
    "currency",
    "currencies",
    "rails",
    "providers",
    "per_tx_limit",
    "daily_limit",
    "weekly_limit",
    "monthly_limit",
    "lifetime_limit",
    "velocity",
    "timezone",
    "allowed_scopes",
    "blocked_categories",
    "merchant_allowlist",
    "merchant_denylist",
    "schedule",
    "approval_threshold",
    "new_merchant_approval_ratio",
    "approvals_required",
    "approval_timeout",
    "unknown_merchants",
];
const ENTRY_KEYS: &[&str] =
    &["merchant_id", "category", "max_per_tx", "expires_at", "lifetime_limit", "schedule"];
const VELOCITY_KEYS: &[&str] = &["max", "per"];

/// An amount as the policy wrote it: absent, or its value (`None` when it
/// did not parse, which was reported) and where it is.
pub(super) type Written = Option<(Option<Decimal>, Range<usize>)>;

/// A merchant-list entry and where its `max_per_tx` is, if it has one.
pub(super) type RuleWithSpan = (MerchantRule, Option<Range<usize>>);

/// Validates one `[policies.<name>]` table.
pub(super) fn compile(ck: &mut Checker, ctx: &Context, name: &str, entry: &Entry) -> Option<Policy> {
    let errors_before = ck.errors.len();
    let table = ck.table(&format!("policies.{name}"), &entry.node)?;
    let context = format!("policy {name:?}");
    let mut fields: BTreeMap<&str, &Node> = BTreeMap::new();
    for e in table {
        if POLICY_KEYS.contains(&e.key.as_str()) {
            fields.insert(e.key.as_str(), &e.node);
        } else {
            ck.unknown_key(e, &context, POLICY_KEYS);
        }
    }
    let field = |key: &str| fields.get(key).copied();
    let policy_span = Checker::key_span(entry);

    let description = field("description").and_then(|n| ck.string("description", n)).map(str::to_owned);
    let trust_level = field("trust_level").and_then(|n| trust_level(ck, n));
    let currency = match field("currency") {
        Some(n) => base_currency(ck, n),
        None => {
            ck.at(
                &policy_span,
                format!(
                    "{context} needs `currency`, the base currency of its limits (e.g. currency = \"USD\")"
                ),
            );
            None
        }
    };
    let currencies = match field("currencies") {
        Some(n) => currencies(ck, n, currency),
        None => currency.map(|c| vec![c]),
    };
    let rails = match field("rails") {
        Some(n) => rails(ck, n),
        None => {
            ck.at(
                &policy_span,
                format!("{context} needs `rails`, the payment rails it allows (e.g. rails = [\"card\"])"),
            );
            None
        }
    };
    let providers = field("providers").map(|n| providers(ck, n, rails.as_deref())).unwrap_or_default();

    let mut written = |key: &str| field(key).map(|n| (ck.amount(key, n, currency), n.span()));
    let [per_tx, daily, weekly, monthly, lifetime, approval_threshold] = [
        "per_tx_limit",
        "daily_limit",
        "weekly_limit",
        "monthly_limit",
        "lifetime_limit",
        "approval_threshold",
    ]
    .map(&mut written);
    if trust_level == Some(TrustLevel::Custom) {
        // No ladder row fills what a custom policy leaves out.
        for (key, written) in [("per_tx_limit", &per_tx), ("daily_limit", &daily)] {
            if written.is_none() {
                ck.at(
                    &field("trust_level").map_or(policy_span.clone(), Node::span),
                    format!("{context} has trust_level \"custom\", so no trust ladder fills its limits: it must set `{key}`"),
                );
            }
        }
    }
    let value = |w: &Written| w.as_ref().and_then(|(v, _)| *v);
    let limits = Limits {
        per_tx: value(&per_tx),
        daily: value(&daily),
        weekly: value(&weekly),
        monthly: value(&monthly),
        lifetime: value(&lifetime),
    };

    let velocity = field("velocity").and_then(|n| velocity(ck, n));
    let timezone = field("timezone").map_or(Some(Tz::UTC), |n| timezone(ck, n));
    let allowed_scopes =
        field("allowed_scopes").map_or(Some(vec![ALL_SCOPE.to_owned()]), |n| allowed_scopes(ck, ctx, n));
    let blocked_categories = match field("blocked_categories") {
        Some(n) => blocked_categories(ck, ctx, n),
        None => Some(DEFAULT_BLOCKED_CATEGORIES.iter().map(|c| c.to_string()).collect()),
    };
    let allowlist = field("merchant_allowlist")
        .and_then(|n| merchant_list(ck, ctx, "merchant_allowlist", n, false, currency));
    let denylist = field("merchant_denylist")
        .and_then(|n| merchant_list(ck, ctx, "merchant_denylist", n, true, currency));
    let schedule = field("schedule").and_then(|n| ck.schedule("schedule", n));
    let ratio = field("new_merchant_approval_ratio").map_or(Some(Decimal::new(5, 1)), |n| ratio(ck, n));
    let approvals_required = field("approvals_required").map_or(Some(1), |n| approvals_required(ck, n));
    let unknown_merchants = field("unknown_merchants").map_or(Some(UnknownMerchants::default()), |n| {
        let s = ck.string("unknown_merchants", n)?;
        let parsed = UnknownMerchants::parse(s);
        if parsed.is_none() {
            ck.at(
                &n.span(),
                format!("unknown_merchants {s:?} must be \"approve\", \"require_approval\" or \"deny\""),
            );
        }
        parsed
    });
    let approval_timeout = field("approval_timeout")
        .map_or(Some(Duration::from_secs(24 * 3600)), |n| ck.duration("approval_timeout", n));

    checks::unreachable_rules(
        ck,
        &Rules {
            trust_level,
            currency,
            limits: &limits,
            written: [&per_tx, &daily, &weekly, &monthly],
            approval_threshold: &approval_threshold,
            new_merchant_ratio: ratio,
            allowlist: allowlist.as_deref().unwrap_or_default(),
            fallback: field("trust_level").map_or(policy_span, Node::span),
        },
    );

    if ck.errors.len() != errors_before {
        return None;
    }
    let allowed_scopes = allowed_scopes?;
    let allowed_categories = if allowed_scopes.iter().any(|s| s == ALL_SCOPE) {
        None
    } else {
        let mut cats: Vec<String> =
            allowed_scopes.iter().flat_map(|s| ctx.scopes[s].iter().cloned()).collect();
        cats.sort();
        cats.dedup();
        Some(cats)
    };
    let mut content = serde_json::json!({ "policy": entry.node.to_json(), "scopes": ctx.scopes_json });
    // Only when there is one: versions of sets without a directory stay as
    // they were before directories existed.
    if !ctx.directory.is_empty() {
        content["merchants"] = ctx.directory_json.clone();
    }
    let digest = Sha256::digest(serde_json::to_vec(&content).expect("json serializes"));
    let rules =
        |list: Option<Vec<RuleWithSpan>>| list.unwrap_or_default().into_iter().map(|(r, _)| r).collect();
    Some(Policy {
        name: name.to_owned(),
        version: format!("sha256:{}", hex::encode(digest)),
        source: ck.file.to_owned(),
        description,
        trust_level,
        currency: currency?,
        currencies: currencies?,
        rails: rails?,
        providers,
        limits,
        velocity,
        timezone: timezone?,
        allowed_scopes,
        blocked_categories: blocked_categories?,
        merchant_allowlist: rules(allowlist),
        merchant_denylist: rules(denylist),
        schedule,
        approval_threshold: value(&approval_threshold),
        new_merchant_approval_ratio: ratio?,
        approvals_required: approvals_required?,
        approval_timeout: approval_timeout?,
        scopes: ctx.scopes.clone(),
        allowed_categories,
        directory: ctx.directory.clone(),
        unknown_merchants: unknown_merchants?,
    })
}

fn trust_level(ck: &mut Checker, n: &Node) -> Option<TrustLevel> {
    let s = ck.string("trust_level", n)?;
    let level = TrustLevel::parse(s);
    if level.is_none() {
        ck.at(&n.span(), format!("unknown trust_level {s:?}; expected low, medium, high or custom"));
    }
    level
}

fn base_currency(ck: &mut Checker, n: &Node) -> Option<Currency> {
    let s = ck.string("currency", n)?;
    match Currency::from_str(s) {
        Ok(c) => match c.pegged_to() {
            Some(fiat) => {
                ck.at(
                    &n.span(),
                    format!("base currency must be a fiat currency; {s} is accepted under `currencies` with currency = \"{fiat}\""),
                );
                None
            }
            None => Some(c),
        },
        Err(e) => {
            ck.at(&n.span(), e.to_string());
            None
        }
    }
}

fn currencies(ck: &mut Checker, n: &Node, base: Option<Currency>) -> Option<Vec<Currency>> {
    let list = ck.strings("currencies", n)?;
    if list.is_empty() {
        ck.at(&n.span(), "`currencies` is empty: no payment could ever be accepted");
        return None;
    }
    let mut out: Vec<Currency> = Vec::new();
    let mut ok = true;
    for (s, item) in list {
        match Currency::from_str(s) {
            Ok(c) if out.contains(&c) => {
                ck.at(&item.span(), format!("currency {s} is listed twice"));
                ok = false;
            }
            Ok(c) => {
                if let Some(b) = base.filter(|b| c != *b && c.pegged_to() != Some(*b)) {
                    ck.at(
                        &item.span(),
                        format!("currency {s} cannot be counted against {b} limits; accepted currencies are {b} and stablecoins pegged to it"),
                    );
                    ok = false;
                }
                out.push(c);
            }
            Err(e) => {
                ck.at(&item.span(), e.to_string());
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

fn rails(ck: &mut Checker, n: &Node) -> Option<Vec<String>> {
    let list = ck.strings("rails", n)?;
    if list.is_empty() {
        ck.at(&n.span(), "`rails` is empty: no payment could ever be accepted");
        return None;
    }
    let mut out: Vec<String> = Vec::new();
    let mut ok = true;
    for (s, item) in list {
        if !is_name(s, b"") {
            ck.at(&item.span(), format!("rail {s:?} must be lower-case letters, digits and `_`"));
            ok = false;
        } else if out.iter().any(|r| r == s) {
            ck.at(&item.span(), format!("rail {s:?} is listed twice"));
            ok = false;
        } else {
            out.push(s.to_owned());
        }
    }
    ok.then_some(out)
}

fn providers(ck: &mut Checker, n: &Node, rails: Option<&[String]>) -> BTreeMap<String, String> {
    let mut providers = BTreeMap::new();
    let Some(t) = ck.table("providers", n) else { return providers };
    for e in t {
        let Some(p) = ck.string(&format!("providers.{}", e.key), &e.node) else {
            continue;
        };
        if rails.is_some_and(|rails| !rails.contains(&e.key)) {
            ck.key_at(e, format!("`providers` maps rail {:?}, which is not in `rails`", e.key));
        } else if !is_name(p, b"-") {
            ck.at(
                &e.node.span(),
                format!("provider name {p:?} must be lower-case letters, digits, `-` and `_`"),
            );
        } else {
            providers.insert(e.key.clone(), p.to_owned());
        }
    }
    providers
}

fn timezone(ck: &mut Checker, n: &Node) -> Option<Tz> {
    let s = ck.string("timezone", n)?;
    let tz = s.parse::<Tz>().ok();
    if tz.is_none() {
        ck.at(
            &n.span(),
            format!("unknown time zone {s:?}; use an IANA name such as \"UTC\" or \"America/New_York\""),
        );
    }
    tz
}

fn allowed_scopes(ck: &mut Checker, ctx: &Context, n: &Node) -> Option<Vec<String>> {
    let list = ck.strings("allowed_scopes", n)?;
    if list.is_empty() {
        ck.at(&n.span(), "`allowed_scopes` is empty, so every payment would be denied; use [\"all\"] to allow every category");
        return None;
    }
    let mut out: Vec<String> = Vec::new();
    let mut ok = true;
    for (s, item) in list {
        let s = s.to_ascii_lowercase();
        if s != ALL_SCOPE && !ctx.scopes.contains_key(&s) {
            let mut msg = format!("unknown scope {s:?}");
            if let Some(g) = suggest(&s, ctx.scopes.keys().map(String::as_str).chain([ALL_SCOPE])) {
                msg.push_str(&format!("; did you mean {g:?}?"));
            } else {
                let names: Vec<&str> = ctx.scopes.keys().map(String::as_str).collect();
                msg.push_str(&format!(
                    "; known scopes: all, {} (define more in a [scopes] table)",
                    names.join(", ")
                ));
            }
            ck.at(&item.span(), msg);
            ok = false;
        } else if !out.contains(&s) {
            out.push(s);
        }
    }
    ok.then_some(out)
}

fn blocked_categories(ck: &mut Checker, ctx: &Context, n: &Node) -> Option<Vec<String>> {
    let list = ck.strings("blocked_categories", n)?;
    let mut out: Vec<String> = Vec::new();
    let mut ok = true;
    for (s, item) in list {
        match known_category(ck, ctx, s, item) {
            Some(c) if !out.contains(&c) => out.push(c),
            Some(_) => {}
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn ratio(ck: &mut Checker, n: &Node) -> Option<Decimal> {
    let parsed = match &n.val {
        Val::Str(s) => Decimal::from_str_exact(s).ok(),
        Val::Float(f) => Decimal::from_str(&f.to_string()).ok(),
        Val::Int(i) => Some(Decimal::from(*i)),
        _ => None,
    };
    let ratio = parsed.filter(|r| *r >= Decimal::ZERO && *r <= Decimal::ONE).map(|r| r.normalize());
    if ratio.is_none() {
        ck.at(&n.span(), "`new_merchant_approval_ratio` must be a number from 0 to 1, such as 0.5");
    }
    ratio
}

fn approvals_required(ck: &mut Checker, n: &Node) -> Option<u32> {
    match n.val {
        Val::Int(i) if i >= 1 && i <= i64::from(u32::MAX) => Some(i as u32),
        _ => {
            ck.at(&n.span(), "`approvals_required` must be a whole number of at least 1");
            None
        }
    }
}

fn known_category(ck: &mut Checker, ctx: &Context, s: &str, n: &Node) -> Option<String> {
    let c = s.to_ascii_lowercase();
    if ctx.known_categories.contains(&c) {
        return Some(c);
    }
    let mut msg = format!("unknown merchant category {s:?}");
    if let Some(g) = suggest(&c, ctx.known_categories.iter().map(String::as_str)) {
        msg.push_str(&format!("; did you mean {g:?}?"));
    } else {
        msg.push_str(" (add it to a scope in a [scopes] table to make it known)");
    }
    ck.at(&n.span(), msg);
    None
}

fn velocity(ck: &mut Checker, n: &Node) -> Option<Vec<VelocityRule>> {
    let items: Vec<&Node> = match &n.val {
        Val::Table(_) => vec![n],
        Val::Array(items) => items.iter().collect(),
        _ => {
            ck.at(
                &n.span(),
                "`velocity` must be a table such as { max = 20, per = \"1h\" } or an array of them",
            );
            return None;
        }
    };
    let mut rules = Vec::new();
    let mut ok = true;
    for item in items {
        let Some(t) = ck.table("velocity", item) else {
            ok = false;
            continue;
        };
        let (mut max, mut per) = (None, None);
        for e in t {
            match e.key.as_str() {
                "max" => match e.node.val {
                    Val::Int(i) if i >= 1 && i <= i64::from(u32::MAX) => max = Some(i as u32),
                    _ => ck.at(&e.node.span(), "velocity `max` must be a whole number of at least 1"),
                },
                "per" => per = ck.duration("per", &e.node),
                _ => ck.unknown_key(e, "velocity rule", VELOCITY_KEYS),
            }
        }
        let has = |k: &str| t.iter().any(|e| e.key == k);
        if !has("max") || !has("per") {
            ck.at(
                &item.span(),
                "a velocity rule needs both `max` and `per`, e.g. { max = 20, per = \"1h\" }",
            );
        }
        match (max, per) {
            (Some(max), Some(per)) => rules.push(VelocityRule { max, per }),
            _ => ok = false,
        }
    }
    ok.then_some(rules)
}

fn merchant_list(
    ck: &mut Checker,
    ctx: &Context,
    key: &str,
    n: &Node,
    deny: bool,
    currency: Option<Currency>,
) -> Option<Vec<RuleWithSpan>> {
    let Val::Array(items) = &n.val else {
        ck.at(
            &n.span(),
            format!("`{key}` must be an array of tables: write [[policies.<name>.{key}]] for each entry"),
        );
        return None;
    };
    let mut out = Vec::new();
    for item in items {
        let Some(t) = ck.table(key, item) else {
            continue;
        };
        let before = ck.errors.len();
        let mut target = None;
        let mut targets = 0;
        let mut rule = MerchantRule {
            target: MerchantTarget::Category(String::new()),
            max_per_tx: None,
            expires_at: None,
            lifetime_limit: None,
            schedule: None,
        };
        let mut cap_span = None;
        for e in t {
            match e.key.as_str() {
                "merchant_id" => {
                    targets += 1;
                    if let Some(s) = ck.string("merchant_id", &e.node) {
                        let id = s.to_lowercase();
                        if id.is_empty() || id.len() > 256 || id.chars().any(char::is_whitespace) {
                            ck.at(&e.node.span(), "`merchant_id` must be 1-256 characters without spaces");
                        } else {
                            target = Some(MerchantTarget::MerchantId(id));
                        }
                    }
                }
                "category" => {
                    targets += 1;
                    if let Some(s) = ck.string("category", &e.node) {
                        target = known_category(ck, ctx, s, &e.node).map(MerchantTarget::Category);
                    }
                }
                "max_per_tx" | "lifetime_limit" if deny => ck.warn(
                    &Checker::key_span(e),
                    format!(
                        "`{}` has no effect on a denylist entry (a denied merchant is denied at any amount)",
                        e.key
                    ),
                ),
                "max_per_tx" => {
                    rule.max_per_tx = ck.amount("max_per_tx", &e.node, currency);
                    cap_span = Some(e.node.span());
                }
                "lifetime_limit" => rule.lifetime_limit = ck.amount("lifetime_limit", &e.node, currency),
                "expires_at" => rule.expires_at = expires_at(ck, &e.node),
                "schedule" => rule.schedule = ck.schedule("schedule", &e.node),
                _ => ck.unknown_key(e, &format!("a {key} entry"), ENTRY_KEYS),
            }
        }
        if targets != 1 {
            ck.at(&item.span(), format!("a {key} entry needs exactly one of `merchant_id` or `category`"));
        }
        // Entries with errors are left out; the policy is rejected anyway,
        // but the valid entries still get their consistency checks.
        if ck.errors.len() != before {
            continue;
        }
        if let Some(t) = target {
            rule.target = t;
            out.push((rule, cap_span));
        }
    }
    Some(out)
}

fn expires_at(ck: &mut Checker, n: &Node) -> Option<DateTime<Utc>> {
    let text = match &n.val {
        Val::Str(s) | Val::Datetime(s) => s,
        _ => {
            ck.at(&n.span(), format!("`expires_at` must be an RFC 3339 date-time, found {}", n.type_name()));
            return None;
        }
    };
    match DateTime::parse_from_rfc3339(text) {
        Ok(t) => Some(t.with_timezone(&Utc)),
        Err(_) => {
            ck.at(
                &n.span(),
                format!("`expires_at` {text:?} must be an RFC 3339 date-time with an offset, such as 2026-12-31T23:59:59Z"),
            );
            None
        }
    }
}
