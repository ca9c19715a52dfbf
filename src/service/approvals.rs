//! Human approval of payments above a policy's threshold: approvers, votes,
//! quorum, rejection and expiry.
//!
//! Every step runs as one write job, so an approve and a deny arriving
//! together are decided one after the other and exactly one of them closes
//! the approval; the other finds it closed and answers `409`.

use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

use super::{Act, Services};
use crate::audit::{Actor, AuditEvent};
use crate::auth::{self, APPROVER_TOKEN_PREFIX};
use crate::clock::{format_ts, parse_ts};
use crate::error::{Error, ErrorCode, OrNotFound, Result};
use crate::ids;
use crate::model::{Approval, Approver, Payment, PaymentStatus, ProviderRef};
use crate::store::{ApprovalState, WriteTx};

pub struct IssuedApprover {
    pub approver: Approver,
    /// Shown once, at creation.
    pub token: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Approve,
    Deny,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Verdict::Approve => "approve",
            Verdict::Deny => "deny",
        }
    }
}

/// How a vote ended, decided inside the write job.
enum Voted {
    /// Recorded; the approval is still pending (quorum not reached) or was
    /// closed by this vote.
    Counted,
    /// Quorum reached: the payment is approved and must be forwarded.
    Approved(Box<Payment>),
    /// The approval was already closed (approved, rejected or expired).
    NotPending(String),
    /// The deadline had passed; this job expired it.
    Expired,
}

/// The live approver holding `token`, if any: looked up by hash, accepted
/// on a constant-time comparison (API bearer tokens and console sign-in).
pub async fn approver_for_token(svc: &Services, token: &str) -> Result<Option<Approver>> {
    if !token.starts_with(APPROVER_TOKEN_PREFIX) {
        return Ok(None);
    }
    let presented = auth::hash(token);
    Ok(auth::accept(svc.store.approver_by_token_hash(&presented).await?, &presented))
}

pub async fn create_approver(
    svc: &Services,
    actor: &Actor,
    name: String,
    allowed_cidrs: Vec<String>,
) -> Result<IssuedApprover> {
    let token = auth::generate(APPROVER_TOKEN_PREFIX);
    let token_hash = auth::hash(&token);
    let approver = svc
        .audited(actor, move |tx, act| {
            Box::pin(async move {
                let approver = Approver {
                    id: ids::new("apr"),
                    name,
                    allowed_cidrs,
                    created_at: act.ts.clone(),
                    revoked_at: None,
                };
                tx.insert_approver(&approver, &token_hash).await?;
                let data = json!({ "name": approver.name, "allowed_cidrs": approver.allowed_cidrs });
                let event = act.event("approver.created").subject(&approver.id).data(data);
                Ok((approver, event))
            })
        })
        .await?;
    Ok(IssuedApprover { approver, token })
}

pub async fn revoke_approver(svc: &Services, actor: &Actor, id: &str) -> Result<()> {
    let id = id.to_owned();
    svc.audited(actor, move |tx, act| {
        Box::pin(async move {
            if !tx.revoke_approver(&id, &act.ts).await? {
                return Err(Error::NotFound("approver"));
            }
            Ok(((), act.event("approver.revoked").subject(&id)))
        })
    })
    .await
}

/// How audit records name an approver acting from `client`.
pub fn approver_actor(approver: &Approver, client: Option<IpAddr>) -> Actor {
    Actor::new(format!("approver:{}", approver.id), client)
}

/// Records `approver`'s vote. A deny rejects the payment at once; approvals
/// from `approvals_required` distinct approvers approve it and forward it.
pub async fn vote(
    svc: &Arc<Services>,
    approver: &Approver,
    client: Option<IpAddr>,
    approval_id: &str,
    verdict: Verdict,
    comment: Option<String>,
) -> Result<Approval> {
    let (st, approver_id, id) = (svc.clone(), approver.id.clone(), approval_id.to_owned());
    let actor = approver_actor(approver, client);
    let voted = svc
        .audited(&actor, move |tx, act| Box::pin(vote_job(tx, act, st, approver_id, id, verdict, comment)))
        .await?;
    match voted {
        Voted::Counted => {}
        Voted::Approved(payment) => svc.forwarder.notify(*payment),
        Voted::NotPending(status) => {
            return Err(Error::conflict(
                ErrorCode::ApprovalNotPending,
                format!("this approval is already {status}"),
            ));
        }
        Voted::Expired => {
            return Err(Error::conflict(
                ErrorCode::ApprovalExpired,
                "this approval expired before it was decided",
            ));
        }
    }
    svc.store.approval(approval_id).await?.or_not_found("approval")
}

