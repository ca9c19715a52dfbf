//! Agents and their keys (admin), and an agent's view of its own policy.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Admin, AdminReader, Principal};
use super::extract::{object_only, JsonBody, OptionalJsonBody, PathParams, QueryParams};
use super::openapi::ErrorBody;
use super::page::{Page, PageErrors, PageQuery, Paging};
use super::validate::{self, check_len, Cidr, MAX_NAME};
use crate::api::AppState;
use crate::clock::{format_ts, parse_ts};
use crate::error::{Error, ErrorCode, Result};
use crate::model::Timestamp;
use crate::model::{Agent, ApiKey, KeyRateLimit, Scope, SigningKey};
use crate::policy::TrustLevel;
use crate::service::agents::{self, KeyRequest, NewAgent};
use crate::service::allowance::{self, Allowance};
use crate::service::signing;
use crate::store::{AgentPatch, Credential};

/// Admin actor in audit records. There is one admin role; which token was
/// used is not recorded because the configured token has no id.
const MAX_REASON: usize = 1000;

pub fn router() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(show, update))
        .routes(routes!(allowance))
        .routes(routes!(freeze))
        .routes(routes!(unfreeze))
        .routes(routes!(create_key, list_keys))
        .routes(routes!(revoke_key))
        .routes(routes!(rotate_key))
        .routes(routes!(register_signing_key, list_signing_keys))
        .routes(routes!(revoke_signing_key))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateAgentRequest, example = json!({ "name": "build-bot", "policy": "low-trust", "trust_level": "low" }))]
struct CreateAgent {
    /// 1-200 characters, not blank.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\u0000]*[^\\u0000\\t\\n\\u000b\\u000c\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff][^\\u0000]*$"
    )]
    name: String,
    /// Name of a loaded policy; otherwise `422 unknown_policy`.
    policy: String,
    /// New agents start at `low` (the usual hardening advice: least trust first) unless given.
    #[serde(default = "low")]
    #[schema(default = "low")]
    trust_level: TrustLevel,
}

fn low() -> TrustLevel {
    TrustLevel::Low
}

/// Create an agent (admin)
///
/// Creates an agent bound to a loaded policy. New agents start unfrozen at
/// trust level `low` unless `trust_level` is given. Audited
/// (`agent.created`). Create an API key for it with `POST
/// /v1/agents/{id}/keys`.
#[utoipa::path(
    post,
    path = "/v1/agents",
    operation_id = "createAgent",
    tag = "agents",
    security(("adminToken" = [])),
    request_body = CreateAgent,
    responses(
        (status = 201, description = "The new agent.", body = Agent),
        (status = 400, description = "`invalid_json`, `invalid_request` (not an object, unknown, missing or \
            mistyped field, `name` blank or over 200 characters, unknown `trust_level`, a NUL character), \
            `invalid_body`.", body = ErrorBody),
        (status = 422, description = "`unknown_policy`: no policy with that name is loaded; \
            `invalid_trust_level`: `custom` (an agent is low, medium or high).", body = ErrorBody),
    )
)]
async fn create(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    JsonBody { body, .. }: JsonBody<CreateAgent>,
) -> Result<(StatusCode, Json<Agent>)> {
    check_len("name", &body.name, MAX_NAME)?;
    let new = NewAgent { name: body.name, policy: body.policy, trust_level: body.trust_level };
    let agent = agents::create_agent(&state.svc, &admin, new).await?;
    Ok((StatusCode::CREATED, Json(agent)))
}

/// List agents (admin)
///
/// Every agent, oldest first, cursor-paginated.
#[utoipa::path(
    get,
    path = "/v1/agents",
    operation_id = "listAgents",
    tag = "agents",
    security(("adminToken" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "A page of agents, oldest first.", body = Page<Agent>),
        PageErrors,
    )
)]
async fn list(
    State(state): State<Arc<AppState>>,
    _: AdminReader,
    QueryParams(q): QueryParams<PageQuery>,
) -> Result<Json<Page<Agent>>> {
    let req = Paging::ADMIN.query(&q)?;
    Ok(Json(req.page(state.svc.store.agents(req.slice).await?, |a| a.id.clone())))
}

