//! Cards: the admin API for standing cards, and the card issuer's real-time
//! authorization callback (Lithic Auth Stream Access).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Admin;
use super::extract::{JsonBody, PathParams, QueryParams, RawBody};
use super::openapi::ErrorBody;
use super::page::{Page, PageErrors, PageQuery, Paging};
use crate::api::AppState;
use crate::error::{Error, ErrorCode, Result};
use crate::model::Card;
use crate::providers::lithic::asa::{self, Decline};
use crate::service::cards;

const MAX_TOKEN: usize = 128;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new().routes(routes!(register, list)).routes(routes!(remove)).routes(routes!(lithic_asa))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RegisterCardRequest, example = json!({ "card_token": "76b9f589-8935-4e78-8809-7f583bf0fb89" }))]
struct RegisterCard {
    /// The issuer's token for the card: 1-128 printable ASCII characters
    /// without spaces.
    #[schema(pattern = "^[!-~]{1,128}$")]
    card_token: String,
}

/// Register a standing card to an agent (admin)
///
/// Registers a card issued at Lithic (by its card token) as a standing card
/// of the agent: from then on every real-time authorization on it (`POST
/// /v1/providers/lithic/asa`) is a payment of the agent on rail `card`,
/// decided by the agent's policy and reserved like any other payment. The
/// card itself is issued and managed at Lithic; purser stores only its
/// token. A card token can be registered to one agent only. Audited
/// (`card.registered`).
#[utoipa::path(
    post,
    path = "/v1/agents/{id}/cards",
    operation_id = "registerAgentCard",
    tag = "cards",
    security(("adminToken" = [])),
    params(("id" = String, Path, description = "Agent id (`agt_...`).")),
    request_body = RegisterCard,
    responses(
        (status = 201, description = "The registered card.", body = Card),
        (status = 400, description = "`invalid_json`, `invalid_request` (not an object, unknown field, \
            `card_token` missing or not 1-128 printable ASCII characters without spaces), `invalid_body`.",
         body = ErrorBody),
        (status = 404, description = "`not_found`: no such agent.", body = ErrorBody),
        (status = 409, description = "`card_exists`: this card token is already registered (to this or another \
            agent).", body = ErrorBody),
    )
)]
async fn register(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    PathParams(agent_id): PathParams<String>,
    JsonBody { body, .. }: JsonBody<RegisterCard>,
) -> Result<(StatusCode, Json<Card>)> {
    let token = body.card_token;
    if token.is_empty() || token.len() > MAX_TOKEN || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid(
            ErrorCode::InvalidRequest,
            format!("card_token must be 1-{MAX_TOKEN} printable ASCII characters"),
        )
        .at("/card_token"));
    }
    Ok((StatusCode::CREATED, Json(cards::register(&state.svc, &admin, &agent_id, token).await?)))
}

/// List an agent's standing cards (admin)
///
/// Every standing card registered to the agent, oldest first, cursor-paginated.
/// Removed cards are not listed.
#[utoipa::path(
    get,
    path = "/v1/agents/{id}/cards",
    operation_id = "listAgentCards",
    tag = "cards",
    security(("adminToken" = [])),
    params(("id" = String, Path, description = "Agent id (`agt_...`)."), PageQuery),
    responses(
        (status = 200, description = "A page of the agent's standing cards, oldest first; a card's cursor is \
            its token.", body = Page<Card>),
        PageErrors,
        (status = 404, description = "`not_found`: no such agent.", body = ErrorBody),
    )
)]
async fn list(
    State(state): State<Arc<AppState>>,
    _: Admin,
    PathParams(agent_id): PathParams<String>,
    QueryParams(q): QueryParams<PageQuery>,
) -> Result<Json<Page<Card>>> {
    let req = Paging::ADMIN.query(&q)?;
    state.svc.store.agent(&agent_id).await?.ok_or(Error::NotFound("agent"))?;
    Ok(Json(req.page(state.svc.store.cards(&agent_id, req.slice).await?, |c| c.card_token.clone())))
}

