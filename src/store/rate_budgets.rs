//! Rate-limit budgets that the replicas of one PostgreSQL database spend
//! together (SQLite gateways keep theirs in memory).
//!
//! Each subject's budget is a generic cell rate algorithm: a request costs
//! `interval_us`, the budget holds `period_us` of them, and the row keeps
//! the theoretical arrival time `tat_us` on the database's clock, so every
//! replica reads one clock. Taking is one conditional upsert: it succeeds
//! for all replicas together at most as often as the budget allows.

use sqlx::Row;

use super::{query, Result, Store};

/// The database's clock in microseconds, for the statements below.
const NOW_US: &str = "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint";

impl Store {
    /// Takes `requests` requests of `interval_us` each from `subject`'s
    /// budget of `period_us`: `None` when taken, or how many microseconds
    /// until one request would be (and nothing is taken).
    pub async fn take_from_budget(
        &self,
        subject: &str,
        requests: u32,
        interval_us: i64,
        period_us: i64,
    ) -> Result<Option<i64>> {
        let cost_us = interval_us * i64::from(requests);
        let take = format!(
            "INSERT INTO rate_budgets AS b (subject, tat_us) SELECT ?, {NOW_US} + ? \
             ON CONFLICT (subject) DO UPDATE SET tat_us = GREATEST(b.tat_us, EXCLUDED.tat_us - ?) + ? \
             WHERE GREATEST(b.tat_us, EXCLUDED.tat_us - ?) + ? - (EXCLUDED.tat_us - ?) <= ? \
             RETURNING tat_us"
        );
        let taken = query(&take)
            .bind(subject)
            .bind(cost_us)
            .bind(cost_us)
            .bind(cost_us)
            .bind(cost_us)
            .bind(cost_us)
            .bind(cost_us)
            .bind(period_us)
            .fetch_optional(&self.read)
            .await?;
        if taken.is_some() {
            return Ok(None);
        }
        let wait = format!("SELECT tat_us - {NOW_US} - ? AS wait_us FROM rate_budgets WHERE subject = ?");
        let row = query(&wait).bind(period_us - interval_us).bind(subject).fetch_optional(&self.read).await?;
        Ok(Some(row.map_or(0, |r| r.get::<i64, _>("wait_us")).max(0)))
    }

    /// Forgets budgets that are full again (a missing row is a full
    /// budget), so addresses that called once do not stay forever.
    pub async fn forget_full_budgets(&self) -> Result<u64> {
        let done =
            query(&format!("DELETE FROM rate_budgets WHERE tat_us < {NOW_US}")).execute(&self.read).await?;
        Ok(done.rows_affected())
    }
}
