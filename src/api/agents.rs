//! Agents and their keys (admin), and an agent's view of its own policy.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::{Admin, Principal};
use super::extract::{object_only, JsonBody, OptionalJsonBody, PathParams};
use crate::app::AppState;
use crate::clock::{format_ts, parse_ts};
use crate::error::{Error, Result};
use crate::model::{Agent, KeyRateLimit, Scope, SigningKey};
use crate::policy::TrustLevel;
use crate::service::agents::{self, KeyRequest, NewAgent};
use crate::service::allowance::{self, Allowance};
use crate::service::signing;
use crate::store::{AgentPatch, Credential};

/// Admin actor in audit records. There is one admin role; which token was
/// used is not recorded because the configured token has no id.
const ADMIN: &str = "admin";
const MAX_NAME: usize = 200;
const MAX_REASON: usize = 1000;

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/agents", post(create).get(list))
        .route("/v1/agents/{id}", get(show).patch(update))
        .route("/v1/agents/{id}/policy", get(allowance))
        .route("/v1/agents/{id}/freeze", post(freeze))
        .route("/v1/agents/{id}/unfreeze", post(unfreeze))
        .route("/v1/agents/{id}/keys", post(create_key).get(list_keys))
        .route("/v1/agents/{id}/keys/{key_id}", delete(revoke_key))
        .route("/v1/agents/{id}/keys/{key_id}/rotate", post(rotate_key))
        .route("/v1/agents/{id}/signing-keys", post(register_signing_key).get(list_signing_keys))
        .route("/v1/agents/{id}/signing-keys/{key_id}", delete(revoke_signing_key))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateAgent {
    name: String,
    policy: String,
    /// New agents start at `low` (the seed guide's advice).
    #[serde(default = "low")]
    trust_level: TrustLevel,
}

fn low() -> TrustLevel {
    TrustLevel::Low
}

fn check_len(field: &str, text: &str, max: usize) -> Result<()> {
    if text.trim().is_empty() || text.chars().count() > max {
        return Err(Error::invalid("invalid_request", format!("{field} must be 1-{max} characters")));
    }
    Ok(())
}

async fn create(
    State(state): State<Arc<AppState>>,
    _: Admin,
    JsonBody { body, .. }: JsonBody<CreateAgent>,
) -> Result<(StatusCode, Json<Agent>)> {
    check_len("name", &body.name, MAX_NAME)?;
    let new = NewAgent { name: body.name, policy: body.policy, trust_level: body.trust_level };
    let agent = agents::create_agent(&state, ADMIN, new).await?;
    Ok((StatusCode::CREATED, Json(agent)))
}

async fn list(State(state): State<Arc<AppState>>, _: Admin) -> Result<Json<Value>> {
    Ok(Json(json!({ "data": state.store.agents().await? })))
}

async fn show(
    State(state): State<Arc<AppState>>,
    _: Admin,
    PathParams(id): PathParams<String>,
) -> Result<Json<Agent>> {
    Ok(Json(state.store.agent(&id).await?.ok_or(Error::NotFound("agent"))?))
}

