//! The one envelope every list is returned in, and the `limit` and
//! `cursor` every list takes.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, IntoResponses, ToSchema};

use super::extract::empty_as_none;
use super::openapi::ErrorBody;
use crate::error::{Error, ErrorCode, Result};
use crate::store::Slice;

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    /// Whether more items follow: `false` when this page ends the list.
    pub has_more: bool,
    /// Pass as `cursor` to get the next page; null when `has_more` is false.
    pub next_cursor: Option<String>,
}

/// The errors of a list's `limit` and `cursor`, described once for every
/// list (`responses(..., PageErrors)`).
#[derive(IntoResponses)]
#[allow(dead_code)] // a description: the errors themselves are `Error`s
pub enum PageErrors {
    /// `invalid_query` (unknown or repeated parameter, `limit` not an integer
    /// in the list's range), `invalid_cursor` (not a `next_cursor`).
    #[response(status = 400)]
    BadRequest(ErrorBody),
}

/// How a list pages: its page sizes and what its cursors look like.
pub struct Paging {
    pub default_limit: u32,
    pub max_limit: u32,
    /// The prefix of the ids its cursors are (`pay_`), whose lists refuse
    /// anything else; `None`: any printable key (the admin lists, whose
    /// keys include providers' card tokens; an unknown one positions the
    /// page as it sorts).
    pub cursor_prefix: Option<&'static str>,
}

impl Paging {
    /// The admin lists: agents, keys, signing keys, approvers, cards,
    /// webhook endpoints and delivery attempts.
    pub const ADMIN: Paging = Paging { default_limit: 100, max_limit: 1000, cursor_prefix: None };
}

/// `limit` and `cursor` of a list that takes nothing else. An empty value
/// means not given; unknown parameters are `400 invalid_query`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// How many items to return, 1-1000 (default 100).
    #[serde(default, deserialize_with = "empty_as_none")]
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page, to get the one after it.
    #[serde(default, deserialize_with = "empty_as_none")]
    #[param(pattern = "^[!-~]{1,128}$")]
    pub cursor: Option<String>,
}

/// A checked page request: what to ask the store for (one item more than
/// the page holds, to know whether more follow) and the page's size.
pub struct PageRequest<'a> {
    pub slice: Slice<'a>,
    size: u32,
}

impl Paging {
    /// Checks `limit` (`400 invalid_query`) and `cursor` (`400
    /// invalid_cursor`, which cannot be any of this list's keys).
    pub fn request<'a>(&self, limit: Option<u32>, cursor: Option<&'a str>) -> Result<PageRequest<'a>> {
        let size = limit.unwrap_or(self.default_limit);
        if !(1..=self.max_limit).contains(&size) {
            let message = format!("limit must be between 1 and {}", self.max_limit);
            return Err(Error::invalid(ErrorCode::InvalidQuery, message).at("limit"));
        }
        if let Some(cursor) = cursor {
            let looks_like_a_key = cursor.len() <= 128
                && cursor.bytes().all(|b| b.is_ascii_graphic())
                && self.cursor_prefix.is_none_or(|prefix| {
                    cursor.strip_prefix(prefix).is_some_and(|rest| {
                        !rest.is_empty()
                            && rest.len() <= 64
                            && rest.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                    })
                });
            if !looks_like_a_key {
                let message = "cursor must be a next_cursor value from a previous page";
                return Err(Error::invalid(ErrorCode::InvalidCursor, message).at("cursor"));
            }
        }
        Ok(PageRequest { slice: Slice { after: cursor, limit: size + 1 }, size })
    }

    /// [`Paging::request`] from a [`PageQuery`].
    pub fn query<'a>(&self, q: &'a PageQuery) -> Result<PageRequest<'a>> {
        self.request(q.limit, q.cursor.as_deref())
    }
}

impl PageRequest<'_> {
    /// The page of `items` (the store's answer to `slice`); `key` is what
    /// the next page's cursor is made of.
    pub fn page<T>(&self, mut items: Vec<T>, key: impl Fn(&T) -> String) -> Page<T> {
        let has_more = items.len() > self.size as usize;
        items.truncate(self.size as usize);
        let next_cursor = if has_more { items.last().map(key) } else { None };
        Page { data: items, has_more, next_cursor }
    }
}
