//! Retention: what the gateway keeps only for a while. Finished webhook
//! deliveries and their events are deleted once older than the configured
//! retention; console sessions and seen signatures once they expire (they
//! are no use after that). Payments are never deleted, so neither are
//! their idempotency keys (stored with them, and honoured as long as the
//! payment exists); nor is the audit log or anything else.
//!
//! Deletion goes in batches, each its own write job, so a large backlog
//! never holds the writer for long: payments interleave with it.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::clock::format_ts;
use crate::error::Result;
use crate::store::{Expired, Store};

/// Rows deleted per write job.
const BATCH: u32 = 500;

/// How long what has a configurable retention is kept.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Finished webhook deliveries and their events; `None` keeps them.
    pub webhooks: Option<Duration>,
}

/// What one sweep deleted, per kind.
#[derive(Debug, Default)]
pub struct Deleted(Vec<(Expired, u64)>);

impl Deleted {
    pub fn total(&self) -> u64 {
        self.0.iter().map(|(_, n)| n).sum()
    }
}

impl std::fmt::Display for Deleted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let counts: Vec<String> = self.0.iter().map(|(what, n)| format!("{}={n}", what.as_str())).collect();
        f.write_str(&counts.join(" "))
    }
}

/// Deletes everything past its retention at `now`, counting it in
/// `purser_retention_deleted_total{kind}`.
pub async fn sweep(store: &Store, now: DateTime<Utc>, retention: Retention) -> Result<Deleted> {
    let mut deleted = Deleted::default();
    for what in Expired::ALL {
        let Some(cutoff) = cutoff(what, retention, now) else { continue };
        let cutoff = format_ts(cutoff);
        let mut total = 0;
        loop {
            let cutoff = cutoff.clone();
            let n = store
                .write(move |tx| Box::pin(async move { tx.delete_expired(what, &cutoff, BATCH).await }))
                .await?;
            total += n;
            if n < u64::from(BATCH) {
                break;
            }
        }
        metrics::counter!("purser_retention_deleted_total", "kind" => what.as_str()).increment(total);
        deleted.0.push((what, total));
    }
    Ok(deleted)
}

/// Rows of `what` older than this are deleted; `None`: none are.
fn cutoff(what: Expired, retention: Retention, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match what {
        Expired::WebhookDeliveries | Expired::WebhookEvents => {
            now.checked_sub_signed(chrono::Duration::from_std(retention.webhooks?).ok()?)
        }
        Expired::ConsoleSessions | Expired::SeenSignatures => Some(now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhooks_are_kept_for_their_retention_and_expired_rows_no_longer() {
        let now: DateTime<Utc> = "2026-11-26T17:00:00Z".parse().unwrap();
        let month = Retention { webhooks: Some(Duration::from_secs(30 * 86_400)) };
        let forever = Retention { webhooks: None };
        let thirty_days_ago: DateTime<Utc> = "2026-10-27T17:00:00Z".parse().unwrap();
        assert_eq!(cutoff(Expired::WebhookDeliveries, month, now), Some(thirty_days_ago));
        assert_eq!(cutoff(Expired::WebhookEvents, month, now), Some(thirty_days_ago));
        assert_eq!(cutoff(Expired::WebhookEvents, forever, now), None);
        assert_eq!(cutoff(Expired::ConsoleSessions, forever, now), Some(now));
        assert_eq!(cutoff(Expired::SeenSignatures, month, now), Some(now));
        let too_long = Retention { webhooks: Some(Duration::from_secs(u64::MAX)) };
        assert_eq!(cutoff(Expired::WebhookDeliveries, too_long, now), None, "past the calendar: keep");
    }
}
