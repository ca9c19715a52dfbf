//! Loading and validating policy files.
//!
//! Files are parsed into a tree that keeps the byte span of every key and
//! value (`tree`), read field by field with typed accessors that report
//! at that position (`checker`, `compile`), then checked for rules that
//! can never apply (`checks`). Every problem found is reported, not only
//! the first. A set with any error is rejected whole; warnings (a rule
//! that never applies) are kept beside the loaded set.

mod checker;
mod checks;
mod compile;
mod tree;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use super::{Directory, PolicySet, ScopeMap};
use checker::is_name;
pub(crate) use checker::Checker;
pub(crate) use tree::{line_col, parse_tree, Entry, Node, Val};

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

const TOP_KEYS: &[&str] = &["policies", "scopes", "merchants"];

/// One problem (an error or a warning) in one file. `line` and `column`
/// are 1-based; both are 0 for problems that concern a whole file or
/// directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)
        }
    }
}

impl std::error::Error for Diagnostic {}

/// Every error found while loading a policy set, in file and line order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadErrors(pub Vec<Diagnostic>);

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
        LoadErrors(vec![Diagnostic { file: file.into(), line: 0, column: 0, message: message.into() }])
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
                    errors.push(Diagnostic { file, line: 0, column: 0, message: format!("cannot read: {e}") })
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

struct Source<'a> {
    file: &'a str,
    text: &'a str,
    root: Node,
}

/// What every policy is checked against: the merged scope table and the
/// categories it makes known.
pub(super) struct Context {
    scopes: Arc<ScopeMap>,
    scopes_json: serde_json::Value,
    known_categories: BTreeSet<String>,
    directory: Arc<Directory>,
    directory_json: serde_json::Value,
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
    // Checked once every file's scopes (and so every known category) are in.
    let mut merchant_tables: Vec<(usize, &Entry)> = Vec::new();
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
                "merchants" => merchant_tables.push((i, e)),
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
                _ => ck.unknown_key(
                    e,
                    "a policy file (use [policies.<name>], [scopes] and [merchants])",
                    TOP_KEYS,
                ),
            }
        }
    }

    let mut known_categories: BTreeSet<String> = scopes.values().flatten().cloned().collect();
    known_categories.extend(DEFAULT_BLOCKED_CATEGORIES.iter().chain(EXTRA_CATEGORIES).map(|c| c.to_string()));
    let scopes_json = serde_json::to_value(&scopes).expect("scope map serializes");
    let mut merchants = BTreeMap::new();
    for (i, e) in merchant_tables {
        merge_merchants(&mut checkers[i], e, &known_categories, &mut merchants);
    }
    let directory = Directory::new(merchants);
    let directory_json = serde_json::to_value(&directory).expect("directory serializes");
    let ctx = Context {
        scopes: Arc::new(scopes),
        scopes_json,
        known_categories,
        directory: Arc::new(directory),
        directory_json,
    };

    // Pass 2: every policy.
    let mut set = BTreeMap::new();
    for (i, entry) in policies {
        if let Some(p) = compile::compile(&mut checkers[i], &ctx, &entry.key, entry) {
            set.insert(p.name.clone(), Arc::new(p));
        }
    }

    let mut warnings = Vec::new();
    for ck in checkers {
        errors.extend(ck.errors);
        warnings.extend(ck.warnings);
    }
    if errors.is_empty() && set.is_empty() {
        errors.push(Diagnostic {
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
    Ok(PolicySet { policies: set, warnings })
}

/// A `[merchants]` table: `"<merchant id>"` or `"*.<domain>"` = `{ category
/// = "<known category>" }`, each merchant once across all files.
fn merge_merchants(
    ck: &mut Checker,
    e: &Entry,
    known: &BTreeSet<String>,
    merchants: &mut BTreeMap<String, String>,
) {
    let Some(table) = ck.table("merchants", &e.node) else { return };
    for m in table {
        let id = m.key.to_lowercase();
        let domain = id.strip_prefix("*.").unwrap_or(&id);
        if domain.is_empty() || id.len() > 256 || domain.contains('*') || id.chars().any(char::is_whitespace)
        {
            ck.key_at(
                m,
                format!(
                    "merchant {:?} must be a merchant id, or `*.` and a domain (any subdomain of it)",
                    m.key
                ),
            );
            continue;
        }
        let Some(entry) = ck.table(&format!("merchants.{}", m.key), &m.node) else { continue };
        let mut category = None;
        for field in entry {
            match field.key.as_str() {
                "category" => category = ck.string("category", &field.node).map(|c| (c, &field.node)),
                _ => ck.unknown_key(field, "a merchant directory entry", &["category"]),
            }
        }
        let Some((c, node)) = category else {
            ck.key_at(m, format!("merchant {:?} needs a `category`", m.key));
            continue;
        };
        let c = c.to_ascii_lowercase();
        if !known.contains(&c) {
            let mut msg = format!("unknown merchant category {c:?}");
            if let Some(g) = checker::suggest(&c, known.iter().map(String::as_str)) {
                msg.push_str(&format!("; did you mean {g:?}?"));
            }
            ck.at(&node.span(), msg);
        } else if merchants.insert(id.clone(), c).is_some() {
            ck.key_at(m, format!("merchant {id:?} is already in the directory"));
        }
    }
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
