//! `GET /v1/audit`: the hash-chained audit log, for admins: a JSON page at a
//! time, or with `format=jsonl` or `format=csv` every selected record as one
//! streamed download, for archiving and SIEMs.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::AdminReader;
use super::extract::{empty_as_none, QueryParams};
use super::openapi::ErrorBody;
use super::page::{Page, Paging};
use crate::api::AppState;
use crate::audit::AuditRecord;
use crate::clock::{format_ts, parse_ts};
use crate::error::{Error, ErrorCode, Result};
use crate::service::audit;
use crate::store::AuditFilter;

const MAX_PAGE: u32 = 1000;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(list))
}

/// An empty value means not given; unknown parameters are `400
/// invalid_query`.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct AuditQuery {
    /// RFC 3339: only records at or after this time. Unparseable: `400
    /// invalid_query`.
    #[serde(default, deserialize_with = "empty_as_none")]
    #[param(format = DateTime)]
    since: Option<String>,
    /// Only records of this event type, e.g. `payment.denied`.
    #[serde(rename = "type", default, deserialize_with = "empty_as_none")]
    #[param(rename = "type")]
    kind: Option<String>,
    /// Only records concerning this agent id.
    #[serde(default, deserialize_with = "empty_as_none")]
    agent: Option<String>,
    /// Only records with `seq` greater than this: to follow the log, pass
    /// the last `seq` you have read.
    #[serde(default, deserialize_with = "empty_as_none")]
    after: Option<i64>,
    /// Page size, 1-1000 (default 100).
    #[serde(default, deserialize_with = "empty_as_none")]
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page, to get the one after it.
    /// Anything else: `400 invalid_cursor`.
    #[serde(default, deserialize_with = "empty_as_none")]
    #[param(pattern = "^[0-9]{1,18}$")]
    cursor: Option<String>,
    /// Download every selected record (oldest first, all pages, streamed) as
    /// JSON lines (`jsonl`: `application/x-ndjson`, one record per line, the
    /// same objects as `data`) or CSV (`csv`: `text/csv`, columns
    /// `seq,id,at,type,actor,client,agent_id,subject,data,prev_hash,hash`). `limit`
    /// is then the page size of the stream; `after`, `since`, `type` and
    /// `agent` select as usual.
    #[serde(default, deserialize_with = "empty_as_none")]
    #[param(value_type = Option<ExportFormat>, inline)]
    format: Option<String>,
}

/// The download formats of the audit log.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // a schema: the query keeps the text
enum ExportFormat {
    Jsonl,
    Csv,
}

/// The audit log pages by up to 1000 records, 100 by default; a cursor is
/// a record's `seq`.
const AUDIT: Paging = Paging { default_limit: 100, max_limit: MAX_PAGE, cursor_prefix: None };

impl AuditQuery {
    /// The selection, starting after `after` or the cursor (whichever is
    /// further), `limit` at a time.
    fn filter(self, limit: u32) -> Result<AuditFilter> {
        let since = self
            .since
            .map(|s| {
                parse_ts(&s).map(format_ts).ok_or_else(|| {
                    Error::invalid(ErrorCode::InvalidQuery, "since must be RFC 3339").at("since")
                })
            })
            .transpose()?;
        let cursor = self
            .cursor
            .map(|c| {
                c.parse::<i64>().map_err(|_| {
                    let message = "cursor must be a next_cursor value from a previous page";
                    Error::invalid(ErrorCode::InvalidCursor, message).at("cursor")
                })
            })
            .transpose()?;
        let after_seq = self.after.max(cursor);
        Ok(AuditFilter { after_seq, since, kind: self.kind, agent_id: self.agent, limit })
    }
}

