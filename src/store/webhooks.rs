//! Webhook endpoints, the event outbox, deliveries and attempts.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use sqlx::Row;

use super::{from_json, query, to_json, Result, Slice, Store, WriteTx};
use crate::clock::format_ts;
use crate::ids;
use crate::model::{DeliveryAttempt, WebhookEndpoint};

const ENDPOINT_COLUMNS: &str =
    "id, url, description, events, disabled, disabled_reason, previous_until, created_at, updated_at";

/// Which event types some enabled endpoint subscribes to. Events nobody
/// subscribes to are not written at all: with no endpoints (the common
/// embedded case) the outbox costs nothing on the payment path. Refreshed
/// after every endpoint change here, and on PostgreSQL at the start of
/// every write transaction, under the write lock, so an endpoint another
/// replica just added is seen before any event is emitted.
#[derive(Debug, Default)]
pub(super) struct Subscriptions(std::sync::RwLock<(bool, std::collections::HashSet<String>)>);

impl Subscriptions {
    pub(super) async fn reload(&self, conn: &mut AnyConnection) -> Result<()> {
        let rows = query("SELECT events FROM webhook_endpoints WHERE disabled = 0").fetch_all(conn).await?;
        let mut all = false;
        let mut types = std::collections::HashSet::new();
        for row in &rows {
            for kind in from_json::<Vec<String>>("events", row.get("events"))? {
                all |= kind == "*";
                types.insert(kind);
            }
        }
        *self.0.write().expect("subscriptions lock") = (all, types);
        Ok(())
    }

    fn wants(&self, kind: &str) -> bool {
        let guard = self.0.read().expect("subscriptions lock");
        guard.0 || guard.1.contains(kind)
    }
}

/// An event waiting in the transaction's buffer (see `WriteTx::emit`).
#[derive(Debug, Clone)]
pub(super) struct PendingEvent {
    id: String,
    kind: String,
    body: String,
    created_at: String,
}

/// The sealed signing secrets of an endpoint.
#[derive(Debug, Clone)]
pub struct SealedSecrets {
    pub current: String,
    /// The rotated-out secret and until when it still signs.
    pub previous: Option<(String, String)>,
}

/// One sealed signing secret as stored: an endpoint's current secret, or
/// the rotated-out one it keeps for a grace period.
#[derive(Debug, Clone)]
pub struct StoredSecret {
    pub endpoint_id: String,
    pub previous: bool,
    pub sealed: String,
}

impl StoredSecret {
    fn column(&self) -> &'static str {
        if self.previous {
            "previous_secret"
        } else {
            "secret"
        }
    }
}

/// A delivery whose next attempt is due, with what sending it needs.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub id: String,
    pub event_id: String,
    pub endpoint_id: String,
    pub url: String,
    pub body: String,
    pub attempts: u32,
    pub secrets: SealedSecrets,
    pub created_at: String,
}

/// The result of one attempt, to be recorded.
#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub delivery: DueDelivery,
    pub at: DateTime<Utc>,
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    pub error: Option<String>,
    /// `None`: delivered or given up; `Some(t)`: try again at `t`.
    pub retry_at: Option<DateTime<Utc>>,
}

impl AttemptResult {
    pub fn delivered(&self) -> bool {
        self.status_code.is_some_and(|c| (200..300).contains(&c))
    }
}

#[derive(Debug, Clone, Default)]
pub struct EndpointPatch {
    pub url: Option<String>,
    pub description: Option<String>,
    pub events: Option<Vec<String>>,
    pub disabled: Option<bool>,
}

fn endpoint_from_row(row: &AnyRow) -> Result<WebhookEndpoint> {
    Ok(WebhookEndpoint {
        id: row.get("id"),
        url: row.get("url"),
        description: row.get("description"),
        events: from_json("events", row.get("events"))?,
        disabled: row.get::<i64, _>("disabled") != 0,
        disabled_reason: row.get("disabled_reason"),
        previous_secret_until: row.get("previous_until"),
        created_at: row.get("created_at"),
        updated_at: row.get("updated_at"),
    })
}

