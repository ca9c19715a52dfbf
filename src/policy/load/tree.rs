//! A TOML document as a tree that remembers where everything is, so that
//! every check can point at the line that causes it.
//!
//! Built from `toml_edit`'s parsed document, which keeps the byte span of
//! each key and value through its public API.

use std::ops::Range;

use toml_edit::{ImDocument, Item, TableLike, Value};

use super::Diagnostic;

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

    pub(crate) fn type_name(&self) -> &'static str {
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
    pub(crate) fn to_json(&self) -> serde_json::Value {
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

    fn from_item(item: &Item) -> Node {
        match item {
            Item::Value(v) => Node::from_value(v),
            Item::Table(t) => Node { span: t.span(), val: table(t) },
            Item::ArrayOfTables(a) => Node {
                span: a.span(),
                val: Val::Array(a.iter().map(|t| Node { span: t.span(), val: table(t) }).collect()),
            },
            // Only an edited document has empty items.
            Item::None => Node { span: None, val: Val::Table(Vec::new()) },
        }
    }

    fn from_value(value: &Value) -> Node {
        let val = match value {
            Value::String(s) => Val::Str(s.value().clone()),
            Value::Integer(i) => Val::Int(*i.value()),
            Value::Float(f) => Val::Float(*f.value()),
            Value::Boolean(b) => Val::Bool(*b.value()),
            Value::Datetime(d) => Val::Datetime(d.value().to_string()),
            Value::Array(items) => Val::Array(items.iter().map(Node::from_value).collect()),
            Value::InlineTable(t) => table(t),
        };
        Node { span: value.span(), val }
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
}

fn table(t: &dyn TableLike) -> Val {
    let entries = t
        .iter()
        .map(|(key, item)| Entry {
            key: key.to_owned(),
            key_span: t.get_key_value(key).and_then(|(k, _)| k.span()),
            node: Node::from_item(item),
        })
        .collect();
    Val::Table(entries)
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
pub(crate) fn parse_tree(file: &str, text: &str) -> Result<Node, Diagnostic> {
    let doc = ImDocument::parse(text).map_err(|e| {
        let (line, column) = e.span().map_or((1, 1), |s| line_col(text, s.start));
        let message = e.message().trim().replace('\n', " ");
        Diagnostic { file: file.to_owned(), line, column, message }
    })?;
    let mut root = Node { span: None, val: table(doc.as_table()) };
    root.fill_spans(&(0..0));
    Ok(root)
}
