//! Approvers, approval requests, votes and console sessions.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::payments::{payment_by_id, Claim};
use super::{from_json, query, to_json, Result, Slice, Store, StoreError, WriteTx};
use crate::clock::format_ts;
use crate::model::{AgentRef, Approval, Approver, PaymentStatus, ProviderRef, Vote};

const APPROVAL_SELECT: &str = "SELECT ap.id, ap.status, ap.approvals_required, ap.expires_at, \
     ap.created_at, ap.decided_at, ap.payment_id, ag.id AS agent_id, ag.name AS agent_name \
     FROM approvals ap JOIN agents ag ON ag.id = ap.agent_id";

/// The state of an approval that deciding it depends on.
#[derive(Debug, Clone)]
pub struct ApprovalState {
    pub status: String,
    pub approvals_required: u32,
    pub expires_at: String,
    pub payment_id: String,
    pub agent_id: String,
}

/// A signed-in console user.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    pub approver: Approver,
    pub csrf_token: String,
}

const APPROVER_COLUMNS: &str = "id, name, allowed_cidrs, created_at, revoked_at";

fn approver_from_row(row: &AnyRow) -> Result<Approver> {
    Ok(Approver {
        id: row.get("id"),
        name: row.get("name"),
        allowed_cidrs: from_json("allowed_cidrs", row.get("allowed_cidrs"))?,
        created_at: row.get("created_at"),
        revoked_at: row.get("revoked_at"),
    })
}

/// Loads full approvals (payment, agent, votes) for rows of APPROVAL_SELECT.
async fn approvals_from_rows(conn: &mut AnyConnection, rows: Vec<AnyRow>) -> Result<Vec<Approval>> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let id: String = row.get("id");
        let payment_id: String = row.get("payment_id");
        let payment = payment_by_id(&mut *conn, None, &payment_id)
            .await?
            .ok_or_else(|| StoreError::Internal(format!("approval {id} without payment {payment_id}")))?;
        let votes = query(
            "SELECT v.approver_id, r.name, v.decision, v.comment, v.created_at FROM approval_votes v \
             JOIN approvers r ON r.id = v.approver_id WHERE v.approval_id = ? ORDER BY v.created_at",
        )
        .bind(&id)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|v| Vote {
            approver_id: v.get("approver_id"),
            approver_name: v.get("name"),
            decision: v.get("decision"),
            comment: v.get("comment"),
            at: v.get("created_at"),
        })
        .collect();
        out.push(Approval {
            id,
            status: row.get("status"),
            approvals_required: row.get::<i64, _>("approvals_required") as u32,
            expires_at: row.get("expires_at"),
            created_at: row.get("created_at"),
            decided_at: row.get("decided_at"),
            votes,
            agent: AgentRef { id: row.get("agent_id"), name: row.get("agent_name") },
            payment,
        });
    }
    Ok(out)
}

impl Store {
    /// Oldest first.
    pub async fn approvers(&self, page: Slice<'_>) -> Result<Vec<Approver>> {
        let sql = format!(
            "SELECT {APPROVER_COLUMNS} FROM approvers WHERE (? IS NULL OR id > ?) ORDER BY id LIMIT ?"
        );
        let rows =
            query(&sql).bind(page.after).bind(page.after).bind(page.limit()).fetch_all(&self.read).await?;
        rows.iter().map(approver_from_row).collect()
    }

    /// A live (not revoked) approver by the SHA-256 of its token.
    pub async fn approver_by_token_hash(&self, token_hash: &str) -> Result<Option<(Approver, String)>> {
        let row = query(
            "SELECT id, name, allowed_cidrs, created_at, revoked_at, token_hash FROM approvers \
             WHERE token_hash = ? AND revoked_at IS NULL",
        )
        .bind(token_hash)
        .fetch_optional(&self.read)
        .await?;
        row.map(|r| Ok((approver_from_row(&r)?, r.get("token_hash")))).transpose()
    }

