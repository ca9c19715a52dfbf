//! Administrators: created and revoked by an admin, each change audited.

use serde_json::json;

use super::{Act, Services};
use crate::audit::{Actor, AuditEvent};
use crate::auth::{self, ADMIN_TOKEN_PREFIX};
use crate::error::{Error, Result};
use crate::ids;
use crate::model::{AdminRole, Administrator};

/// A new administrator and its token (the only time it is shown).
pub struct IssuedAdmin {
    pub admin: Administrator,
    pub token: String,
}

/// What an administrator's creation records (never the token).
pub fn created_event(act: &Act, admin: &Administrator) -> AuditEvent {
    let data = json!({ "name": admin.name, "role": admin.role, "allowed_cidrs": admin.allowed_cidrs });
    act.event("admin.created").subject(&admin.id).data(data)
}

pub async fn create(
    svc: &Services,
    actor: &Actor,
    name: String,
    role: AdminRole,
    allowed_cidrs: Vec<String>,
) -> Result<IssuedAdmin> {
    let token = auth::generate(ADMIN_TOKEN_PREFIX);
    let token_hash = auth::hash(&token);
    let admin = svc
        .audited(actor, move |tx, act| {
            Box::pin(async move {
                let admin = Administrator {
                    id: ids::new("adm"),
                    name,
                    role,
                    allowed_cidrs,
                    created_at: act.ts.clone(),
                    revoked_at: None,
                };
                tx.insert_admin(&admin, &token_hash).await?;
                let event = created_event(act, &admin);
                Ok((admin, event))
            })
        })
        .await?;
    Ok(IssuedAdmin { admin, token })
}

pub async fn revoke(svc: &Services, actor: &Actor, id: &str) -> Result<()> {
    let id = id.to_owned();
    svc.audited(actor, move |tx, act| {
        Box::pin(async move {
            if !tx.revoke_admin(&id, &act.ts).await? {
                return Err(Error::NotFound("administrator"));
            }
            Ok(((), act.event("admin.revoked").subject(&id)))
        })
    })
    .await
}

/// The live administrator whose token this is; the lookup is by hash and
/// the acceptance a constant-time comparison.
pub async fn for_token(svc: &Services, token: &str) -> Result<Option<Administrator>> {
    let presented = auth::hash(token);
    Ok(auth::accept(svc.store.admin_by_token_hash(&presented).await?, &presented))
}
