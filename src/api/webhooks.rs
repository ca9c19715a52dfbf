//! Admin API for webhook endpoints, delivery attempts and replays.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Admin;
use super::extract::{JsonBody, OptionalJsonBody, PathParams, QueryParams};
use super::openapi::ErrorBody;
use super::page::{Page, PageErrors, PageQuery, Paging};
use crate::api::AppState;
use crate::error::{Error, ErrorCode, Result};
use crate::model::{DeliveryAttempt, Timestamp, WebhookEndpoint};
use crate::service::webhooks;
use crate::store::EndpointPatch;
use crate::webhooks::EventSelector;

const MAX_DESCRIPTION: usize = 500;
const DEFAULT_GRACE_SECONDS: u64 = 24 * 60 * 60;
const MAX_GRACE_SECONDS: u64 = 30 * 24 * 60 * 60;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(show, update, remove))
        .routes(routes!(rotate))
        .routes(routes!(endpoint_attempts))
        .routes(routes!(event_attempts))
        .routes(routes!(replay))
}

fn check_description(d: &Option<String>) -> Result<()> {
    if d.as_ref().is_some_and(|d| d.chars().count() > MAX_DESCRIPTION) {
        return Err(Error::invalid(
            ErrorCode::InvalidRequest,
            format!("description is longer than {MAX_DESCRIPTION} characters"),
        )
        .at("/description"));
    }
    Ok(())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(
    as = CreateWebhookEndpointRequest,
    example = json!({ "url": "https://hooks.example.com/purser", "events": ["payment.succeeded", "payment.failed"] })
)]
struct CreateEndpoint {
    /// An absolute `https` URL (plain `http` only in `--dev` mode).
    #[schema(format = "uri", min_length = 1)]
    url: String,
    /// At least one event type, or `["*"]` for all.
    #[schema(value_type = Vec<EventSelector>, min_items = 1)]
    events: Vec<String>,
    /// The operator's note, at most 500 characters.
    #[serde(default)]
    #[schema(max_length = 500)]
    description: Option<String>,
}

/// The new endpoint's record plus its signing secret, shown this one time
/// only.
#[derive(Serialize, ToSchema)]
#[schema(as = CreatedWebhookEndpoint)]
struct IssuedEndpoint {
    #[serde(flatten)]
    endpoint: WebhookEndpoint,
    /// The signing secret: `whsec_` + standard (padded) base64 of 32 random
    /// bytes. The HMAC key is the decoded bytes, not the text. Store it now:
    /// it is never shown again (purser keeps it encrypted with
    /// `PURSER_ENCRYPTION_KEY`, to sign with).
    #[schema(
        pattern = "^whsec_[A-Za-z0-9+/]{43}=$",
        example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw2IMYtxNl6Sc="
    )]
    secret: String,
}

/// Register a webhook endpoint (admin)
///
/// Registers a URL to receive the given event types (or `["*"]` for all,
/// including types added later) and generates its signing secret. The
/// response is the only time the secret is shown. The URL is checked now
/// (scheme, credentials, and every address its host resolves to, see
/// `invalid_webhook_url`) and again at every delivery connection, so a host
/// re-pointed at an internal address later (DNS rebinding) is refused then.
/// An endpoint receives only events that happen after it was created.
/// Audited (`webhook_endpoint.created`, without the secret).
#[utoipa::path(
    post,
    path = "/v1/webhook-endpoints",
    operation_id = "createWebhookEndpoint",
    tag = "webhooks",
    security(("adminToken" = [])),
    request_body = CreateEndpoint,
    responses(
        (status = 201, description = "The endpoint record plus its signing secret (`secret`).",
         body = IssuedEndpoint),
        (status = 400, description = "`invalid_json`, `invalid_request` (not an object, unknown, missing or \
            mistyped field, `events` empty or naming an unknown event type, `description` over 500 \
            characters), `invalid_body`; or the `url` refused (`invalid_webhook_url`).", body = ErrorBody),
    )
)]
async fn create(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    JsonBody { body, .. }: JsonBody<CreateEndpoint>,
) -> Result<(StatusCode, Json<IssuedEndpoint>)> {
    check_description(&body.description)?;
    let issued =
        webhooks::create_endpoint(&state.svc, &admin, &body.url, body.events, body.description).await?;
    Ok((StatusCode::CREATED, Json(IssuedEndpoint { endpoint: issued.endpoint, secret: issued.secret })))
}

