//! Ed25519-signed agent requests, the alternative to a bearer API key.
//!
//! A signed request carries three headers:
//! - `Purser-Agent`: the agent id;
//! - `Purser-Timestamp`: unix seconds, within 5 minutes of the gateway's clock;
//! - `Purser-Signature`: standard base64 of the Ed25519 signature of
//!   `METHOD \n PATH?QUERY \n TIMESTAMP \n [NONCE \n] hex(SHA-256(body))`
//!   (see `service::signing::message`) by one of the agent's live keys;
//! - optionally `Purser-Nonce`: 1-64 printable characters, different for
//!   each request (signed as its own line), so that two identical requests
//!   in the same second are two signatures, not a replay.
//!
//! The body is read here (the signature covers it) and handed on
//! unchanged; the verified agent rides along as a request extension that
//! [`super::auth::Principal`] picks up. A signature is accepted once.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::auth::AgentPrincipal;
use super::client_ip::client_ip;
use crate::api::AppState;
use crate::error::{Error, Result};
use crate::model::KeyRateLimit;
use crate::service::signing::{self, SignedRequest};

pub const AGENT: &str = "purser-agent";
pub const TIMESTAMP: &str = "purser-timestamp";
pub const SIGNATURE: &str = "purser-signature";
pub const NONCE: &str = "purser-nonce";

/// The agent a request's signature proved, and its key's own rate limit.
#[derive(Clone)]
pub struct SignedAgent(pub AgentPrincipal, pub KeyRateLimit);

pub async fn middleware(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if !req.headers().contains_key(SIGNATURE) {
        return next.run(req).await;
    }
    match verified(&state, req).await {
        Ok(req) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

async fn verified(state: &AppState, req: Request) -> Result<Request> {
    let (mut parts, body) = req.into_parts();
    let limit = state.config.max_body_bytes;
    let body = axum::body::to_bytes(body, limit).await.map_err(|_| Error::PayloadTooLarge { limit })?;
    let header = |name| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let missing = || {
        Error::Unauthenticated("a signed request needs Purser-Agent, Purser-Timestamp and Purser-Signature")
    };
    let agent_id = header(AGENT).ok_or_else(missing)?.to_owned();
    let timestamp = header(TIMESTAMP).and_then(|t| t.parse().ok()).ok_or_else(missing)?;
    let signature = header(SIGNATURE).ok_or_else(missing)?.to_owned();
    let nonce = match parts.headers.get(NONCE) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .filter(|n| !n.is_empty() && n.len() <= 64 && n.bytes().all(|b| b.is_ascii_graphic()))
                .ok_or(Error::Unauthenticated("Purser-Nonce must be 1-64 printable characters"))?
                .to_owned(),
        ),
    };
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let claim = SignedRequest {
        agent_id: &agent_id,
        timestamp,
        signature: &signature,
        method: parts.method.as_str(),
        path_and_query: &path_and_query,
        nonce: nonce.as_deref(),
        body: &body,
    };
    let key = signing::verify(&state.svc, &claim).await?;
    let agent =
        state.svc.store.agent(&agent_id).await?.ok_or(Error::Unauthenticated("agent no longer exists"))?;
    let client = client_ip(&parts.headers, &parts.extensions, &state.config.trusted_proxies);
    let principal = AgentPrincipal { agent, key_id: key.id, scopes: key.scopes, client };
    parts.extensions.insert(SignedAgent(principal, key.rate_limit));
    Ok(Request::from_parts(parts, Body::from(body)))
}