/// Get an agent (admin)
#[utoipa::path(
    get,
    path = "/v1/agents/{id}",
    operation_id = "getAgent",
    tag = "agents",
    security(("adminToken" = [])),
    params(("id" = String, Path, description = "Agent id (`agt_...`).")),
    responses(
        (status = 200, description = "The agent.", body = Agent),
        (status = 404, description = "`not_found`: no such agent.", body = ErrorBody),
    )
)]
async fn show(
    State(state): State<Arc<AppState>>,
    _: AdminReader,
    PathParams(id): PathParams<String>,
) -> Result<Json<Agent>> {
    Ok(Json(state.svc.store.agent(&id).await?.ok_or(Error::NotFound("agent"))?))
}

/// Read an agent's policy and what it may still spend (the agent itself, or the admin)
///
/// An agent reads its own, as `/v1/agents/me/policy` or by its id, with a
/// key carrying `policies:read` (or an Ed25519 signature); any other
/// agent's id is `404 not_found`, as if it did not exist. The admin reads
/// any agent's by id (`me` is no agent for the admin: `404`). Limits are
/// the ones that apply to the agent (the policy's own, else its trust-level
/// ladder row); spend is what is reserved now in each window.
#[utoipa::path(
    get,
    path = "/v1/agents/{id}/policy",
    operation_id = "getAgentPolicy",
    tag = "agents",
    security(("agentKey" = ["policies:read"]), ("adminToken" = [])),
    params(("id" = String, Path, description = "The agent's id, or `me` for the calling agent.")),
    responses(
        (status = 200, description = "The agent's policy and spend.", body = Allowance),
        (status = 403, description = "`insufficient_scope` (key lacks `policies:read`), `agent_only` (an approver \
            token), `ip_not_allowed`.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such agent, or another agent's id (for an agent).",
         body = ErrorBody),
        (status = 503, description = "`policy_unavailable`: the agent's policy is not loaded; \
            `store_unavailable`: the database is unreachable.", body = ErrorBody),
    )
)]
async fn allowance(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    PathParams(id): PathParams<String>,
) -> Result<Json<Allowance>> {
    let agent_id = match principal {
        Principal::Admin(_) => id,
        Principal::Agent(me) => {
            me.require(Scope::PoliciesRead)?;
            if id != "me" && id != me.agent.id {
                return Err(Error::NotFound("agent"));
            }
            me.agent.id
        }
        Principal::Approver(_) => {
            return Err(Error::forbidden(
                ErrorCode::AgentOnly,
                "an agent's policy is read by the agent or the admin",
            ))
        }
    };
    Ok(Json(allowance::allowance(&state.svc, &agent_id).await?))
}

/// Give `trust_level` and/or `policy`; a field left out (or null) stays as
/// it is, so `{}` changes nothing.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = UpdateAgentRequest, example = json!({ "trust_level": "medium" }))]
struct UpdateAgent {
    trust_level: Option<TrustLevel>,
    /// Name of a loaded policy; otherwise `422 unknown_policy`.
    policy: Option<String>,
}

/// Change an agent's trust level and/or policy (admin)
///
/// Raising the trust level raises the limits the policy leaves unset
/// (ladder defaults) without editing policy files. Takes effect for the
/// next decision. Audited (`agent.updated`, with before and after); a body
/// that changes nothing answers the agent as it is.
#[utoipa::path(
    patch,
    path = "/v1/agents/{id}",
    operation_id = "updateAgent",
    tag = "agents",
    security(("adminToken" = [])),
    params(("id" = String, Path, description = "Agent id (`agt_...`).")),
    request_body = UpdateAgent,
    responses(
        (status = 200, description = "The updated agent.", body = Agent),
        (status = 400, description = "`invalid_json`, `invalid_request` (not an object, unknown or mistyped \
            field, unknown `trust_level`), `invalid_body`.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such agent.", body = ErrorBody),
        (status = 422, description = "`unknown_policy`: no policy with that name is loaded; \
            `invalid_trust_level`: `custom` (an agent is low, medium or high).", body = ErrorBody),
    )
)]
async fn update(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    PathParams(id): PathParams<String>,
    JsonBody { body, .. }: JsonBody<UpdateAgent>,
) -> Result<Json<Agent>> {
    if body.trust_level.is_none() && body.policy.is_none() {
        return Ok(Json(state.svc.store.agent(&id).await?.ok_or(Error::NotFound("agent"))?));
    }
    let patch = AgentPatch { trust_level: body.trust_level, policy: body.policy };
    Ok(Json(agents::update_agent(&state.svc, &admin, &id, patch).await?))
}

