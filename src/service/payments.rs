//! Deciding payments: policy evaluation and reservation as one transaction.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::json;

use super::Services;
use crate::audit::{Actor, AuditEvent};
use crate::clock::format_ts;
use crate::error::{Error, ErrorCode, Result};
use crate::ids;
use crate::model::{Agent, ApprovalSummary, KillSwitch, Money, Payment, PaymentStatus, ProviderRef};
use crate::money::{format_exact, to_counter, Currency};
use crate::policy::{
    AgentFacts, Channel, Crossing, Decision, Outcome, PaymentFacts, Policy, PolicySet, Snapshot,
    SpendSnapshot, VelocityRule, Verdict, WindowKeys,
};
use crate::store::{NewPayment, SpendQuery, WriteTx};

/// A payment request after parsing at the edge: amounts already validated
/// for the currency's precision, identifiers lower-cased.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentInput {
    pub amount: Decimal,
    pub fee: Decimal,
    pub currency: Currency,
    pub merchant_id: String,
    pub merchant_category: Option<String>,
    pub rail: Option<String>,
    pub description: Option<String>,
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

/// The caller's idempotency key and the hash of the request it came with.
#[derive(Debug, Clone)]
pub struct Idempotency {
    pub key: String,
    pub request_hash: String,
}

/// How the money of an approved payment moves.
#[derive(Debug, Clone)]
pub enum Settlement {
    /// Forwarded to the provider the policy maps the rail to.
    Forward,
    /// A card network authorization that is waiting for this answer (Lithic
    /// ASA): an approval is settled at once under the authorization's token,
    /// and a payment that would need a human is denied (`approval_required`),
    /// because the network cannot wait for one. Past `answer_by` the network
    /// has been told no, so nothing is decided or written any more.
    Authorization { provider: &'static str, transaction_id: String, answer_by: std::time::Instant },
}

impl Settlement {
    fn channel(&self) -> Channel {
        match self {
            Settlement::Forward => Channel::Request,
            Settlement::Authorization { .. } => Channel::CardAuthorization,
        }
    }
}

pub enum Created {
    New(Payment),
    /// Same key, same request: the payment the first request created.
    Replayed(Payment),
}

/// Everything evaluation needs that follows from the policy and the input.
struct Prepared {
    policy: Arc<Policy>,
    agent: AgentFacts,
    facts: PaymentFacts,
    /// What the agent declared, when the merchant directory said otherwise.
    declared_instead: Option<String>,
    windows: WindowKeys,
    velocity: Vec<VelocityRule>,
}

impl Prepared {
    fn new(
        policies: &PolicySet,
        agent: &Agent,
        input: &PaymentInput,
        now: DateTime<Utc>,
    ) -> Result<Prepared> {
        // Fail closed: an agent whose policy is gone cannot be evaluated.
        let policy = super::require(policies, &agent.policy)?;
        // The directory's category, not the agent's word, is evaluated (and
        // read spend for): a casino cannot pass as `cloud`.
        let categorized = policy.directory.categorize(&input.merchant_id, input.merchant_category.as_deref());
        let facts = PaymentFacts {
            amount: input.amount,
            fee: input.fee,
            currency: input.currency,
            merchant_id: input.merchant_id.clone(),
            merchant_category: categorized.category,
            rail: input.rail.clone().unwrap_or_else(|| policy.rails.first().cloned().unwrap_or_default()),
        };
        let agent = AgentFacts { trust_level: agent.trust_level, frozen: agent.frozen };
        let windows = policy.window_keys(now);
        let velocity = policy.velocity_rules(&agent);
        Ok(Prepared {
            policy,
            agent,
            facts,
            declared_instead: categorized.declared_instead,
            windows,
            velocity,
        })
    }

    fn spend_query<'a>(&'a self, agent_id: &'a str, now: DateTime<Utc>) -> SpendQuery<'a> {
        SpendQuery {
            agent_id,
            windows: &self.windows,
            merchant_id: &self.facts.merchant_id,
            category: self.facts.merchant_category.as_deref(),
            velocity: &self.velocity,
            now,
        }
    }