/// List webhook endpoints (admin)
///
/// Every endpoint, disabled ones included, oldest first, cursor-paginated.
/// Never the secrets.
#[utoipa::path(
    get,
    path = "/v1/webhook-endpoints",
    operation_id = "listWebhookEndpoints",
    tag = "webhooks",
    security(("adminToken" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "A page of webhook endpoints, oldest first.", body = Page<WebhookEndpoint>),
        PageErrors,
    )
)]
async fn list(
    State(state): State<Arc<AppState>>,
    _: Admin,
    QueryParams(q): QueryParams<PageQuery>,
) -> Result<Json<Page<WebhookEndpoint>>> {
    let req = Paging::ADMIN.query(&q)?;
    Ok(Json(req.page(state.svc.store.endpoints(req.slice).await?, |e| e.id.clone())))
}

/// Get a webhook endpoint (admin)
#[utoipa::path(
    get,
    path = "/v1/webhook-endpoints/{id}",
    operation_id = "getWebhookEndpoint",
    tag = "webhooks",
    security(("adminToken" = [])),
    params(("id" = String, Path, description = "Webhook endpoint id (`wh_...`).")),
    responses(
        (status = 200, description = "The endpoint (never its secrets).", body = WebhookEndpoint),
        (status = 404, description = "`not_found`: no such webhook endpoint.", body = ErrorBody),
    )
)]
async fn show(
    State(state): State<Arc<AppState>>,
    _: Admin,
    PathParams(id): PathParams<String>,
) -> Result<Json<WebhookEndpoint>> {
    Ok(Json(state.svc.store.endpoint(&id).await?.ok_or(Error::NotFound("webhook endpoint"))?))
}

/// Fields left out (or null) stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = UpdateWebhookEndpointRequest, example = json!({ "disabled": false }))]
struct UpdateEndpoint {
    /// Checked like at registration.
    #[schema(format = "uri", min_length = 1)]
    url: Option<String>,
    #[schema(value_type = Option<Vec<EventSelector>>, min_items = 1)]
    events: Option<Vec<String>>,
    #[schema(max_length = 500)]
    description: Option<String>,
    /// `true` disables deliveries; `false` re-enables a disabled endpoint.
    disabled: Option<bool>,
}

/// Change a webhook endpoint (admin)
///
/// Changes any of `url`, `events`, `description`, `disabled`; fields left
/// out (or null) stay as they are. A new `url` is checked like at
/// registration. `disabled: true` stops deliveries: deliveries already
/// queued wait and events that happen meanwhile are not queued for the
/// endpoint. `disabled: false` re-enables it (also after purser disabled
/// it, see `endpoint.disabled`), clears `disabled_reason`, and lets the
/// waiting deliveries go out; missed events can be sent with `POST
/// /v1/webhook-events/{id}/replay`. Audited (`webhook_endpoint.updated`).
#[utoipa::path(
    patch,
    path = "/v1/webhook-endpoints/{id}",
    operation_id = "updateWebhookEndpoint",
    tag = "webhooks",
    security(("adminToken" = [])),
    params(("id" = String, Path, description = "Webhook endpoint id (`wh_...`).")),
    request_body = UpdateEndpoint,
    responses(
        (status = 200, description = "The updated endpoint.", body = WebhookEndpoint),
        (status = 400, description = "`invalid_json`, `invalid_request` (not an object, unknown or mistyped \
            field, `events` empty or naming an unknown event type, `description` over 500 characters), \
            `invalid_body`; or the `url` refused (`invalid_webhook_url`).", body = ErrorBody),
        (status = 404, description = "`not_found`: no such webhook endpoint.", body = ErrorBody),
    )
)]
async fn update(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
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
    Ok(Json(webhooks::update_endpoint(&state.svc, &admin, &id, patch).await?))
}