/// Optional: the whole body may be left out. Unknown fields are rejected.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = FreezeRequest, example = json!({ "reason": "suspicious spend pattern" }))]
struct Freeze {
    /// 1-1000 characters, not blank; defaults to `frozen by admin`.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 1000)]
    reason: Option<String>,
    /// Also revoke every API key and signing key of the agent.
    #[serde(default)]
    revoke_keys: bool,
}

/// Freeze an agent (admin)
///
/// While frozen, every payment of the agent is denied with reason
/// `agent_frozen` (still recorded as a denied payment), and its pending
/// approvals are cancelled (`rejected`, reservations released); its keys
/// keep authenticating unless `revoke_keys` is set. Freezing a frozen agent
/// updates the reason. The body is optional: send none (or an empty one)
/// to freeze with the reason `frozen by admin`; a body that is sent must be
/// a JSON object with `Content-Type: application/json`. Audited
/// (`agent.frozen`) and emitted as the `agent.frozen` webhook.
#[utoipa::path(
    post,
    path = "/v1/agents/{id}/freeze",
    operation_id = "freezeAgent",
    tag = "agents",
    security(("adminToken" = [])),
    params(("id" = String, Path, description = "Agent id (`agt_...`).")),
    request_body(content = Option<Freeze>, content_type = "application/json"),
    responses(
        (status = 200, description = "The frozen agent.", body = Agent),
        (status = 400, description = "`invalid_json` (a non-empty body that is not valid JSON), \
            `invalid_request` (not an object, unknown field, `reason` blank or over 1000 characters), \
            `invalid_body`.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such agent.", body = ErrorBody),
    )
)]
async fn freeze(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    PathParams(id): PathParams<String>,
    OptionalJsonBody(body): OptionalJsonBody<Freeze>,
) -> Result<Json<Agent>> {
    let reason = body.reason.unwrap_or_else(|| "frozen by admin".to_owned());
    check_len("reason", &reason, MAX_REASON)?;
    let options = agents::FreezeOptions { revoke_keys: body.revoke_keys };
    Ok(Json(agents::set_frozen(&state.svc, &admin, &id, Some(reason), options).await?))
}

/// Unfreeze an agent (admin)
///
/// Clears the freeze and its reason. No request body. Audited
/// (`agent.unfrozen`) and emitted as the `agent.unfrozen` webhook.
#[utoipa::path(
    post,
    path = "/v1/agents/{id}/unfreeze",
    operation_id = "unfreezeAgent",
    tag = "agents",
    security(("adminToken" = [])),
    params(("id" = String, Path, description = "Agent id (`agt_...`).")),
    responses(
        (status = 200, description = "The unfrozen agent.", body = Agent),
        (status = 404, description = "`not_found`: no such agent.", body = ErrorBody),
    )
)]
async fn unfreeze(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    PathParams(id): PathParams<String>,
) -> Result<Json<Agent>> {
    Ok(Json(agents::set_frozen(&state.svc, &admin, &id, None, agents::FreezeOptions::default()).await?))
}

