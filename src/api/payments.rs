//! `/v1/payments`: create (idempotent), read, list, evaluate (dry run).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::auth::Principal;
use super::extract::{empty_as_none, JsonBody, PathParams, QueryParams};
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::model::{PaymentStatus, Scope};
use crate::money::{parse_amount, parse_decimal, AmountError, Currency};
use crate::service::payments::{self, Created, Idempotency, PaymentInput, Settlement};
use crate::store::PaymentFilter;

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/payments", post(create).get(list))
        .route("/v1/payments/evaluate", post(evaluate))
        .route("/v1/payments/{id}", get(show))
}

const MAX_IDEMPOTENCY_KEY: usize = 255;
const MAX_MERCHANT_ID: usize = 255;
const MAX_CATEGORY: usize = 64;
const MAX_DESCRIPTION: usize = 1000;
const MAX_METADATA_BYTES: usize = 8 * 1024;
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 200;

/// The wire form of a payment request. Amounts stay raw JSON values here so
/// a JSON number can be rejected with a precise error instead of being
/// silently accepted (and maybe rounded) by a number parser.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PaymentBody {
    amount: Value,
    currency: String,
    merchant_id: String,
    #[serde(default)]
    merchant_category: Option<String>,
    #[serde(default)]
    rail: Option<String>,
    #[serde(default)]
    fee: Option<Value>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
}

impl PaymentBody {
    /// Parse, don't validate: after this the request cannot be malformed.
    fn parse(self) -> Result<PaymentInput> {
        let currency: Currency = self
            .currency
            .parse()
            .map_err(|e: crate::money::UnknownCurrency| Error::invalid("invalid_currency", e.to_string()))?;
        let amount = decimal_field("amount", &self.amount, |s| parse_amount(s, currency))?;
        let fee = match &self.fee {
            None | Some(Value::Null) => Decimal::ZERO,
            Some(v) => decimal_field("fee", v, |s| {
                let fee = parse_decimal(s)?;
                crate::money::check_precision(fee, currency)?;
                Ok(fee)
            })?,
        };
        let merchant_id = identifier("merchant_id", &self.merchant_id, MAX_MERCHANT_ID)?;
        let merchant_category = self
            .merchant_category
            .as_deref()
            .map(|c| identifier("merchant_category", c, MAX_CATEGORY))
            .transpose()?;
        let rail = self.rail.as_deref().map(|r| identifier("rail", r, MAX_CATEGORY)).transpose()?;
        if self.description.as_ref().is_some_and(|d| d.chars().count() > MAX_DESCRIPTION) {
            return Err(Error::invalid(
                "invalid_request",
                format!("description is longer than {MAX_DESCRIPTION} characters"),
            ));
        }
        let metadata = self.metadata.unwrap_or_default();
        if serde_json::to_string(&metadata).map_or(0, |s| s.len()) > MAX_METADATA_BYTES {
            return Err(Error::invalid(
                "invalid_request",
                format!("metadata is larger than {MAX_METADATA_BYTES} bytes"),
            ));
        }
        Ok(PaymentInput {
            amount,
            fee,
            currency,
            merchant_id,
            merchant_category,
            rail,
            description: self.description,
            metadata,
        })
    }
}