fn kill_switch_engaged() -> Error {
    Error::conflict(
        ErrorCode::KillSwitchEngaged,
        "the kill switch is engaged: nothing can be approved until it is released",
    )
}

/// Answers how the vote ended and the record that closed the approval, if
/// it did (the vote's own record is appended first).
async fn vote_job(
    tx: &mut WriteTx,
    act: &Act,
    svc: Arc<Services>,
    approver_id: String,
    approval_id: String,
    verdict: Verdict,
    comment: Option<String>,
) -> Result<(Voted, Option<AuditEvent>)> {
    let approval = tx.approval_state(&approval_id).await?.or_not_found("approval")?;
    if approval.status != "pending" {
        return Ok((Voted::NotPending(approval.status), None));
    }
    if is_overdue(&approval, act.now) {
        expire(tx, &approval_id, &approval, act.now).await?;
        return Ok((Voted::Expired, None));
    }
    // Everything that can fail for a reason other than the store is checked
    // before anything is written (see `store::writer` on failed jobs).
    let provider = match verdict {
        Verdict::Approve => {
            if tx.kill_switch().is_some() {
                return Err(kill_switch_engaged());
            }
            let payment = tx.payment(None, &approval.payment_id).await?.or_not_found("payment")?;
            Some(provider_for(&svc, &payment)?)
        }
        Verdict::Deny => None,
    };
    let first =
        tx.insert_vote(&approval_id, &approver_id, verdict.as_str(), comment.as_deref(), &act.ts).await?;
    if !first {
        // One approver counts once: a second vote changes nothing.
        return Ok((Voted::Counted, None));
    }
    let event =
        act.event("approval.vote").agent(&approval.agent_id).subject(&approval_id).data(
            json!({ "decision": verdict.as_str(), "comment": comment, "payment_id": approval.payment_id }),
        );
    tx.append_audit(event, act.now).await?;

    let closed = |kind| act.event(kind).agent(&approval.agent_id).subject(&approval_id);
    match verdict {
        Verdict::Deny => {
            tx.close_approval(&approval, &approval_id, PaymentStatus::Rejected, None, &act.ts).await?;
            emit_payment(tx, "approval.rejected", &approval.payment_id, act.now).await?;
            let event = closed("approval.rejected").data(json!({ "payment_id": approval.payment_id }));
            Ok((Voted::Counted, Some(event)))
        }
        Verdict::Approve if tx.approve_votes(&approval_id).await? >= approval.approvals_required => {
            let provider = provider.expect("computed for approve votes");
            let claim = svc.forwarder.claim(act.now);
            let forward = Some((&provider, &claim));
            tx.close_approval(&approval, &approval_id, PaymentStatus::Approved, forward, &act.ts).await?;
            let event = closed("approval.approved")
                .data(json!({ "payment_id": approval.payment_id, "provider": provider.name }));
            let payment = emit_payment(tx, "approval.approved", &approval.payment_id, act.now).await?;
            Ok((Voted::Approved(Box::new(payment)), Some(event)))
        }
        Verdict::Approve => Ok((Voted::Counted, None)),
    }
}

/// Emits webhook event `kind` carrying the payment record as it now is.
async fn emit_payment(tx: &mut WriteTx, kind: &str, payment_id: &str, now: DateTime<Utc>) -> Result<Payment> {
    let payment = tx.payment(None, payment_id).await?.or_not_found("payment")?;
    tx.emit(kind, &payment, now);
    Ok(payment)
}

