//! Deleting rows past their use: finished webhook deliveries and events,
//! expired console sessions, and signatures past their replay window
//! (`service::retention` decides when). Payments (with their idempotency
//! keys), the audit log and everything else are never deleted here.

use super::{query, Backend, Result, WriteTx};

/// A kind of row the retention sweep deletes, in the order a sweep takes
/// them (deliveries before the events they refer to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// Deliveries delivered, or failed for good, before the cutoff, with
    /// their attempts. Pending ones (waiting for a retry, or for an
    /// endpoint to be enabled again) are kept, whatever their age.
    WebhookDeliveries,
    /// Events created before the cutoff that no delivery refers to any
    /// more, and that have been fanned out.
    WebhookEvents,
    /// Console sessions that expired before the cutoff.
    ConsoleSessions,
    /// Seen request signatures whose replay window closed before the
    /// cutoff.
    SeenSignatures,
}

impl Expired {
    pub const ALL: [Expired; 4] = [
        Expired::WebhookDeliveries,
        Expired::WebhookEvents,
        Expired::ConsoleSessions,
        Expired::SeenSignatures,
    ];

    /// The name in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Expired::WebhookDeliveries => "webhook_deliveries",
            Expired::WebhookEvents => "webhook_events",
            Expired::ConsoleSessions => "console_sessions",
            Expired::SeenSignatures => "seen_signatures",
        }
    }

    /// The statements that delete one batch, each bound to (cutoff, limit);
    /// the last one deletes the rows of this kind. Oldest first, ordered on
    /// a unique key, so that statements of one batch pick the same rows.
    fn statements(self, backend: Backend) -> Vec<String> {
        match self {
            Expired::WebhookDeliveries => {
                let batch = "SELECT id FROM webhook_deliveries WHERE status IN ('delivered', 'failed') \
                             AND updated_at < ? ORDER BY updated_at, id LIMIT ?";
                vec![
                    format!("DELETE FROM webhook_attempts WHERE delivery_id IN ({batch})"),
                    format!("DELETE FROM webhook_deliveries WHERE id IN ({batch})"),
                ]
            }
            // The newest event is never deleted: SQLite gives the next row
            // the largest rowid plus one, so deleting the newest would hand
            // its rowid again to an event the fan-out cursor has passed.
            Expired::WebhookEvents => {
                let seq = backend.event_seq();
                vec![format!(
                    "DELETE FROM webhook_events WHERE id IN (SELECT e.id FROM webhook_events e \
                     WHERE e.created_at < ? AND e.{seq} <= (SELECT last_rowid FROM webhook_fanout) \
                     AND e.{seq} < (SELECT MAX({seq}) FROM webhook_events) \
                     AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id) \
                     ORDER BY e.{seq} LIMIT ?)"
                )]
            }
            Expired::ConsoleSessions => vec![
                "DELETE FROM console_sessions WHERE id_hash IN (SELECT id_hash FROM console_sessions \
                 WHERE expires_at < ? ORDER BY expires_at, id_hash LIMIT ?)"
                    .to_owned(),
            ],
            Expired::SeenSignatures => vec![
                "DELETE FROM seen_signatures WHERE signature_hash IN (SELECT signature_hash FROM seen_signatures \
                 WHERE expires_at < ? ORDER BY expires_at, signature_hash LIMIT ?)"
                    .to_owned(),
            ],
        }
    }
}

impl WriteTx {
    /// Deletes at most `limit` rows of `what` past `cutoff` (a stored
    /// timestamp); returns how many.
    pub async fn delete_expired(&mut self, what: Expired, cutoff: &str, limit: u32) -> Result<u64> {
        let mut deleted = 0;
        for sql in what.statements(self.backend) {
            let done = query(&sql).bind(cutoff).bind(i64::from(limit)).execute(self.write()).await?;
            deleted = done.rows_affected();
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{test_postgres, Store, StoreError};

    /// Adds an event from long ago, and fans it out (to no endpoint: there
    /// are none) if `fan_out`.
    async fn old_event(store: &Store, id: &'static str, fan_out: bool) {
        store
            .write(move |tx| {
                Box::pin(async move {
                    query(
                        "INSERT INTO webhook_events (id, type, body, created_at) \
                         VALUES (?, 'payment.denied', '{}', '2020-01-01T00:00:00.000Z')",
                    )
                    .bind(id)
                    .execute(tx.write())
                    .await?;
                    if fan_out {
                        tx.fan_out(chrono::Utc::now()).await?;
                    }
                    Ok::<_, StoreError>(())
                })
            })
            .await
            .unwrap();
    }

    async fn delete_events(store: &Store, limit: u32) -> u64 {
        let cutoff = "2030-01-01T00:00:00.000Z";
        store
            .write(move |tx| Box::pin(tx.delete_expired(Expired::WebhookEvents, cutoff, limit)))
            .await
            .unwrap()
    }

    /// Deleting the newest event would let SQLite hand its rowid to the
    /// next one, behind the fan-out cursor: never fanned out.
    async fn the_newest_event_stays_so_the_next_one_is_fanned_out(store: Store) {
        for id in ["msg_1", "msg_2", "msg_3"] {
            old_event(&store, id, true).await;
        }
        assert_eq!(delete_events(&store, 1).await, 1, "at most the limit");
        assert_eq!(delete_events(&store, 10).await, 1, "all but the newest");
        assert_eq!(delete_events(&store, 10).await, 0);
        assert!(store.event_exists("msg_3").await.unwrap());
        old_event(&store, "msg_4", false).await;
        assert!(store.events_waiting().await.unwrap(), "the new event lies past the cursor");
        assert_eq!(delete_events(&store, 10).await, 1, "msg_3, no longer the newest");
        assert!(store.event_exists("msg_4").await.unwrap(), "not fanned out yet: kept");
        store.close().await;
    }

    #[tokio::test]
    async fn on_sqlite_the_newest_event_stays_so_the_next_one_is_fanned_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&format!("sqlite://{}", dir.path().join("db").display())).await.unwrap();
        the_newest_event_stays_so_the_next_one_is_fanned_out(store).await;
    }

    #[tokio::test]
    async fn on_postgres_the_newest_event_stays_so_the_next_one_is_fanned_out() {
        let Some(url) = test_postgres().await else { return };
        the_newest_event_stays_so_the_next_one_is_fanned_out(Store::connect(&url).await.unwrap()).await;
    }
}
