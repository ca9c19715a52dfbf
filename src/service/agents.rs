//! Admin operations on agents and their keys. Each change and its audit
//! record commit together or not at all.

use std::sync::Arc;

use serde_json::json;

use super::Act;
use super::Services;
use crate::audit::{Actor, AuditEvent};
use crate::auth::{self, AGENT_KEY_PREFIX};
use crate::clock::{format_ts, parse_ts};
use crate::error::{Error, ErrorCode, OrNotFound, Result};
use crate::ids;
use crate::model::{Agent, ApiKey, KeyRateLimit, Scope};
use crate::policy::TrustLevel;
use crate::store::{AgentPatch, Credential, WriteTx};

pub struct NewAgent {
    pub name: String,
    pub policy: String,
    pub trust_level: TrustLevel,
}

pub struct KeyRequest {
    pub scopes: Vec<Scope>,
    pub expires_at: Option<String>,
    pub allowed_cidrs: Vec<String>,
    pub rate_limit: KeyRateLimit,
}

/// A key as returned once, at creation.
pub struct IssuedKey {
    pub key: String,
    pub record: ApiKey,
}

fn require_policy(svc: &Services, name: &str) -> Result<()> {
    if svc.policies.current().get(name).is_none() {
        let known: Vec<String> = svc.policies.current().names().map(str::to_owned).collect();
        return Err(Error::unprocessable(
            ErrorCode::UnknownPolicy,
            format!("no policy named {name:?} is loaded; known: {}", known.join(", ")),
        ));
    }
    Ok(())
}

/// An agent has a row of the trust ladder, so a policy that leaves a limit
/// to the ladder always finds one: `custom` (no row) would let it fail open.
fn require_ladder_level(level: TrustLevel) -> Result<()> {
    if level == TrustLevel::Custom {
        return Err(Error::unprocessable(
            ErrorCode::InvalidTrustLevel,
            "an agent's trust_level is low, medium or high; `custom` is for policies, which then set \
             their own limits",
        ));
    }
    Ok(())
}

pub async fn create_agent(svc: &Services, actor: &Actor, new: NewAgent) -> Result<Agent> {
    require_policy(svc, &new.policy)?;
    require_ladder_level(new.trust_level)?;
    svc.audited(actor, move |tx, act| {
        Box::pin(async move {
            let agent = Agent {
                id: ids::new("agt"),
                name: new.name,
                policy: new.policy,
                trust_level: new.trust_level,
                frozen: false,
                frozen_reason: None,
                created_at: act.ts.clone(),
                updated_at: act.ts.clone(),
            };
            tx.insert_agent(&agent).await?;
            let data =
                json!({ "name": agent.name, "policy": agent.policy, "trust_level": agent.trust_level });
            let event = act.event("agent.created").agent(&agent.id).data(data);
            Ok((agent, event))
        })
    })
    .await
}

pub async fn update_agent(svc: &Services, actor: &Actor, id: &str, patch: AgentPatch) -> Result<Agent> {
    if let Some(p) = &patch.policy {
        require_policy(svc, p)?;
    }
    if let Some(level) = patch.trust_level {
        require_ladder_level(level)?;
    }
    let id = id.to_owned();
    svc.audited(actor, move |tx, act| {
        Box::pin(async move {
            let before = tx.agent(&id).await?.or_not_found("agent")?;
            let after = tx.update_agent(&id, &patch, &act.ts).await?.or_not_found("agent")?;
            let data = json!({
                "before": { "policy": before.policy, "trust_level": before.trust_level },
                "after": { "policy": after.policy, "trust_level": after.trust_level },
            });
            Ok((after, act.event("agent.updated").agent(&id).data(data)))
        })
    })
    .await
}

/// What freezing does besides denying the agent's payments.
#[derive(Debug, Clone, Copy, Default)]
pub struct FreezeOptions {
    /// Revoke every API key and signing key of the agent too (a leaked
    /// credential); unfreezing then needs new keys.
    pub revoke_keys: bool,
}

/// Freezes (`Some(reason)`) or unfreezes (`None`) an agent. A frozen agent's
/// payments are denied with `agent_frozen`, and its pending approvals are
/// cancelled (closed as `rejected`, reservations released) in the same
/// transaction, so no approver can let one through afterwards.
pub async fn set_frozen(
    svc: &Services,
    actor: &Actor,
    id: &str,
    reason: Option<String>,
    options: FreezeOptions,
) -> Result<Agent> {
    let id = id.to_owned();
    svc.audited(actor, move |tx, act| {
        Box::pin(async move {
            let agent = tx.set_frozen(&id, reason.as_deref(), &act.ts).await?.or_not_found("agent")?;
            let kind = if reason.is_some() { "agent.frozen" } else { "agent.unfrozen" };
            let (mut cancelled, mut revoked) = (0, 0);
            if reason.is_some() {
                cancelled = super::approvals::cancel_for_frozen(tx, &id, act.now).await?;
                if options.revoke_keys {
                    revoked = tx.revoke_all_credentials(&id, &act.ts).await?;
                }
            }
            tx.emit(kind, &agent, act.now);
            let data = json!({ "reason": reason, "approvals_cancelled": cancelled, "keys_revoked": revoked });
            Ok((agent, act.event(kind).agent(&id).data(data)))
        })
    })
    .await
}

pub async fn create_key(svc: &Services, actor: &Actor, agent_id: &str, req: KeyRequest) -> Result<IssuedKey> {
    let agent_id = agent_id.to_owned();
    svc.audited(actor, move |tx, act| {
        Box::pin(async move {
            tx.agent(&agent_id).await?.or_not_found("agent")?;
            insert_key(tx, act, &agent_id, req).await
        })
    })
    .await
}

