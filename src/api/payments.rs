//! `/v1/payments`: create (idempotent), read, list, evaluate (dry run).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Principal;
use super::extract::{empty_as_none, JsonBody, PathParams, QueryParams};
use super::openapi::ErrorBody;
use super::page::{Page, Paging};
use crate::api::AppState;
use crate::error::{Error, ErrorCode, Result};
use crate::model::{Payment, PaymentStatus, Scope};
use crate::money::{parse_amount, parse_decimal, AmountError, Currency};
use crate::policy::Decision;
use crate::service::payments::{self, Created, Idempotency, PaymentInput, Settlement};
use crate::store::PaymentFilter;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(create, list)).routes(routes!(evaluate)).routes(routes!(show))
}

const MAX_IDEMPOTENCY_KEY: usize = 255;
const MAX_MERCHANT_ID: usize = 255;
const MAX_CATEGORY: usize = 64;
const MAX_DESCRIPTION: usize = 1000;
const MAX_METADATA_BYTES: usize = 8 * 1024;
/// Payments page by up to 200, 50 by default, newest first.
const PAYMENTS: Paging = Paging { default_limit: 50, max_limit: 200, cursor_prefix: Some("pay_") };

/// A payment to decide. Unknown fields are rejected (`invalid_request`).
/// Optional fields may also be `null`, meaning absent.
///
/// (The wire form: amounts stay raw JSON values here so a JSON number can be
/// rejected with a precise error instead of being silently accepted, and
/// maybe rounded, by a number parser.)
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(
    as = PaymentRequest,
    example = json!({ "amount": "42.50", "currency": "USD", "merchant_id": "aws.amazon.com",
        "merchant_category": "cloud", "rail": "card", "description": "GPU hours", "metadata": {} })
)]
struct PaymentBody {
    /// Decimal string greater than zero, at most 1000000000, with no more
    /// fraction digits than the currency allows (USD/EUR/GBP/CHF/CAD 2, JPY
    /// 0, USDC/EURC 6; trailing zeros count: `1.500` is rejected for USD). A
    /// JSON number is rejected with `invalid_amount`.
    #[schema(value_type = String, pattern = "^[0-9]+(\\.[0-9]+)?$", example = "42.50")]
    amount: Value,
    /// Unknown codes are rejected with `invalid_currency`. The agent's
    /// policy may still deny a supported currency (`currency_not_allowed`).
    #[schema(value_type = Currency)]
    currency: String,
    /// The merchant, e.g. `aws.amazon.com`; 1-255 printable ASCII
    /// characters without spaces, stored lower-case.
    #[schema(pattern = "^[!-~]+$", min_length = 1, max_length = 255)]
    merchant_id: String,
    /// Merchant category such as `cloud`; 1-64 printable ASCII characters
    /// without spaces, stored lower-case.
    #[serde(default)]
    #[schema(pattern = "^[!-~]+$", min_length = 1, max_length = 64)]
    merchant_category: Option<String>,
    /// How it is paid (`card`, `usdc`, ...); the policy maps rails to
    /// providers. Defaults to the policy's first rail.
    #[serde(default)]
    #[schema(pattern = "^[!-~]+$", min_length = 1, max_length = 64)]
    rail: Option<String>,
    /// Optional fee (at most 1000000000, within the currency's precision).
    /// When present, limits apply to amount + fee. Omitted or null means
    /// zero.
    #[serde(default)]
    #[schema(value_type = Option<String>, pattern = "^[0-9]+(\\.[0-9]+)?$")]
    fee: Option<Value>,
    /// Free text, at most 1000 characters.
    #[serde(default)]
    #[schema(max_length = 1000)]
    description: Option<String>,
    /// Arbitrary JSON object stored with the payment; at most 8 KiB
    /// serialized.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    metadata: Option<Map<String, Value>>,
}

