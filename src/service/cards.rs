//! Cards: standing cards registered to agents, and real-time card
//! authorizations (Lithic ASA) decided by the same policy engine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use sha2::{Digest, Sha256};

use super::payments::{self, Created, Idempotency, PaymentInput, Settlement};
use super::Services;
use crate::audit::{Actor, AuditEvent};
use crate::clock::format_ts;
use crate::error::{Error, ErrorCode, OrNotFound, Result};
use crate::model::{Card, Payment, PaymentStatus};
use crate::money::{from_minor, to_minor};
use crate::providers::lithic::asa::{Authorization, Decline, Kind};
use crate::store::IssuedAuthorization;

/// An answer to the card network: `Ok(())` approves.
pub type Answer = std::result::Result<(), Decline>;

/// The issuer whose authorizations purser answers.
const ISSUER: &str = "lithic";

pub async fn register(svc: &Services, actor: &Actor, agent_id: &str, card_token: String) -> Result<Card> {
    let agent_id = agent_id.to_owned();
    svc.audited(actor, move |tx, act| {
        Box::pin(async move {
            tx.agent(&agent_id).await?.or_not_found("agent")?;
            let card = Card { card_token, provider: ISSUER.to_owned(), agent_id, created_at: act.ts.clone() };
            if !tx.insert_card(&card).await? {
                return Err(Error::conflict(ErrorCode::CardExists, "this card is already registered"));
            }
            let event = act
                .event("card.registered")
                .agent(&card.agent_id)
                .subject(&card.card_token)
                .data(json!({ "provider": card.provider }));
            Ok((card, event))
        })
    })
    .await
}

pub async fn remove(svc: &Services, actor: &Actor, agent_id: &str, card_token: &str) -> Result<()> {
    let (agent_id, token) = (agent_id.to_owned(), card_token.to_owned());
    svc.audited(actor, move |tx, act| {
        Box::pin(async move {
            if !tx.delete_card(&agent_id, &token).await? {
                return Err(Error::NotFound("card"));
            }
            Ok(((), act.event("card.removed").agent(&agent_id).subject(&token)))
        })
    })
    .await
}

/// How long the card network is kept waiting at most. Lithic declines
/// authorizations its responder has not answered within a few seconds
/// (about 6 s measured; 3 s is the advice), so purser answers well inside.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(2);

/// Decides one authorization that must be answered by `answer_by`; `Ok(())`
/// approves. A store or policy failure is the caller's to decline.
///
/// - A purchase on a standing card is a payment of its agent, decided and
///   reserved like any other (idempotent on the authorization token, so a
///   retried request gets the same answer and reserves once).
/// - A purchase on a card purser issued for one approved payment may be
///   made where the agent's policy allows the network's merchant category,
///   in the payment's currency, for as long as the card's approved
///   authorizations stay within the payment's amount in total; that amount
///   is reserved already.
/// - A refund to, or a balance inquiry on, a card purser knows is approved
///   and counts against nothing.
/// - Any other card, kind of request, or amount that is not positive is
///   declined: fail closed.
pub async fn authorize(svc: &Arc<Services>, auth: &Authorization, answer_by: Instant) -> Result<Answer> {
    let standing = svc.store.card(ISSUER, &auth.card_token).await?;
    let issued = match standing {
        Some(_) => None,
        None => svc.store.issued_card_payment(ISSUER, &auth.card_token).await?,
    };
    match (&auth.kind, &standing, issued) {
        (Kind::Purchase, Some(card), _) => authorize_standing(svc, card, auth, answer_by).await,
        (Kind::Purchase, None, Some(payment)) => authorize_issued(svc, payment, auth).await,
        (kind, _, issued) => {
            let agent_id =
                standing.map(|c| c.agent_id).or_else(|| issued.as_ref().map(|p| p.agent_id.clone()));
            // Money back, or a look: nothing to limit, as long as the card
            // is ours.
            let (event, answer) = match (kind, &agent_id) {
                (Kind::Credit, Some(_)) => ("card.credit", Ok(())),
                (Kind::BalanceInquiry, Some(_)) => ("card.balance_inquiry", Ok(())),
                _ => ("card.authorization", Err(Decline::UnauthorizedMerchant)),
            };
            let event = card_event(event, auth, agent_id, issued.as_ref().map(|p| p.id.as_str()), answer);
            let now = svc.clock.now();
            svc.store.write(move |tx| Box::pin(async move { tx.append_audit(event, now).await })).await?;
            Ok(answer)
        }
    }
}

