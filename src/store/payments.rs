//! Payments, idempotency keys, spend counters and approvals.

use chrono::{DateTime, Utc};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use super::agents::{agent_from_row, AGENT_COLUMNS};
use super::{from_json, to_json, Result, Store, StoreError, WriteTx};
use crate::clock::format_ts;
use crate::model::{Agent, ApprovalSummary, Failure, Money, Payment, PaymentStatus, ProviderRef};
use crate::money::{from_counter, from_minor, to_minor, Currency};
use crate::policy::{SpendSnapshot, VelocityRule, WindowKeys};

const PAYMENT_SELECT: &str = "SELECT p.id, p.agent_id, p.status, p.amount_minor, p.fee_minor, \
     p.currency, p.merchant_id, p.merchant_category, p.rail, p.description, p.metadata, \
     p.decision, p.provider, p.provider_reference, p.provider_txn_id, p.failure_code, \
     p.failure_message, p.created_at, p.updated_at, p.reserved_units, p.reserved_keys, \
     a.id AS approval_id, a.status AS approval_status, a.approvals_required, a.expires_at \
     FROM payments p LEFT JOIN approvals a ON a.payment_id = p.id";

/// What a spend snapshot is read for: one agent, one payment's merchant.
#[derive(Debug, Clone)]
pub struct SpendQuery<'a> {
    pub agent_id: &'a str,
    pub windows: &'a WindowKeys,
    pub merchant_id: &'a str,
    pub category: Option<&'a str>,
    pub velocity: &'a [VelocityRule],
    pub now: DateTime<Utc>,
}

impl SpendQuery<'_> {
    /// The counters a reservation for this payment is booked under.
    pub fn counter_keys(&self) -> Vec<String> {
        let mut keys = vec![
            format!("day:{}", self.windows.day),
            format!("week:{}", self.windows.week),
            format!("month:{}", self.windows.month),
            "lifetime".to_owned(),
            format!("merchant:{}", self.merchant_id),
        ];
        if let Some(c) = self.category {
            keys.push(format!("category:{c}"));
        }
        keys
    }
}

/// A payment about to be stored, with the reservation it holds.
#[derive(Debug, Clone)]
pub struct NewPayment<'a> {
    pub payment: &'a Payment,
    pub idempotency_key: &'a str,
    pub request_hash: &'a str,
    /// Counter units held (0 when the decision reserved nothing).
    pub reserved_units: i64,
    pub reserved_keys: &'a [String],
}

/// What a provider said about a forwarded payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardOutcome {
    Succeeded { transaction_id: String },
    Failed { code: String, message: String },
}

#[derive(Debug, Clone, Default)]
pub struct PaymentFilter {
    /// `None` lists every agent's payments (admin).
    pub agent_id: Option<String>,
    pub status: Option<PaymentStatus>,
    /// Only payments with ids below this (the previous page's last id).
    pub before: Option<String>,
    pub limit: u32,
}

fn payment_from_row(row: &SqliteRow) -> Result<Payment> {
    let currency: Currency = row
        .get::<String, _>("currency")
        .parse()
        .map_err(|e| StoreError::Internal(format!("column currency: {e}")))?;
    let status: String = row.get("status");
    let status = status.parse().map_err(|()| StoreError::Internal(format!("column status: {status:?}")))?;
    let money = |column: &str| Money { value: from_minor(row.get(column), currency), currency };
    let provider = row.get::<Option<String>, _>("provider").map(|name| ProviderRef {
        name,
        reference: row.get::<Option<String>, _>("provider_reference").unwrap_or_default(),
        transaction_id: row.get("provider_txn_id"),
    });
    let approval = row.get::<Option<String>, _>("approval_id").map(|id| ApprovalSummary {
        id,
        status: row.get("approval_status"),
        approvals_required: row.get::<i64, _>("approvals_required") as u32,
        expires_at: row.get("expires_at"),
    });
    let failure = row.get::<Option<String>, _>("failure_code").map(|code| Failure {
        code,
        message: row.get::<Option<String>, _>("failure_message").unwrap_or_default(),
    });
    Ok(Payment {
        id: row.get("id"),
        agent_id: row.get("agent_id"),
        status,
        amount: money("amount_minor"),
        fee: money("fee_minor"),
        currency,
        merchant_id: row.get("merchant_id"),
        merchant_category: row.get("merchant_category"),
        rail: row.get("rail"),
        description: row.get("description"),
        metadata: from_json("metadata", row.get("metadata"))?,
        decision: from_json("decision", row.get("decision"))?,
        provider,
        approval,
        failure,
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    })
}

async fn payment_by_id(
    conn: &mut SqliteConnection,
    agent_id: Option<&str>,
    id: &str,
) -> Result<Option<Payment>> {
    let sql = format!("{PAYMENT_SELECT} WHERE p.id = ? AND (? IS NULL OR p.agent_id = ?)");
    let row = sqlx::query(&sql).bind(id).bind(agent_id).bind(agent_id).fetch_optional(conn).await?;
    row.as_ref().map(payment_from_row).transpose()
}