/// Delete a webhook endpoint (admin)
///
/// Deletes the endpoint together with its deliveries (queued retries
/// included: they are not sent) and their delivery attempts. The events
/// themselves stay, for other endpoints. Audited
/// (`webhook_endpoint.deleted`).
#[utoipa::path(
    delete,
    path = "/v1/webhook-endpoints/{id}",
    operation_id = "deleteWebhookEndpoint",
    tag = "webhooks",
    security(("adminToken" = [])),
    params(("id" = String, Path, description = "Webhook endpoint id (`wh_...`).")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "`not_found`: no such webhook endpoint.", body = ErrorBody),
    )
)]
async fn remove(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode> {
    webhooks::delete_endpoint(&state.svc, &admin, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Optional: the whole body may be left out.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RotateWebhookSecretRequest)]
struct Rotate {
    /// How long the old secret keeps signing too, in seconds: 86400 (a day)
    /// if left out, at most 2592000 (30 days); `0` drops it at once.
    #[serde(default, deserialize_with = "crate::model::optional_whole_number")]
    #[schema(minimum = 0, maximum = 2592000)]
    grace_seconds: Option<u64>,
}

/// A rotated endpoint's new secret, shown this one time only.
#[derive(Serialize, ToSchema)]
#[schema(as = RotatedWebhookSecret)]
struct RotatedSecret {
    #[schema(pattern = "^wh_[0-9a-z]{26}$")]
    id: String,
    /// The new signing secret, in the same form as at registration.
    #[schema(pattern = "^whsec_[A-Za-z0-9+/]{43}=$")]
    secret: String,
    /// Until then the previous secret signs too.
    #[schema(value_type = Timestamp)]
    previous_secret_until: String,
}

/// Rotate a webhook endpoint's signing secret (admin)
///
/// Generates a new signing secret, shown only in this response, which
/// signs every delivery from now on. Until `previous_secret_until` the
/// secret it replaces signs too: `webhook-signature` then carries two `v1,`
/// entries, so a receiver can switch secrets without missing a delivery.
/// Only one previous secret is kept: rotating again during a grace period
/// drops the older one at once. The body is optional. Audited
/// (`webhook_endpoint.secret_rotated`, without the secrets).
#[utoipa::path(
    post,
    path = "/v1/webhook-endpoints/{id}/rotate-secret",
    operation_id = "rotateWebhookSecret",
    tag = "webhooks",
    security(("adminToken" = [])),
    params(("id" = String, Path, description = "Webhook endpoint id (`wh_...`).")),
    request_body(content = Option<Rotate>, content_type = "application/json"),
    responses(
        (status = 200, description = "The new secret and the end of the grace period.", body = RotatedSecret),
        (status = 400, description = "`invalid_json` (a non-empty body that is not valid JSON), \
            `invalid_request` (not an object, unknown field, `grace_seconds` not an integer in 0-2592000), \
            `invalid_body`.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such webhook endpoint.", body = ErrorBody),
    )
)]
async fn rotate(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    PathParams(id): PathParams<String>,
    OptionalJsonBody(body): OptionalJsonBody<Rotate>,
) -> Result<Json<RotatedSecret>> {
    let grace = body.grace_seconds.unwrap_or(DEFAULT_GRACE_SECONDS);
    if grace > MAX_GRACE_SECONDS {
        return Err(Error::invalid(
            ErrorCode::InvalidRequest,
            format!("grace_seconds is at most {MAX_GRACE_SECONDS}"),
        )
        .at("/grace_seconds"));
    }
    let (secret, until) =
        webhooks::rotate_secret(&state.svc, &admin, &id, Duration::from_secs(grace)).await?;
    Ok(Json(RotatedSecret { id, secret, previous_secret_until: until }))
}

/// Delivery attempts to a webhook endpoint (admin)
///
/// The endpoint's delivery attempts, newest first, cursor-paginated.
#[utoipa::path(
    get,
    path = "/v1/webhook-endpoints/{id}/attempts",
    operation_id = "listEndpointAttempts",
    tag = "webhooks",
    security(("adminToken" = [])),
    params(("id" = String, Path, description = "Webhook endpoint id (`wh_...`)."), PageQuery),
    responses(
        (status = 200, description = "A page of attempts, newest first.", body = Page<DeliveryAttempt>),
        PageErrors,
        (status = 404, description = "`not_found`: no such webhook endpoint.", body = ErrorBody),
    )
)]
async fn endpoint_attempts(
    State(state): State<Arc<AppState>>,
    _: Admin,
    PathParams(id): PathParams<String>,
    QueryParams(q): QueryParams<PageQuery>,
) -> Result<Json<Page<DeliveryAttempt>>> {
    state.svc.store.endpoint(&id).await?.ok_or(Error::NotFound("webhook endpoint"))?;
    attempts(&state, &q, None, Some(&id)).await
}

