//! Approver console sessions: signing in with an approver token opens one
//! (audited), signing out ends it. The store keeps only the session id's
//! hash.

use std::net::IpAddr;

use chrono::Duration;

use super::{approvals, Services};
use crate::auth;
use crate::error::Result;
use crate::model::Approver;
use crate::store::ConsoleSession;

/// How long a session lasts.
pub const SESSION_HOURS: i64 = 8;

/// Opens a session for `approver`, audited as `console.sign_in`, with a
/// fresh CSRF token for its forms; answers the session id for the cookie
/// (the only time it exists outside the browser).
pub async fn sign_in(svc: &Services, approver: &Approver, client: Option<IpAddr>) -> Result<String> {
    let session_id = auth::generate("");
    let (id_hash, approver_id) = (auth::hash(&session_id), approver.id.clone());
    svc.audited(&approvals::approver_actor(approver, client), move |tx, act| {
        Box::pin(async move {
            let expires = crate::clock::format_ts(act.now + Duration::hours(SESSION_HOURS));
            tx.insert_console_session(&id_hash, &approver_id, &auth::generate(""), &act.ts, &expires).await?;
            Ok((session_id, act.event("console.sign_in")))
        })
    })
    .await
}

/// The live session whose cookie value is `session_id`, if any.
pub async fn session(svc: &Services, session_id: &str) -> Result<Option<ConsoleSession>> {
    Ok(svc.store.console_session(&auth::hash(session_id), svc.clock.now()).await?)
}

/// Ends the session whose cookie value is `session_id` (nothing if none).
pub async fn sign_out(svc: &Services, session_id: &str) -> Result<()> {
    let id_hash = auth::hash(session_id);
    svc.store.write(move |tx| Box::pin(async move { tx.delete_console_session(&id_hash).await })).await?;
    Ok(())
}