/// The agent's policy as it applies to it and what it may still spend. An
/// agent reads its own (`me` or its id, scope `policies:read`; any other id
/// is `404`, as if it did not exist); the admin reads anyone's.
async fn allowance(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    PathParams(id): PathParams<String>,
) -> Result<Json<Allowance>> {
    let agent_id = match principal {
        Principal::Admin => id,
        Principal::Agent(me) => {
            me.require(Scope::PoliciesRead)?;
            if id != "me" && id != me.agent.id {
                return Err(Error::NotFound("agent"));
            }
            me.agent.id
        }
        Principal::Approver(_) => {
            return Err(Error::forbidden("agent_only", "an agent's policy is read by the agent or the admin"))
        }
    };
    Ok(Json(allowance::allowance(&state, &agent_id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateAgent {
    trust_level: Option<TrustLevel>,
    policy: Option<String>,
}

async fn update(
    State(state): State<Arc<AppState>>,
    _: Admin,
    PathParams(id): PathParams<String>,
    JsonBody { body, .. }: JsonBody<UpdateAgent>,
) -> Result<Json<Agent>> {
    if body.trust_level.is_none() && body.policy.is_none() {
        return Err(Error::invalid("invalid_request", "nothing to change: give trust_level and/or policy"));
    }
    let patch = AgentPatch { trust_level: body.trust_level, policy: body.policy };
    Ok(Json(agents::update_agent(&state, ADMIN, &id, patch).await?))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Freeze {
    #[serde(default)]
    reason: Option<String>,
    /// Also revoke every API key and signing key of the agent.
    #[serde(default)]
    revoke_keys: bool,
}

async fn freeze(
    State(state): State<Arc<AppState>>,
    _: Admin,
    PathParams(id): PathParams<String>,
    OptionalJsonBody(body): OptionalJsonBody<Freeze>,
) -> Result<Json<Agent>> {
    let reason = body.reason.unwrap_or_else(|| "frozen by admin".to_owned());
    check_len("reason", &reason, MAX_REASON)?;
    let options = agents::FreezeOptions { revoke_keys: body.revoke_keys };
    Ok(Json(agents::set_frozen(&state, ADMIN, &id, Some(reason), options).await?))
}

async fn unfreeze(
    State(state): State<Arc<AppState>>,
    _: Admin,
    PathParams(id): PathParams<String>,
) -> Result<Json<Agent>> {
    Ok(Json(agents::set_frozen(&state, ADMIN, &id, None, agents::FreezeOptions::default()).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateKey {
    #[serde(default = "all_scopes")]
    scopes: Vec<Scope>,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    allowed_cidrs: Vec<String>,
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
                "invalid_request",
                format!(
                    "rate_limit.{name} must be between 1 and {MAX_KEY_RATE_PER_MINUTE} \
                     (leave it out for the gateway's default; revoke a key to stop it)"
                ),
            ));
        }
    }
    Ok(())
}

fn all_scopes() -> Vec<Scope> {
    Scope::ALL.to_vec()
}

async fn create_key(
    State(state): State<Arc<AppState>>,
    _: Admin,
    PathParams(id): PathParams<String>,
    JsonBody { body, .. }: JsonBody<CreateKey>,
) -> Result<(StatusCode, Json<Value>)> {
    if body.scopes.is_empty() {
        return Err(Error::invalid("invalid_request", "scopes must not be empty"));
    }
    let expires_at = body
        .expires_at
        .map(|t| {
            let at = parse_ts(&t)
                .ok_or_else(|| Error::invalid("invalid_request", "expires_at must be RFC 3339"))?;
            if at <= state.clock.now() {
                return Err(Error::invalid("invalid_request", "expires_at is in the past"));
            }
            Ok(format_ts(at))
        })
        .transpose()?;
    let mut cidrs = Vec::with_capacity(body.allowed_cidrs.len());
    for c in &body.allowed_cidrs {
        let net: ipnet::IpNet =
            c.parse().or_else(|_| c.parse::<std::net::IpAddr>().map(ipnet::IpNet::from)).map_err(|_| {
                Error::invalid("invalid_request", format!("{c:?} is not a CIDR such as 203.0.113.0/24"))
            })?;
        cidrs.push(net.trunc().to_string());
    }
    check_rate_limit(&body.rate_limit)?;
    let mut scopes = body.scopes;
    scopes.sort();
    scopes.dedup();
    let req = KeyRequest { scopes, expires_at, allowed_cidrs: cidrs, rate_limit: body.rate_limit };
    let issued = agents::create_key(&state, ADMIN, &id, req).await?;
    Ok((StatusCode::CREATED, Json(shown_once(issued))))
}

/// A new key's record with the key itself: the only time it is shown.
fn shown_once(issued: agents::IssuedKey) -> Value {
    let mut out = serde_json::to_value(&issued.record).expect("key record serializes");
    out["key"] = Value::String(issued.key);
    out
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateKey {
    /// How long the old key keeps working; 86400 (a day) if left out.
    #[serde(default = "a_day")]
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

/// `201` with the new key (shown once) and, under `previous`, the old key
/// as it now stands (its new `expires_at`, or `revoked_at` for a zero grace).
async fn rotate_key(
    State(state): State<Arc<AppState>>,
    _: Admin,
    PathParams((id, key_id)): PathParams<(String, String)>,
    OptionalJsonBody(body): OptionalJsonBody<RotateKey>,
) -> Result<(StatusCode, Json<Value>)> {
    if body.grace_seconds > agents::MAX_ROTATION_GRACE_SECS {
        return Err(Error::invalid(
            "invalid_request",
            format!("grace_seconds must be at most {}", agents::MAX_ROTATION_GRACE_SECS),
        ));
    }
    let grace = chrono::Duration::seconds(body.grace_seconds as i64);
    let (issued, previous) = agents::rotate_key(&state, ADMIN, &id, &key_id, grace).await?;
    let mut out = shown_once(issued);
    out["previous"] = serde_json::to_value(previous).expect("key record serializes");
    Ok((StatusCode::CREATED, Json(out)))
}

async fn list_keys(
    State(state): State<Arc<AppState>>,
    _: Admin,
    PathParams(id): PathParams<String>,
) -> Result<Json<Value>> {
    state.store.agent(&id).await?.ok_or(Error::NotFound("agent"))?;
    Ok(Json(json!({ "data": state.store.keys(&id).await? })))
}

async fn revoke_key(
    State(state): State<Arc<AppState>>,
    _: Admin,
    PathParams((id, key_id)): PathParams<(String, String)>,
) -> Result<StatusCode> {
    agents::revoke_credential(&state, ADMIN, &id, Credential::ApiKey, &key_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterSigningKey {
    /// Standard base64 of the 32-byte Ed25519 public key.
    public_key: String,
    #[serde(default = "all_scopes")]
    scopes: Vec<Scope>,
    #[serde(default, deserialize_with = "object_only")]
    rate_limit: KeyRateLimit,
}

/// Registers an Ed25519 public key the agent signs requests with. Several
/// may be live at once: register the new key, move the client, revoke the
/// old one.
async fn register_signing_key(
    State(state): State<Arc<AppState>>,
    _: Admin,
    PathParams(id): PathParams<String>,
    JsonBody { body, .. }: JsonBody<RegisterSigningKey>,
) -> Result<(StatusCode, Json<SigningKey>)> {
    if body.scopes.is_empty() {
        return Err(Error::invalid("invalid_request", "scopes must not be empty"));
    }
    let mut scopes = body.scopes;
    scopes.sort();
    scopes.dedup();
    check_rate_limit(&body.rate_limit)?;
    let key = signing::register(&state, ADMIN, &id, &body.public_key, scopes, body.rate_limit).await?;
    Ok((StatusCode::CREATED, Json(key)))
}

async fn list_signing_keys(
    State(state): State<Arc<AppState>>,
    _: Admin,
    PathParams(id): PathParams<String>,
) -> Result<Json<Value>> {
    state.store.agent(&id).await?.ok_or(Error::NotFound("agent"))?;
    Ok(Json(json!({ "data": state.store.signing_keys(&id).await? })))
}

async fn revoke_signing_key(
    State(state): State<Arc<AppState>>,
    _: Admin,
    PathParams((id, key_id)): PathParams<(String, String)>,
) -> Result<StatusCode> {
    agents::revoke_credential(&state, ADMIN, &id, Credential::SigningKey, &key_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