    /// Approvals with `status`, pending ones soonest-expiring first, decided
    /// ones most recent first (ties broken by id, so pages are stable).
    pub async fn approvals(&self, status: &str, page: Slice<'_>) -> Result<Vec<Approval>> {
        let (key, order, past) = match status {
            "pending" => ("expires_at", "ASC", ">"),
            _ => ("decided_at", "DESC", "<"),
        };
        let sql = format!(
            "{APPROVAL_SELECT} WHERE ap.status = ? AND (? IS NULL OR (ap.{key}, ap.id) {past} \
             (SELECT {key}, id FROM approvals WHERE id = ?)) ORDER BY ap.{key} {order}, ap.id {order} LIMIT ?"
        );
        let mut conn = self.read.acquire().await?;
        let rows = query(&sql)
            .bind(status)
            .bind(page.after)
            .bind(page.after)
            .bind(page.limit())
            .fetch_all(&mut *conn)
            .await?;
        approvals_from_rows(&mut conn, rows).await
    }

    pub async fn approval(&self, id: &str) -> Result<Option<Approval>> {
        let sql = format!("{APPROVAL_SELECT} WHERE ap.id = ?");
        let mut conn = self.read.acquire().await?;
        let rows = query(&sql).bind(id).fetch_all(&mut *conn).await?;
        Ok(approvals_from_rows(&mut conn, rows).await?.pop())
    }