/// The audit record of an authorization answered without a payment of its own.
fn card_event(
    kind: &'static str,
    auth: &Authorization,
    agent_id: Option<String>,
    payment_id: Option<&str>,
    answer: Answer,
) -> AuditEvent {
    let status = match &auth.kind {
        Kind::Purchase => "purchase",
        Kind::Credit => "credit",
        Kind::BalanceInquiry => "balance_inquiry",
        Kind::Other(status) => status.as_str(),
    };
    let event = AuditEvent::new(kind, format!("provider:{ISSUER}")).subject(&auth.card_token).data(json!({
        "authorization": auth.token,
        "kind": status,
        "payment_id": payment_id,
        "amount_minor": auth.amount_minor,
        "currency": auth.currency,
        "merchant_id": auth.merchant_id,
        "merchant_category": auth.merchant_category,
        "approved": answer.is_ok(),
        "result": answer.err().map(Decline::result),
    }));
    match agent_id {
        Some(id) => event.agent(id),
        None => event,
    }
}

/// A purchase on a card purser issued for `payment`. The sum of the card's
/// approved authorizations and this one's answer are read and written in
/// one transaction, so concurrent authorizations cannot together pass the
/// payment's amount; a request Lithic sends again gets its first answer.
async fn authorize_issued(svc: &Services, payment: Payment, auth: &Authorization) -> Result<Answer> {
    // The network's category, not the one the agent declared, is what the
    // agent's current policy must allow.
    let agent = svc.store.agent(&payment.agent_id).await?.ok_or(Error::NotFound("agent"))?;
    let refusals = svc.policies.require(&agent.policy)?.category_reasons(auth.merchant_category.as_deref());
    let precheck = if payment.status != PaymentStatus::Succeeded
        || auth.amount_minor <= 0
        || payment.currency != auth.currency
    {
        Err(Decline::UnauthorizedMerchant)
    } else if !refusals.is_empty() {
        Err(Decline::for_reasons(refusals.iter().map(|r| r.code)))
    } else {
        Ok(())
    };
    let limit = to_minor(payment.amount.value, payment.currency);
    let (now, auth) = (svc.clock.now(), auth.clone());
    svc.store
        .write(move |tx| {
            Box::pin(async move {
                let asked = IssuedAuthorization {
                    card_token: auth.card_token.clone(),
                    amount_minor: auth.amount_minor,
                    approved: false,
                };
                if let Some(first) = tx.issued_authorization(&auth.token).await? {
                    let same =
                        first.card_token == asked.card_token && first.amount_minor == asked.amount_minor;
                    return Ok(if same && first.approved {
                        Ok(())
                    } else {
                        Err(Decline::UnauthorizedMerchant)
                    });
                }
                let answer = match precheck {
                    Ok(())
                        if tx.issued_card_authorized(&auth.card_token).await? + auth.amount_minor > limit =>
                    {
                        Err(Decline::InsufficientFunds)
                    }
                    other => other,
                };
                let record = IssuedAuthorization { approved: answer.is_ok(), ..asked };
                tx.insert_issued_authorization(&auth.token, &payment.id, &record, &format_ts(now)).await?;
                let event = card_event(
                    "card.authorization",
                    &auth,
                    Some(payment.agent_id.clone()),
                    Some(&payment.id),
                    answer,
                );
                tx.append_audit(event, now).await?;
                Ok(answer)
            })
        })
        .await
}

async fn authorize_standing(
    svc: &Arc<Services>,
    card: &Card,
    auth: &Authorization,
    answer_by: Instant,
) -> Result<Answer> {
    // Zero (account verification) and negative amounts are not purchases a
    // policy can weigh; a negative one would even shrink the reservations.
    if auth.amount_minor <= 0 {
        return Ok(Err(Decline::UnauthorizedMerchant));
    }
    let agent = svc.store.agent(&card.agent_id).await?.ok_or(Error::NotFound("agent"))?;
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
    let settlement =
        Settlement::Authorization { provider: ISSUER, transaction_id: auth.token.clone(), answer_by };
    let actor = Actor::system(format!("card:{}", card.card_token));
    let payment = match payments::create(svc, &agent, &actor, &idem, input, settlement).await? {
        Created::New(p) | Created::Replayed(p) => p,
    };
    Ok(match payment.status {
        PaymentStatus::Succeeded => Ok(()),
        _ => Err(Decline::for_reasons(payment.decision.reasons.iter().map(|r| r.code))),
    })
}
