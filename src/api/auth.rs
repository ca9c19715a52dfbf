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
use crate::audit::Actor;
use crate::auth::{self, ADMIN_TOKEN_PREFIX, AGENT_KEY_PREFIX, APPROVER_TOKEN_PREFIX};
use crate::clock::parse_ts;
use crate::error::{Error, ErrorCode, Result};
use crate::model::{AdminRole, Agent, Approver, KeyRateLimit, Scope};
use crate::service::{admins, agents, alerts, approvals};

/// An authenticated caller.
pub enum Principal {
    Admin(AdminPrincipal),
    Agent(AgentPrincipal),
    Approver(ApproverPrincipal),
}

/// An administrator: the configured bootstrap token (`admin`) or a named
/// one (`admin:<id>/<name>`), with its role.
pub struct AdminPrincipal {
    pub actor: Actor,
    pub role: AdminRole,
}

pub struct ApproverPrincipal {
    pub approver: Approver,
    pub client: Option<IpAddr>,
}

impl ApproverPrincipal {
    pub fn actor(&self) -> Actor {
        approvals::approver_actor(&self.approver, self.client)
    }
}

#[derive(Clone)]
pub struct AgentPrincipal {
    pub agent: Agent,
    pub key_id: String,
    pub scopes: Vec<Scope>,
    pub client: Option<IpAddr>,
}

