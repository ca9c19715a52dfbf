//! Payments, idempotency keys, spend counters and approvals.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::agents::{agent_from_row, AGENT_COLUMNS};
use super::{from_json, query, runs, to_json, Result, Store, StoreError, WriteTx};
use crate::clock::format_ts;
use crate::model::{Agent, ApprovalSummary, Failure, Money, Payment, PaymentStatus, ProviderRef};
use crate::money::{from_counter, from_minor, to_minor, Currency};
use crate::policy::{SpendSnapshot, VelocityRule, WindowKeys};

pub(super) const PAYMENT_SELECT: &str = "SELECT p.id, p.agent_id, p.status, p.amount_minor, p.fee_minor, \
     p.currency, p.merchant_id, p.merchant_category, p.declared_category, p.rail, p.description, p.metadata, \
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

/// What a decision reads before it is made (see `WriteTx::decision_context`).
#[derive(Debug, Clone)]
pub struct DecisionContext {
    pub agent: Agent,
    /// (request hash, payment id) already stored under the idempotency key.
    pub replay: Option<(String, String)>,
    pub spend: SpendSnapshot,
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
    /// The forward claim of an approved payment (see [`Claim`]).
    pub claim: Option<&'a Claim>,
}

/// One gateway's hold on a payment it is about to send to its provider
/// (forward or status): while `until` has not passed, no other forwarder,
/// sweep or replica claims it, and only this claim's outcome is recorded.
#[derive(Debug, Clone)]
pub struct Claim {
    pub token: String,
    pub until: String,
}

/// What a provider said about a forwarded payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardOutcome {
    Succeeded {
        transaction_id: String,
    },
    /// The provider said no, or never saw the request: nothing moved.
    Failed {
        code: String,
        message: String,
    },
    /// The money may have moved; not known yet.
    Processing {
        transaction_id: Option<String>,
    },
}

#[derive(Debug, Clone, Default)]
pub struct PaymentFilter<'a> {
    /// `None` lists every agent's payments (admin).
    pub agent_id: Option<String>,
    pub status: Option<PaymentStatus>,
    /// Only payments with ids below this (the previous page's last id).
    pub before: Option<&'a str>,
    pub limit: u32,
}

