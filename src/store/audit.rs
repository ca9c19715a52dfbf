//! Appending to and reading the hash-chained audit log.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{query, to_json, Backend, Result, Store, WriteTx};
use crate::audit::{AuditEvent, AuditRecord, GENESIS_HASH};
use crate::clock::format_ts;
use crate::ids;

const AUDIT_COLUMNS: &str = "seq, id, at, type, actor, client, agent_id, subject, data, prev_hash, hash";

fn record_from_row(row: &AnyRow) -> AuditRecord {
    AuditRecord {
        seq: row.get("seq"),
        id: row.get("id"),
        at: row.get("at"),
        kind: row.get("type"),
        actor: row.get("actor"),
        client: row.get("client"),
        agent_id: row.get("agent_id"),
        subject: row.get("subject"),
        data: row.get("data"),
        prev_hash: row.get("prev_hash"),
        hash: row.get("hash"),
    }
}

/// An audit record of a concurrent decision, before it has a place in the
/// chain (see [`WriteTx::append_audit`]).
#[derive(Debug, Clone)]
pub(super) struct Unchained {
    id: String,
    at: String,
    kind: String,
    actor: String,
    client: Option<String>,
    agent_id: Option<String>,
    subject: Option<String>,
    data: String,
}

const PENDING_COLUMNS: &str = "id, at, type, actor, client, agent_id, subject, data";

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Records with `seq` greater than this.
    pub after_seq: Option<i64>,
    /// Records at or after this time.
    pub since: Option<String>,
    pub kind: Option<String>,
    pub agent_id: Option<String>,
    pub limit: u32,
}

impl Store {
    /// The newest record's `seq` and hash.
    pub async fn audit_head(&self) -> Result<Option<(i64, String)>> {
        let row = query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|r| (r.get("seq"), r.get("hash"))))
    }

    /// Records in chain order matching `f`.
    pub async fn audit_records(&self, f: &AuditFilter) -> Result<Vec<AuditRecord>> {
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > ? AND (? IS NULL OR at >= ?) \
             AND (? IS NULL OR type = ?) AND (? IS NULL OR agent_id = ?) ORDER BY seq LIMIT ?"
        );
        let rows = query(&sql)
            .bind(f.after_seq.unwrap_or(0))
            .bind(&f.since)
            .bind(&f.since)
            .bind(&f.kind)
            .bind(&f.kind)
            .bind(&f.agent_id)
            .bind(&f.agent_id)
            .bind(i64::from(f.limit))
            .fetch_all(&self.read)
            .await?;
        Ok(rows.iter().map(record_from_row).collect())
    }
}

impl WriteTx {
    /// Appends `event` to the chain, in the same transaction as the change it
    /// describes: if either fails, neither happens. The record is written
    /// with the rest of the batch by [`WriteTx::flush_audit`], one statement
    /// for many records, before the COMMIT.
    ///
    /// A decision running beside others on PostgreSQL (`unchained`) cannot
    /// know the chain's head: its record is committed with it to
    /// `audit_pending`, and the next write holding the lock exclusively
    /// gives it its place (see [`WriteTx::audit_head`]).
    pub async fn append_audit(&mut self, event: AuditEvent, at: DateTime<Utc>) -> Result<()> {
        let record = Unchained {
            id: ids::new("aud"),
            at: format_ts(at),
            kind: event.kind.to_owned(),
            actor: event.actor,
            client: event.client.map(|ip| ip.to_string()),
            agent_id: event.agent_id,
            subject: event.subject,
            data: to_json(&event.data),
        };
        if self.unchained {
            self.pending_unchained.push(record);
            return Ok(());
        }
        let head = self.audit_head().await?;
        self.chain(record, head);
        Ok(())
    }

    /// Places `record` after `head` in the chain (to be inserted with the
    /// batch).
    fn chain(&mut self, r: Unchained, head: Option<(i64, String)>) {
        let (prev_seq, prev_hash) = head.unwrap_or_else(|| (0, GENESIS_HASH.to_owned()));
        let mut record = AuditRecord {
            seq: prev_seq + 1,
            id: r.id,
            at: r.at,
            kind: r.kind,
            actor: r.actor,
            client: r.client,
            agent_id: r.agent_id,
            subject: r.subject,
            data: r.data,
            prev_hash,
            hash: String::new(),
        };
        record.hash = record.expected_hash();
        self.audit_head = Some((record.seq, record.hash.clone()));
        self.pending_audit.push(record);
    }

    /// The chain's head as this transaction sees it (its own appends
    /// included), or `None` for an empty log. The write lock is held for the
    /// whole transaction, so the head read once stays the head; later reads
    /// use the cached one.
    ///
    /// On PostgreSQL the first read also chains the records decisions left
    /// in `audit_pending`, in id order: this transaction holds the write
    /// lock exclusively, so no decision is in flight and every pending
    /// record is committed and visible; the head it answers is the chain's
    /// after them.
    pub async fn audit_head(&mut self) -> Result<Option<(i64, String)>> {
        if self.audit_head.is_none() {
            let head = query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                .fetch_optional(self.read())
                .await?;
            self.audit_head = head.map(|row| (row.get::<i64, _>("seq"), row.get::<String, _>("hash")));
            if self.backend == Backend::Postgres && !self.unchained {
                self.chain_pending().await?;
            }
        }
        Ok(self.audit_head.clone())
    }

    async fn chain_pending(&mut self) -> Result<()> {
        let sql = format!("SELECT {PENDING_COLUMNS} FROM audit_pending ORDER BY id");
        let rows = query(&sql).fetch_all(self.read()).await?;
        let Some(last) = rows.last().map(|r| r.get::<String, _>("id")) else { return Ok(()) };
        query("DELETE FROM audit_pending WHERE id <= ?").bind(last).execute(self.write()).await?;
        for row in rows {
            let record = Unchained {
                id: row.get("id"),
                at: row.get("at"),
                kind: row.get("type"),
                actor: row.get("actor"),
                client: row.get("client"),
                agent_id: row.get("agent_id"),
                subject: row.get("subject"),
                data: row.get("data"),
            };
            let head = self.audit_head.clone();
            self.chain(record, head);
        }
        Ok(())
    }

    /// Writes the records appended since the last flush.
    pub(super) async fn flush_audit(&mut self) -> Result<()> {
        let unchained = std::mem::take(&mut self.pending_unchained);
        self.insert_rows("audit_pending", PENDING_COLUMNS, &unchained, |q, r| {
            q.bind(&r.id)
                .bind(&r.at)
                .bind(&r.kind)
                .bind(&r.actor)
                .bind(&r.client)
                .bind(&r.agent_id)
                .bind(&r.subject)
                .bind(&r.data)
        })
        .await?;
        let pending = std::mem::take(&mut self.pending_audit);
        self.insert_rows("audit_log", AUDIT_COLUMNS, &pending, |q, r| {
            q.bind(r.seq)
                .bind(&r.id)
                .bind(&r.at)
                .bind(&r.kind)
                .bind(&r.actor)
                .bind(&r.client)
                .bind(&r.agent_id)
                .bind(&r.subject)
                .bind(&r.data)
                .bind(&r.prev_hash)
                .bind(&r.hash)
        })
        .await
    }
}
