//! The one envelope every list is returned in.

use serde::Serialize;
use utoipa::ToSchema;

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    /// Whether more items follow: `false` when this page ends the list.
    pub has_more: bool,
    /// Pass as `cursor` to get the next page; null when `has_more` is false.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// A list returned whole.
    pub fn all(data: Vec<T>) -> Self {
        Page { data, has_more: false, next_cursor: None }
    }
}
