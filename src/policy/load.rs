//! Loading and validating policy files.
//!
//! Files are parsed into a tree that keeps the byte span of every key and
//! value, so semantic errors ("per_tx_limit 200.00 is above daily_limit
//! 100.00") point at the line that causes them. Every error found is
//! reported, not only the first; a set with any error is rejected whole.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{
    ladder, Limits, MerchantRule, MerchantTarget, Policy, PolicySet, Schedule, ScopeMap, TrustLevel,
    VelocityRule,
};
use crate::money::{self, AmountError, Currency};

/// Scope tables every policy set starts from; `[scopes]` tables in the
/// files add categories to these (union per scope) or define new scopes.
pub const BUILTIN_SCOPES: &[(&str, &[&str])] = &[
    ("compute", &["cloud", "compute", "hosting", "ai"]),
    ("retail", &["retail", "grocery", "groceries", "apparel", "electronics"]),
    ("travel", &["travel", "airline", "airlines", "lodging", "hotel", "car_rental", "transport"]),
    ("saas", &["saas", "software", "subscriptions"]),
    ("marketing", &["advertising", "marketing"]),
    ("data", &["data", "api"]),
];

/// `blocked_categories` when a policy does not set it.
pub const DEFAULT_BLOCKED_CATEGORIES: &[&str] = &["gambling", "alcohol", "tobacco", "adult", "weapons"];

/// Categories that are known without being in any scope.
pub const EXTRA_CATEGORIES: &[&str] = &[
    "crypto",
    "financial",
    "food",
    "restaurants",
    "education",
    "health",
    "utilities",
    "telecom",
    "government",
    "charity",
    "other",
];

/// The scope that allows every category.
pub const ALL_SCOPE: &str = "all";

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
];
const ENTRY_KEYS: &[&str] =
    &["merchant_id", "category", "max_per_tx", "expires_at", "lifetime_limit", "schedule"];
const VELOCITY_KEYS: &[&str] = &["max", "per"];
const SCHEDULE_KEYS: &[&str] = &["days", "hours"];
const TOP_KEYS: &[&str] = &["policies", "scopes"];

/// One problem in one file. `line` and `column` are 1-based; both are 0 for
/// problems that concern a whole file or directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)
        }
    }
}

impl std::error::Error for LoadError {}

/// Every problem found while loading a policy set, in file and line order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadErrors(pub Vec<LoadError>);

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadErrors {}

impl LoadErrors {
    fn whole(file: impl Into<String>, message: impl Into<String>) -> LoadErrors {
        LoadErrors(vec![LoadError { file: file.into(), line: 0, column: 0, message: message.into() }])
    }
}

impl PolicySet {
    /// Loads every `*.toml` file directly in `dir` (sorted by name; hidden
    /// files and subdirectories such as `tests/` are skipped).
    pub fn load_dir(dir: &Path) -> Result<PolicySet, LoadErrors> {
        let label = dir.display().to_string();
        let entries = std::fs::read_dir(dir)
            .map_err(|e| LoadErrors::whole(&label, format!("cannot read policy directory: {e}")))?;
        let mut files = Vec::new();
        for entry in entries {
            let entry =
                entry.map_err(|e| LoadErrors::whole(&label, format!("cannot read policy directory: {e}")))?;
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || !name.ends_with(".toml") || !path.is_file() {
                continue;
            }
            files.push(path);
        }
        files.sort();
        if files.is_empty() {
            return Err(LoadErrors::whole(label, "no *.toml policy files found"));
        }
        let mut errors = Vec::new();
        let mut sources = Vec::new();
        for path in files {
            let file = path.display().to_string();
            match std::fs::read_to_string(&path) {
                Ok(text) => sources.push((file, text)),
                Err(e) => {
                    errors.push(LoadError { file, line: 0, column: 0, message: format!("cannot read: {e}") })
                }
            }
        }
        match load_sources(&sources, &label) {
            Ok(set) if errors.is_empty() => Ok(set),
            Ok(_) => Err(LoadErrors(errors)),
            Err(LoadErrors(more)) => {
                errors.extend(more);
                Err(LoadErrors(errors))
            }
        }
    }