impl PaymentBody {
    /// Parse, don't validate: after this the request cannot be malformed.
    fn parse(self) -> Result<PaymentInput> {
        let currency: Currency = self.currency.parse().map_err(|e: crate::money::UnknownCurrency| {
            Error::invalid(ErrorCode::InvalidCurrency, e.to_string()).at("/currency")
        })?;
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
                ErrorCode::InvalidRequest,
                format!("description is longer than {MAX_DESCRIPTION} characters"),
            )
            .at("/description"));
        }
        let metadata = self.metadata.unwrap_or_default();
        if serde_json::to_string(&metadata).map_or(0, |s| s.len()) > MAX_METADATA_BYTES {
            return Err(Error::invalid(
                ErrorCode::InvalidRequest,
                format!("metadata is larger than {MAX_METADATA_BYTES} bytes"),
            )
            .at("/metadata"));
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
            ErrorCode::InvalidAmount,
            format!("{name} must be a decimal string such as \"42.50\", not a JSON {}", json_type(value)),
        )
        .at(format!("/{name}")));
    };
    parse(text)
        .map_err(|e| Error::invalid(ErrorCode::InvalidAmount, format!("{name}: {e}")).at(format!("/{name}")))
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
            ErrorCode::InvalidRequest,
            format!("{name} must be 1-{max} printable ASCII characters without spaces"),
        )
        .at(format!("/{name}")));
    }
    Ok(text.to_ascii_lowercase())
}

fn idempotency_key(headers: &HeaderMap) -> Result<String> {
    let value = headers.get("idempotency-key").ok_or_else(|| {
        Error::invalid(ErrorCode::IdempotencyKeyRequired, "the Idempotency-Key header is required")
            .at("Idempotency-Key")
    })?;
    let key = value.to_str().ok().filter(|k| {
        !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY && k.bytes().all(|b| b.is_ascii_graphic())
    });
    key.map(str::to_owned).ok_or_else(|| {
        Error::invalid(
            ErrorCode::InvalidIdempotencyKey,
            format!("Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} printable ASCII characters"),
        )
        .at("Idempotency-Key")
    })
}

/// Create a payment (agent)
///
/// Evaluates the payment against the agent's policy and, unless denied,
/// reserves its amount, in one atomic step: concurrent requests can never
/// together exceed a limit. All rules are evaluated; a denial lists every
/// rule that failed, not only the first.
///
/// A policy denial is **not** an HTTP error: the payment is recorded and
/// returned with `201` and `status: denied`. `approved` payments are
/// forwarded to the provider asynchronously (they later become `succeeded`
/// or `failed`, or first `processing` while the provider has not said
/// whether the money moved). `pending_approval` payments keep their amount
/// reserved and wait for human approval (`approval` names the request, see
/// the `approvals` tag): when the quorum of distinct approvers approves, the
/// payment becomes `approved` and is then forwarded like any other; when an
/// approver denies it, it becomes `rejected`; when nobody decides it before
/// `approval.expires_at`, it becomes `expired`. Rejected and expired
/// payments release their reservation.
///
/// Requires an agent API key with the `payments:create` scope (the admin
/// token gets `403 agent_only`) and the `Idempotency-Key` header.
///
/// Checks run in this order: credential (401, 403 `ip_not_allowed`), role
/// and scope (403), body media type, size and JSON syntax (415, 413, 400),
/// `Idempotency-Key` header (400), body fields (400), idempotency replay or
/// conflict (200, 409), policy availability (503).
#[utoipa::path(
    post,
    path = "/v1/payments",
    operation_id = "createPayment",
    tag = "payments",
    security(("agentKey" = ["payments:create"])),
    params(
        ("Idempotency-Key" = String, Header, pattern = "^[!-~]{1,255}$", min_length = 1, max_length = 255,
         description = "Client-chosen key, unique per intended payment: 1-255 printable ASCII characters, no \
            spaces. Keys are scoped to the agent and remembered as long as the payment. Retrying with the same key \
            and the same body (compared as canonical JSON: key order and whitespace do not matter) returns the \
            original payment with `200`, in its current state, without deciding or reserving again; the same \
            key with a different body is `409 idempotency_conflict`. Missing: `400 idempotency_key_required`; \
            malformed: `400 invalid_idempotency_key`."),
    ),
    request_body = PaymentBody,
    responses(
        (status = 201, description = "Payment created and decided; `status` is `approved`, `pending_approval` or \
            `denied` (see `decision.reasons`).", body = Payment),
        (status = 200, description = "Idempotent replay: the same `Idempotency-Key` with the same body. The \
            original payment, in its current state; nothing is decided or reserved again.", body = Payment),
        (status = 400, description = "`invalid_json` (not valid JSON), `invalid_request` (not an object, unknown, \
            missing or mistyped field, `merchant_id` not 1-255 / `merchant_category` or `rail` not 1-64 printable \
            ASCII characters without spaces, `description` over 1000 characters, `metadata` over 8 KiB, a NUL \
            character), `invalid_amount` (amount or fee not a decimal string, malformed, zero amount, above \
            1000000000, or too many fraction digits for the currency), `invalid_currency`, `invalid_body`, \
            `idempotency_key_required`, `invalid_idempotency_key`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing or unknown bearer token, revoked or expired API \
            key, or the key's agent no longer exists.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope` (key lacks `payments:create`), `agent_only` (admin or \
            approver token), `ip_not_allowed`.", body = ErrorBody),
        (status = 409, description = "`idempotency_conflict`: this agent already used the `Idempotency-Key` with \
            a different body.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is larger than the configured limit (64 KiB \
            by default).", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: `Content-Type` is not `application/json`.",
         body = ErrorBody),
        (status = 503, description = "`policy_unavailable`: the agent's policy is not loaded (fail closed); \
            `store_unavailable`: the database is unreachable; `request_timeout`. Nothing was changed, except \
            that a write may still complete after a timeout (retry with the same `Idempotency-Key`).",
         body = ErrorBody),
    )
)]
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
        payments::create(&state.svc, &agent.agent, &agent.actor(), &idem, input, Settlement::Forward).await?;
    Ok(match created {
        Created::New(p) => (StatusCode::CREATED, Json(p)).into_response(),
        Created::Replayed(p) => (StatusCode::OK, Json(p)).into_response(),
    })
}

