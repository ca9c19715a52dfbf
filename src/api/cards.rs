//! Cards: the admin API for standing cards, and the card issuer's real-time
//! authorization callback (Lithic Auth Stream Access).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Admin;
use super::extract::{JsonBody, PathParams, RawBody};
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::model::Card;
use crate::providers::lithic::asa::{self, Decline};
use crate::service::cards;

const ADMIN: &str = "admin";
const MAX_TOKEN: usize = 128;

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/agents/{id}/cards", post(register).get(list))
        .route("/v1/agents/{id}/cards/{card_token}", delete(remove))
        .route("/v1/providers/lithic/asa", post(lithic_asa))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterCard {
    card_token: String,
}

async fn register(
    State(state): State<Arc<AppState>>,
    _: Admin,
    PathParams(agent_id): PathParams<String>,
    JsonBody { body, .. }: JsonBody<RegisterCard>,
) -> Result<(StatusCode, Json<Card>)> {
    let token = body.card_token;
    if token.is_empty() || token.len() > MAX_TOKEN || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid(
            "invalid_request",
            format!("card_token must be 1-{MAX_TOKEN} printable ASCII characters"),
        ));
    }
    Ok((StatusCode::CREATED, Json(cards::register(&state, ADMIN, &agent_id, token).await?)))
}

async fn list(
    State(state): State<Arc<AppState>>,
    _: Admin,
    PathParams(agent_id): PathParams<String>,
) -> Result<Json<Value>> {
    state.store.agent(&agent_id).await?.ok_or(Error::NotFound("agent"))?;
    Ok(Json(json!({ "data": state.store.cards(&agent_id).await? })))
}

async fn remove(
    State(state): State<Arc<AppState>>,
    _: Admin,
    PathParams((agent_id, token)): PathParams<(String, String)>,
) -> Result<StatusCode> {
    cards::remove(&state, ADMIN, &agent_id, &token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Lithic's authorization request, answered within its latency budget.
/// Authenticated by Lithic's HMAC signature only (401 without it). Once the
/// signature holds, the answer is always 200 with a decision: an unreadable
/// request, an unknown card, a store that is down or slow all decline,
/// because the network must get an answer and fail-closed means no.
async fn lithic_asa(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<Value>> {
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
    let answer = match tokio::time::timeout_at(answer_by.into(), cards::authorize(&state, &auth, answer_by))
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