/// Reads counters and velocity counts in one round trip.
async fn spend_snapshot(conn: &mut SqliteConnection, q: &SpendQuery<'_>) -> Result<SpendSnapshot> {
    let keys = q.counter_keys();
    let mut sql = format!(
        "SELECT window, units, count FROM spend_counters WHERE agent_id = ? AND window IN ({})",
        vec!["?"; keys.len()].join(", ")
    );
    for i in 0..q.velocity.len() {
        // LIMIT bounds the scan: counting past the rule's max changes nothing.
        sql.push_str(&format!(
            " UNION ALL SELECT 'velocity:{i}', 0, (SELECT COUNT(*) FROM (SELECT 1 FROM payments \
             WHERE agent_id = ? AND reserved_units > 0 AND created_at > ? LIMIT ?))"
        ));
    }
    let mut query = sqlx::query(&sql).bind(q.agent_id);
    for k in &keys {
        query = query.bind(k);
    }
    for rule in q.velocity {
        let since = chrono::Duration::from_std(rule.per)
            .ok()
            .and_then(|per| q.now.checked_sub_signed(per))
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        query = query.bind(q.agent_id).bind(format_ts(since)).bind(rule.max);
    }
    let rows = query.fetch_all(conn).await?;

    let mut snap = SpendSnapshot { velocity: vec![0; q.velocity.len()], ..Default::default() };
    for row in rows {
        let window: String = row.get("window");
        let units = from_counter(row.get("units"));
        let count: i64 = row.get("count");
        if let Some(i) = window.strip_prefix("velocity:") {
            let i: usize = i.parse().map_err(|_| StoreError::Internal(window.clone()))?;
            snap.velocity[i] = u32::try_from(count).unwrap_or(u32::MAX);
        } else if window == keys[0] {
            snap.day = units;
        } else if window == keys[1] {
            snap.week = units;
        } else if window == keys[2] {
            snap.month = units;
        } else if window == keys[3] {
            snap.lifetime = units;
        } else if window == keys[4] {
            snap.merchant = units;
            snap.merchant_seen = count > 0;
        } else {
            snap.category = units;
        }
    }
    Ok(snap)
}

impl Store {
    pub async fn payment(&self, agent_id: Option<&str>, id: &str) -> Result<Option<Payment>> {
        let mut conn = self.read.acquire().await?;
        payment_by_id(&mut conn, agent_id, id).await
    }

    /// Newest first.
    pub async fn payments(&self, f: &PaymentFilter) -> Result<Vec<Payment>> {
        let sql = format!(
            "{PAYMENT_SELECT} WHERE (? IS NULL OR p.agent_id = ?) AND (? IS NULL OR p.status = ?) \
             AND (? IS NULL OR p.id < ?) ORDER BY p.id DESC LIMIT ?"
        );
        let status = f.status.map(PaymentStatus::as_str);
        let rows = sqlx::query(&sql)
            .bind(&f.agent_id)
            .bind(&f.agent_id)
            .bind(status)
            .bind(status)
            .bind(&f.before)
            .bind(&f.before)
            .bind(f.limit)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(payment_from_row).collect()
    }

    /// A snapshot for a dry run; decisions read theirs inside `WriteTx`.
    pub async fn spend(&self, q: &SpendQuery<'_>) -> Result<SpendSnapshot> {
        let mut conn = self.read.acquire().await?;
        spend_snapshot(&mut conn, q).await
    }

    /// Payments still `approved` (not yet forwarded) since before `before`,
    /// oldest first.
    pub async fn approved_payments(&self, before: DateTime<Utc>, limit: u32) -> Result<Vec<Payment>> {
        let sql = format!(
            "{PAYMENT_SELECT} WHERE p.status = 'approved' AND p.updated_at < ? ORDER BY p.id LIMIT ?"
        );
        let rows = sqlx::query(&sql).bind(format_ts(before)).bind(limit).fetch_all(&self.read).await?;
        rows.iter().map(payment_from_row).collect()
    }
}

impl WriteTx {
    pub async fn payment(&mut self, agent_id: Option<&str>, id: &str) -> Result<Option<Payment>> {
        payment_by_id(self.read(), agent_id, id).await
    }

    /// The agent, and the (request hash, payment id) already stored under
    /// `idempotency_key` if any, in one round trip.
    pub async fn agent_and_idempotency(
        &mut self,
        agent_id: &str,
        idempotency_key: &str,
    ) -> Result<(Option<Agent>, Option<(String, String)>)> {
        let columns: Vec<String> = AGENT_COLUMNS.split(", ").map(|c| format!("a.{c}")).collect();
        let sql = format!(
            "SELECT {}, p.request_hash, p.id AS payment_id FROM agents a \
             LEFT JOIN payments p ON p.agent_id = a.id AND p.idempotency_key = ? WHERE a.id = ?",
            columns.join(", ")
        );
        let row = sqlx::query(&sql).bind(idempotency_key).bind(agent_id).fetch_optional(self.read()).await?;
        let Some(row) = row else { return Ok((None, None)) };
        let replay =
            row.get::<Option<String>, _>("payment_id").map(|id| (row.get::<String, _>("request_hash"), id));
        Ok((Some(agent_from_row(&row)?), replay))
    }

