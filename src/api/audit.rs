//! `GET /v1/audit`: the hash-chained audit log, for admins.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Admin;
use super::extract::{empty_as_none, QueryParams};
use crate::app::AppState;
use crate::clock::{format_ts, parse_ts};
use crate::error::{Error, Result};
use crate::store::AuditFilter;

const MAX_PAGE: u32 = 1000;

pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/v1/audit", get(list))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    /// RFC 3339: records at or after this time.
    #[serde(default, deserialize_with = "empty_as_none")]
    since: Option<String>,
    #[serde(rename = "type", default, deserialize_with = "empty_as_none")]
    kind: Option<String>,
    #[serde(default, deserialize_with = "empty_as_none")]
    agent: Option<String>,
    /// Records after this sequence number (the previous page's `next_after`).
    #[serde(default, deserialize_with = "empty_as_none")]
    after: Option<i64>,
    #[serde(default, deserialize_with = "empty_as_none")]
    limit: Option<u32>,
}

async fn list(
    State(state): State<Arc<AppState>>,
    _: Admin,
    QueryParams(q): QueryParams<AuditQuery>,
) -> Result<Json<Value>> {
    let since = q
        .since
        .map(|s| {
            parse_ts(&s)
                .map(format_ts)
                .ok_or_else(|| Error::invalid("invalid_query", "since must be RFC 3339"))
        })
        .transpose()?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Error::invalid("invalid_query", format!("limit must be between 1 and {MAX_PAGE}")));
    }
    let filter = AuditFilter { after_seq: q.after, since, kind: q.kind, agent_id: q.agent, limit };
    let records = state.store.audit_records(&filter).await?;
    let next_after = (records.len() == limit as usize).then(|| records.last().map(|r| r.seq)).flatten();
    Ok(Json(json!({ "data": records, "next_after": next_after })))
}