    /// Loads policies from `(file label, TOML text)` pairs, as if they were
    /// the files of one directory.
    pub fn from_sources(sources: &[(String, String)]) -> Result<PolicySet, LoadErrors> {
        let label = match sources {
            [(one, _)] => one.clone(),
            _ => "policies".to_owned(),
        };
        load_sources(sources, &label)
    }
}

// ---------------------------------------------------------------------------
// A TOML tree that remembers spans.

const SPANNED_NAME: &str = "$__serde_spanned_private_Spanned";
const SPANNED_START: &str = "$__serde_spanned_private_start";
const SPANNED_END: &str = "$__serde_spanned_private_end";
const SPANNED_VALUE: &str = "$__serde_spanned_private_value";
const SPANNED_FIELDS: &[&str] = &[SPANNED_START, SPANNED_END, SPANNED_VALUE];
const DATETIME_FIELD: &str = "$__toml_private_datetime";

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) span: Option<Range<usize>>,
    pub(crate) val: Val,
}

#[derive(Debug, Clone)]
pub(crate) enum Val {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Datetime(String),
    Array(Vec<Node>),
    Table(Vec<Entry>),
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) key: String,
    pub(crate) key_span: Option<Range<usize>>,
    pub(crate) node: Node,
}

impl Node {
    pub(crate) fn span(&self) -> Range<usize> {
        self.span.clone().unwrap_or(0..0)
    }

    pub(crate) fn table(&self) -> Option<&[Entry]> {
        match &self.val {
            Val::Table(t) => Some(t),
            _ => None,
        }
    }

    /// Gives every node without a span the span of its key, or of its
    /// parent, so that every error has a position.
    fn fill_spans(&mut self, fallback: &Range<usize>) {
        if self.span.is_none() {
            self.span = Some(fallback.clone());
        }
        let own = self.span();
        match &mut self.val {
            Val::Array(items) => items.iter_mut().for_each(|n| n.fill_spans(&own)),
            Val::Table(entries) => {
                for e in entries {
                    if e.key_span.is_none() {
                        e.key_span = e.node.span.clone().or_else(|| Some(own.clone()));
                    }
                    let key_span = e.key_span.clone().unwrap_or(own.clone());
                    e.node.fill_spans(&key_span);
                }
            }
            _ => {}
        }
    }

    fn type_name(&self) -> &'static str {
        match self.val {
            Val::Str(_) => "a string",
            Val::Int(_) => "an integer",
            Val::Float(_) => "a float",
            Val::Bool(_) => "a boolean",
            Val::Datetime(_) => "a datetime",
            Val::Array(_) => "an array",
            Val::Table(_) => "a table",
        }
    }

    /// Canonical JSON (keys sorted) for content hashing.
    fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.val {
            Val::Str(s) | Val::Datetime(s) => J::String(s.clone()),
            Val::Int(i) => J::from(*i),
            Val::Float(f) => {
                serde_json::Number::from_f64(*f).map(J::Number).unwrap_or_else(|| J::String(f.to_string()))
            }
            Val::Bool(b) => J::Bool(*b),
            Val::Array(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Val::Table(entries) => {
                let mut sorted: Vec<&Entry> = entries.iter().collect();
                sorted.sort_by(|a, b| a.key.cmp(&b.key));
                let mut map = serde_json::Map::new();
                for e in sorted {
                    map.insert(e.key.clone(), e.node.to_json());
                }
                J::Object(map)
            }
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_struct(SPANNED_NAME, SPANNED_FIELDS, NodeVisitor)
    }
}

/// Deserializes a node without asking for its span (the inner value of a
/// spanned wrapper).
struct RawNode;

