//! Cards: standing cards registered to agents, and real-time card
//! authorizations (Lithic ASA) decided by the same policy engine.

use std::sync::Arc;

use serde_json::json;
use sha2::{Digest, Sha256};

use super::payments::{self, Created, Idempotency, PaymentInput, Settlement};
use crate::app::AppState;
use crate::audit::AuditEvent;
use crate::clock::format_ts;
use crate::error::{Error, Result};
use crate::model::{Card, PaymentStatus};
use crate::money::from_minor;
use crate::providers::lithic::asa::Authorization;

/// The issuer whose authorizations purser answers.
const ISSUER: &str = "lithic";

pub async fn register(state: &AppState, actor: &str, agent_id: &str, card_token: String) -> Result<Card> {
    let now = state.clock.now();
    let card = Card {
        card_token,
        provider: ISSUER.to_owned(),
        agent_id: agent_id.to_owned(),
        created_at: format_ts(now),
    };
    let actor = actor.to_owned();
    state
        .store
        .write(move |tx| {
            Box::pin(async move {
                tx.agent(&card.agent_id).await?.ok_or(Error::NotFound("agent"))?;
                if !tx.insert_card(&card).await? {
                    return Err(Error::conflict("card_exists", "this card is already registered"));
                }
                let event = AuditEvent::new("card.registered", actor)
                    .agent(&card.agent_id)
                    .subject(&card.card_token)
                    .data(json!({ "provider": card.provider }));
                tx.append_audit(event, now).await?;
                Ok(card)
            })
        })
        .await
}

pub async fn remove(state: &AppState, actor: &str, agent_id: &str, card_token: &str) -> Result<()> {
    let now = state.clock.now();
    let (actor, agent_id, token) = (actor.to_owned(), agent_id.to_owned(), card_token.to_owned());
    state
        .store
        .write(move |tx| {
            Box::pin(async move {
                if !tx.delete_card(&agent_id, &token).await? {
                    return Err(Error::NotFound("card"));
                }
                let event = AuditEvent::new("card.removed", actor).agent(&agent_id).subject(&token);
                tx.append_audit(event, now).await?;
                Ok(())
            })
        })
        .await
}

/// Decides one authorization: `true` approves it.
///
/// - A standing card's authorization is a payment of its agent, decided
///   and reserved like any other (idempotent on the authorization token, so
///   a retried request gets the same answer and reserves once).
/// - A card purser issued for one approved payment may be charged up to
///   that payment's amount, in its currency; its amount is reserved already.
/// - Any other card, and any amount that is not positive, is declined:
///   fail closed.
pub async fn authorize(state: &Arc<AppState>, auth: &Authorization) -> Result<bool> {
    // Zero (account verification) and negative amounts are not purchases a
    // policy can weigh; a negative one would even shrink the reservations.
    if auth.amount_minor <= 0 {
        return Ok(false);
    }
    if let Some(card) = state.store.card(ISSUER, &auth.card_token).await? {
        return authorize_standing(state, &card, auth).await;
    }
    let issued = state.store.payment_by_provider_txn(ISSUER, &auth.card_token).await?;
    let approve = issued.as_ref().is_some_and(|p| {
        p.status == PaymentStatus::Succeeded
            && p.currency == auth.currency
            && from_minor(auth.amount_minor, auth.currency) <= p.amount.value
    });
    let now = state.clock.now();
    let event = AuditEvent::new("card.authorization", format!("provider:{ISSUER}"))
        .subject(&auth.card_token)
        .data(json!({
            "authorization": auth.token,
            "payment_id": issued.as_ref().map(|p| &p.id),
            "amount_minor": auth.amount_minor,
            "currency": auth.currency,
            "merchant_id": auth.merchant_id,
            "approved": approve,
        }));
    let event = match &issued {
        Some(p) => event.agent(&p.agent_id),
        None => event,
    };
    state.store.write(move |tx| Box::pin(async move { tx.append_audit(event, now).await })).await?;
    Ok(approve)
}

async fn authorize_standing(state: &Arc<AppState>, card: &Card, auth: &Authorization) -> Result<bool> {
    let agent = state.store.agent(&card.agent_id).await?.ok_or(Error::NotFound("agent"))?;
    let input = PaymentInput {
        amount: from_minor(auth.amount_minor, auth.currency),
        fee: rust_decimal::Decimal::ZERO,
        currency: auth.currency,
        merchant_id: auth.merchant_id.clone(),
        merchant_category: auth.merchant_category.clone(),
        rail: Some("card".to_owned()),
        description: Some(auth.descriptor.clone()),
        metadata: [("card_token".to_owned(), json!(card.card_token))].into_iter().collect(),
    };
    // A space cannot appear in an agent's own Idempotency-Key, so these
    // keys never collide with one.
    let idem = Idempotency {
        key: format!("{ISSUER} authorization {}", auth.token),
        request_hash: hex::encode(Sha256::digest(
            format!("{}|{}|{}|{}", auth.card_token, auth.amount_minor, auth.currency, auth.merchant_id)
                .as_bytes(),
        )),
    };
    let settlement = Settlement::Authorization { provider: ISSUER, transaction_id: auth.token.clone() };
    let actor = format!("card:{}", card.card_token);
    let payment = match payments::create(state, &agent, &actor, &idem, input, settlement).await? {
        Created::New(p) | Created::Replayed(p) => p,
    };
    Ok(payment.status == PaymentStatus::Succeeded)
}