fn attempt_from_row(row: &AnyRow) -> DeliveryAttempt {
    DeliveryAttempt {
        id: row.get("id"),
        delivery_id: row.get("delivery_id"),
        event_id: row.get("event_id"),
        endpoint_id: row.get("endpoint_id"),
        at: row.get("at"),
        status_code: row.get::<Option<i64>, _>("status_code").map(|c| c as u16),
        latency_ms: row.get::<i64, _>("latency_ms") as u64,
        error: row.get("error"),
    }
}

impl Store {
    /// Oldest first.
    pub async fn endpoints(&self, page: Slice<'_>) -> Result<Vec<WebhookEndpoint>> {
        let sql = format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE (? IS NULL OR id > ?) ORDER BY id LIMIT ?"
        );
        let rows =
            query(&sql).bind(page.after).bind(page.after).bind(page.limit()).fetch_all(&self.read).await?;
        rows.iter().map(endpoint_from_row).collect()
    }

    pub async fn endpoint(&self, id: &str) -> Result<Option<WebhookEndpoint>> {
        let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = ?");
        query(&sql).bind(id).fetch_optional(&self.read).await?.as_ref().map(endpoint_from_row).transpose()
    }

    /// Re-reads which event types enabled endpoints subscribe to.
    pub async fn refresh_subscriptions(&self) -> Result<()> {
        let mut conn = self.read.acquire().await?;
        self.shared.subscriptions.reload(&mut conn).await
    }

    /// Whether any event still waits to be fanned out to endpoints.
    pub async fn events_waiting(&self) -> Result<bool> {
        let seq = self.backend.event_seq();
        let sql = format!(
            "SELECT 1 FROM webhook_events WHERE {seq} > (SELECT last_rowid FROM webhook_fanout) LIMIT 1"
        );
        let row = query(&sql).fetch_optional(&self.read).await?;
        Ok(row.is_some())
    }

    /// Attempts for an event or an endpoint (or both), newest first.
    pub async fn attempts(
        &self,
        event_id: Option<&str>,
        endpoint_id: Option<&str>,
        page: Slice<'_>,
    ) -> Result<Vec<DeliveryAttempt>> {
        let rows = query(
            "SELECT id, delivery_id, event_id, endpoint_id, at, status_code, latency_ms, error FROM webhook_attempts \
             WHERE (? IS NULL OR event_id = ?) AND (? IS NULL OR endpoint_id = ?) \
             AND (? IS NULL OR (at, id) < (SELECT at, id FROM webhook_attempts WHERE id = ?)) \
             ORDER BY at DESC, id DESC LIMIT ?",
        )
        .bind(event_id)
        .bind(event_id)
        .bind(endpoint_id)
        .bind(endpoint_id)
        .bind(page.after)
        .bind(page.after)
        .bind(page.limit())
        .fetch_all(&self.read)
        .await?;
        Ok(rows.iter().map(attempt_from_row).collect())
    }

    /// Every sealed secret in the store, the rotated-out ones included.
    pub async fn stored_secrets(&self) -> Result<Vec<StoredSecret>> {
        let rows = query("SELECT id, secret, previous_secret FROM webhook_endpoints ORDER BY id")
            .fetch_all(&self.read)
            .await?;
        Ok(rows
            .iter()
            .flat_map(|row| {
                let id: String = row.get("id");
                let current =
                    StoredSecret { endpoint_id: id.clone(), previous: false, sealed: row.get("secret") };
                let previous = row.get::<Option<String>, _>("previous_secret").map(|sealed| StoredSecret {
                    endpoint_id: id,
                    previous: true,
                    sealed,
                });
                std::iter::once(current).chain(previous)
            })
            .collect())
    }

    /// The event's stored body, if it exists.
    pub async fn event_exists(&self, id: &str) -> Result<bool> {
        Ok(query("SELECT 1 FROM webhook_events WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.read)
            .await?
            .is_some())
    }
}