/// Where an approved payment goes: the provider its policy maps the rail to.
fn provider_for(svc: &Services, payment: &Payment) -> Result<ProviderRef> {
    let policy = svc.policies.require(&payment.decision.policy)?;
    Ok(ProviderRef::forward(policy.provider_for(&payment.rail)))
}

fn is_overdue(approval: &ApprovalState, now: DateTime<Utc>) -> bool {
    // An unreadable deadline is treated as passed: fail closed.
    parse_ts(&approval.expires_at).is_none_or(|deadline| deadline <= now)
}

async fn expire(
    tx: &mut WriteTx,
    approval_id: &str,
    approval: &ApprovalState,
    now: DateTime<Utc>,
) -> Result<()> {
    if tx.close_approval(approval, approval_id, PaymentStatus::Expired, None, &format_ts(now)).await? {
        emit_payment(tx, "approval.expired", &approval.payment_id, now).await?;
        let event = AuditEvent::new("approval.expired", "system")
            .agent(&approval.agent_id)
            .subject(approval_id)
            .data(json!({ "payment_id": approval.payment_id, "expires_at": approval.expires_at }));
        tx.append_audit(event, now).await?;
    }
    Ok(())
}

/// Closes every pending approval of a frozen agent as `rejected`, releasing
/// its reservation: nobody can approve a frozen agent's payment any more.
/// Returns how many it closed.
pub(crate) async fn cancel_for_frozen(tx: &mut WriteTx, agent_id: &str, now: DateTime<Utc>) -> Result<usize> {
    let mut cancelled = 0;
    for id in tx.pending_approvals_of(agent_id).await? {
        let Some(approval) = tx.approval_state(&id).await? else { continue };
        if tx.close_approval(&approval, &id, PaymentStatus::Rejected, None, &format_ts(now)).await? {
            emit_payment(tx, "approval.rejected", &approval.payment_id, now).await?;
            let event = AuditEvent::new("approval.cancelled", "system")
                .agent(agent_id)
                .subject(&id)
                .data(json!({ "payment_id": approval.payment_id, "reason": "agent_frozen" }));
            tx.append_audit(event, now).await?;
            cancelled += 1;
        }
    }
    Ok(cancelled)
}

/// Expires every pending approval whose deadline has passed, releasing its
/// reservation. Run at start (deadlines that passed while the gateway was
/// down) and periodically; returns how many it expired.
pub async fn expire_overdue(svc: &Arc<Services>) -> Result<usize> {
    let now = svc.clock.now();
    let ids = svc.store.overdue_approvals(now, 500).await?;
    if ids.is_empty() {
        return Ok(0);
    }
    let st = svc.clone();
    svc.store
        .write(move |tx| {
            Box::pin(async move {
                let now = st.clock.now();
                let mut expired = 0;
                for id in ids {
                    // Re-read under the write lock: a vote may have closed it.
                    let Some(approval) = tx.approval_state(&id).await? else { continue };
                    if approval.status == "pending" && is_overdue(&approval, now) {
                        expire(tx, &id, &approval, now).await?;
                        expired += 1;
                    }
                }
                Ok(expired)
            })
        })
        .await
}

/// The agent's reserved spend in today's daily window (approved,
/// pending-approval, processing and succeeded payments; the pending payment
/// under review included) against its effective daily limit, in the base
/// currency of the agent's current policy.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SpendToday {
    #[schema(value_type = crate::model::DecimalString)]
    pub spent: String,
    /// The effective daily limit (from the policy or its trust-level ladder
    /// row); null when none applies.
    #[schema(value_type = Option<crate::model::DecimalString>)]
    pub limit: Option<String>,
    #[schema(value_type = crate::money::Currency)]
    pub currency: String,
}

pub async fn spend_today(svc: &Services, agent_id: &str) -> Result<SpendToday> {
    let (today, currency) = super::allowance::today(svc, agent_id).await?;
    Ok(SpendToday { spent: today.spent, limit: today.limit, currency: currency.code().to_owned() })
}