    /// Pending approvals whose deadline is at or before `now`.
    pub async fn overdue_approvals(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<String>> {
        let rows = query("SELECT id FROM approvals WHERE status = 'pending' AND expires_at <= ? LIMIT ?")
            .bind(format_ts(now))
            .bind(i64::from(limit))
            .fetch_all(&self.read)
            .await?;
        Ok(rows.iter().map(|r| r.get("id")).collect())
    }

    /// The live session whose id hashes to `id_hash`, if not expired and its
    /// approver not revoked.
    pub async fn console_session(&self, id_hash: &str, now: DateTime<Utc>) -> Result<Option<ConsoleSession>> {
        let row = query(
            "SELECT r.id, r.name, r.allowed_cidrs, r.created_at, r.revoked_at, s.csrf_token FROM console_sessions s \
             JOIN approvers r ON r.id = s.approver_id \
             WHERE s.id_hash = ? AND s.expires_at > ? AND r.revoked_at IS NULL",
        )
        .bind(id_hash)
        .bind(format_ts(now))
        .fetch_optional(&self.read)
        .await?;
        row.map(|r| Ok(ConsoleSession { approver: approver_from_row(&r)?, csrf_token: r.get("csrf_token") }))
            .transpose()
    }
}

impl WriteTx {
    pub async fn insert_approver(&mut self, approver: &Approver, token_hash: &str) -> Result<()> {
        query(
            "INSERT INTO approvers (id, name, allowed_cidrs, token_hash, created_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&approver.id)
        .bind(&approver.name)
        .bind(to_json(&approver.allowed_cidrs))
        .bind(token_hash)
        .bind(&approver.created_at)
        .execute(self.write())
        .await?;
        Ok(())
    }

    /// Gives the live approver named `name` a new token (dev mode); `None` if
    /// there is no such approver.
    pub async fn replace_approver_token(&mut self, name: &str, token_hash: &str) -> Result<Option<Approver>> {
        let row = query(
            "UPDATE approvers SET token_hash = ? WHERE id = \
             (SELECT id FROM approvers WHERE name = ? AND revoked_at IS NULL ORDER BY id LIMIT 1) \
             RETURNING id, name, allowed_cidrs, created_at, revoked_at",
        )
        .bind(token_hash)
        .bind(name)
        .fetch_optional(self.write())
        .await?;
        row.as_ref().map(approver_from_row).transpose()
    }

    /// Revokes a live approver and ends its console sessions.
    pub async fn revoke_approver(&mut self, id: &str, now: &str) -> Result<bool> {
        let done = query("UPDATE approvers SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(self.write())
            .await?;
        query("DELETE FROM console_sessions WHERE approver_id = ?").bind(id).execute(self.write()).await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn approval_state(&mut self, id: &str) -> Result<Option<ApprovalState>> {
        let row = query(
            "SELECT status, approvals_required, expires_at, payment_id, agent_id FROM approvals WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(self.read())
        .await?;
        Ok(row.map(|r| ApprovalState {
            status: r.get("status"),
            approvals_required: r.get::<i64, _>("approvals_required") as u32,
            expires_at: r.get("expires_at"),
            payment_id: r.get("payment_id"),
            agent_id: r.get("agent_id"),
        }))
    }

    /// Records a vote; `false` if this approver already voted (counts once).
    pub async fn insert_vote(
        &mut self,
        approval_id: &str,
        approver_id: &str,
        decision: &str,
        comment: Option<&str>,
        now: &str,
    ) -> Result<bool> {
        let done = query(
            "INSERT INTO approval_votes (approval_id, approver_id, decision, comment, created_at) \
             VALUES (?, ?, ?, ?, ?) ON CONFLICT (approval_id, approver_id) DO NOTHING",
        )
        .bind(approval_id)
        .bind(approver_id)
        .bind(decision)
        .bind(comment)
        .bind(now)
        .execute(self.write())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Distinct approvers who voted to approve.
    pub async fn approve_votes(&mut self, approval_id: &str) -> Result<u32> {
        let row =
            query("SELECT COUNT(*) AS n FROM approval_votes WHERE approval_id = ? AND decision = 'approve'")
                .bind(approval_id)
                .fetch_one(self.read())
                .await?;
        Ok(row.get::<i64, _>("n") as u32)
    }

    /// Ids of `agent_id`'s pending approvals.
    pub async fn pending_approvals_of(&mut self, agent_id: &str) -> Result<Vec<String>> {
        let rows = query("SELECT id FROM approvals WHERE agent_id = ? AND status = 'pending'")
            .bind(agent_id)
            .fetch_all(self.read())
            .await?;
        Ok(rows.iter().map(|r| r.get("id")).collect())
    }

    /// Closes a pending approval and moves its payment out of
    /// `pending_approval`: to `approved` with `forward` (its provider and
    /// the forward claim; the reservation is kept), or to
    /// `rejected`/`expired` (the reservation is released by the
    /// `payments_release` trigger). `false` if it was no longer pending.
    pub async fn close_approval(
        &mut self,
        state: &ApprovalState,
        approval_id: &str,
        to: PaymentStatus,
        forward: Option<(&ProviderRef, &Claim)>,
        now: &str,
    ) -> Result<bool> {
        let approval_status = match to {
            PaymentStatus::Approved => "approved",
            PaymentStatus::Rejected => "rejected",
            PaymentStatus::Expired => "expired",
            other => return Err(StoreError::Internal(format!("cannot close an approval as {other:?}"))),
        };
        let done =
            query("UPDATE approvals SET status = ?, decided_at = ? WHERE id = ? AND status = 'pending'")
                .bind(approval_status)
                .bind(now)
                .bind(approval_id)
                .execute(self.write())
                .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        let keep = to == PaymentStatus::Approved;
        let (provider, claim) = (forward.map(|f| f.0), forward.map(|f| f.1));
        query(
            "UPDATE payments SET status = ?, provider = ?, provider_reference = ?, updated_at = ?, \
             claim = ?, claimed_until = ?, reserved_units = CASE WHEN ? THEN reserved_units ELSE 0 END \
             WHERE id = ? AND status = 'pending_approval'",
        )
        .bind(to.as_str())
        .bind(provider.map(|p| &p.name))
        .bind(provider.map(|p| &p.reference))
        .bind(now)
        .bind(claim.map(|c| &c.token))
        .bind(claim.map(|c| &c.until))
        .bind(keep)
        .bind(&state.payment_id)
        .execute(self.write())
        .await?;
        Ok(true)
    }

    pub async fn insert_console_session(
        &mut self,
        id_hash: &str,
        approver_id: &str,
        csrf_token: &str,
        now: &str,
        expires_at: &str,
    ) -> Result<()> {
        query(
            "INSERT INTO console_sessions (id_hash, approver_id, csrf_token, created_at, expires_at) \
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(id_hash)
        .bind(approver_id)
        .bind(csrf_token)
        .bind(now)
        .bind(expires_at)
        .execute(self.write())
        .await?;
        Ok(())
    }

    pub async fn delete_console_session(&mut self, id_hash: &str) -> Result<()> {
        query("DELETE FROM console_sessions WHERE id_hash = ?").bind(id_hash).execute(self.write()).await?;
        Ok(())
    }
}