impl AgentPrincipal {
    /// The audit actor: which agent, with which key (an API key `key_...`
    /// or a signing key `sk_...`), from where.
    pub fn actor(&self) -> Actor {
        Actor::new(format!("agent:{}/key:{}", self.agent.id, self.key_id), self.client)
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
            Principal::Admin(a) => a.actor.name.clone(),
            Principal::Agent(a) => a.key_id.clone(),
            Principal::Approver(a) => a.actor().name,
        }
    }

    /// An administrator of any role: what auditors may read.
    pub fn admin_reader(self) -> Result<AdminPrincipal> {
        match self {
            Principal::Admin(a) => Ok(a),
            Principal::Agent(_) | Principal::Approver(_) => Err(not_admin()),
        }
    }

    /// An administrator with the `admin` role: whoever may change things.
    pub fn admin(self) -> Result<Actor> {
        let admin = self.admin_reader()?;
        match admin.role {
            AdminRole::Admin => Ok(admin.actor),
            AdminRole::Auditor => Err(Error::forbidden(
                ErrorCode::InsufficientRole,
                "auditors read agents, payments, approvals and the audit log; this needs the admin role",
            )),
        }
    }

    /// The calling agent, if its key carries `scope`.
    pub fn agent(self, scope: Scope) -> Result<AgentPrincipal> {
        match self {
            Principal::Agent(a) => {
                a.require(scope)?;
                Ok(a)
            }
            Principal::Admin(_) | Principal::Approver(_) => {
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
    pub fn approver(self) -> Result<ApproverPrincipal> {
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
            Principal::Approver(_) | Principal::Admin(_) => Ok(()),
            Principal::Agent(_) => {
                Err(Error::forbidden(ErrorCode::ApproverOnly, "only approvers and admins read approvals"))
            }
        }
    }
}

/// An administrator with the `admin` role, as the audit names it, or a
/// rejected request.
pub struct Admin(pub Actor);

impl FromRequestParts<Arc<AppState>> for Admin {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self> {
        Principal::from_request_parts(parts, state).await?.admin().map(Admin)
    }
}

/// An administrator of any role (`admin` or `auditor`): the reads auditors
/// may make.
pub struct AdminReader;

impl FromRequestParts<Arc<AppState>> for AdminReader {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self> {
        Principal::from_request_parts(parts, state).await?.admin_reader().map(|_| AdminReader)
    }
}

/// Who may read `/metrics`: the metrics-only token (`PURSER_METRICS_TOKEN`,
/// accepted nowhere else) or the admin.
pub struct MetricsReader;

impl FromRequestParts<Arc<AppState>> for MetricsReader {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self> {
        if bearer(parts).is_some_and(|token| state.is_metrics_token(token)) {
            state.limits.charge(&parts.method, "metrics", KeyRateLimit::default()).await?;
            return Ok(MetricsReader);
        }
        Admin::from_request_parts(parts, state).await.map(|_| MetricsReader)
    }
}

/// Which credential a request presented, once it is recognised (a key id,
/// `approver:<id>`, `admin`, `admin:<id>/<name>`): the limits middleware reads it when the
/// request is then refused (revoked, expired, wrong network, wrong scope or
/// role), to audit and count a refused use of a real credential.
#[derive(Clone, Default)]
pub struct CredentialSlot(Arc<std::sync::OnceLock<String>>);

impl CredentialSlot {
    pub fn get(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }

    /// Notes the credential the request presented (the first one counts).
    pub fn recognise(&self, credential: &str) {
        let _ = self.0.set(credential.to_owned());
    }
}

fn recognised(parts: &Parts, credential: &str) {
    if let Some(slot) = parts.extensions.get::<CredentialSlot>() {
        slot.recognise(credential);
    }
}

impl FromRequestParts<Arc<AppState>> for Principal {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self> {
        let method = &parts.method;
        let agent = if let Some(SignedAgent(agent, rate_limit)) = parts.extensions.get::<SignedAgent>() {
            recognised(parts, &agent.key_id);
            state.limits.charge(method, &agent.key_id, *rate_limit).await?;
            agent.clone()
        } else {
            let token = bearer(parts).ok_or(Error::Unauthenticated("missing bearer token"))?;
            let client = client_ip(&parts.headers, &parts.extensions, &state.config.trusted_proxies);
            if !token.starts_with(AGENT_KEY_PREFIX) {
                return other_principal(parts, state, token, client).await;
            }
            agent_key(parts, state, method, token, client).await?
        };
        alerts::on_agent_request(&state.svc, &agent.agent.id);
        Ok(Principal::Agent(agent))
    }
}

/// An approver or an administrator, by bearer token. Each approver and
/// each named administrator has the gateway's default budget; the
/// bootstrap token has its own.
async fn other_principal(
    parts: &Parts,
    state: &AppState,
    token: &str,
    client: Option<IpAddr>,
) -> Result<Principal> {
    let (principal, networks) = if token.starts_with(APPROVER_TOKEN_PREFIX) {
        let approver = approvals::approver_for_token(&state.svc, token)
            .await?
            .ok_or(Error::Unauthenticated("invalid approver token"))?;
        let networks = approver.allowed_cidrs.clone();
        (Principal::Approver(ApproverPrincipal { approver, client }), networks)
    } else if state.is_config_admin_token(token) {
        let actor = Actor::new("admin", client);
        let networks = state.config.admin_allowed_cidrs.iter().map(ToString::to_string).collect();
        (Principal::Admin(AdminPrincipal { actor, role: AdminRole::Admin }), networks)
    } else if token.starts_with(ADMIN_TOKEN_PREFIX) {
        let admin = admins::for_token(&state.svc, token)
            .await?
            .ok_or(Error::Unauthenticated("invalid admin token"))?;
        let actor = Actor::new(format!("admin:{}/{}", admin.id, admin.name), client);
        (Principal::Admin(AdminPrincipal { actor, role: admin.role }), admin.allowed_cidrs)
    } else {
        return Err(Error::Unauthenticated("invalid credentials"));
    };
    let credential = principal.credential();
    recognised(parts, &credential);
    state.limits.charge(&parts.method, &credential, KeyRateLimit::default()).await?;
    check_network(&networks, client, "token")?;
    Ok(principal)
}

/// Refuses a credential limited to networks that `client` is not in.
fn check_network(networks: &[String], client: Option<IpAddr>, what: &str) -> Result<()> {
    if auth::network_allows(networks, client) {
        Ok(())
    } else {
        Err(Error::forbidden(
            ErrorCode::IpNotAllowed,
            format!("this {what} may not be used from this address"),
        ))
    }
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
    state.limits.charge(method, &k.id, k.rate_limit).await?;
    if k.revoked_at.is_some() {
        return Err(Error::Unauthenticated("API key revoked"));
    }
    let now = state.svc.clock.now();
    if k.expires_at.as_deref().and_then(parse_ts).is_some_and(|exp| exp <= now) {
        return Err(Error::Unauthenticated("API key expired"));
    }
    check_network(&k.allowed_cidrs, client, "API key")?;
    agents::key_used(&state.svc, &k.id, k.last_used_at.as_deref());
    Ok(AgentPrincipal { agent: found.agent, key_id: found.key.id, scopes: found.key.scopes, client })
}