pub(super) fn payment_from_row(row: &AnyRow) -> Result<Payment> {
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
        declared_category: row.get("declared_category"),
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

pub(super) async fn payment_by_id(
    conn: &mut AnyConnection,
    agent_id: Option<&str>,
    id: &str,
) -> Result<Option<Payment>> {
    let sql = format!("{PAYMENT_SELECT} WHERE p.id = ? AND (? IS NULL OR p.agent_id = ?)");
    let row = query(&sql).bind(id).bind(agent_id).bind(agent_id).fetch_optional(conn).await?;
    row.as_ref().map(payment_from_row).transpose()
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// A spend snapshot as select-list expressions: one scalar subquery per
/// counter and per velocity rule, so the snapshot is a single row and can
/// share a round trip with other columns. Bind with [`bind_spend`], in the
/// place the expressions have in the statement.
fn spend_columns(q: &SpendQuery<'_>) -> String {
    let counter = |column: &str, alias: &str| {
        format!(
            "COALESCE((SELECT {column} FROM spend_counters WHERE agent_id = ? AND \"window\" = ?), 0) AS {alias}"
        )
    };
    let mut columns = vec![
        counter("units", "s_day"),
        counter("units", "s_week"),
        counter("units", "s_month"),
        counter("units", "s_lifetime"),
        counter("units", "s_merchant"),
        counter("count", "s_merchant_count"),
    ];
    columns.push(match q.category {
        Some(_) => counter("units", "s_category"),
        None => "0 AS s_category".to_owned(),
    });
    for i in 0..q.velocity.len() {
        // LIMIT bounds the scan: counting past the rule's max changes nothing.
        columns.push(format!(
            "(SELECT COUNT(*) FROM (SELECT 1 FROM payments WHERE agent_id = ? AND reserved_units > 0 \
             AND created_at > ? LIMIT ?) AS recent) AS s_v{i}"
        ));
    }
    columns.join(", ")
}

fn bind_spend<'q>(mut query: AnyQuery<'q>, q: &SpendQuery<'_>) -> AnyQuery<'q> {
    let keys = q.counter_keys();
    // Counter columns in `spend_columns` order: day, week, month, lifetime,
    // merchant (units, then count), category.
    for key in [&keys[0], &keys[1], &keys[2], &keys[3], &keys[4], &keys[4]] {
        query = query.bind(q.agent_id.to_owned()).bind(key.clone());
    }
    if let Some(key) = keys.get(5) {
        query = query.bind(q.agent_id.to_owned()).bind(key.clone());
    }
    for rule in q.velocity {
        let since = chrono::Duration::from_std(rule.per)
            .ok()
            .and_then(|per| q.now.checked_sub_signed(per))
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        query = query.bind(q.agent_id.to_owned()).bind(format_ts(since)).bind(i64::from(rule.max));
    }
    query
}

fn spend_from_row(row: &AnyRow, q: &SpendQuery<'_>) -> SpendSnapshot {
    let units = |alias: &str| from_counter(row.get(alias));
    SpendSnapshot {
        day: units("s_day"),
        week: units("s_week"),
        month: units("s_month"),
        lifetime: units("s_lifetime"),
        merchant: units("s_merchant"),
        merchant_seen: row.get::<i64, _>("s_merchant_count") > 0,
        category: units("s_category"),
        velocity: (0..q.velocity.len())
            .map(|i| u32::try_from(row.get::<i64, _>(format!("s_v{i}").as_str())).unwrap_or(u32::MAX))
            .collect(),
    }
}

impl Store {
    pub async fn payment(&self, agent_id: Option<&str>, id: &str) -> Result<Option<Payment>> {
        let mut conn = self.read.acquire().await?;
        payment_by_id(&mut conn, agent_id, id).await
    }

    /// Newest first.
    pub async fn payments(&self, f: &PaymentFilter<'_>) -> Result<Vec<Payment>> {
        let sql = format!(
            "{PAYMENT_SELECT} WHERE (? IS NULL OR p.agent_id = ?) AND (? IS NULL OR p.status = ?) \
             AND (? IS NULL OR p.id < ?) ORDER BY p.id DESC LIMIT ?"
        );
        let status = f.status.map(PaymentStatus::as_str);
        let rows = query(&sql)
            .bind(&f.agent_id)
            .bind(&f.agent_id)
            .bind(status)
            .bind(status)
            .bind(f.before)
            .bind(f.before)
            .bind(i64::from(f.limit))
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(payment_from_row).collect()
    }

    /// A snapshot for a dry run; decisions read theirs inside `WriteTx`.
    pub async fn spend(&self, q: &SpendQuery<'_>) -> Result<SpendSnapshot> {
        let sql = format!("SELECT {}", spend_columns(q));
        let row = bind_spend(query(&sql), q).fetch_one(&self.read).await?;
        Ok(spend_from_row(&row, q))
    }

    /// (webhook deliveries pending, payments processing), for `/metrics`.
    pub async fn backlog(&self) -> Result<(i64, i64)> {
        let row = query(
            "SELECT (SELECT COUNT(*) FROM webhook_deliveries WHERE status = 'pending') AS backlog, \
             (SELECT COUNT(*) FROM payments WHERE status = 'processing') AS processing",
        )
        .fetch_one(&self.read)
        .await?;
        Ok((row.get("backlog"), row.get("processing")))
    }

    /// Whether any payment in `status`, untouched since `before`, is free to
    /// claim at `now`: a read, so an idle sweep writes nothing.
    pub async fn claimable(&self, status: PaymentStatus, before: &str, now: &str) -> Result<bool> {
        let row = query(
            "SELECT 1 AS found FROM payments WHERE status = ? AND updated_at < ? \
             AND (claimed_until IS NULL OR claimed_until < ?) LIMIT 1",
        )
        .bind(status.as_str())
        .bind(before)
        .bind(now)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.is_some())
    }
}

impl WriteTx {
    pub async fn payment(&mut self, agent_id: Option<&str>, id: &str) -> Result<Option<Payment>> {
        payment_by_id(self.read(), agent_id, id).await
    }

    /// Everything a decision reads, in one round trip: the agent, the
    /// (request hash, payment id) already stored under `idempotency_key` if
    /// any, and the spend snapshot for `q`.
    pub async fn decision_context(
        &mut self,
        idempotency_key: &str,
        q: &SpendQuery<'_>,
    ) -> Result<Option<DecisionContext>> {
        let columns: Vec<String> = AGENT_COLUMNS.split(", ").map(|c| format!("a.{c}")).collect();
        let sql = format!(
            "SELECT {}, p.request_hash, p.id AS payment_id, {} FROM agents a \
             LEFT JOIN payments p ON p.agent_id = a.id AND p.idempotency_key = ? WHERE a.id = ?",
            columns.join(", "),
            spend_columns(q),
        );
        let query = bind_spend(query(&sql), q).bind(idempotency_key.to_owned()).bind(q.agent_id.to_owned());
        let Some(row) = query.fetch_optional(self.read()).await? else { return Ok(None) };
        let replay =
            row.get::<Option<String>, _>("payment_id").map(|id| (row.get::<String, _>("request_hash"), id));
        Ok(Some(DecisionContext { agent: agent_from_row(&row)?, replay, spend: spend_from_row(&row, q) }))
    }

    pub async fn spend(&mut self, q: &SpendQuery<'_>) -> Result<SpendSnapshot> {
        let sql = format!("SELECT {}", spend_columns(q));
        let row = bind_spend(query(&sql), q).fetch_one(self.read()).await?;
        Ok(spend_from_row(&row, q))
    }

    pub async fn insert_payment(&mut self, new: &NewPayment<'_>) -> Result<()> {
        let p = new.payment;
        query(
            "INSERT INTO payments (id, agent_id, status, amount_minor, fee_minor, currency, merchant_id, \
             merchant_category, declared_category, rail, description, metadata, decision, reserved_units, \
             reserved_keys, provider, provider_reference, idempotency_key, request_hash, created_at, updated_at, \
             claim, claimed_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&p.id)
        .bind(&p.agent_id)
        .bind(p.status.as_str())
        .bind(to_minor(p.amount.value, p.currency))
        .bind(to_minor(p.fee.value, p.currency))
        .bind(p.currency.code())
        .bind(&p.merchant_id)
        .bind(&p.merchant_category)
        .bind(&p.declared_category)
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
        .bind(new.claim.map(|c| &c.token))
        .bind(new.claim.map(|c| &c.until))
        .execute(self.write())
        .await?;
        if let Some(a) = &p.approval {
            query(
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
        Ok(())
    }

    /// Claims up to `limit` payments in `status`, untouched since `before`,
    /// whose claims have lapsed (or that have none), oldest first; returns
    /// them as they now stand. The claim is checked again in the UPDATE
    /// itself, so two sweeps never both win a payment.
    pub async fn claim_payments(
        &mut self,
        status: PaymentStatus,
        before: &str,
        claim: &Claim,
        now: &str,
        limit: u32,
    ) -> Result<Vec<Payment>> {
        let free = "status = ? AND updated_at < ? AND (claimed_until IS NULL OR claimed_until < ?)";
        let sql = format!(
            "UPDATE payments SET claim = ?, claimed_until = ? WHERE id IN \
             (SELECT id FROM payments WHERE {free} ORDER BY updated_at LIMIT ?) AND {free} RETURNING id"
        );
        let rows = query(&sql)
            .bind(&claim.token)
            .bind(&claim.until)
            .bind(status.as_str())
            .bind(before)
            .bind(now)
            .bind(i64::from(limit))
            .bind(status.as_str())
            .bind(before)
            .bind(now)
            .fetch_all(self.write())
            .await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: String = row.get("id");
            claimed.extend(payment_by_id(self.read(), None, &id).await?);
        }
        claimed.sort_by(|a, b| a.updated_at.cmp(&b.updated_at));
        Ok(claimed)
    }

    /// Gives up `claim` on a payment without recording an outcome (the kill
    /// switch held its forward back): the next sweep may claim it at once.
    pub async fn release_claim(&mut self, payment_id: &str, claim: &str) -> Result<()> {
        query("UPDATE payments SET claim = NULL, claimed_until = NULL WHERE id = ? AND claim = ?")
            .bind(payment_id)
            .bind(claim)
            .execute(self.write())
            .await?;
        Ok(())
    }

    /// Marks `approved` or `processing` payments held by `claim` (`None`:
    /// held by none, a card authorization settled in its own decision) as
    /// `succeeded` with their provider transaction ids, in one statement.
    /// Returns the ids it changed; a payment whose outcome is already
    /// recorded, or that another claim holds, is left alone.
    pub async fn record_successes(
        &mut self,
        done: &[(String, String)],
        claim: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>> {
        let mut changed = Vec::new();
        for run in runs(done) {
            let sql = format!(
                "WITH done(id, txn) AS (VALUES {}) \
                 UPDATE payments SET status = 'succeeded', updated_at = ?, claim = NULL, claimed_until = NULL, \
                 provider_txn_id = (SELECT txn FROM done WHERE done.id = payments.id) \
                 WHERE id IN (SELECT id FROM done) AND status IN ('approved', 'processing') \
                 AND claim IS NOT DISTINCT FROM ? RETURNING id",
                vec!["(?, ?)"; run.len()].join(", ")
            );
            let mut query = query(&sql);
            for (id, txn) in run {
                query = query.bind(id).bind(txn);
            }
            let rows = query.bind(format_ts(now)).bind(claim).fetch_all(self.write()).await?;
            changed.extend(rows.iter().map(|r| r.get::<String, _>("id")));
        }
        Ok(changed)
    }

    /// Marks a forwarded payment held by `claim` `processing`, keeping its
    /// reservation, remembers the provider's transaction id once one is
    /// known, and lets the claim go. Touching `updated_at` spaces out the
    /// next status look.
    pub async fn record_processing(
        &mut self,
        payment_id: &str,
        transaction_id: Option<&str>,
        claim: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let done = query(
            "UPDATE payments SET status = 'processing', provider_txn_id = COALESCE(?, provider_txn_id), \
             updated_at = ?, claim = NULL, claimed_until = NULL \
             WHERE id = ? AND status IN ('approved', 'processing') AND claim = ?",
        )
        .bind(transaction_id)
        .bind(format_ts(now))
        .bind(payment_id)
        .bind(claim)
        .execute(self.write())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks an `approved` or `processing` payment held by `claim` `failed`,
    /// which releases its reservation (the `payments_release` trigger).
    /// Returns `false` (and changes nothing) when its outcome was already
    /// recorded or another claim holds it.
    pub async fn record_failure(
        &mut self,
        payment_id: &str,
        code: &str,
        message: &str,
        claim: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let done = query(
            "UPDATE payments SET status = 'failed', reserved_units = 0, failure_code = ?, \
             failure_message = ?, updated_at = ?, claim = NULL, claimed_until = NULL \
             WHERE id = ? AND status IN ('approved', 'processing') AND claim = ?",
        )
        .bind(code)
        .bind(message)
        .bind(format_ts(now))
        .bind(payment_id)
        .bind(claim)
        .execute(self.write())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use chrono::Duration;

    use super::*;
    use crate::policy::{Decision, Outcome, TrustLevel};

    const PAYMENTS: usize = 20;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-26T17:00:00Z").unwrap().to_utc() + Duration::seconds(seconds)
    }

    fn claim(token: &str, until: i64) -> Claim {
        Claim { token: token.into(), until: format_ts(at(until)) }
    }

    /// An agent and `PAYMENTS` approved payments nobody has claimed (as
    /// left by a gateway from before claims, or by a released kill switch).
    async fn approved_payments(store: &Store) {
        store
            .write(|tx| {
                Box::pin(async move {
                    let now = format_ts(at(0));
                    let agent = Agent {
                        id: "agt_1".into(),
                        name: "a".into(),
                        policy: "p".into(),
                        trust_level: TrustLevel::Low,
                        frozen: false,
                        frozen_reason: None,
                        created_at: now.clone(),
                        updated_at: now.clone(),
                    };
                    tx.insert_agent(&agent).await?;
                    for i in 0..PAYMENTS {
                        let payment = Payment {
                            id: format!("pay_{i:02}"),
                            agent_id: agent.id.clone(),
                            status: PaymentStatus::Approved,
                            amount: Money { value: 1.into(), currency: Currency::Usd },
                            fee: Money { value: 0.into(), currency: Currency::Usd },
                            currency: Currency::Usd,
                            merchant_id: "m".into(),
                            merchant_category: None,
                            declared_category: None,
                            rail: "card".into(),
                            description: None,
                            metadata: Default::default(),
                            decision: Decision {
                                outcome: Outcome::Approve,
                                reasons: vec![],
                                policy: "p".into(),
                                policy_version: "v".into(),
                            },
                            provider: Some(ProviderRef::forward("sandbox")),
                            approval: None,
                            failure: None,
                            created_at: now.clone(),
                            updated_at: now.clone(),
                        };
                        let keys = ["lifetime".to_owned()];
                        let new = NewPayment {
                            payment: &payment,
                            idempotency_key: &payment.id,
                            request_hash: "h",
                            reserved_units: 1,
                            reserved_keys: &keys,
                            claim: None,
                        };
                        tx.insert_payment(&new).await?;
                    }
                    Ok::<_, StoreError>(())
                })
            })
            .await
            .unwrap();
    }

    async fn claim_all(store: &Store, claim: Claim, now: i64) -> HashSet<String> {
        let claimed = store
            .write(move |tx| {
                Box::pin(async move {
                    let now = format_ts(at(now));
                    tx.claim_payments(PaymentStatus::Approved, &now, &claim, &now, PAYMENTS as u32).await
                })
            })
            .await
            .unwrap();
        claimed.into_iter().map(|p| p.id).collect()
    }

    /// Two gateways (two stores, each with its own writer, on one
    /// database) sweeping at once never both win a payment; a lapsed claim
    /// is taken over, and the outcome of the claim that lost it is ignored.
    async fn each_payment_is_claimed_once(url: &str) {
        let (a, b) = (Store::connect(url).await.unwrap(), Store::connect(url).await.unwrap());
        approved_payments(&a).await;
        let (won_a, won_b) =
            tokio::join!(claim_all(&a, claim("A", 125), 1), claim_all(&b, claim("B", 125), 1));
        assert!(won_a.is_disjoint(&won_b), "both won {:?}", won_a.intersection(&won_b).collect::<Vec<_>>());
        assert_eq!(won_a.len() + won_b.len(), PAYMENTS);
        assert!(a
            .claimable(PaymentStatus::Approved, &format_ts(at(2)), &format_ts(at(2)))
            .await
            .is_ok_and(|f| !f));
        assert!(claim_all(&b, claim("B", 200), 100).await.is_empty(), "taken while held");

        // Past the lease, C takes them all over; the late outcomes of the
        // claims that lapsed are dropped.
        assert_eq!(claim_all(&b, claim("C", 300), 126).await.len(), PAYMENTS);
        let taken = won_a.union(&won_b).next().unwrap().clone();
        let late = taken.clone();
        let recorded = a
            .write(move |tx| {
                Box::pin(async move {
                    let a = tx.record_failure(&late, "x", "late", "A", at(127)).await?;
                    let b = tx.record_failure(&late, "x", "late", "B", at(127)).await?;
                    let c = tx.record_failure(&late, "x", "now", "C", at(127)).await?;
                    let again = tx.record_failure(&late, "x", "again", "C", at(128)).await?;
                    Ok::<_, StoreError>([a, b, c, again])
                })
            })
            .await
            .unwrap();
        assert_eq!(recorded, [false, false, true, false], "only the holder records, once");
        let p = a.payment(None, &taken).await.unwrap().unwrap();
        assert_eq!((p.status, p.failure.unwrap().message), (PaymentStatus::Failed, "now".to_owned()));
    }

    #[tokio::test]
    async fn each_payment_is_claimed_once_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        each_payment_is_claimed_once(&format!("sqlite://{}", dir.path().join("t.db").display())).await;
    }

    #[tokio::test]
    async fn each_payment_is_claimed_once_on_postgres() {
        if let Some(url) = super::super::test_postgres().await {
            each_payment_is_claimed_once(&url).await;
        }
    }
}