    /// The decision on this payment as of `spend` and the kill switch.
    fn decide(
        &self,
        spend: &SpendSnapshot,
        halted: Option<&KillSwitch>,
        now: DateTime<Utc>,
        channel: Channel,
    ) -> Verdict {
        let at = Snapshot { agent: self.agent, spend, halted: halted.map(|k| k.reason.as_str()), now };
        self.policy.decide(&self.facts, &at, channel)
    }
}

/// Decides a payment and, unless denied, reserves its amount: the spend
/// snapshot, the decision and the reservation share one write transaction,
/// so concurrent requests can never together exceed a limit.
pub async fn create(
    svc: &Services,
    caller: &Agent,
    actor: &Actor,
    idem: &Idempotency,
    input: PaymentInput,
    settlement: Settlement,
) -> Result<Created> {
    let (caller, actor, idem) = (caller.clone(), actor.to_owned(), idem.clone());
    let agent_id = caller.id.clone();
    let (clock, policies, forwarder) = (svc.clock.clone(), svc.policies.current(), svc.forwarder.clone());
    let started = std::time::Instant::now();
    // Validated: every refusal (policy unavailable, idempotency conflict)
    // comes before the first write, so the hot path needs no savepoint;
    // and it touches this agent's data only, so on PostgreSQL it commits
    // beside other agents' decisions.
    let created = svc
        .store
        .write_for_agent(&agent_id, move |tx| {
            Box::pin(async move {
                // Time, agent and spend are read under the write lock: they
                // are those of the moment the decision commits, and of two
                // concurrent requests with the same key exactly one creates
                // the payment. The spend windows come from the agent as it
                // authenticated; one read serves the common case.
                if let Settlement::Authorization { answer_by, .. } = &settlement {
                    if std::time::Instant::now() >= *answer_by {
                        return Err(Error::Timeout { secs: 0 });
                    }
                }
                let now = clock.now();
                let prep = Prepared::new(&policies, &caller, &input, now)?;
                let ctx = tx
                    .decision_context(&idem.key, &prep.spend_query(&caller.id, now))
                    .await?
                    .ok_or(Error::Unauthenticated("agent no longer exists"))?;
                if let Some((hash, payment_id)) = ctx.replay {
                    let payment = tx.payment(Some(&caller.id), &payment_id).await?;
                    return replayed(&hash, &idem, payment);
                }
                let (prep, spend) =
                    if ctx.agent.policy == caller.policy && ctx.agent.trust_level == caller.trust_level {
                        // Same windows; only the frozen flag may have changed.
                        let agent = AgentFacts { frozen: ctx.agent.frozen, ..prep.agent };
                        (Prepared { agent, ..prep }, ctx.spend)
                    } else {
                        // Re-bound or re-levelled since it authenticated: read
                        // the spend its current policy looks at.
                        let prep = Prepared::new(&policies, &ctx.agent, &input, now)?;
                        let spend = tx.spend(&prep.spend_query(&caller.id, now)).await?;
                        (prep, spend)
                    };
                let verdict = prep.decide(&spend, tx.kill_switch().as_ref(), now, settlement.channel());
                let reserved_units = to_counter(verdict.reserved);
                let reserved_keys = prep.spend_query(&caller.id, now).counter_keys();
                let mut payment = new_payment(&prep, &caller.id, input, verdict.decision, now);
                if let (Settlement::Authorization { provider, transaction_id, .. }, Some(p)) =
                    (&settlement, &mut payment.provider)
                {
                    // The issuer that asked decides where it settles, not the
                    // rail mapping, and nothing is forwarded: the reference
                    // is the network's authorization, not a `fwd_` one.
                    p.name = (*provider).to_owned();
                    p.reference.clone_from(transaction_id);
                }
                // An approved payment is forwarded by this gateway: claimed
                // for its forwarder now, so no sweep sends it a second time.
                let claim = (payment.status == PaymentStatus::Approved
                    && matches!(settlement, Settlement::Forward))
                .then(|| forwarder.claim(now));
                let new = NewPayment {
                    payment: &payment,
                    idempotency_key: &idem.key,
                    request_hash: &idem.request_hash,
                    reserved_units,
                    reserved_keys: &reserved_keys,
                    claim: claim.as_ref(),
                };
                tx.insert_payment(&new).await?;
                let event = decision_event(&payment, &actor);
                tx.emit(event.kind, &payment, now);
                tx.append_audit(event, now).await?;
                for crossing in verdict.crossings {
                    let warning = SpendThresholdWarning::new(&payment, crossing, prep.policy.currency);
                    tx.emit("spend.threshold_warning", &warning, now);
                }
                if let Settlement::Authorization { provider, transaction_id, .. } = settlement {
                    if payment.status == PaymentStatus::Approved {
                        settle_authorization(tx, &mut payment, provider, transaction_id, now).await?;
                    }
                }
                Ok(Created::New(payment))
            })
        })
        .await?;
    if let Created::New(p) = &created {
        // The first reason is the one that decided (the kill switch, or the
        // first failed rule); its wire name is the label.
        let reason = p.decision.reasons.first().and_then(|r| serde_json::to_value(r.code).ok());
        let reason = reason.as_ref().and_then(serde_json::Value::as_str).unwrap_or("none").to_owned();
        metrics::counter!("purser_decisions_total", "outcome" => p.status.as_str(), "reason" => reason)
            .increment(1);
        metrics::histogram!("purser_decision_seconds").record(started.elapsed().as_secs_f64());
        if p.declared_category.is_some() {
            metrics::counter!("purser_declared_category_mismatch_total").increment(1);
        }
        if p.status == PaymentStatus::Denied {
            super::alerts::on_denial(svc, &p.agent_id).await;
        }
        if p.status == PaymentStatus::Approved {
            svc.forwarder.notify(p.clone());
        }
    }
    Ok(created)
}

/// Records an approved card authorization as `succeeded`: the card
/// network moves the money once purser answers, so there is nothing to
/// forward. Same events and audit records as a forwarded success.
async fn settle_authorization(
    tx: &mut WriteTx,
    payment: &mut Payment,
    provider: &str,
    transaction_id: String,
    now: DateTime<Utc>,
) -> Result<()> {
    tx.record_successes(&[(payment.id.clone(), transaction_id.clone())], None, now).await?;
    payment.status = PaymentStatus::Succeeded;
    if let Some(p) = payment.provider.as_mut() {
        p.transaction_id = Some(transaction_id.clone());
    }
    tx.emit("payment.succeeded", &*payment, now);
    let event = AuditEvent::new("payment.succeeded", format!("provider:{provider}"))
        .agent(&payment.agent_id)
        .subject(&payment.id)
        .data(json!({ "transaction_id": transaction_id }));
    tx.append_audit(event, now).await?;
    Ok(())
}

/// Decides a payment as [`create`] would at this moment (the agent's
/// frozen state, its spend and the kill switch included) without changing
/// anything: no payment, no reservation, no audit record.
pub async fn evaluate(svc: &Services, agent_id: &str, input: PaymentInput) -> Result<Decision> {
    let now = svc.clock.now();
    let agent = svc.store.agent(agent_id).await?.ok_or(Error::Unauthenticated("agent no longer exists"))?;
    let prep = Prepared::new(&svc.policies.current(), &agent, &input, now)?;
    let spend = svc.store.spend(&prep.spend_query(agent_id, now)).await?;
    let halted = svc.store.current_kill_switch().await?;
    Ok(prep.decide(&spend, halted.as_ref(), now, Channel::Request).decision)
}

fn replayed(stored_hash: &str, idem: &Idempotency, payment: Option<Payment>) -> Result<Created> {
    if stored_hash != idem.request_hash {
        return Err(Error::conflict(
            ErrorCode::IdempotencyConflict,
            "this Idempotency-Key was already used with a different request body",
        ));
    }
    // The key is a column of the payment row: one without the other is
    // corruption, not a client error.
    let payment = payment.ok_or_else(|| {
        Error::Store(crate::store::StoreError::Internal("idempotency key without its payment".into()))
    })?;
    Ok(Created::Replayed(payment))
}

fn new_payment(
    prep: &Prepared,
    agent_id: &str,
    input: PaymentInput,
    decision: Decision,
    now: DateTime<Utc>,
) -> Payment {
    let ulid = ids::new("pay");
    let created_at = format_ts(now);
    let status = match decision.outcome {
        Outcome::Approve => PaymentStatus::Approved,
        Outcome::Deny => PaymentStatus::Denied,
        Outcome::RequireApproval => PaymentStatus::PendingApproval,
    };
    let provider = (status == PaymentStatus::Approved)
        .then(|| ProviderRef::forward(prep.policy.provider_for(&prep.facts.rail)));
    let approval = (status == PaymentStatus::PendingApproval).then(|| {
        let timeout =
            chrono::Duration::from_std(prep.policy.approval_timeout).unwrap_or(chrono::Duration::days(1));
        ApprovalSummary {
            id: ids::new("apv"),
            status: "pending".to_owned(),
            approvals_required: prep.policy.approvals_required,
            expires_at: format_ts(now + timeout),
        }
    });
    let money = |value| Money { value, currency: input.currency };
    Payment {
        id: ulid,
        agent_id: agent_id.to_owned(),
        status,
        amount: money(input.amount),
        fee: money(input.fee),
        currency: input.currency,
        merchant_id: input.merchant_id,
        merchant_category: prep.facts.merchant_category.clone(),
        declared_category: prep.declared_instead.clone(),
        rail: prep.facts.rail.clone(),
        description: input.description,
        metadata: input.metadata,
        decision,
        provider,
        approval,
        failure: None,
        updated_at: created_at.clone(),
        created_at,
    }
}

/// The `data` of `spend.threshold_warning`: a payment moved the agent's
/// reserved spend in a window across 80% of the window's limit. Sent once
/// per crossing (not for later payments in the same window), one event per
/// window crossed.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SpendThresholdWarning {
    #[schema(pattern = "^agt_[0-9a-z]{26}$")]
    agent_id: String,
    /// The payment that crossed the mark (approved or pending approval).
    #[schema(pattern = "^pay_[0-9a-z]{26}$")]
    payment_id: String,
    /// The calendar window, in the policy's time zone: `daily`, `weekly` or
    /// `monthly`.
    #[schema(pattern = "^(daily|weekly|monthly)$")]
    window: &'static str,
    /// Reserved spend in the window including this payment (amount + fee),
    /// in the policy's base currency.
    #[schema(value_type = crate::model::DecimalString)]
    spent: String,
    /// The window's limit in effect for the agent, in the policy's base
    /// currency.
    #[schema(value_type = crate::model::DecimalString)]
    limit: String,
    currency: Currency,
}

impl SpendThresholdWarning {
    fn new(payment: &Payment, crossing: Crossing, currency: Currency) -> SpendThresholdWarning {
        SpendThresholdWarning {
            agent_id: payment.agent_id.clone(),
            payment_id: payment.id.clone(),
            window: crossing.window,
            spent: format_exact(crossing.spent, currency),
            limit: format_exact(crossing.limit, currency),
            currency,
        }
    }
}

fn decision_event(p: &Payment, actor: &Actor) -> AuditEvent {
    let kind = match p.status {
        PaymentStatus::Approved => "payment.approved",
        PaymentStatus::PendingApproval => "payment.pending_approval",
        _ => "payment.denied",
    };
    AuditEvent::by(kind, actor).agent(&p.agent_id).subject(&p.id).data(json!({
        "amount": p.amount.to_string(),
        "fee": p.fee.to_string(),
        "currency": p.currency,
        "merchant_id": p.merchant_id,
        "merchant_category": p.merchant_category,
        "rail": p.rail,
        "decision": p.decision,
    }))
}
