//! `serve --dev`: a ready-to-use sandbox. The demo agent and the demo
//! approver are created once; the agent's key, the approver's token and the
//! dev admin token are minted anew at every start (the previous ones stop
//! working), because secrets are stored only as hashes and could not be
//! shown again otherwise.

use serde_json::json;

use super::admins;
use super::agents::{insert_key, KeyRequest};
use super::{Act, Services};
use crate::audit::Actor;
use crate::auth::{self, ADMIN_TOKEN_PREFIX, APPROVER_TOKEN_PREFIX};
use crate::error::Result;
use crate::ids;
use crate::model::{AdminRole, Administrator, Agent, Approver, Scope};
use crate::policy::TrustLevel;
use crate::store::WriteTx;

/// Audit actor for what dev mode does on its own.
const DEV: &str = "system:dev";
/// The administrator dev mode mints a token for on each start (the name
/// earlier dev tokens were given when admins got names).
const DEV_ADMIN: &str = "dev";

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
    let act = Act::new(Actor::system(DEV), svc.clock.now());
    svc.store
        .write(move |tx| Box::pin(async move { mint(tx, &act, configured_admin, with_agent).await }))
        .await
}

/// Every credential dev mode prints, each creation audited.
async fn mint(
    tx: &mut WriteTx,
    act: &Act,
    configured_admin: bool,
    with_agent: bool,
) -> Result<DevCredentials> {
    let admin_token = if configured_admin {
        None
    } else {
        let token = auth::generate(ADMIN_TOKEN_PREFIX);
        tx.revoke_admins_named(DEV_ADMIN, &act.ts).await?;
        let admin = Administrator {
            id: ids::new("adm"),
            name: DEV_ADMIN.to_owned(),
            role: AdminRole::Admin,
            allowed_cidrs: vec![],
            created_at: act.ts.clone(),
            revoked_at: None,
        };
        tx.insert_admin(&admin, &auth::hash(&token)).await?;
        tx.append_audit(admins::created_event(act, &admin), act.now).await?;
        Some(token)
    };

    let agent = if with_agent { Some(demo_agent(tx, act).await?) } else { None };
    let approver_token = auth::generate(APPROVER_TOKEN_PREFIX);
    let hash = auth::hash(&approver_token);
    if tx.replace_approver_token(DEMO_APPROVER, &hash).await?.is_none() {
        let approver = Approver {
            id: ids::new("apr"),
            name: DEMO_APPROVER.to_owned(),
            allowed_cidrs: vec![],
            created_at: act.ts.clone(),
            revoked_at: None,
        };
        tx.insert_approver(&approver, &hash).await?;
        tx.append_audit(act.event("approver.created").subject(&approver.id), act.now).await?;
    }
    Ok(DevCredentials { admin_token, agent, approver_token })
}

/// The demo agent (created on first start) and a fresh key for it; its
/// earlier keys are revoked.
async fn demo_agent(tx: &mut WriteTx, act: &Act) -> Result<(Agent, String)> {
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
                created_at: act.ts.clone(),
                updated_at: act.ts.clone(),
            };
            tx.insert_agent(&agent).await?;
            let data =
                json!({ "name": agent.name, "policy": agent.policy, "trust_level": agent.trust_level });
            tx.append_audit(act.event("agent.created").agent(&agent.id).data(data), act.now).await?;
            agent
        }
    };
    let req = KeyRequest {
        scopes: Scope::ALL.to_vec(),
        expires_at: None,
        allowed_cidrs: vec![],
        rate_limit: Default::default(),
    };
    let (issued, created) = insert_key(tx, act, &agent.id, req).await?;
    tx.append_audit(created, act.now).await?;
    let revoked = tx.revoke_other_keys(&agent.id, &issued.record.id, &act.ts).await?;
    if revoked > 0 {
        let data = json!({ "reason": "dev restart", "count": revoked });
        tx.append_audit(act.event("key.revoked").agent(&agent.id).data(data), act.now).await?;
    }
    Ok((agent, issued.key))
}