/// Read the audit log (admin)
///
/// Records in chain order (ascending `seq`), filtered and
/// cursor-paginated; `after` starts past a given `seq`, to follow the log.
/// Each record carries the SHA-256 of the previous
/// one, so any changed, removed or reordered record is detectable (`purser
/// audit verify`).
#[utoipa::path(
    get,
    path = "/v1/audit",
    operation_id = "listAudit",
    tag = "audit",
    security(("adminToken" = [])),
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of audit records, or with `format` the whole selection.",
         content(
            (Page<AuditRecord> = "application/json"),
            (String = "application/x-ndjson"),
            (String = "text/csv"),
         )),
        (status = 400, description = "`invalid_query` (unknown or repeated parameter, `since` not RFC 3339, \
            `after` not an integer, `limit` not an integer in 1-1000, unknown `format`, a NUL character), \
            `invalid_cursor`.", body = ErrorBody),
    )
)]
async fn list(
    State(state): State<Arc<AppState>>,
    _: AdminReader,
    QueryParams(q): QueryParams<AuditQuery>,
) -> Result<Response> {
    let format = match q.format.as_deref() {
        None => None,
        Some("jsonl") => Some(Format::JsonLines),
        Some("csv") => Some(Format::Csv),
        Some(_) => {
            return Err(Error::invalid(ErrorCode::InvalidQuery, "format must be jsonl or csv").at("format"))
        }
    };
    // The cursor is a `seq`, checked by `filter`.
    let req = AUDIT.request(q.limit, None)?;
    // Every committed decision's record is in the chain before it is read.
    audit::seal(&state.svc).await?;
    if let Some(format) = format {
        let page_size = q.limit.unwrap_or(MAX_PAGE);
        return export(state, q.filter(page_size)?, format).await;
    }
    let filter = q.filter(req.slice.limit)?;
    let records = state.svc.store.audit_records(&filter).await?;
    Ok(Json(req.page(records, |r| r.seq.to_string())).into_response())
}

#[derive(Clone, Copy, PartialEq)]
enum Format {
    JsonLines,
    Csv,
}

/// Every selected record, oldest first, one page per chunk of the response
/// (`limit` is the page size). A store failure mid-stream ends the response
/// early (it cannot become an error status any more); the last record is
/// then not the newest, which a reader verifying the chain notices.
async fn export(state: Arc<AppState>, filter: AuditFilter, format: Format) -> Result<Response> {
    // The first page is read now, so an unavailable store is still a 503.
    let first = state.svc.store.audit_records(&filter).await?;
    let pages = futures_util::stream::unfold(Some((first, filter, true)), move |page| {
        let state = state.clone();
        async move {
            let (records, mut filter, header) = page?;
            if records.is_empty() && !header {
                return None;
            }
            let chunk = render(&records, format, header);
            let next = match records.last() {
                Some(last) if records.len() == filter.limit as usize => {
                    filter.after_seq = Some(last.seq);
                    match state.svc.store.audit_records(&filter).await {
                        Ok(more) => Some((more, filter, false)),
                        Err(e) => {
                            tracing::error!(error = %e, "audit export cut short");
                            None
                        }
                    }
                }
                _ => None,
            };
            Some((Ok::<_, std::io::Error>(chunk), next))
        }
    });
    let (content_type, name) = match format {
        Format::JsonLines => ("application/x-ndjson", "audit.jsonl"),
        Format::Csv => ("text/csv; charset=utf-8", "audit.csv"),
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        Body::from_stream(pages),
    )
        .into_response())
}

fn render(records: &[AuditRecord], format: Format, header: bool) -> Vec<u8> {
    match format {
        Format::JsonLines => records
            .iter()
            .flat_map(|r| {
                let mut line = serde_json::to_vec(r).expect("a record serializes");
                line.push(b'\n');
                line
            })
            .collect(),
        Format::Csv => {
            let mut out = csv::WriterBuilder::new().has_headers(header).from_writer(Vec::new());
            if header && records.is_empty() {
                out.write_record(CSV_COLUMNS).expect("writing to memory");
            }
            for r in records {
                out.serialize(r).expect("writing to memory");
            }
            out.into_inner().expect("writing to memory")
        }
    }
}

/// The CSV header, for an export with no records (serde writes it from the
/// first record otherwise).
const CSV_COLUMNS: [&str; 11] =
    ["seq", "id", "at", "type", "actor", "client", "agent_id", "subject", "data", "prev_hash", "hash"];
