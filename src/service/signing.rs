//! Ed25519 request signatures: agents' public keys, and checking a signed
//! request (see `api::signature` for the wire format).

use base64::Engine;
use ed25519_dalek::{Signature, VerifyingKey};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::Services;
use crate::audit::Actor;
use crate::clock::format_ts;
use crate::error::{Error, ErrorCode, OrNotFound, Result};
use crate::ids;
use crate::model::{KeyRateLimit, Scope, SigningKey};
use crate::store::Slice;

/// How far a signed request's timestamp may be from the gateway's clock;
/// also how long a signature is remembered against replays.
pub const WINDOW_SECS: i64 = 300;

/// Registers `public_key` (standard base64 of 32 bytes) for `agent_id`.
pub async fn register(
    svc: &Services,
    actor: &Actor,
    agent_id: &str,
    public_key: &str,
    scopes: Vec<Scope>,
    rate_limit: KeyRateLimit,
) -> Result<SigningKey> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(public_key.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .filter(|b| VerifyingKey::from_bytes(b).is_ok())
        .ok_or_else(|| {
            Error::invalid(ErrorCode::InvalidRequest, "public_key must be base64 of a 32-byte Ed25519 key")
                .at("/public_key")
        })?;
    let (agent_id, public_key) =
        (agent_id.to_owned(), base64::engine::general_purpose::STANDARD.encode(bytes));
    svc.audited(actor, move |tx, act| {
        Box::pin(async move {
            tx.agent(&agent_id).await?.or_not_found("agent")?;
            let key = SigningKey {
                id: ids::new("sk"),
                agent_id,
                public_key,
                scopes,
                rate_limit,
                created_at: act.ts.clone(),
                revoked_at: None,
            };
            if !tx.insert_signing_key(&key).await? {
                return Err(Error::conflict(
                    ErrorCode::SigningKeyExists,
                    "this public key is already registered",
                ));
            }
            let data =
                json!({ "public_key": key.public_key, "scopes": key.scopes, "rate_limit": key.rate_limit });
            let event = act.event("signing_key.created").agent(&key.agent_id).subject(&key.id).data(data);
            Ok((key, event))
        })
    })
    .await
}

/// What a signed request claims.
pub struct SignedRequest<'a> {
    pub agent_id: &'a str,
    pub timestamp: i64,
    pub signature: &'a str,
    pub method: &'a str,
    pub path_and_query: &'a str,
    /// `Purser-Nonce`, when the client sends one: it makes two identical
    /// requests in the same second two different signatures.
    pub nonce: Option<&'a str>,
    pub body: &'a [u8],
}

/// The text an agent signs: method, path (with query), timestamp, the nonce
/// when there is one, and the hex SHA-256 of the body, one per line.
pub fn message(
    method: &str,
    path_and_query: &str,
    timestamp: i64,
    nonce: Option<&str>,
    body: &[u8],
) -> String {
    let nonce = nonce.map_or_else(String::new, |n| format!("{n}\n"));
    format!("{method}\n{path_and_query}\n{timestamp}\n{nonce}{}", hex::encode(Sha256::digest(body)))
}

/// The live signing key that signed `req`, once the request is known not to
/// be a replay (its signature is remembered for the rest of the window).
pub async fn verify(svc: &Services, req: &SignedRequest<'_>) -> Result<SigningKey> {
    let now = svc.clock.now();
    if (now.timestamp() - req.timestamp).abs() > WINDOW_SECS {
        return Err(Error::Unauthenticated("signature timestamp is more than 5 minutes off"));
    }
    let signature = base64::engine::general_purpose::STANDARD
        .decode(req.signature.trim())
        .ok()
        .and_then(|b| Signature::from_slice(&b).ok())
        .ok_or(Error::Unauthenticated("malformed signature"))?;
    let message = message(req.method, req.path_and_query, req.timestamp, req.nonce, req.body);
    let keys = svc.store.signing_keys(req.agent_id, Slice::all()).await?;
    let key = keys
        .into_iter()
        .filter(|k| k.revoked_at.is_none())
        .find(|k| {
            let bytes = base64::engine::general_purpose::STANDARD.decode(&k.public_key).ok();
            let key = bytes
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .and_then(|b| VerifyingKey::from_bytes(&b).ok());
            key.is_some_and(|key| key.verify_strict(message.as_bytes(), &signature).is_ok())
        })
        .ok_or(Error::Unauthenticated("invalid signature"))?;
    let seen = hex::encode(Sha256::digest(signature.to_bytes()));
    let (now_ts, until) = (format_ts(now), format_ts(now + chrono::Duration::seconds(2 * WINDOW_SECS)));
    let fresh = svc
        .store
        .write(move |tx| Box::pin(async move { tx.remember_signature(&seen, &now_ts, &until).await }))
        .await?;
    if !fresh {
        // The signature is genuine: this is the same request again (a retry,
        // or two identical requests in one second without a nonce), not a
        // failed authentication, so it brakes no one at this address.
        return Err(Error::conflict(
            ErrorCode::SignatureReplayed,
            "this signed request was already accepted; sign each request with its own Purser-Nonce",
        ));
    }
    Ok(key)
}