fn decimal_field(
    name: &str,
    value: &Value,
    parse: impl FnOnce(&str) -> Result<Decimal, AmountError>,
) -> Result<Decimal> {
    let Value::String(text) = value else {
        return Err(Error::invalid(
            "invalid_amount",
            format!("{name} must be a decimal string such as \"42.50\", not a JSON {}", json_type(value)),
        ));
    };
    parse(text).map_err(|e| Error::invalid("invalid_amount", format!("{name}: {e}")))
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Merchant ids, categories and rails: non-empty, bounded, printable, no
/// whitespace; compared case-insensitively, so stored lower-case.
fn identifier(name: &str, text: &str, max: usize) -> Result<String> {
    let ok = !text.is_empty() && text.len() <= max && text.chars().all(|c| c.is_ascii_graphic());
    if !ok {
        return Err(Error::invalid(
            "invalid_request",
            format!("{name} must be 1-{max} printable ASCII characters without spaces"),
        ));
    }
    Ok(text.to_ascii_lowercase())
}

fn idempotency_key(headers: &HeaderMap) -> Result<String> {
    let value = headers.get("idempotency-key").ok_or_else(|| {
        Error::invalid("idempotency_key_required", "the Idempotency-Key header is required")
    })?;
    let key = value.to_str().ok().filter(|k| {
        !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY && k.bytes().all(|b| b.is_ascii_graphic())
    });
    key.map(str::to_owned).ok_or_else(|| {
        Error::invalid(
            "invalid_idempotency_key",
            format!("Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} printable ASCII characters"),
        )
    })
}

async fn create(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    headers: HeaderMap,
    body: Result<JsonBody<PaymentBody>, Error>,
) -> Result<Response> {
    // Who may do this is decided before anything about the body is said.
    let agent = principal.agent(Scope::PaymentsCreate)?;
    let body = body?;
    let idem = Idempotency { key: idempotency_key(&headers)?, request_hash: body.canonical_hash() };
    let input = body.body.parse()?;
    let created =
        payments::create(&state, &agent.agent, &agent.actor(), &idem, input, Settlement::Forward).await?;
    Ok(match created {
        Created::New(p) => (StatusCode::CREATED, Json(p)).into_response(),
        Created::Replayed(p) => (StatusCode::OK, Json(p)).into_response(),
    })
}

async fn evaluate(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    body: Result<JsonBody<PaymentBody>, Error>,
) -> Result<Json<Value>> {
    let agent = principal.agent(Scope::PaymentsCreate)?;
    let body = body?;
    let decision = payments::evaluate(&state, &agent.agent.id, body.body.parse()?).await?;
    // The decision's fields at the top level, and the same object under
    // `decision` so clients can parse it like a payment record's.
    let mut out = serde_json::to_value(&decision).expect("decision serializes");
    out["decision"] = serde_json::to_value(&decision).expect("decision serializes");
    Ok(Json(out))
}

async fn show(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    PathParams(id): PathParams<String>,
) -> Result<Response> {
    let owner = match principal {
        Principal::Admin => None,
        p => Some(p.agent(Scope::PaymentsRead)?.agent.id),
    };
    // Another agent's payment is "not found", not "forbidden": its existence
    // is not revealed.
    let payment = state.store.payment(owner.as_deref(), &id).await?.ok_or(Error::NotFound("payment"))?;
    Ok(Json(payment).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default, deserialize_with = "empty_as_none")]
    status: Option<String>,
    #[serde(default, deserialize_with = "empty_as_none")]
    limit: Option<u32>,
    #[serde(default, deserialize_with = "empty_as_none")]
    cursor: Option<String>,
    /// Admin only: one agent's payments.
    #[serde(default, deserialize_with = "empty_as_none")]
    agent_id: Option<String>,
}

async fn list(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    QueryParams(q): QueryParams<ListQuery>,
) -> Result<Json<Value>> {
    let agent_id = match principal {
        Principal::Admin => q.agent_id,
        p => {
            let a = p.agent(Scope::PaymentsRead)?;
            if q.agent_id.as_ref().is_some_and(|id| *id != a.agent.id) {
                return Err(Error::forbidden("agent_only", "agents can list only their own payments"));
            }
            Some(a.agent.id)
        }
    };
    let status = q
        .status
        .map(|s| {
            s.parse::<PaymentStatus>()
                .map_err(|()| Error::invalid("invalid_query", format!("unknown status {s:?}")))
        })
        .transpose()?;
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Error::invalid("invalid_query", format!("limit must be between 1 and {MAX_PAGE}")));
    }
    if let Some(c) = &q.cursor {
        if !c.starts_with("pay_")
            || c.len() != 30
            || !c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(Error::invalid(
                "invalid_cursor",
                "cursor must be a next_cursor value from a previous page",
            ));
        }
    }
    let filter = PaymentFilter { agent_id, status, before: q.cursor, limit: limit + 1 };
    let mut page = state.store.payments(&filter).await?;
    let has_more = page.len() > limit as usize;
    page.truncate(limit as usize);
    let next_cursor = if has_more { page.last().map(|p| p.id.clone()) } else { None };
    Ok(Json(json!({ "data": page, "has_more": has_more, "next_cursor": next_cursor })))
}
