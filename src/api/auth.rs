//! Who is calling: bearer credentials resolved to a [`Principal`].

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::Method;

use super::client_ip::client_ip;
use super::signature::SignedAgent;
use crate::api::AppState;
use crate::auth::{self, ADMIN_TOKEN_PREFIX, AGENT_KEY_PREFIX, APPROVER_TOKEN_PREFIX};
use crate::clock::parse_ts;
use crate::error::{Error, ErrorCode, Result};
use crate::model::{Agent, Approver, KeyRateLimit, Scope};
use crate::service::{agents, alerts, approvals};

/// An authenticated caller.
pub enum Principal {
    Admin,
    Agent(AgentPrincipal),
    Approver(Approver),
}

#[derive(Clone)]
pub struct AgentPrincipal {
    pub agent: Agent,
    pub key_id: String,
    pub scopes: Vec<Scope>,
}

impl AgentPrincipal {
    /// Audit actor string: which agent, with which key (an API key
    /// `key_...` or a signing key `sk_...`).
    pub fn actor(&self) -> String {
        format!("agent:{}/key:{}", self.agent.id, self.key_id)
    }

    pub fn require(&self, scope: Scope) -> Result<()> {
        if self.scopes.contains(&scope) {
            Ok(())
        } else {
            Err(Error::forbidden(
                ErrorCode::InsufficientScope,
                format!("this API key lacks the {scope} scope"),
            ))
        }
    }
}

impl Principal {
    /// How audit records and refusals name the credential.
    pub fn credential(&self) -> String {
        match self {
            Principal::Admin => "admin".to_owned(),
            Principal::Agent(a) => a.key_id.clone(),
            Principal::Approver(a) => format!("approver:{}", a.id),
        }
    }

    pub fn admin(self) -> Result<()> {
        match self {
            Principal::Admin => Ok(()),
            Principal::Agent(_) | Principal::Approver(_) => Err(not_admin()),
        }
    }

    /// The calling agent, if its key carries `scope`.
    pub fn agent(self, scope: Scope) -> Result<AgentPrincipal> {
        match self {
            Principal::Agent(a) => {
                a.require(scope)?;
                Ok(a)
            }
            Principal::Admin | Principal::Approver(_) => {
                Err(Error::forbidden(ErrorCode::AgentOnly, "this endpoint is for agents"))
            }
        }
    }
}

fn not_admin() -> Error {
    Error::forbidden(ErrorCode::AdminOnly, "this endpoint needs the admin token")
}

impl Principal {
    /// The calling approver; agents can never approve (not even their own
    /// payments), and neither can the admin token.
    pub fn approver(self) -> Result<Approver> {
        match self {
            Principal::Approver(a) => Ok(a),
            _ => {
                Err(Error::forbidden(ErrorCode::ApproverOnly, "only approvers can approve or deny payments"))
            }
        }
    }

    /// Approvers and admins may read approvals.
    pub fn approval_reader(self) -> Result<()> {
        match self {
            Principal::Approver(_) | Principal::Admin => Ok(()),
            Principal::Agent(_) => {
                Err(Error::forbidden(ErrorCode::ApproverOnly, "only approvers and admins read approvals"))
            }
        }
    }
}

/// Extracts an admin principal or rejects the request.
pub struct Admin;

impl FromRequestParts<Arc<AppState>> for Admin {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self> {
        Principal::from_request_parts(parts, state).await?.admin().map(|()| Admin)
    }
}

/// Who may read `/metrics`: the metrics-only token (`PURSER_METRICS_TOKEN`,
/// accepted nowhere else) or the admin.
pub struct MetricsReader;

impl FromRequestParts<Arc<AppState>> for MetricsReader {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self> {
        if bearer(parts).is_some_and(|token| state.is_metrics_token(token)) {
            state.limits.charge(&parts.method, "metrics", KeyRateLimit::default())?;
            return Ok(MetricsReader);
        }
        Admin::from_request_parts(parts, state).await.map(|Admin| MetricsReader)
    }
}