impl<'de> DeserializeSeed<'de> for RawNode {
    type Value = Node;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

fn plain(val: Val) -> Node {
    Node { span: None, val }
}

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a TOML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(plain(Val::Bool(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(plain(Val::Int(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        i64::try_from(v).map(|v| plain(Val::Int(v))).map_err(|_| E::custom("integer out of range"))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(plain(Val::Float(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(plain(Val::Str(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(plain(Val::Str(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(n) = seq.next_element::<Node>()? {
            items.push(n);
        }
        Ok(plain(Val::Array(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let Some(first) = map.next_key_seed(KeySeed)? else {
            return Ok(plain(Val::Table(Vec::new())));
        };
        if first.name == SPANNED_START {
            // The spanned protocol: start, end, then the value itself.
            let start: usize = map.next_value()?;
            let mut end = start;
            let mut value = None;
            while let Some(k) = map.next_key_seed(KeySeed)? {
                if k.name == SPANNED_END {
                    end = map.next_value()?;
                } else if k.name == SPANNED_VALUE {
                    value = Some(map.next_value_seed(RawNode)?);
                } else {
                    return Err(de::Error::custom("unexpected key in spanned value"));
                }
            }
            let mut node = value.ok_or_else(|| de::Error::custom("spanned value without value"))?;
            node.span = Some(start..end);
            return Ok(node);
        }
        if first.name == DATETIME_FIELD {
            let text: String = map.next_value()?;
            return Ok(plain(Val::Datetime(text)));
        }
        let mut entries = Vec::new();
        let node: Node = map.next_value()?;
        entries.push(Entry { key: first.name, key_span: first.span, node });
        while let Some(k) = map.next_key_seed(KeySeed)? {
            let node: Node = map.next_value()?;
            entries.push(Entry { key: k.name, key_span: k.span, node });
        }
        Ok(plain(Val::Table(entries)))
    }
}

struct Key {
    name: String,
    span: Option<Range<usize>>,
}

struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_struct(SPANNED_NAME, SPANNED_FIELDS, KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
        Ok(Key { name: v.to_owned(), span: None })
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Key, E> {
        Ok(Key { name: v, span: None })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Key, A::Error> {
        let (mut start, mut end, mut name) = (0usize, 0usize, None);
        while let Some(k) = map.next_key::<String>()? {
            match k.as_str() {
                SPANNED_START => start = map.next_value()?,
                SPANNED_END => end = map.next_value()?,
                SPANNED_VALUE => name = Some(map.next_value::<String>()?),
                _ => return Err(de::Error::custom("unexpected key in spanned key")),
            }
        }
        let name = name.ok_or_else(|| de::Error::custom("spanned key without value"))?;
        Ok(Key { name, span: Some(start..end) })
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let offset = (0..=offset).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Parses one TOML text into a spanned tree.
pub(crate) fn parse_tree(file: &str, text: &str) -> Result<Node, LoadError> {
    match toml::from_str::<Node>(text) {
        Ok(mut root) => {
            root.span = None;
            root.fill_spans(&(0..0));
            Ok(root)
        }
        Err(e) => {
            let (line, column) = e.span().map_or((1, 1), |s| line_col(text, s.start));
            let message = e.message().trim().replace('\n', " ");
            Err(LoadError { file: file.to_owned(), line, column, message })
        }
    }
}

// ---------------------------------------------------------------------------
// Error collection and typed accessors.

pub(crate) struct Checker<'a> {
    pub(crate) file: &'a str,
    pub(crate) text: &'a str,
    pub(crate) errors: Vec<LoadError>,
}

impl<'a> Checker<'a> {
    pub(crate) fn new(file: &'a str, text: &'a str) -> Self {
        Checker { file, text, errors: Vec::new() }
    }

    pub(crate) fn at(&mut self, span: &Range<usize>, message: impl Into<String>) {
        let (line, column) = line_col(self.text, span.start);
        self.errors.push(LoadError { file: self.file.to_owned(), line, column, message: message.into() });
    }

    fn key_at(&mut self, e: &Entry, message: impl Into<String>) {
        let span = e.key_span.clone().unwrap_or_else(|| e.node.span());
        self.at(&span, message);
    }

    pub(crate) fn unknown_key(&mut self, e: &Entry, context: &str, known: &[&str]) {
        let mut msg = format!("unknown key `{}` in {context}", e.key);
        if let Some(s) = suggest(&e.key, known.iter().copied()) {
            msg.push_str(&format!("; did you mean `{s}`?"));
        } else {
            msg.push_str(&format!("; expected one of: {}", known.join(", ")));
        }
        self.key_at(e, msg);
    }

    pub(crate) fn string<'n>(&mut self, key: &str, n: &'n Node) -> Option<&'n str> {
        match &n.val {
            Val::Str(s) => Some(s),
            _ => {
                self.at(&n.span(), format!("`{key}` must be a string, found {}", n.type_name()));
                None
            }
        }
    }

    pub(crate) fn table<'n>(&mut self, key: &str, n: &'n Node) -> Option<&'n [Entry]> {
        match &n.val {
            Val::Table(t) => Some(t),
            _ => {
                self.at(&n.span(), format!("`{key}` must be a table, found {}", n.type_name()));
                None
            }
        }
    }

    pub(crate) fn array<'n>(&mut self, key: &str, n: &'n Node) -> Option<&'n [Node]> {
        match &n.val {
            Val::Array(items) => Some(items),
            _ => {
                self.at(&n.span(), format!("`{key}` must be an array, found {}", n.type_name()));
                None
            }
        }
    }

    /// An array of strings; elements that are not strings are reported.
    fn strings<'n>(&mut self, key: &str, n: &'n Node) -> Option<Vec<(&'n str, &'n Node)>> {
        let items = self.array(key, n)?;
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for item in items {
            match &item.val {
                Val::Str(s) => out.push((s.as_str(), item)),
                _ => {
                    self.at(
                        &item.span(),
                        format!("`{key}` entries must be strings, found {}", item.type_name()),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// An amount: a decimal string, > 0, within `currency`'s precision.
    pub(crate) fn amount(&mut self, key: &str, n: &Node, currency: Option<Currency>) -> Option<Decimal> {
        let text = match &n.val {
            Val::Str(s) => s.as_str(),
            Val::Int(i) => {
                self.at(
                    &n.span(),
                    format!("`{key}` must be a decimal string such as \"{i}.00\": amounts are strings so they stay exact"),
                );
                return None;
            }
            _ => {
                self.at(
                    &n.span(),
                    format!("`{key}` must be a decimal string such as \"50.00\", found {}", n.type_name()),
                );
                return None;
            }
        };
        if text.starts_with('-') {
            self.at(&n.span(), format!("`{key}` must be greater than zero, found {text}"));
            return None;
        }
        let value = match money::parse_decimal(text) {
            Ok(v) => v,
            Err(AmountError::TooLarge) => {
                self.at(
                    &n.span(),
                    format!("`{key}` {text} exceeds the maximum amount of {}", money::MAX_AMOUNT),
                );
                return None;
            }
            Err(_) => {
                self.at(&n.span(), format!("`{key}` {text:?} is not a decimal amount such as \"50.00\""));
                return None;
            }
        };
        if value.is_zero() {
            self.at(&n.span(), format!("`{key}` must be greater than zero, found {text}"));
            return None;
        }
        if let Some(c) = currency {
            if money::check_precision(value, c).is_err() {
                self.at(
                    &n.span(),
                    format!("`{key}` {text} has more fraction digits than {c} allows ({})", c.exponent()),
                );
                return None;
            }
        }
        Some(value)
    }

    fn duration(&mut self, key: &str, n: &Node) -> Option<Duration> {
        let text = self.string(key, n)?;
        match humantime::parse_duration(text) {
            Ok(d) if d.is_zero() => {
                self.at(&n.span(), format!("`{key}` must be longer than zero"));
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                self.at(
                    &n.span(),
                    format!("`{key}` {text:?} is not a duration such as \"1h\" or \"30m\": {e}"),
                );
                None
            }
        }
    }

    /// A `schedule` table.
    pub(crate) fn schedule(&mut self, key: &str, n: &Node) -> Option<Schedule> {
        let entries = self.table(key, n)?;
        let mut days: Option<(Vec<&str>, &Node)> = None;
        let mut hours: Option<(&str, &Node)> = None;
        let mut ok = true;
        for e in entries {
            match e.key.as_str() {
                "days" => match self.strings("days", &e.node) {
                    Some(list) => days = Some((list.into_iter().map(|(s, _)| s).collect(), &e.node)),
                    None => ok = false,
                },
                "hours" => match self.string("hours", &e.node) {
                    Some(h) => hours = Some((h, &e.node)),
                    None => ok = false,
                },
                _ => {
                    self.unknown_key(e, "schedule", SCHEDULE_KEYS);
                    ok = false;
                }
            }
        }
        if !ok {
            return None;
        }
        match Schedule::parse(days.as_ref().map(|(d, _)| d.as_slice()), hours.map(|(h, _)| h)) {
            Ok(s) => Some(s),
            Err(msg) => {
                let span = match (&days, &hours) {
                    (_, Some((_, h))) if msg.starts_with("hours") => h.span(),
                    (Some((_, d)), _) if !msg.starts_with("hours") => d.span(),
                    _ => n.span(),
                };
                self.at(&span, msg);
                None
            }
        }
    }
}

/// The closest candidate within a small edit distance, for "did you mean".
fn suggest<'k>(word: &str, candidates: impl Iterator<Item = &'k str>) -> Option<&'k str> {
    candidates
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn is_name(s: &str, extra: &[u8]) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || extra.contains(&b))
}

// ---------------------------------------------------------------------------
// The policy set.

struct Source<'a> {
    file: &'a str,
    text: &'a str,
    root: Node,
}

/// What every policy is checked against: the merged scope table and the
/// categories it makes known.
struct Context {
    scopes: Arc<ScopeMap>,
    scopes_json: serde_json::Value,
    known_categories: BTreeSet<String>,
}

fn load_sources(sources: &[(String, String)], label: &str) -> Result<PolicySet, LoadErrors> {
    if sources.is_empty() {
        return Err(LoadErrors::whole(label, "no policy files given"));
    }
    let mut errors = Vec::new();
    let mut parsed = Vec::new();
    for (file, text) in sources {
        match parse_tree(file, text) {
            Ok(root) => parsed.push(Source { file, text, root }),
            Err(e) => errors.push(e),
        }
    }

    // Pass 1: the merged scope table and the list of policies.
    let mut scopes: ScopeMap = BUILTIN_SCOPES
        .iter()
        .map(|(s, cats)| (s.to_string(), cats.iter().map(|c| c.to_string()).collect()))
        .collect();
    let mut policies: Vec<(usize, &Entry)> = Vec::new();
    let mut defined: BTreeMap<&str, (usize, Range<usize>)> = BTreeMap::new();
    let mut checkers: Vec<Checker> = parsed.iter().map(|s| Checker::new(s.file, s.text)).collect();
    for (i, src) in parsed.iter().enumerate() {
        let ck = &mut checkers[i];
        let Some(top) = src.root.table() else {
            continue;
        };
        for e in top {
            match e.key.as_str() {
                "scopes" => {
                    if let Some(table) = ck.table("scopes", &e.node) {
                        merge_scopes(ck, table, &mut scopes);
                    }
                }
                "policies" => {
                    let Some(table) = ck.table("policies", &e.node) else {
                        continue;
                    };
                    for p in table {
                        let key_span = p.key_span.clone().unwrap_or_else(|| p.node.span());
                        if !is_name(&p.key, b"-") || p.key.starts_with(['-', '_']) {
                            ck.key_at(
                                p,
                                format!(
                                    "policy name {:?} must be 1-64 characters of a-z, 0-9, `-` and `_`, starting with a letter or digit",
                                    p.key
                                ),
                            );
                            continue;
                        }
                        if let Some((other, other_span)) = defined.get(p.key.as_str()) {
                            let o = &parsed[*other];
                            let (line, col) = line_col(o.text, other_span.start);
                            ck.key_at(
                                p,
                                format!("policy {:?} is already defined at {}:{line}:{col}", p.key, o.file),
                            );
                            continue;
                        }
                        defined.insert(&p.key, (i, key_span));
                        policies.push((i, p));
                    }
                }
                _ => ck.unknown_key(e, "a policy file (use [policies.<name>] and [scopes])", TOP_KEYS),
            }
        }
    }

    let mut known_categories: BTreeSet<String> = scopes.values().flatten().cloned().collect();
    known_categories.extend(DEFAULT_BLOCKED_CATEGORIES.iter().chain(EXTRA_CATEGORIES).map(|c| c.to_string()));
    let scopes_json = serde_json::to_value(&scopes).expect("scope map serializes");
    let ctx = Context { scopes: Arc::new(scopes), scopes_json, known_categories };

    // Pass 2: every policy.
    let mut set = BTreeMap::new();
    for (i, entry) in policies {
        if let Some(p) = compile(&mut checkers[i], &ctx, &entry.key, entry) {
            set.insert(p.name.clone(), Arc::new(p));
        }
    }

    for ck in checkers {
        errors.extend(ck.errors);
    }
    if errors.is_empty() && set.is_empty() {
        errors.push(LoadError {
            file: label.to_owned(),
            line: 0,
            column: 0,
            message: "no policies defined (expected [policies.<name>] tables)".into(),
        });
    }
    if !errors.is_empty() {
        let order: BTreeMap<&str, usize> =
            sources.iter().enumerate().map(|(i, (f, _))| (f.as_str(), i)).collect();
        errors.sort_by_key(|e| (order.get(e.file.as_str()).copied().unwrap_or(usize::MAX), e.line, e.column));
        return Err(LoadErrors(errors));
    }
    Ok(PolicySet { policies: set })
}

fn merge_scopes(ck: &mut Checker, table: &[Entry], scopes: &mut ScopeMap) {
    for e in table {
        let name = e.key.to_ascii_lowercase();
        if name == ALL_SCOPE {
            ck.key_at(e, "scope `all` is built in (it allows every category) and cannot be redefined");
            continue;
        }
        if !is_name(&name, b"-") {
            ck.key_at(e, format!("scope name {:?} must be 1-64 characters of a-z, 0-9, `-` and `_`", e.key));
            continue;
        }
        let Some(list) = ck.strings(&e.key, &e.node) else {
            continue;
        };
        let cats = scopes.entry(name).or_default();
        for (c, n) in list {
            let c = c.to_ascii_lowercase();
            if !is_name(&c, b"-.") {
                ck.at(
                    &n.span(),
                    format!("category {c:?} must be 1-64 characters of a-z, 0-9, `-`, `.` and `_`"),
                );
                continue;
            }
            if !cats.contains(&c) {
                cats.push(c);
            }
        }
        cats.sort();
    }
}

/// Validates one `[policies.<name>]` table.
fn compile(ck: &mut Checker, ctx: &Context, name: &str, entry: &Entry) -> Option<Policy> {
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
    let policy_span = entry.key_span.clone().unwrap_or_else(|| entry.node.span());

    let description = fields.get("description").and_then(|n| ck.string("description", n)).map(str::to_owned);

    let trust_level = fields.get("trust_level").and_then(|n| {
        let s = ck.string("trust_level", n)?;
        let level = TrustLevel::parse(s);
        if level.is_none() {
            ck.at(&n.span(), format!("unknown trust_level {s:?}; expected low, medium, high or custom"));
        }
        level
    });

    let currency = match fields.get("currency") {
        None => {
            ck.at(&policy_span, format!("{context} needs `currency`, the base currency of its limits (e.g. currency = \"USD\")"));
            None
        }
        Some(n) => ck.string("currency", n).and_then(|s| match Currency::from_str(s) {
            Ok(c) if c.pegged_to().is_some() => {
                ck.at(
                    &n.span(),
                    format!("base currency must be a fiat currency; {s} is accepted under `currencies` with currency = \"{}\"", c.pegged_to().unwrap()),
                );
                None
            }
            Ok(c) => Some(c),
            Err(e) => {
                ck.at(&n.span(), e.to_string());
                None
            }
        }),
    };

    let currencies = match (fields.get("currencies"), currency) {
        (None, Some(c)) => Some(vec![c]),
        (None, None) => None,
        (Some(n), base) => ck.strings("currencies", n).and_then(|list| {
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
                        if let Some(b) = base {
                            if c != b && c.pegged_to() != Some(b) {
                                ck.at(
                                    &item.span(),
                                    format!("currency {s} cannot be counted against {b} limits; accepted currencies are {b} and stablecoins pegged to it"),
                                );
                                ok = false;
                            }
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
        }),
    };

    let rails = match fields.get("rails") {
        None => {
            ck.at(
                &policy_span,
                format!("{context} needs `rails`, the payment rails it allows (e.g. rails = [\"card\"])"),
            );
            None
        }
        Some(n) => ck.strings("rails", n).and_then(|list| {
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
        }),
    };

    let mut providers = BTreeMap::new();
    if let Some(n) = fields.get("providers") {
        if let Some(t) = ck.table("providers", n) {
            for e in t {
                let Some(p) = ck.string(&format!("providers.{}", e.key), &e.node) else {
                    continue;
                };
                if let Some(rails) = &rails {
                    if !rails.contains(&e.key) {
                        ck.key_at(e, format!("`providers` maps rail {:?}, which is not in `rails`", e.key));
                        continue;
                    }
                }
                if !is_name(p, b"-") {
                    ck.at(
                        &e.node.span(),
                        format!("provider name {p:?} must be lower-case letters, digits, `-` and `_`"),
                    );
                    continue;
                }
                providers.insert(e.key.clone(), p.to_owned());
            }
        }
    }

    let mut limit = |key: &str| fields.get(key).map(|n| (ck.amount(key, n, currency), n.span()));
    let per_tx = limit("per_tx_limit");
    let daily = limit("daily_limit");
    let weekly = limit("weekly_limit");
    let monthly = limit("monthly_limit");
    let lifetime = limit("lifetime_limit");
    let value = |l: &Option<(Option<Decimal>, Range<usize>)>| l.as_ref().and_then(|(v, _)| *v);
    let limits = Limits {
        per_tx: value(&per_tx),
        daily: value(&daily),
        weekly: value(&weekly),
        monthly: value(&monthly),
        lifetime: value(&lifetime),
    };

    let velocity = fields.get("velocity").and_then(|n| velocity(ck, n));

    let timezone = match fields.get("timezone") {
        None => Some(Tz::UTC),
        Some(n) => ck.string("timezone", n).and_then(|s| match s.parse::<Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                ck.at(
                    &n.span(),
                    format!(
                        "unknown time zone {s:?}; use an IANA name such as \"UTC\" or \"America/New_York\""
                    ),
                );
                None
            }
        }),
    };

    let allowed_scopes = match fields.get("allowed_scopes") {
        None => Some(vec![ALL_SCOPE.to_owned()]),
        Some(n) => ck.strings("allowed_scopes", n).and_then(|list| {
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
                        msg.push_str(&format!("; known scopes: all, {} (define more in a [scopes] table)", names.join(", ")));
                    }
                    ck.at(&item.span(), msg);
                    ok = false;
                } else if !out.contains(&s) {
                    out.push(s);
                }
            }
            ok.then_some(out)
        }),
    };

    let blocked_categories = match fields.get("blocked_categories") {
        None => Some(DEFAULT_BLOCKED_CATEGORIES.iter().map(|c| c.to_string()).collect()),
        Some(n) => ck.strings("blocked_categories", n).and_then(|list| {
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
        }),
    };

    let allowlist = fields
        .get("merchant_allowlist")
        .and_then(|n| merchant_list(ck, ctx, "merchant_allowlist", n, false, currency));
    let denylist = fields
        .get("merchant_denylist")
        .and_then(|n| merchant_list(ck, ctx, "merchant_denylist", n, true, currency));

    let schedule = fields.get("schedule").and_then(|n| ck.schedule("schedule", n));

    let approval_threshold =
        fields.get("approval_threshold").map(|n| (ck.amount("approval_threshold", n, currency), n.span()));

    let ratio = match fields.get("new_merchant_approval_ratio") {
        None => Some(Decimal::new(5, 1)),
        Some(n) => {
            let parsed = match &n.val {
                Val::Str(s) => Decimal::from_str_exact(s).ok(),
                Val::Float(f) => Decimal::from_str(&f.to_string()).ok(),
                Val::Int(i) => Some(Decimal::from(*i)),
                _ => None,
            };
            match parsed {
                Some(r) if r >= Decimal::ZERO && r <= Decimal::ONE => Some(r.normalize()),
                _ => {
                    ck.at(
                        &n.span(),
                        "`new_merchant_approval_ratio` must be a number from 0 to 1, such as 0.5",
                    );
                    None
                }
            }
        }
    };

    let approvals_required = match fields.get("approvals_required") {
        None => Some(1),
        Some(n) => match n.val {
            Val::Int(i) if i >= 1 && i <= i64::from(u32::MAX) => Some(i as u32),
            _ => {
                ck.at(&n.span(), "`approvals_required` must be a whole number of at least 1");
                None
            }
        },
    };

    let approval_timeout = match fields.get("approval_timeout") {
        None => Some(Duration::from_secs(24 * 3600)),
        Some(n) => ck.duration("approval_timeout", n),
    };

    // Consistency between limits: per_tx <= daily <= weekly <= monthly, with
    // the ladder filled in when the policy pins a level (otherwise the row
    // depends on the agent, so only the policy's own values are compared).
    let pinned_row = trust_level.and_then(ladder::row);
    let resolved = ladder::resolve(&limits, pinned_row);
    let level_name = trust_level.map(|l| l.as_str()).unwrap_or("custom");
    let chain = [
        ("per_tx_limit", resolved.per_tx, &per_tx),
        ("daily_limit", resolved.daily, &daily),
        ("weekly_limit", resolved.weekly, &weekly),
        ("monthly_limit", resolved.monthly, &monthly),
    ];
    let fmt_amount = |v: Decimal| match currency {
        Some(c) => money::format_amount(v, c),
        None => v.to_string(),
    };
    let describe = |key: &str, v: Decimal, own: &Option<(Option<Decimal>, Range<usize>)>| {
        if own.is_some() {
            format!("{key} {}", fmt_amount(v))
        } else {
            format!("{key} {} (from the {level_name} trust ladder)", fmt_amount(v))
        }
    };
    let present: Vec<_> = chain.iter().filter_map(|(k, v, own)| v.map(|v| (*k, v, *own))).collect();
    for pair in present.windows(2) {
        let (ka, va, oa) = pair[0];
        let (kb, vb, ob) = pair[1];
        // Skip when a value failed to parse (it was reported already).
        if oa.as_ref().is_some_and(|(v, _)| v.is_none()) || ob.as_ref().is_some_and(|(v, _)| v.is_none()) {
            continue;
        }
        if va > vb {
            let span = oa
                .as_ref()
                .map(|(_, s)| s.clone())
                .or_else(|| ob.as_ref().map(|(_, s)| s.clone()))
                .or_else(|| fields.get("trust_level").map(|n| n.span()))
                .unwrap_or(policy_span.clone());
            ck.at(&span, format!("{} is above {}", describe(ka, va, oa), describe(kb, vb, ob)));
        }
    }
    let per_tx_failed = per_tx.as_ref().is_some_and(|(v, _)| v.is_none());
    let effective_per_tx = if per_tx_failed { None } else { resolved.per_tx };
    if let (Some((Some(t), span)), Some(p)) = (&approval_threshold, effective_per_tx) {
        if *t > p {
            ck.at(
                span,
                format!(
                    "approval_threshold {} is above {}, so it never triggers (payments above the per-transaction limit are denied)",
                    fmt_amount(*t),
                    describe("per_tx_limit", p, &per_tx)
                ),
            );
        }
    }
    if let (Some(list), Some(p)) = (&allowlist, effective_per_tx) {
        for (rule, span) in list {
            if let (Some(m), Some(span)) = (rule.max_per_tx, span) {
                if m > p {
                    ck.at(
                        span,
                        format!(
                            "max_per_tx {} is above the policy's {}",
                            fmt_amount(m),
                            describe("per_tx_limit", p, &per_tx)
                        ),
                    );
                }
            }
        }
    }

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
    let content = serde_json::json!({ "policy": entry.node.to_json(), "scopes": ctx.scopes_json });
    let digest = Sha256::digest(serde_json::to_vec(&content).expect("json serializes"));
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
        merchant_allowlist: allowlist.unwrap_or_default().into_iter().map(|(r, _)| r).collect(),
        merchant_denylist: denylist.unwrap_or_default().into_iter().map(|(r, _)| r).collect(),
        schedule,
        approval_threshold: approval_threshold.and_then(|(v, _)| v),
        new_merchant_approval_ratio: ratio?,
        approvals_required: approvals_required?,
        approval_timeout: approval_timeout?,
        scopes: ctx.scopes.clone(),
        allowed_categories,
    })
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

type RuleWithSpan = (MerchantRule, Option<Range<usize>>);

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
                "max_per_tx" | "lifetime_limit" if deny => ck.key_at(
                    e,
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