impl WriteTx {
    /// Stores `stored` sealed anew as `sealed`, unless the value changed
    /// since it was read (a rotation of the endpoint's secret meanwhile);
    /// answers whether it was replaced.
    pub async fn reseal(&mut self, stored: &StoredSecret, sealed: &str) -> Result<bool> {
        let column = stored.column();
        let sql = format!("UPDATE webhook_endpoints SET {column} = ? WHERE id = ? AND {column} = ?");
        let done = query(&sql)
            .bind(sealed)
            .bind(&stored.endpoint_id)
            .bind(&stored.sealed)
            .execute(self.write())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Whether an enabled endpoint subscribes to `kind` (as this
    /// transaction's writer last read them).
    pub fn subscribed(&self, kind: &str) -> bool {
        self.subscriptions.wants(kind)
    }

    /// Puts a webhook event in the outbox, in this transaction: it exists if
    /// and only if the change it describes commits. Written with the batch
    /// (see `flush_outbox`). Skipped when no endpoint subscribes to `kind`.
    pub fn emit<T: Serialize>(&mut self, kind: &str, data: &T, at: DateTime<Utc>) {
        if !self.subscribed(kind) {
            return;
        }
        /// The body every delivery sends: `{ type, timestamp, data }`.
        #[derive(Serialize)]
        struct Envelope<'a, T> {
            #[serde(rename = "type")]
            kind: &'a str,
            timestamp: &'a str,
            data: &'a T,
        }
        let timestamp = format_ts(at);
        // Serialized once, straight to text: this runs on the writer.
        let body = to_json(&Envelope { kind, timestamp: &timestamp, data });
        self.pending_events.push(PendingEvent {
            id: ids::new("msg"),
            kind: kind.to_owned(),
            body,
            created_at: timestamp,
        });
    }

    pub(super) async fn flush_outbox(&mut self) -> Result<()> {
        let pending = std::mem::take(&mut self.pending_events);
        self.insert_rows("webhook_events", "id, type, body, created_at", &pending, |q, e| {
            q.bind(&e.id).bind(&e.kind).bind(&e.body).bind(&e.created_at)
        })
        .await
    }

    pub async fn insert_endpoint(&mut self, e: &WebhookEndpoint, sealed_secret: &str) -> Result<()> {
        query(
            "INSERT INTO webhook_endpoints (id, url, description, events, secret, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&e.id)
        .bind(&e.url)
        .bind(&e.description)
        .bind(to_json(&e.events))
        .bind(sealed_secret)
        .bind(&e.created_at)
        .bind(&e.updated_at)
        .execute(self.write())
        .await?;
        Ok(())
    }

    pub async fn endpoint(&mut self, id: &str) -> Result<Option<WebhookEndpoint>> {
        let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = ?");
        query(&sql).bind(id).fetch_optional(self.read()).await?.as_ref().map(endpoint_from_row).transpose()
    }

    pub async fn update_endpoint(
        &mut self,
        id: &str,
        p: &EndpointPatch,
        now: &str,
    ) -> Result<Option<WebhookEndpoint>> {
        query(
            "UPDATE webhook_endpoints SET url = COALESCE(?, url), description = COALESCE(?, description), \
             events = COALESCE(?, events), disabled = COALESCE(?, disabled), \
             disabled_reason = CASE WHEN ? = 0 THEN NULL ELSE disabled_reason END, updated_at = ? WHERE id = ?",
        )
        .bind(&p.url)
        .bind(&p.description)
        .bind(p.events.as_ref().map(to_json))
        .bind(p.disabled.map(i64::from))
        .bind(p.disabled.map(i64::from))
        .bind(now)
        .bind(id)
        .execute(self.write())
        .await?;
        self.endpoint(id).await
    }

    /// Deletes an endpoint with its deliveries and their attempts.
    pub async fn delete_endpoint(&mut self, id: &str) -> Result<bool> {
        for sql in [
            "DELETE FROM webhook_attempts WHERE endpoint_id = ?",
            "DELETE FROM webhook_deliveries WHERE endpoint_id = ?",
        ] {
            query(sql).bind(id).execute(self.write()).await?;
        }
        let done = query("DELETE FROM webhook_endpoints WHERE id = ?").bind(id).execute(self.write()).await?;
        Ok(done.rows_affected() == 1)
    }

    /// Makes `new_sealed` the signing secret; the current one keeps signing
    /// (as a second signature) until `previous_until`.
    pub async fn rotate_endpoint_secret(
        &mut self,
        id: &str,
        new_sealed: &str,
        previous_until: &str,
        now: &str,
    ) -> Result<bool> {
        let done = query(
            "UPDATE webhook_endpoints SET previous_secret = secret, previous_until = ?, secret = ?, updated_at = ? \
             WHERE id = ?",
        )
        .bind(previous_until)
        .bind(new_sealed)
        .bind(now)
        .bind(id)
        .execute(self.write())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Claims the deliveries due at `now` (oldest first, to enabled
    /// endpoints, not leased to another sender) until `lease_until`, and
    /// returns them with what sending needs. A claim is a write, so on
    /// PostgreSQL two replicas never claim the same delivery; a lease left
    /// by a sender that died expires and the delivery is claimed again.
    /// Leases up to `limit` due deliveries, at most `per_endpoint` of one
    /// endpoint and none of the endpoints in `busy` (which still have
    /// deliveries in flight), so one slow endpoint cannot take a round.
    pub async fn claim_deliveries(
        &mut self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
        per_endpoint: u32,
        busy: &[String],
    ) -> Result<Vec<DueDelivery>> {
        let idle = format!("NOT {}", self.backend.json_array_holds("?", "d.endpoint_id"));
        // Ranked per endpoint by due time (id breaks ties, so the two
        // statements below see the same rows).
        let due = format!(
            "SELECT d.id, d.next_attempt_at, \
             ROW_NUMBER() OVER (PARTITION BY d.endpoint_id ORDER BY d.next_attempt_at, d.id) AS n \
             FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id \
             WHERE d.status = 'pending' AND d.next_attempt_at <= ? AND w.disabled = 0 \
             AND (d.lease_until IS NULL OR d.lease_until <= ?) AND {idle}"
        );
        let chosen = format!("SELECT id FROM ({due}) due WHERE n <= ? ORDER BY next_attempt_at, id LIMIT ?");
        let now = format_ts(now);
        let busy = to_json(&busy);
        let sql = format!(
            "SELECT d.id, d.event_id, d.endpoint_id, d.attempts, d.created_at, e.body, w.url, w.secret, \
             w.previous_secret, w.previous_until FROM webhook_deliveries d \
             JOIN webhook_events e ON e.id = d.event_id JOIN webhook_endpoints w ON w.id = d.endpoint_id \
             WHERE d.id IN ({chosen}) ORDER BY d.next_attempt_at, d.id"
        );
        let rows = query(&sql)
            .bind(&now)
            .bind(&now)
            .bind(&busy)
            .bind(i64::from(per_endpoint))
            .bind(i64::from(limit))
            .fetch_all(self.read())
            .await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        // The same rows: nothing else writes between the two statements.
        let sql = format!("UPDATE webhook_deliveries SET lease_until = ? WHERE id IN ({chosen})");
        query(&sql)
            .bind(format_ts(lease_until))
            .bind(&now)
            .bind(&now)
            .bind(&busy)
            .bind(i64::from(per_endpoint))
            .bind(i64::from(limit))
            .execute(self.write())
            .await?;
        Ok(rows
            .iter()
            .map(|r| DueDelivery {
                id: r.get("id"),
                event_id: r.get("event_id"),
                endpoint_id: r.get("endpoint_id"),
                url: r.get("url"),
                body: r.get("body"),
                attempts: r.get::<i64, _>("attempts") as u32,
                secrets: SealedSecrets {
                    current: r.get("secret"),
                    previous: r
                        .get::<Option<String>, _>("previous_secret")
                        .zip(r.get::<Option<String>, _>("previous_until")),
                },
                created_at: r.get("created_at"),
            })
            .collect())
    }

    /// Creates a delivery for every event not yet fanned out and every
    /// enabled endpoint that subscribes to its type and existed when the
    /// event happened. Returns how many deliveries it created.
    pub async fn fan_out(&mut self, now: DateTime<Utc>) -> Result<u64> {
        let now = format_ts(now);
        let (seq, random) = (self.backend.event_seq(), self.backend.random_hex());
        let sql = format!(
            "INSERT INTO webhook_deliveries (id, event_id, endpoint_id, status, next_attempt_at, created_at, updated_at) \
             SELECT 'dlv_' || {random}, e.id, w.id, 'pending', ?, ?, ? \
             FROM webhook_events e JOIN webhook_endpoints w ON w.disabled = 0 AND w.created_at <= e.created_at \
             AND {} WHERE e.{seq} > (SELECT last_rowid FROM webhook_fanout)",
            self.backend.json_array_matches("w.events", "e.type"),
        );
        let created = query(&sql).bind(&now).bind(&now).bind(&now).execute(self.write()).await?;
        let sql = format!(
            "UPDATE webhook_fanout SET last_rowid = (SELECT COALESCE(MAX({seq}), 0) FROM webhook_events)"
        );
        query(&sql).execute(self.write()).await?;
        Ok(created.rows_affected())
    }

    /// Records one attempt and moves its delivery on: delivered, retry at
    /// `retry_at`, or failed for good.
    pub async fn record_attempt(&mut self, r: &AttemptResult) -> Result<()> {
        let at = format_ts(r.at);
        query(
            "INSERT INTO webhook_attempts (id, delivery_id, event_id, endpoint_id, at, status_code, latency_ms, error) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(ids::new("att"))
        .bind(&r.delivery.id)
        .bind(&r.delivery.event_id)
        .bind(&r.delivery.endpoint_id)
        .bind(&at)
        .bind(r.status_code.map(i64::from))
        .bind(r.latency_ms as i64)
        .bind(&r.error)
        .execute(self.write())
        .await?;
        let status = match (r.delivered(), r.retry_at) {
            (true, _) => "delivered",
            (false, Some(_)) => "pending",
            (false, None) => "failed",
        };
        query(
            "UPDATE webhook_deliveries SET status = ?, attempts = attempts + 1, next_attempt_at = ?, last_error = ?, \
             updated_at = ?, lease_until = NULL WHERE id = ?",
        )
        .bind(status)
        .bind(r.retry_at.filter(|_| !r.delivered()).map(format_ts))
        .bind(&r.error)
        .bind(&at)
        .bind(&r.delivery.id)
        .execute(self.write())
        .await?;
        Ok(())
    }

    /// Whether the endpoint took any delivery since `since`.
    pub async fn endpoint_delivered_since(&mut self, endpoint_id: &str, since: &str) -> Result<bool> {
        let row = query(
            "SELECT 1 FROM webhook_attempts WHERE endpoint_id = ? AND at >= ? AND status_code BETWEEN 200 AND 299 LIMIT 1",
        )
        .bind(endpoint_id)
        .bind(since)
        .fetch_optional(self.read())
        .await?;
        Ok(row.is_some())
    }

    pub async fn disable_endpoint(
        &mut self,
        id: &str,
        reason: &str,
        now: &str,
    ) -> Result<Option<WebhookEndpoint>> {
        query(
            "UPDATE webhook_endpoints SET disabled = 1, disabled_reason = ?, updated_at = ? WHERE id = ? AND disabled = 0",
        )
        .bind(reason)
        .bind(now)
        .bind(id)
        .execute(self.write())
        .await?;
        self.endpoint(id).await
    }

    /// Queues `event_id` again for one endpoint or all its subscribers; the
    /// deliveries carry the same event id, so receivers see the same
    /// `webhook-id`. Returns how many deliveries were queued.
    pub async fn replay_event(
        &mut self,
        event_id: &str,
        endpoint_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        let now = format_ts(now);
        let sql = format!(
            "INSERT INTO webhook_deliveries (id, event_id, endpoint_id, status, next_attempt_at, created_at, updated_at) \
             SELECT 'dlv_' || {}, e.id, w.id, 'pending', ?, ?, ? \
             FROM webhook_events e JOIN webhook_endpoints w ON w.disabled = 0 \
             AND (? IS NULL AND {} OR w.id = ?) WHERE e.id = ?",
            self.backend.random_hex(),
            self.backend.json_array_matches("w.events", "e.type"),
        );
        let done = query(&sql)
            .bind(&now)
            .bind(&now)
            .bind(&now)
            .bind(endpoint_id)
            .bind(endpoint_id)
            .bind(event_id)
            .execute(self.write())
            .await?;
        Ok(done.rows_affected())
    }
}