/// The dry run's answer: the decision a payment record would carry.
#[derive(Serialize, ToSchema)]
#[schema(as = EvaluateResponse)]
struct Evaluation {
    decision: Decision,
}

/// Evaluate a payment without side effects (agent, dry run)
///
/// Evaluates the same body as `POST /v1/payments` and answers exactly the
/// `decision` that `POST /v1/payments` would make at this moment: the
/// agent's policy, its current spend, its frozen state and the kill switch
/// included. Nothing is created, reserved or audited, and no
/// `Idempotency-Key` is needed. A denial lists every rule that failed. A
/// later real payment may be decided differently if spend changes in
/// between.
///
/// Requires an agent API key with the `payments:create` scope (the admin
/// token gets `403 agent_only`).
#[utoipa::path(
    post,
    path = "/v1/payments/evaluate",
    operation_id = "evaluatePayment",
    tag = "payments",
    security(("agentKey" = ["payments:create"])),
    request_body = PaymentBody,
    responses(
        (status = 200, description = "The decision.", body = Evaluation),
        (status = 400, description = "`invalid_json`, `invalid_request`, `invalid_amount`, `invalid_currency`, \
            `invalid_body`: as for `POST /v1/payments`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing or unknown bearer token, revoked or expired API \
            key, or the key's agent no longer exists.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope` (key lacks `payments:create`), `agent_only` (admin or \
            approver token), `ip_not_allowed`.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`.", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: `Content-Type` is not `application/json`.",
         body = ErrorBody),
        (status = 503, description = "`policy_unavailable`: the agent's policy is not loaded (fail closed); \
            `store_unavailable`; `request_timeout`.", body = ErrorBody),
    )
)]
async fn evaluate(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    body: Result<JsonBody<PaymentBody>, Error>,
) -> Result<Json<Evaluation>> {
    let agent = principal.agent(Scope::PaymentsCreate)?;
    let body = body?;
    let decision = payments::evaluate(&state.svc, &agent.agent.id, body.body.parse()?).await?;
    Ok(Json(Evaluation { decision }))
}