/// All fields are optional; send `{}` for a key with every scope, no
/// expiry, no address restriction and the gateway's default rate limits.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(
    as = CreateKeyRequest,
    example = json!({ "scopes": ["payments:create", "payments:read"], "expires_at": null,
        "allowed_cidrs": [], "rate_limit": { "writes_per_minute": 10 } })
)]
struct CreateKey {
    /// Defaults to every scope. Must not be empty; unknown scopes are
    /// rejected.
    #[serde(default = "all_scopes")]
    #[schema(min_items = 1)]
    scopes: Vec<Scope>,
    /// RFC 3339, in the future; null = never expires.
    #[serde(default)]
    #[schema(value_type = Option<Timestamp>)]
    expires_at: Option<String>,
    /// CIDRs (or single IP addresses) the key may be used from, e.g.
    /// `203.0.113.0/24`; empty = anywhere. Requests from elsewhere get `403
    /// ip_not_allowed`.
    #[serde(default)]
    #[schema(value_type = Vec<Cidr>)]
    allowed_cidrs: Vec<String>,
    /// The key's own budget; left out, the gateway's defaults.
    #[serde(default, deserialize_with = "object_only")]
    rate_limit: KeyRateLimit,
}

/// The most requests per minute a key may be given: far above any agent's
/// need, low enough that a typo (an extra few zeros) is caught.
const MAX_KEY_RATE_PER_MINUTE: u32 = 1_000_000;

/// Each field of a key's own `rate_limit` is 1 to MAX_KEY_RATE_PER_MINUTE.
fn check_rate_limit(limit: &KeyRateLimit) -> Result<()> {
    for (name, value) in
        [("reads_per_minute", limit.reads_per_minute), ("writes_per_minute", limit.writes_per_minute)]
    {
        if value.is_some_and(|n| n == 0 || n > MAX_KEY_RATE_PER_MINUTE) {
            return Err(Error::invalid(
                ErrorCode::InvalidRequest,
                format!(
                    "rate_limit.{name} must be between 1 and {MAX_KEY_RATE_PER_MINUTE} \
                     (leave it out for the gateway's default; revoke a key to stop it)"
                ),
            )
            .at(format!("/rate_limit/{name}")));
        }
    }
    Ok(())
}

fn all_scopes() -> Vec<Scope> {
    Scope::ALL.to_vec()
}

/// Create an API key for an agent (admin)
///
/// Mints a `psr_agent_` key. The response is the only time the key is
/// shown; purser stores only its SHA-256. A JSON body is required (`{}`
/// gives every scope, no expiry, any address). Audited (`key.created`,
/// without the key).
#[utoipa::path(
    post,
    path = "/v1/agents/{id}/keys",
    operation_id = "createAgentKey",
    tag = "keys",
    security(("adminToken" = [])),
    params(("id" = String, Path, description = "Agent id (`agt_...`).")),
    request_body = CreateKey,
    responses(
        (status = 201, description = "The key record plus the key itself (`key`).", body = IssuedKey),
        (status = 400, description = "`invalid_json`, `invalid_request` (not an object, unknown field, empty \
            `scopes` or unknown scope, `expires_at` not RFC 3339 or not in the future, an entry of \
            `allowed_cidrs` not a CIDR or IP address, `rate_limit` not an object or a value in it not between 1 \
            and 1000000), `invalid_body`.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such agent.", body = ErrorBody),
    )
)]
async fn create_key(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    PathParams(id): PathParams<String>,
    JsonBody { body, .. }: JsonBody<CreateKey>,
) -> Result<(StatusCode, Json<IssuedKey>)> {
    if body.scopes.is_empty() {
        return Err(Error::invalid(ErrorCode::InvalidRequest, "scopes must not be empty").at("/scopes"));
    }
    let now = state.svc.clock.now();
    let latest =
        state.config.max_key_lifetime.and_then(|d| chrono::Duration::from_std(d).ok()).map(|d| now + d);
    let expires_at = match (body.expires_at, latest) {
        (None, latest) => latest.map(format_ts),
        (Some(t), latest) => {
            let at = parse_ts(&t).ok_or_else(|| {
                Error::invalid(ErrorCode::InvalidRequest, "expires_at must be RFC 3339").at("/expires_at")
            })?;
            if at <= now {
                return Err(
                    Error::invalid(ErrorCode::InvalidRequest, "expires_at is in the past").at("/expires_at")
                );
            }
            if let Some(latest) = latest.filter(|latest| at > *latest) {
                let message = format!(
                    "expires_at is beyond the longest key lifetime (PURSER_MAX_KEY_LIFETIME): {}",
                    format_ts(latest)
                );
                return Err(Error::invalid(ErrorCode::InvalidRequest, message).at("/expires_at"));
            }
            Some(format_ts(at))
        }
    };
    let cidrs = validate::allowed_cidrs(&body.allowed_cidrs)?;
    check_rate_limit(&body.rate_limit)?;
    let mut scopes = body.scopes;
    scopes.sort();
    scopes.dedup();
    let req = KeyRequest { scopes, expires_at, allowed_cidrs: cidrs, rate_limit: body.rate_limit };
    let issued = agents::create_key(&state.svc, &admin, &id, req).await?;
    Ok((StatusCode::CREATED, Json(issued.into())))
}