    pub async fn spend(&mut self, q: &SpendQuery<'_>) -> Result<SpendSnapshot> {
        spend_snapshot(self.read(), q).await
    }

    pub async fn insert_payment(&mut self, new: &NewPayment<'_>) -> Result<()> {
        let p = new.payment;
        sqlx::query(
            "INSERT INTO payments (id, agent_id, status, amount_minor, fee_minor, currency, merchant_id, \
             merchant_category, rail, description, metadata, decision, reserved_units, reserved_keys, \
             provider, provider_reference, idempotency_key, request_hash, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&p.id)
        .bind(&p.agent_id)
        .bind(p.status.as_str())
        .bind(to_minor(p.amount.value, p.currency))
        .bind(to_minor(p.fee.value, p.currency))
        .bind(p.currency.code())
        .bind(&p.merchant_id)
        .bind(&p.merchant_category)
        .bind(&p.rail)
        .bind(&p.description)
        .bind(to_json(&p.metadata))
        .bind(to_json(&p.decision))
        .bind(new.reserved_units)
        .bind(to_json(&new.reserved_keys))
        .bind(p.provider.as_ref().map(|r| &r.name))
        .bind(p.provider.as_ref().map(|r| &r.reference))
        .bind(new.idempotency_key)
        .bind(new.request_hash)
        .bind(&p.created_at)
        .bind(&p.updated_at)
        .execute(self.write())
        .await?;
        if let Some(a) = &p.approval {
            sqlx::query(
                "INSERT INTO approvals (id, payment_id, agent_id, status, approvals_required, expires_at, created_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&a.id)
            .bind(&p.id)
            .bind(&p.agent_id)
            .bind(&a.status)
            .bind(a.approvals_required as i64)
            .bind(&a.expires_at)
            .bind(&p.created_at)
            .execute(self.write())
            .await?;
        }
        if new.reserved_units > 0 {
            self.adjust_spend(&p.agent_id, new.reserved_keys, new.reserved_units, 1).await?;
        }
        Ok(())
    }

    /// Adds (or, negative, removes) a reservation to every counter in `keys`.
    async fn adjust_spend(&mut self, agent_id: &str, keys: &[String], units: i64, count: i64) -> Result<()> {
        let sql = format!(
            "INSERT INTO spend_counters (agent_id, window, units, count) VALUES {} \
             ON CONFLICT (agent_id, window) DO UPDATE SET units = units + excluded.units, \
             count = count + excluded.count",
            vec!["(?, ?, ?, ?)"; keys.len()].join(", ")
        );
        let mut query = sqlx::query(&sql);
        for k in keys {
            query = query.bind(agent_id).bind(k).bind(units).bind(count);
        }
        query.execute(self.write()).await?;
        Ok(())
    }

    /// Marks `approved` payments as `succeeded` with their provider
    /// transaction ids, in one statement. Returns the ids it changed; a
    /// payment no longer `approved` (already recorded) is left alone.
    pub async fn record_successes(
        &mut self,
        done: &[(String, String)],
        now: DateTime<Utc>,
    ) -> Result<Vec<String>> {
        if done.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "WITH done(id, txn) AS (VALUES {}) \
             UPDATE payments SET status = 'succeeded', updated_at = ?, \
             provider_txn_id = (SELECT txn FROM done WHERE done.id = payments.id) \
             WHERE id IN (SELECT id FROM done) AND status = 'approved' RETURNING id",
            vec!["(?, ?)"; done.len()].join(", ")
        );
        let mut query = sqlx::query(&sql);
        for (id, txn) in done {
            query = query.bind(id).bind(txn);
        }
        let rows = query.bind(format_ts(now)).fetch_all(self.write()).await?;
        Ok(rows.iter().map(|r| r.get("id")).collect())
    }

    /// Marks an `approved` payment `failed` and releases its reservation.
    /// Returns `false` (and changes nothing) when it is no longer `approved`.
    pub async fn record_failure(
        &mut self,
        payment_id: &str,
        code: &str,
        message: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let now = format_ts(now);
        let row = sqlx::query(
            "SELECT agent_id, reserved_units, reserved_keys FROM payments \
             WHERE id = ? AND status = 'approved'",
        )
        .bind(payment_id)
        .fetch_optional(self.read())
        .await?;
        if let Some(row) = &row {
            let units: i64 = row.get("reserved_units");
            if units > 0 {
                let keys: Vec<String> = from_json("reserved_keys", row.get("reserved_keys"))?;
                let agent_id: String = row.get("agent_id");
                self.adjust_spend(&agent_id, &keys, -units, -1).await?;
            }
            sqlx::query(
                "UPDATE payments SET status = 'failed', reserved_units = 0, failure_code = ?, \
                 failure_message = ?, updated_at = ? WHERE id = ?",
            )
            .bind(code)
            .bind(message)
            .bind(&now)
            .bind(payment_id)
            .execute(self.write())
            .await?;
        }
        Ok(row.is_some())
    }
}
