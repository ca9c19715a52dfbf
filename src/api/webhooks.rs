//! Admin API for webhook endpoints, delivery attempts and replays.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Admin;
use super::extract::{empty_as_none, JsonBody, OptionalJsonBody, PathParams, QueryParams};
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::model::WebhookEndpoint;
use crate::service::webhooks;
use crate::store::EndpointPatch;

const ADMIN: &str = "admin";
const MAX_DESCRIPTION: usize = 500;
const DEFAULT_GRACE_SECONDS: u64 = 24 * 60 * 60;
const MAX_GRACE_SECONDS: u64 = 30 * 24 * 60 * 60;

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/webhook-endpoints", post(create).get(list))
        .route("/v1/webhook-endpoints/{id}", get(show).patch(update).delete(remove))
        .route("/v1/webhook-endpoints/{id}/rotate-secret", post(rotate))
        .route("/v1/webhook-endpoints/{id}/attempts", get(endpoint_attempts))
        .route("/v1/webhook-events/{id}/attempts", get(event_attempts))
        .route("/v1/webhook-events/{id}/replay", post(replay))
}

fn check_description(d: &Option<String>) -> Result<()> {
    if d.as_ref().is_some_and(|d| d.chars().count() > MAX_DESCRIPTION) {
        return Err(Error::invalid(
            "invalid_request",
            format!("description is longer than {MAX_DESCRIPTION} characters"),
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateEndpoint {
    url: String,
    events: Vec<String>,
    #[serde(default)]
    description: Option<String>,
}

async fn create(
    State(state): State<Arc<AppState>>,
    _: Admin,
    JsonBody { body, .. }: JsonBody<CreateEndpoint>,
) -> Result<(StatusCode, Json<Value>)> {
    check_description(&body.description)?;
    let issued = webhooks::create_endpoint(&state, ADMIN, &body.url, body.events, body.description).await?;
    let mut out = serde_json::to_value(&issued.endpoint).expect("endpoint serializes");
    // The only time the secret is ever shown.
    out["secret"] = Value::String(issued.secret);
    Ok((StatusCode::CREATED, Json(out)))
}

async fn list(State(state): State<Arc<AppState>>, _: Admin) -> Result<Json<Value>> {
    Ok(Json(json!({ "data": state.store.endpoints().await? })))
}

async fn show(
    State(state): State<Arc<AppState>>,
    _: Admin,
    PathParams(id): PathParams<String>,
) -> Result<Json<WebhookEndpoint>> {
    Ok(Json(state.store.endpoint(&id).await?.ok_or(Error::NotFound("webhook endpoint"))?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateEndpoint {
    url: Option<String>,
    events: Option<Vec<String>>,
    description: Option<String>,
    /// `true` disables deliveries; `false` re-enables a disabled endpoint.
    disabled: Option<bool>,
}

async fn update(
    State(state): State<Arc<AppState>>,
    _: Admin,
    PathParams(id): PathParams<String>,
    JsonBody { body, .. }: JsonBody<UpdateEndpoint>,
) -> Result<Json<WebhookEndpoint>> {
    check_description(&body.description)?;
    let patch = EndpointPatch {
        url: body.url,
        description: body.description,
        events: body.events,
        disabled: body.disabled,
    };
    Ok(Json(webhooks::update_endpoint(&state, ADMIN, &id, patch).await?))
}

async fn remove(
    State(state): State<Arc<AppState>>,
    _: Admin,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode> {
    webhooks::delete_endpoint(&state, ADMIN, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Rotate {
    /// How long the old secret keeps signing too (default a day).
    grace_seconds: Option<u64>,
}

async fn rotate(
    State(state): State<Arc<AppState>>,
    _: Admin,
    PathParams(id): PathParams<String>,
    OptionalJsonBody(body): OptionalJsonBody<Rotate>,
) -> Result<Json<Value>> {
    let grace = body.grace_seconds.unwrap_or(DEFAULT_GRACE_SECONDS);
    if grace > MAX_GRACE_SECONDS {
        return Err(Error::invalid(
            "invalid_request",
            format!("grace_seconds is at most {MAX_GRACE_SECONDS}"),
        ));
    }
    let (secret, until) = webhooks::rotate_secret(&state, ADMIN, &id, Duration::from_secs(grace)).await?;
    Ok(Json(json!({ "id": id, "secret": secret, "previous_secret_until": until })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AttemptsQuery {
    #[serde(default, deserialize_with = "empty_as_none")]
    limit: Option<u32>,
}

fn page(limit: Option<u32>) -> Result<u32> {
    let limit = limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Error::invalid("invalid_query", "limit must be between 1 and 1000"));
    }
    Ok(limit)
}

async fn endpoint_attempts(
    State(state): State<Arc<AppState>>,
    _: Admin,
    PathParams(id): PathParams<String>,
    QueryParams(q): QueryParams<AttemptsQuery>,
) -> Result<Json<Value>> {
    state.store.endpoint(&id).await?.ok_or(Error::NotFound("webhook endpoint"))?;
    Ok(Json(json!({ "data": state.store.attempts(None, Some(&id), page(q.limit)?).await? })))
}

async fn event_attempts(
    State(state): State<Arc<AppState>>,
    _: Admin,
    PathParams(id): PathParams<String>,
    QueryParams(q): QueryParams<AttemptsQuery>,
) -> Result<Json<Value>> {
    if !state.store.event_exists(&id).await? {
        return Err(Error::NotFound("webhook event"));
    }
    Ok(Json(json!({ "data": state.store.attempts(Some(&id), None, page(q.limit)?).await? })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Replay {
    /// Only this endpoint; default every endpoint subscribed to the event.
    endpoint_id: Option<String>,
}

async fn replay(
    State(state): State<Arc<AppState>>,
    _: Admin,
    PathParams(id): PathParams<String>,
    OptionalJsonBody(body): OptionalJsonBody<Replay>,
) -> Result<(StatusCode, Json<Value>)> {
    let queued = webhooks::replay(&state, ADMIN, &id, body.endpoint_id).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "event_id": id, "queued": queued }))))
}
