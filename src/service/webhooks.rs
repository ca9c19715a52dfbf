//! Managing webhook endpoints: registration (the secret is shown once and
//! stored sealed), updates, secret rotation, replay. Every change is audited.

use std::time::Duration;

use serde_json::json;

use super::Services;
use crate::audit::Actor;
use crate::clock::format_ts;
use crate::error::{Error, ErrorCode, OrNotFound, Result};
use crate::ids;
use crate::model::WebhookEndpoint;
use crate::store::EndpointPatch;
use crate::webhooks::signature::Secret;
use crate::webhooks::ssrf::{check_url, resolve_checked};
use crate::webhooks::{is_event_type, EVENTS};

pub struct IssuedEndpoint {
    pub endpoint: WebhookEndpoint,
    /// `whsec_...`, shown once.
    pub secret: String,
}

/// Refuses URLs deliveries may not go to, naming why. Hostnames are resolved
/// now for an early answer; every delivery resolves and checks again.
async fn check_target(svc: &Services, url: &str) -> Result<String> {
    let invalid = |e: String| Error::invalid(ErrorCode::InvalidWebhookUrl, e).at("/url");
    let parsed = check_url(url, &svc.webhook_targets).map_err(|e| invalid(e.to_string()))?;
    if let Some(host) = parsed.host_str().filter(|_| parsed.domain().is_some()) {
        resolve_checked(host, &svc.webhook_targets).await.map_err(|e| invalid(e.to_string()))?;
    }
    Ok(parsed.to_string())
}

fn check_events(events: &[String]) -> Result<()> {
    if events.is_empty() {
        return Err(Error::invalid(
            ErrorCode::InvalidRequest,
            "events must name at least one event type (or \"*\")",
        )
        .at("/events"));
    }
    for e in events {
        if e != "*" && !is_event_type(e) {
            return Err(Error::invalid(
                ErrorCode::InvalidRequest,
                format!("unknown event type {e:?}; known: {}", EVENTS.map(|t| t.name).join(", ")),
            )
            .at("/events"));
        }
    }
    Ok(())
}

pub async fn create_endpoint(
    svc: &Services,
    actor: &Actor,
    url: &str,
    mut events: Vec<String>,
    description: Option<String>,
) -> Result<IssuedEndpoint> {
    check_events(&events)?;
    let url = check_target(svc, url).await?;
    events.sort();
    events.dedup();
    let secret = Secret::generate();
    let sealed = svc.secrets.seal(secret.as_bytes());
    let endpoint = svc
        .audited(actor, move |tx, act| {
            Box::pin(async move {
                let endpoint = WebhookEndpoint {
                    id: ids::new("wh"),
                    url,
                    description,
                    events,
                    disabled: false,
                    disabled_reason: None,
                    previous_secret_until: None,
                    created_at: act.ts.clone(),
                    updated_at: act.ts.clone(),
                };
                tx.insert_endpoint(&endpoint, &sealed).await?;
                let data = json!({ "url": endpoint.url, "events": endpoint.events });
                let event = act.event("webhook_endpoint.created").subject(&endpoint.id).data(data);
                Ok((endpoint, event))
            })
        })
        .await?;
    svc.store.refresh_subscriptions().await?;
    Ok(IssuedEndpoint { endpoint, secret: secret.to_whsec() })
}

pub async fn update_endpoint(
    svc: &Services,
    actor: &Actor,
    id: &str,
    mut patch: EndpointPatch,
) -> Result<WebhookEndpoint> {
    if let Some(events) = patch.events.as_mut() {
        check_events(events)?;
        events.sort();
        events.dedup();
    }
    if let Some(url) = &patch.url {
        patch.url = Some(check_target(svc, url).await?);
    }
    let id = id.to_owned();
    let endpoint = svc
        .audited(actor, move |tx, act| {
            Box::pin(async move {
                let endpoint =
                    tx.update_endpoint(&id, &patch, &act.ts).await?.or_not_found("webhook endpoint")?;
                let data =
                    json!({ "url": endpoint.url, "events": endpoint.events, "disabled": endpoint.disabled });
                Ok((endpoint, act.event("webhook_endpoint.updated").subject(&id).data(data)))
            })
        })
        .await?;
    svc.store.refresh_subscriptions().await?;
    Ok(endpoint)
}

pub async fn delete_endpoint(svc: &Services, actor: &Actor, id: &str) -> Result<()> {
    let id = id.to_owned();
    svc.audited(actor, move |tx, act| {
        Box::pin(async move {
            if !tx.delete_endpoint(&id).await? {
                return Err(Error::NotFound("webhook endpoint"));
            }
            Ok(((), act.event("webhook_endpoint.deleted").subject(&id)))
        })
    })
    .await?;
    svc.store.refresh_subscriptions().await?;
    Ok(())
}

/// A new signing secret; the old one keeps signing (as a second signature)
/// for `grace`, so receivers can switch without missing a delivery.
pub async fn rotate_secret(
    svc: &Services,
    actor: &Actor,
    id: &str,
    grace: Duration,
) -> Result<(String, String)> {
    let grace = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::days(1));
    let secret = Secret::generate();
    let sealed = svc.secrets.seal(secret.as_bytes());
    let id = id.to_owned();
    let until = svc
        .audited(actor, move |tx, act| {
            Box::pin(async move {
                let until = format_ts(act.now + grace);
                if !tx.rotate_endpoint_secret(&id, &sealed, &until, &act.ts).await? {
                    return Err(Error::NotFound("webhook endpoint"));
                }
                let data = json!({ "previous_secret_until": until });
                Ok((until, act.event("webhook_endpoint.secret_rotated").subject(&id).data(data)))
            })
        })
        .await?;
    Ok((secret.to_whsec(), until))
}

/// Queues an event again (same `webhook-id`) for one endpoint or for every
/// endpoint subscribed to it. Returns how many deliveries were queued.
pub async fn replay(
    svc: &Services,
    actor: &Actor,
    event_id: &str,
    endpoint_id: Option<String>,
) -> Result<u64> {
    if !svc.store.event_exists(event_id).await? {
        return Err(Error::NotFound("webhook event"));
    }
    if let Some(id) = &endpoint_id {
        svc.store.endpoint(id).await?.or_not_found("webhook endpoint")?;
    }
    let event_id = event_id.to_owned();
    svc.audited(actor, move |tx, act| {
        Box::pin(async move {
            let queued = tx.replay_event(&event_id, endpoint_id.as_deref(), act.now).await?;
            let data = json!({ "endpoint_id": endpoint_id, "queued": queued });
            Ok((queued, act.event("webhook_event.replayed").subject(&event_id).data(data)))
        })
    })
    .await
}
