//! Error collection and typed accessors over the spanned tree: each
//! accessor reports a wrong type or value at its position and answers
//! `None`, so a file's every problem is found in one pass.

use std::ops::Range;
use std::time::Duration;

use rust_decimal::Decimal;

use super::tree::{line_col, Entry, Node, Val};
use super::Diagnostic;
use crate::money::{self, AmountError, Currency};
use crate::policy::Schedule;

const SCHEDULE_KEYS: &[&str] = &["days", "hours"];

/// Collects what is wrong with one file: errors (the set is refused) and
/// warnings (a rule that can never apply; the set loads).
pub(crate) struct Checker<'a> {
    pub(crate) file: &'a str,
    pub(crate) text: &'a str,
    pub(crate) errors: Vec<Diagnostic>,
    pub(crate) warnings: Vec<Diagnostic>,
}

impl<'a> Checker<'a> {
    pub(crate) fn new(file: &'a str, text: &'a str) -> Self {
        Checker { file, text, errors: Vec::new(), warnings: Vec::new() }
    }

    fn diagnostic(&self, span: &Range<usize>, message: impl Into<String>) -> Diagnostic {
        let (line, column) = line_col(self.text, span.start);
        Diagnostic { file: self.file.to_owned(), line, column, message: message.into() }
    }

    pub(crate) fn at(&mut self, span: &Range<usize>, message: impl Into<String>) {
        let error = self.diagnostic(span, message);
        self.errors.push(error);
    }

    pub(crate) fn warn(&mut self, span: &Range<usize>, message: impl Into<String>) {
        let warning = self.diagnostic(span, message);
        self.warnings.push(warning);
    }

    pub(crate) fn key_span(e: &Entry) -> Range<usize> {
        e.key_span.clone().unwrap_or_else(|| e.node.span())
    }

    pub(crate) fn key_at(&mut self, e: &Entry, message: impl Into<String>) {
        self.at(&Self::key_span(e), message);
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
    pub(crate) fn strings<'n>(&mut self, key: &str, n: &'n Node) -> Option<Vec<(&'n str, &'n Node)>> {
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

    pub(crate) fn duration(&mut self, key: &str, n: &Node) -> Option<Duration> {
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
pub(crate) fn suggest<'k>(word: &str, candidates: impl Iterator<Item = &'k str>) -> Option<&'k str> {
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

pub(crate) fn is_name(s: &str, extra: &[u8]) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || extra.contains(&b))
}

// ---------------------------------------------------------------------------
// The policy set.