/// Revokes an agent's API key or signing key at once, audited as
/// `key.revoked` or `signing_key.revoked`.
pub async fn revoke_credential(
    svc: &Services,
    actor: &Actor,
    agent_id: &str,
    kind: Credential,
    id: &str,
) -> Result<()> {
    let (agent_id, id) = (agent_id.to_owned(), id.to_owned());
    let (audit, missing) = match kind {
        Credential::ApiKey => ("key.revoked", "key"),
        Credential::SigningKey => ("signing_key.revoked", "signing key"),
    };
    svc.audited(actor, move |tx, act| {
        Box::pin(async move {
            if !tx.revoke_credential(kind, &agent_id, &id, &act.ts).await? {
                return Err(Error::NotFound(missing));
            }
            Ok(((), act.event(audit).agent(&agent_id).subject(&id)))
        })
    })
    .await
}

/// Longest grace period of a rotation: 30 days.
pub const MAX_ROTATION_GRACE_SECS: u64 = 30 * 24 * 3600;

/// Replaces a live key by a new one with the same scopes, expiry, rate limit and
/// networks. The old key keeps working for `grace` (its expiry is brought
/// forward to the end of it, never pushed back), so clients can switch
/// without an outage; a zero grace revokes it at once.
pub async fn rotate_key(
    svc: &Services,
    actor: &Actor,
    agent_id: &str,
    key_id: &str,
    grace: chrono::Duration,
) -> Result<(IssuedKey, ApiKey)> {
    let (agent_id, key_id) = (agent_id.to_owned(), key_id.to_owned());
    svc.audited(actor, move |tx, act| {
        Box::pin(async move {
            let mut old = tx.agent_key(&agent_id, &key_id).await?.or_not_found("key")?;
            // A rotation makes a key with the old one's rights and expiry;
            // from a dead or already-replaced key it would make one that is
            // born expired, or dies with the first grace period.
            let refusal = if old.revoked_at.is_some() {
                Some("the key is revoked".to_owned())
            } else if old.expires_at.as_deref().and_then(parse_ts).is_some_and(|at| at <= act.now) {
                Some("the key has expired".to_owned())
            } else {
                old.replaced_by
                    .as_ref()
                    .map(|new| format!("the key was already rotated: rotate {new} instead"))
            };
            if let Some(why) = refusal {
                return Err(Error::conflict(ErrorCode::KeyNotRotatable, format!("{why}; create a new key")));
            }
            let req = KeyRequest {
                scopes: old.scopes.clone(),
                expires_at: old.expires_at.clone(),
                allowed_cidrs: old.allowed_cidrs.clone(),
                rate_limit: old.rate_limit,
            };
            let (issued, created) = insert_key(tx, act, &agent_id, req).await?;
            tx.append_audit(created, act.now).await?;
            if grace.is_zero() {
                tx.revoke_credential(Credential::ApiKey, &agent_id, &key_id, &act.ts).await?;
                old.revoked_at = Some(act.ts.clone());
            } else {
                let end = format_ts(act.now + grace);
                // Fixed-width timestamps: text order is time order.
                let until = old.expires_at.clone().filter(|e| *e < end).unwrap_or(end);
                tx.replace_key(&key_id, &issued.record.id, &until).await?;
                old.expires_at = Some(until);
                old.replaced_by = Some(issued.record.id.clone());
            }
            let event = act.event("key.rotated").agent(&agent_id).subject(&key_id).data(json!({
                "new_key_id": issued.record.id,
                "old_key_expires_at": old.expires_at,
                "old_key_revoked_at": old.revoked_at,
            }));
            Ok(((issued, old), event))
        })
    })
    .await
}

/// Records that key `key_id` authenticated a request now, unless it did so
/// within the last minute (`last_used_at`): a busy key costs one write a
/// minute, not one per request. Best effort, in the background.
pub fn key_used(svc: &Arc<Services>, key_id: &str, last_used_at: Option<&str>) {
    let now = svc.clock.now();
    if last_used_at.and_then(parse_ts).is_some_and(|last| now - last < chrono::Duration::minutes(1)) {
        return;
    }
    let (store, key_id, at) = (svc.store.clone(), key_id.to_owned(), format_ts(now));
    tokio::spawn(async move {
        let touched = store.write(move |tx| Box::pin(async move { tx.touch_key(&key_id, &at).await })).await;
        if let Err(e) = touched {
            tracing::warn!(error = %e, "could not record a key's last use");
        }
    });
}

/// Mints a key inside `tx`; answers it with its audit record (which never
/// holds the key itself).
pub(crate) async fn insert_key(
    tx: &mut WriteTx,
    act: &Act,
    agent_id: &str,
    req: KeyRequest,
) -> Result<(IssuedKey, AuditEvent)> {
    let key = auth::generate(AGENT_KEY_PREFIX);
    let record = ApiKey {
        id: ids::new("key"),
        agent_id: agent_id.to_owned(),
        prefix: auth::display_prefix(&key),
        scopes: req.scopes,
        allowed_cidrs: req.allowed_cidrs,
        rate_limit: req.rate_limit,
        expires_at: req.expires_at,
        created_at: act.ts.clone(),
        revoked_at: None,
        replaced_by: None,
        last_used_at: None,
    };
    tx.insert_key(&record, &auth::hash(&key)).await?;
    let event = act.event("key.created").agent(agent_id).subject(&record.id).data(json!({
        "prefix": record.prefix, "scopes": record.scopes,
        "expires_at": record.expires_at, "allowed_cidrs": record.allowed_cidrs,
        "rate_limit": record.rate_limit,
    }));
    Ok((IssuedKey { key, record }, event))
}
