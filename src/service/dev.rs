//! `serve --dev`: a ready-to-use sandbox. The demo agent and the demo
//! approver are created once; the agent's key, the approver's token and the
//! dev admin token are minted anew at every start (the previous ones stop
//! working), because secrets are stored only as hashes and could not be
//! shown again otherwise.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::agents::{insert_key, KeyRequest};
use super::Services;
use crate::audit::AuditEvent;
use crate::auth::{self, ADMIN_TOKEN_PREFIX, APPROVER_TOKEN_PREFIX};
use crate::clock::format_ts;
use crate::error::Result;
use crate::ids;
use crate::model::{Agent, Approver, Scope};
use crate::policy::TrustLevel;
use crate::store::WriteTx;

/// Audit actor for what dev mode does on its own.
const DEV: &str = "system:dev";

pub const DEMO_AGENT: &str = "demo-agent";
pub const DEMO_POLICY: &str = "demo";

pub const DEMO_APPROVER: &str = "demo-approver";

pub struct DevCredentials {
    /// `None` when an admin token is configured (it is not printed).
    pub admin_token: Option<String>,
    /// The demo agent and its key; `None` when no policy is named `demo`
    /// (an operator's own policy directory).
    pub agent: Option<(Agent, String)>,
    /// Token of the demo approver, for the console.
    pub approver_token: String,
}

/// Creates or refreshes the demo credentials. `configured_admin`: an
/// operator's admin token is set (from the environment or its file), so it
/// is kept and no dev token is minted.
pub async fn bootstrap(svc: &Services, configured_admin: bool) -> Result<DevCredentials> {
    let with_agent = svc.policies.current().get(DEMO_POLICY).is_some();
    let now = svc.clock.now();
    svc.store.write(move |tx| Box::pin(mint(tx, configured_admin, with_agent, now))).await
}

async fn mint(
    tx: &mut WriteTx,
    configured_admin: bool,
    with_agent: bool,
    now: DateTime<Utc>,
) -> Result<DevCredentials> {
    let ts = format_ts(now);
    let admin_token = if configured_admin {
        None
    } else {
        let token = auth::generate(ADMIN_TOKEN_PREFIX);
        let id = ids::new("adm");
        tx.replace_admin_tokens(&id, &auth::hash(&token), &ts).await?;
        tx.append_audit(AuditEvent::new("admin_token.created", DEV).subject(&id), now).await?;
        Some(token)
    };

    let agent = if with_agent { Some(demo_agent(tx, now).await?) } else { None };
    let approver_token = auth::generate(APPROVER_TOKEN_PREFIX);
    let hash = auth::hash(&approver_token);
    if tx.replace_approver_token(DEMO_APPROVER, &hash).await?.is_none() {
        let approver = Approver {
            id: ids::new("apr"),
            name: DEMO_APPROVER.to_owned(),
            created_at: ts,
            revoked_at: None,
        };
        tx.insert_approver(&approver, &hash).await?;
        tx.append_audit(AuditEvent::new("approver.created", DEV).subject(&approver.id), now).await?;
    }
    Ok(DevCredentials { admin_token, agent, approver_token })
}

/// The demo agent (created on first start) and a fresh key for it; its
/// earlier keys are revoked.
async fn demo_agent(tx: &mut WriteTx, now: DateTime<Utc>) -> Result<(Agent, String)> {
    let ts = format_ts(now);
    let agent = match tx.agent_by_name(DEMO_AGENT).await? {
        Some(agent) => agent,
        None => {
            let agent = Agent {
                id: ids::new("agt"),
                name: DEMO_AGENT.to_owned(),
                policy: DEMO_POLICY.to_owned(),
                trust_level: TrustLevel::Low,
                frozen: false,
                frozen_reason: None,
                created_at: ts.clone(),
                updated_at: ts.clone(),
            };
            tx.insert_agent(&agent).await?;
            let data =
                json!({ "name": agent.name, "policy": agent.policy, "trust_level": agent.trust_level });
            tx.append_audit(AuditEvent::new("agent.created", DEV).agent(&agent.id).data(data), now).await?;
            agent
        }
    };
    let req = KeyRequest {
        scopes: Scope::ALL.to_vec(),
        expires_at: None,
        allowed_cidrs: vec![],
        rate_limit: Default::default(),
    };
    let issued = insert_key(tx, DEV, &agent.id, req, now).await?;
    let revoked = tx.revoke_other_keys(&agent.id, &issued.record.id, &ts).await?;
    if revoked > 0 {
        let data = json!({ "reason": "dev restart", "count": revoked });
        tx.append_audit(AuditEvent::new("key.revoked", DEV).agent(&agent.id).data(data), now).await?;
    }
    Ok((agent, issued.key))
}