/// The new key's record plus the key itself, shown this one time only.
#[derive(Serialize, ToSchema)]
#[schema(as = CreatedApiKey)]
struct IssuedKey {
    #[serde(flatten)]
    record: ApiKey,
    /// The API key (`psr_agent_` + base64url of 32 random bytes). Store it
    /// now: purser keeps only its SHA-256.
    #[schema(pattern = "^psr_agent_[A-Za-z0-9_-]{43}$")]
    key: String,
}

impl From<agents::IssuedKey> for IssuedKey {
    fn from(issued: agents::IssuedKey) -> Self {
        IssuedKey { record: issued.record, key: issued.key }
    }
}

/// A rotated key: the new key (shown once) and the old key as it now stands.
#[derive(Serialize, ToSchema)]
#[schema(as = RotatedApiKey)]
struct RotatedKey {
    #[serde(flatten)]
    new: IssuedKey,
    /// The old key's record: its new `expires_at`, or `revoked_at` for a
    /// zero grace.
    previous: ApiKey,
}

/// Optional: the whole body may be left out.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RotateKeyRequest)]
struct RotateKey {
    /// How long the old key keeps working, in seconds: 86400 (a day) if left
    /// out, at most 2592000 (30 days); `0` revokes it at once.
    #[serde(default = "a_day", deserialize_with = "crate::model::whole_number")]
    #[schema(default = 86400, minimum = 0, maximum = 2592000)]
    grace_seconds: u64,
}

fn a_day() -> u64 {
    86_400
}

impl Default for RotateKey {
    /// No body at all: the default grace.
    fn default() -> Self {
        RotateKey { grace_seconds: a_day() }
    }
}

/// Rotate an API key with a grace period (admin)
///
/// Mints a new key with the same scopes, expiry, CIDR allowlist and rate
/// limit and returns it (shown only here, like at creation). The old key
/// keeps working for `grace_seconds` (default 86400, at most 2592000): its
/// `expires_at` is brought forward to the end of the grace period, never
/// pushed back; `0` revokes it at once. The old key as it now stands is
/// under `previous`. Audited as `key.rotated` (plus `key.created` for the
/// new key). A revoked or unknown key is `404`.
#[utoipa::path(
    post,
    path = "/v1/agents/{id}/keys/{key_id}/rotate",
    operation_id = "rotateAgentKey",
    tag = "keys",
    security(("adminToken" = [])),
    params(
        ("id" = String, Path, description = "Agent id (`agt_...`)."),
        ("key_id" = String, Path, description = "API key id (`key_...`)."),
    ),
    request_body(content = Option<RotateKey>, content_type = "application/json"),
    responses(
        (status = 201, description = "The new key (with `key`, shown once) and `previous`, the old key's record.",
         body = RotatedKey),
        (status = 400, description = "`invalid_json`, `invalid_request` (not an object, unknown field, \
            `grace_seconds` not an integer in 0-2592000), `invalid_body`.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such key of this agent.", body = ErrorBody),
        (status = 409, description = "`key_not_rotatable`: the key is revoked, has expired, or was already rotated \
            (the message names its successor, which can be rotated). Create a new key instead.", body = ErrorBody),
    )
)]
async fn rotate_key(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    PathParams((id, key_id)): PathParams<(String, String)>,
    OptionalJsonBody(body): OptionalJsonBody<RotateKey>,
) -> Result<(StatusCode, Json<RotatedKey>)> {
    if body.grace_seconds > agents::MAX_ROTATION_GRACE_SECS {
        return Err(Error::invalid(
            ErrorCode::InvalidRequest,
            format!("grace_seconds must be at most {}", agents::MAX_ROTATION_GRACE_SECS),
        )
        .at("/grace_seconds"));
    }
    let grace = chrono::Duration::seconds(body.grace_seconds as i64);
    let (issued, previous) = agents::rotate_key(&state.svc, &admin, &id, &key_id, grace).await?;
    Ok((StatusCode::CREATED, Json(RotatedKey { new: issued.into(), previous })))
}