/// Remove a standing card (admin)
///
/// Unregisters the card at once: later authorizations on it are no longer
/// decided by the agent's policy (a card that is neither a standing card
/// nor one purser issued for a payment is declined). Payments already made
/// with it stay. Audited (`card.removed`).
#[utoipa::path(
    delete,
    path = "/v1/agents/{id}/cards/{card_token}",
    operation_id = "removeAgentCard",
    tag = "cards",
    security(("adminToken" = [])),
    params(
        ("id" = String, Path, description = "Agent id (`agt_...`)."),
        ("card_token" = String, Path, description = "The card's token, as registered."),
    ),
    responses(
        (status = 204, description = "Removed."),
        (status = 404, description = "`not_found`: no such card registered to this agent.", body = ErrorBody),
    )
)]
async fn remove(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    PathParams((agent_id, token)): PathParams<(String, String)>,
) -> Result<StatusCode> {
    cards::remove(&state.svc, &admin, &agent_id, &token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Decide a card authorization (Lithic Auth Stream Access)
///
/// Lithic's Auth Stream Access (ASA) responder: Lithic asks, in real time,
/// whether to approve an authorization on one of its cards, and purser
/// answers in the response, within 2 seconds. Enroll this URL with Lithic as
/// the `AUTH_STREAM_ACCESS` responder endpoint. The route exists only when
/// the providers file sets `asa_secret` in `[lithic]`; otherwise it is `404
/// not_found`, like any unknown path.
///
/// **Authentication.** Not a bearer token: Lithic signs each request in the
/// Standard Webhooks format with the ASA HMAC secret. A missing header, a
/// timestamp more than 5 minutes from purser's clock, or no matching `v1`
/// signature is `401 unauthorized`, counted against the sender's address
/// like any failed authentication and audited.
///
/// **Decision.** Once the signature holds, every request is answered `200`
/// with a decision, never with an error: the card network needs an answer,
/// and purser fails closed (a request it cannot read, or cannot decide in
/// time, is declined).
/// - A purchase (`AUTHORIZATION`, `FINANCIAL_AUTHORIZATION`) on a *standing
///   card* is a payment of the card's agent, decided by its policy and
///   reserved like any other: rail `card`, the cardholder amount and
///   currency, `merchant_id` from the acceptor id (or the descriptor), the
///   merchant category from the MCC (never from the agent). It is idempotent
///   on the authorization `token`. One that would need human approval is
///   declined (`approval_required`). An approved one is recorded `succeeded`
///   at once.
/// - A purchase on a *card purser issued for a payment* is approved in the
///   payment's currency, where the agent's policy allows the MCC's category,
///   while the card's approved authorizations stay within the payment's
///   amount in total.
/// - A refund to the card (`CREDIT_AUTHORIZATION`,
///   `FINANCIAL_CREDIT_AUTHORIZATION`) or a `BALANCE_INQUIRY` on a card
///   purser knows is approved and counted against no limit.
/// - Any other card or request is declined.
///
/// Not subject to the per-client read and write rate limits: only failed
/// signatures count. The body is read as raw bytes (the signature covers
/// them exactly): no `Content-Type` is required.
#[utoipa::path(
    post,
    path = "/v1/providers/lithic/asa",
    operation_id = "lithicAuthStreamAccess",
    tag = "providers",
    security(()),
    params(
        ("webhook-id" = String, Header, min_length = 1, description = "Lithic's message id, part of the signed \
            content."),
        ("webhook-timestamp" = String, Header, pattern = "^[0-9]+$", description = "When Lithic signed the \
            request, in Unix seconds."),
        ("webhook-signature" = String, Header, description = "Space-separated signatures, each `v1,` + \
            standard base64 of HMAC-SHA256 keyed with the ASA secret's bytes over \
            `{webhook-id}.{webhook-timestamp}.{body}`."),
    ),
    request_body = asa::Request,
    responses(
        (status = 200, description = "purser's decision, with the request's `token`.", body = asa::Response),
        (status = 401, description = "`unauthorized`: a signature header is missing, the timestamp is more than \
            5 minutes from purser's clock, or no `v1` signature matches.", body = ErrorBody),
        (status = 404, description = "`not_found`: ASA is not configured on this gateway.", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: the body is larger than the configured limit.",
         body = ErrorBody),
    )
)]
async fn lithic_asa(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<asa::Response>> {
    let secret = state.asa_secret.as_ref().ok_or(Error::NotFound("route"))?;
    if !asa::verify(secret.expose().as_bytes(), &headers, &body) {
        return Err(Error::Unauthenticated("invalid or missing issuer signature"));
    }
    let auth = match asa::parse(&body) {
        Ok(auth) => auth,
        Err(unreadable) => {
            tracing::warn!(why = %unreadable.why, "card authorization declined: unreadable request");
            return Ok(Json(asa::respond(unreadable.token.as_deref(), Err(Decline::UnauthorizedMerchant))));
        }
    };
    let answer_by = Instant::now() + cards::ANSWER_WITHIN;
    let answer = match tokio::time::timeout_at(
        answer_by.into(),
        cards::authorize(&state.svc, &auth, answer_by),
    )
    .await
    {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, authorization = %auth.token, "card authorization declined: not decidable");
            Err(Decline::UnauthorizedMerchant)
        }
        Err(_) => {
            tracing::warn!(authorization = %auth.token, "card authorization declined: not decided in time");
            Err(Decline::UnauthorizedMerchant)
        }
    };
    Ok(Json(asa::respond(Some(&auth.token), answer)))
}
