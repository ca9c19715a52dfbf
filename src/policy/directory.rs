//! The merchant directory: the categories of known merchants, set by the
//! operator in `[merchants]` tables, so an agent cannot pass a casino off
//! as `cloud` by declaring it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Known merchants and their categories. Keys are lower case: an exact
/// merchant id (`casino.example`), or `*.` and a domain, which matches
/// every subdomain of it (`*.amazonaws.com`: `s3.amazonaws.com`), the
/// longest such domain first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Directory(BTreeMap<String, String>);

impl Directory {
    pub(crate) fn new(entries: BTreeMap<String, String>) -> Directory {
        Directory(entries)
    }

    /// The category the directory gives `merchant_id` (lower case), if it
    /// knows the merchant.
    pub fn category_of(&self, merchant_id: &str) -> Option<&str> {
        if let Some(c) = self.0.get(merchant_id) {
            return Some(c);
        }
        // `a.b.example.com`: `*.b.example.com`, then `*.example.com`, then `*.com`.
        let mut rest = merchant_id;
        while let Some((_, parent)) = rest.split_once('.') {
            if let Some(c) = self.0.get(&format!("*.{parent}")) {
                return Some(c);
            }
            rest = parent;
        }
        None
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What a policy does with a payment whose merchant the directory does not
/// know and that declares no category, when its rules depend on categories
/// (blocked categories, allowed scopes, allowlist entries by category).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnknownMerchants {
    /// Decide without category rules.
    Approve,
    /// A person must approve it.
    RequireApproval,
    /// Deny it with `category_unknown` (fail closed).
    #[default]
    Deny,
}

impl UnknownMerchants {
    pub(crate) fn parse(s: &str) -> Option<UnknownMerchants> {
        match s {
            "approve" => Some(UnknownMerchants::Approve),
            "require_approval" => Some(UnknownMerchants::RequireApproval),
            "deny" => Some(UnknownMerchants::Deny),
            _ => None,
        }
    }
}

/// A payment's category as the policy evaluates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Categorized {
    /// The directory's category when it knows the merchant, else the one
    /// the agent declared, else none.
    pub category: Option<String>,
    /// What the agent declared, when the directory said otherwise.
    pub declared_instead: Option<String>,
}

impl Directory {
    /// The category to evaluate for a payment to `merchant_id` for which the
    /// agent declared `declared`.
    pub fn categorize(&self, merchant_id: &str, declared: Option<&str>) -> Categorized {
        match self.category_of(merchant_id) {
            Some(known) => Categorized {
                category: Some(known.to_owned()),
                declared_instead: declared.filter(|d| *d != known).map(str::to_owned),
            },
            None => Categorized { category: declared.map(str::to_owned), declared_instead: None },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directory() -> Directory {
        Directory::new(BTreeMap::from([
            ("casino.example".to_owned(), "gambling".to_owned()),
            ("*.amazonaws.com".to_owned(), "cloud".to_owned()),
            ("*.shop.amazonaws.com".to_owned(), "retail".to_owned()),
        ]))
    }

    #[test]
    fn exact_ids_then_the_longest_wildcard_domain() {
        let d = directory();
        assert_eq!(d.category_of("casino.example"), Some("gambling"));
        assert_eq!(d.category_of("www.casino.example"), None, "an exact entry is not a wildcard");
        assert_eq!(d.category_of("s3.amazonaws.com"), Some("cloud"));
        assert_eq!(d.category_of("a.b.amazonaws.com"), Some("cloud"));
        assert_eq!(d.category_of("x.shop.amazonaws.com"), Some("retail"));
        assert_eq!(d.category_of("amazonaws.com"), None, "`*.` matches subdomains only");
        assert_eq!(d.category_of("evilamazonaws.com"), None);
    }

    #[test]
    fn the_directory_wins_over_what_the_agent_declares() {
        let d = directory();
        let c = d.categorize("casino.example", Some("cloud"));
        assert_eq!((c.category.as_deref(), c.declared_instead.as_deref()), (Some("gambling"), Some("cloud")));
        let same = d.categorize("casino.example", Some("gambling"));
        assert_eq!(same.declared_instead, None);
        let unknown = d.categorize("new.example", Some("saas"));
        assert_eq!((unknown.category.as_deref(), unknown.declared_instead), (Some("saas"), None));
    }
}