/// List an agent's API keys (admin)
///
/// Every key of the agent, revoked ones included, oldest first,
/// cursor-paginated. Never the key itself, only its display `prefix`.
#[utoipa::path(
    get,
    path = "/v1/agents/{id}/keys",
    operation_id = "listAgentKeys",
    tag = "keys",
    security(("adminToken" = [])),
    params(("id" = String, Path, description = "Agent id (`agt_...`)."), PageQuery),
    responses(
        (status = 200, description = "A page of the agent's keys.", body = Page<ApiKey>),
        PageErrors,
        (status = 404, description = "`not_found`: no such agent.", body = ErrorBody),
    )
)]
async fn list_keys(
    State(state): State<Arc<AppState>>,
    _: AdminReader,
    PathParams(id): PathParams<String>,
    QueryParams(q): QueryParams<PageQuery>,
) -> Result<Json<Page<ApiKey>>> {
    let req = Paging::ADMIN.query(&q)?;
    state.svc.store.agent(&id).await?.ok_or(Error::NotFound("agent"))?;
    Ok(Json(req.page(state.svc.store.keys(&id, req.slice).await?, |k| k.id.clone())))
}

/// Revoke an API key (admin)
///
/// Revokes the key at once: later requests with it get `401
/// unauthorized`. The key stays listed with `revoked_at`. Audited
/// (`key.revoked`).
#[utoipa::path(
    delete,
    path = "/v1/agents/{id}/keys/{key_id}",
    operation_id = "revokeAgentKey",
    tag = "keys",
    security(("adminToken" = [])),
    params(
        ("id" = String, Path, description = "Agent id (`agt_...`)."),
        ("key_id" = String, Path, description = "API key id (`key_...`)."),
    ),
    responses(
        (status = 204, description = "Revoked."),
        (status = 404, description = "`not_found`: no such live key of this agent (unknown agent or key, a key of \
            another agent, or already revoked).", body = ErrorBody),
    )
)]
async fn revoke_key(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    PathParams((id, key_id)): PathParams<(String, String)>,
) -> Result<StatusCode> {
    agents::revoke_credential(&state.svc, &admin, &id, Credential::ApiKey, &key_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RegisterSigningKeyRequest)]
struct RegisterSigningKey {
    /// Standard base64 of the 32-byte Ed25519 public key.
    #[schema(pattern = "^[A-Za-z0-9+/]{43}=$")]
    public_key: String,
    /// Defaults to every scope. Must not be empty.
    #[serde(default = "all_scopes")]
    #[schema(min_items = 1)]
    scopes: Vec<Scope>,
    /// The key's own budget; left out, the gateway's defaults.
    #[serde(default, deserialize_with = "object_only")]
    rate_limit: KeyRateLimit,
}