/// Delivery attempts of a webhook event (admin)
///
/// The event's delivery attempts to any endpoint, newest first,
/// cursor-paginated. The event id is the `webhook-id` header
/// receivers saw, and the `event_id` of each attempt.
#[utoipa::path(
    get,
    path = "/v1/webhook-events/{id}/attempts",
    operation_id = "listEventAttempts",
    tag = "webhooks",
    security(("adminToken" = [])),
    params(("id" = String, Path, description = "Webhook event id (`msg_...`)."), PageQuery),
    responses(
        (status = 200, description = "A page of attempts, newest first.", body = Page<DeliveryAttempt>),
        PageErrors,
        (status = 404, description = "`not_found`: no such webhook event.", body = ErrorBody),
    )
)]
async fn event_attempts(
    State(state): State<Arc<AppState>>,
    _: Admin,
    PathParams(id): PathParams<String>,
    QueryParams(q): QueryParams<PageQuery>,
) -> Result<Json<Page<DeliveryAttempt>>> {
    if !state.svc.store.event_exists(&id).await? {
        return Err(Error::NotFound("webhook event"));
    }
    attempts(&state, &q, Some(&id), None).await
}

/// A page of the attempts of an event or to an endpoint, newest first.
async fn attempts(
    state: &AppState,
    q: &PageQuery,
    event: Option<&str>,
    endpoint: Option<&str>,
) -> Result<Json<Page<DeliveryAttempt>>> {
    let req = Paging::ADMIN.query(q)?;
    Ok(Json(req.page(state.svc.store.attempts(event, endpoint, req.slice).await?, |a| a.id.clone())))
}

/// Optional: the whole body may be left out.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ReplayWebhookEventRequest)]
struct Replay {
    /// Only this endpoint (whether or not it subscribes to the event's
    /// type); default every endpoint now subscribed to it. An unknown id
    /// queues nothing.
    endpoint_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = ReplayedWebhookEvent)]
struct Replayed {
    #[schema(pattern = "^msg_[0-9a-z]{26}$")]
    event_id: String,
    /// Deliveries queued.
    queued: u64,
}

/// Send a webhook event again (admin)
///
/// Queues a new delivery of the event, with a fresh retry schedule and its
/// first attempt right away: to `endpoint_id` if given, otherwise to every
/// endpoint that now subscribes to it. Disabled endpoints are skipped. The
/// delivery carries the same body and the same `webhook-id` as the
/// original, so receivers that deduplicate on `webhook-id` ignore it if they
/// already processed it; `webhook-timestamp` and `webhook-signature` are
/// fresh. The body is optional. Audited (`webhook_event.replayed`).
#[utoipa::path(
    post,
    path = "/v1/webhook-events/{id}/replay",
    operation_id = "replayWebhookEvent",
    tag = "webhooks",
    security(("adminToken" = [])),
    params(("id" = String, Path, description = "Webhook event id (`msg_...`).")),
    request_body(content = Option<Replay>, content_type = "application/json"),
    responses(
        (status = 202, description = "Queued; the dispatcher sends the deliveries shortly.", body = Replayed),
        (status = 400, description = "`invalid_json` (a non-empty body that is not valid JSON), \
            `invalid_request` (not an object, unknown or mistyped field, a NUL character), `invalid_body`.",
         body = ErrorBody),
        (status = 404, description = "`not_found`: no such webhook event.", body = ErrorBody),
    )
)]
async fn replay(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    PathParams(id): PathParams<String>,
    OptionalJsonBody(body): OptionalJsonBody<Replay>,
) -> Result<(StatusCode, Json<Replayed>)> {
    let queued = webhooks::replay(&state.svc, &admin, &id, body.endpoint_id).await?;
    Ok((StatusCode::ACCEPTED, Json(Replayed { event_id: id, queued })))
}

#[cfg(test)]
mod tests {
    use super::super::openapi::tests::constraint;
    use super::*;

    #[test]
    fn the_documented_bounds_are_the_checked_ones() {
        let max = constraint("CreateWebhookEndpointRequest", "description", "maxLength");
        assert_eq!(max as usize, MAX_DESCRIPTION);
        assert_eq!(constraint("RotateWebhookSecretRequest", "grace_seconds", "maximum"), MAX_GRACE_SECONDS);
    }
}