/// Which credential a request presented, once it is recognised (a key id,
/// `approver:<id>`, `admin`): the limits middleware reads it when the
/// request is then refused (revoked, expired, wrong network, wrong scope or
/// role), to audit and count a refused use of a real credential.
#[derive(Clone, Default)]
pub struct CredentialSlot(Arc<std::sync::OnceLock<String>>);

impl CredentialSlot {
    pub fn get(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }
}

fn recognised(parts: &Parts, credential: &str) {
    if let Some(slot) = parts.extensions.get::<CredentialSlot>() {
        let _ = slot.0.set(credential.to_owned());
    }
}

impl FromRequestParts<Arc<AppState>> for Principal {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self> {
        let method = &parts.method;
        let agent = if let Some(SignedAgent(agent, rate_limit)) = parts.extensions.get::<SignedAgent>() {
            recognised(parts, &agent.key_id);
            state.limits.charge(method, &agent.key_id, *rate_limit)?;
            agent.clone()
        } else {
            let token = bearer(parts).ok_or(Error::Unauthenticated("missing bearer token"))?;
            if !token.starts_with(AGENT_KEY_PREFIX) {
                let principal = other_principal(state, method, token).await;
                if let Ok(p) = &principal {
                    recognised(parts, &p.credential());
                }
                return principal;
            }
            let client = client_ip(&parts.headers, &parts.extensions, &state.config.trusted_proxies);
            agent_key(parts, state, method, token, client).await?
        };
        alerts::on_agent_request(&state.svc, &agent.agent.id);
        Ok(Principal::Agent(agent))
    }
}

/// An approver or the admin, by bearer token; each approver has the
/// gateway's default budget, and so do admin tokens, together.
async fn other_principal(state: &AppState, method: &Method, token: &str) -> Result<Principal> {
    if token.starts_with(APPROVER_TOKEN_PREFIX) {
        let approver = approvals::approver_for_token(&state.svc, token)
            .await?
            .ok_or(Error::Unauthenticated("invalid approver token"))?;
        state.limits.charge(method, &format!("approver:{}", approver.id), KeyRateLimit::default())?;
        return Ok(Principal::Approver(approver));
    }
    if state.is_config_admin_token(token)
        || (token.starts_with(ADMIN_TOKEN_PREFIX)
            && state.svc.store.admin_token_valid(&auth::hash(token)).await?)
    {
        state.limits.charge(method, "admin", KeyRateLimit::default())?;
        return Ok(Principal::Admin);
    }
    Err(Error::Unauthenticated("invalid credentials"))
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

async fn agent_key(
    parts: &Parts,
    state: &AppState,
    method: &Method,
    key: &str,
    client: Option<IpAddr>,
) -> Result<AgentPrincipal> {
    let presented = auth::hash(key);
    let found =
        state.svc.store.key_by_hash(&presented).await?.ok_or(Error::Unauthenticated("invalid API key"))?;
    // The index lookup found the row; the acceptance decision itself is a
    // constant-time comparison of the stored hash with the presented one.
    if !auth::ct_eq(&found.key_hash, &presented) {
        return Err(Error::Unauthenticated("invalid API key"));
    }
    let k = &found.key;
    recognised(parts, &k.id);
    // Counted as soon as the key is known: a stolen key used from outside
    // its networks spends its budget too.
    state.limits.charge(method, &k.id, k.rate_limit)?;
    if k.revoked_at.is_some() {
        return Err(Error::Unauthenticated("API key revoked"));
    }
    let now = state.svc.clock.now();
    if k.expires_at.as_deref().and_then(parse_ts).is_some_and(|exp| exp <= now) {
        return Err(Error::Unauthenticated("API key expired"));
    }
    if !k.allowed_cidrs.is_empty() {
        let allowed = client.is_some_and(|ip| {
            k.allowed_cidrs.iter().filter_map(|c| c.parse::<ipnet::IpNet>().ok()).any(|net| net.contains(&ip))
        });
        if !allowed {
            return Err(Error::forbidden(
                ErrorCode::IpNotAllowed,
                "this API key may not be used from this address",
            ));
        }
    }
    agents::key_used(&state.svc, &k.id, k.last_used_at.as_deref());
    Ok(AgentPrincipal { agent: found.agent, key_id: found.key.id, scopes: found.key.scopes })
}