/// Register an Ed25519 signing key (admin)
///
/// Registers a public key the agent signs requests with, instead of a
/// bearer API key. Several keys may be live at once (rotation: register the
/// new key, move the client, revoke the old). A signed request carries
/// `Purser-Agent` (the agent id), `Purser-Timestamp` (unix seconds, within
/// 5 minutes of the gateway's clock) and `Purser-Signature` (standard
/// base64 of the Ed25519 signature of
/// `METHOD\nPATH?QUERY\nTIMESTAMP\nhex(SHA-256(body))`); each signature
/// is accepted once. Audited (`signing_key.created`).
#[utoipa::path(
    post,
    path = "/v1/agents/{id}/signing-keys",
    operation_id = "registerSigningKey",
    tag = "keys",
    security(("adminToken" = [])),
    params(("id" = String, Path, description = "Agent id (`agt_...`).")),
    request_body = RegisterSigningKey,
    responses(
        (status = 201, description = "Registered.", body = SigningKey),
        (status = 400, description = "`invalid_json`, `invalid_request` (not an object, unknown field, \
            `public_key` not standard base64 of a 32-byte Ed25519 key, empty `scopes` or an unknown scope, \
            `rate_limit` not an object or a value in it not between 1 and 1000000), `invalid_body`.",
         body = ErrorBody),
        (status = 404, description = "`not_found`: no such agent.", body = ErrorBody),
        (status = 409, description = "`signing_key_exists`: this public key is already registered.",
         body = ErrorBody),
    )
)]
async fn register_signing_key(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    PathParams(id): PathParams<String>,
    JsonBody { body, .. }: JsonBody<RegisterSigningKey>,
) -> Result<(StatusCode, Json<SigningKey>)> {
    if body.scopes.is_empty() {
        return Err(Error::invalid(ErrorCode::InvalidRequest, "scopes must not be empty").at("/scopes"));
    }
    let mut scopes = body.scopes;
    scopes.sort();
    scopes.dedup();
    check_rate_limit(&body.rate_limit)?;
    let key = signing::register(&state.svc, &admin, &id, &body.public_key, scopes, body.rate_limit).await?;
    Ok((StatusCode::CREATED, Json(key)))
}

/// List an agent's signing keys (admin)
///
/// Every signing key, revoked ones included, oldest first,
/// cursor-paginated.
#[utoipa::path(
    get,
    path = "/v1/agents/{id}/signing-keys",
    operation_id = "listSigningKeys",
    tag = "keys",
    security(("adminToken" = [])),
    params(("id" = String, Path, description = "Agent id (`agt_...`)."), PageQuery),
    responses(
        (status = 200, description = "A page of the agent's signing keys.", body = Page<SigningKey>),
        PageErrors,
        (status = 404, description = "`not_found`: no such agent.", body = ErrorBody),
    )
)]
async fn list_signing_keys(
    State(state): State<Arc<AppState>>,
    _: AdminReader,
    PathParams(id): PathParams<String>,
    QueryParams(q): QueryParams<PageQuery>,
) -> Result<Json<Page<SigningKey>>> {
    let req = Paging::ADMIN.query(&q)?;
    state.svc.store.agent(&id).await?.ok_or(Error::NotFound("agent"))?;
    Ok(Json(req.page(state.svc.store.signing_keys(&id, req.slice).await?, |k| k.id.clone())))
}

/// Revoke a signing key (admin)
///
/// Signatures by the key are refused from now on. Audited
/// (`signing_key.revoked`).
#[utoipa::path(
    delete,
    path = "/v1/agents/{id}/signing-keys/{key_id}",
    operation_id = "revokeSigningKey",
    tag = "keys",
    security(("adminToken" = [])),
    params(
        ("id" = String, Path, description = "Agent id (`agt_...`)."),
        ("key_id" = String, Path, description = "Signing key id (`sk_...`)."),
    ),
    responses(
        (status = 204, description = "Revoked."),
        (status = 404, description = "`not_found`: no such live signing key of this agent.", body = ErrorBody),
    )
)]
async fn revoke_signing_key(
    State(state): State<Arc<AppState>>,
    Admin(admin): Admin,
    PathParams((id, key_id)): PathParams<(String, String)>,
) -> Result<StatusCode> {
    agents::revoke_credential(&state.svc, &admin, &id, Credential::SigningKey, &key_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::super::openapi::tests::constraint;
    use super::*;

    #[test]
    fn the_documented_bounds_are_the_checked_ones() {
        assert_eq!(constraint("CreateAgentRequest", "name", "maxLength") as usize, MAX_NAME);
        assert_eq!(constraint("FreezeRequest", "reason", "maxLength") as usize, MAX_REASON);
        let max_rate = constraint("KeyRateLimit", "writes_per_minute", "maximum");
        assert_eq!(max_rate, u64::from(MAX_KEY_RATE_PER_MINUTE));
        let max_grace = constraint("RotateKeyRequest", "grace_seconds", "maximum");
        assert_eq!(max_grace, agents::MAX_ROTATION_GRACE_SECS);
    }
}