/// Get a payment
///
/// An agent (API key with `payments:read`) can read only its own payments:
/// another agent's payment is `404 not_found`, so its existence is not
/// revealed. The admin token can read any payment.
#[utoipa::path(
    get,
    path = "/v1/payments/{id}",
    operation_id = "getPayment",
    tag = "payments",
    security(("agentKey" = ["payments:read"]), ("adminToken" = [])),
    params(("id" = String, Path, description = "Payment id (`pay_...`).")),
    responses(
        (status = 200, description = "The payment in its current state.", body = Payment),
        (status = 400, description = "`invalid_request`: the id holds a NUL character.", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing or unknown bearer token, revoked or expired API \
            key.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope` (key lacks `payments:read`), `agent_only` (an approver \
            token), `ip_not_allowed`.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such payment, or it belongs to another agent.",
         body = ErrorBody),
    )
)]
async fn show(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    PathParams(id): PathParams<String>,
) -> Result<Json<Payment>> {
    let owner = match principal {
        Principal::Admin(_) => None,
        p => Some(p.agent(Scope::PaymentsRead)?.agent.id),
    };
    // Another agent's payment is "not found", not "forbidden": its existence
    // is not revealed.
    let payment = state.svc.store.payment(owner.as_deref(), &id).await?.ok_or(Error::NotFound("payment"))?;
    Ok(Json(payment))
}

/// Every parameter is optional; an empty value (`status=`) means not given.
/// Unknown parameters are `400 invalid_query`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only payments in this status. Unknown values: `400 invalid_query`.
    #[serde(default, deserialize_with = "empty_as_none")]
    #[param(value_type = Option<PaymentStatus>)]
    status: Option<String>,
    /// Page size, 1-200 (default 50). Out of range: `400 invalid_query`.
    #[serde(default, deserialize_with = "empty_as_none")]
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page; returns payments older than
    /// it. Anything else: `400 invalid_cursor`.
    #[serde(default, deserialize_with = "empty_as_none")]
    #[param(pattern = "^pay_[0-9a-z]{1,64}$")]
    cursor: Option<String>,
    /// Admin only: one agent's payments. An agent may pass only its own id
    /// (another id: `403 agent_only`).
    #[serde(default, deserialize_with = "empty_as_none")]
    agent_id: Option<String>,
}

/// List payments
///
/// Newest first, cursor-paginated. An agent (API key with `payments:read`)
/// sees only its own payments. The admin token sees every agent's payments
/// and may filter by `agent_id`.
#[utoipa::path(
    get,
    path = "/v1/payments",
    operation_id = "listPayments",
    tag = "payments",
    security(("agentKey" = ["payments:read"]), ("adminToken" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "A page of payments, newest first.", body = Page<Payment>),
        (status = 400, description = "`invalid_query` (unknown or repeated parameter, unknown `status`, `limit` \
            not an integer in 1-200, a NUL character), `invalid_cursor`.", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing or unknown bearer token, revoked or expired API \
            key.", body = ErrorBody),
        (status = 403, description = "`insufficient_scope` (key lacks `payments:read`), `agent_only` (an approver \
            token, or an agent asked for another agent's payments), `ip_not_allowed`.", body = ErrorBody),
    )
)]
async fn list(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    QueryParams(q): QueryParams<ListQuery>,
) -> Result<Json<Page<Payment>>> {
    let agent_id = match principal {
        Principal::Admin(_) => q.agent_id,
        p => {
            let a = p.agent(Scope::PaymentsRead)?;
            if q.agent_id.as_ref().is_some_and(|id| *id != a.agent.id) {
                return Err(Error::forbidden(
                    ErrorCode::AgentOnly,
                    "agents can list only their own payments",
                ));
            }
            Some(a.agent.id)
        }
    };
    let status = q
        .status
        .map(|s| {
            s.parse::<PaymentStatus>().map_err(|()| {
                Error::invalid(ErrorCode::InvalidQuery, format!("unknown status {s:?}")).at("status")
            })
        })
        .transpose()?;
    let req = PAYMENTS.request(q.limit, q.cursor.as_deref())?;
    let filter = PaymentFilter { agent_id, status, before: req.slice.after, limit: req.slice.limit };
    Ok(Json(req.page(state.svc.store.payments(&filter).await?, |p| p.id.clone())))
}

#[cfg(test)]
mod tests {
    use super::super::openapi::tests::constraint;
    use super::*;

    #[test]
    fn the_documented_bounds_are_the_checked_ones() {
        let max = |field| constraint("PaymentRequest", field, "maxLength") as usize;
        assert_eq!(max("merchant_id"), MAX_MERCHANT_ID);
        assert_eq!(max("merchant_category"), MAX_CATEGORY);
        assert_eq!(max("rail"), MAX_CATEGORY);
        assert_eq!(max("description"), MAX_DESCRIPTION);
    }
}
