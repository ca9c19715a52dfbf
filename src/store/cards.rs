//! Cards whose real-time authorizations purser decides.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::payments::PAYMENT_SELECT;
use super::{payments, query, Result, Slice, Store, WriteTx};
use crate::model::{Card, Payment};

fn card_from_row(row: &AnyRow) -> Card {
    Card {
        card_token: row.get("token"),
        provider: row.get("provider"),
        agent_id: row.get("agent_id"),
        created_at: row.get("created_at"),
    }
}

impl Store {
    /// Oldest first; a card's key in a [`Slice`] is its token.
    pub async fn cards(&self, agent_id: &str, page: Slice<'_>) -> Result<Vec<Card>> {
        let rows = query(
            "SELECT * FROM cards WHERE agent_id = ? AND (? IS NULL OR (created_at, token) > \
             (SELECT created_at, token FROM cards WHERE agent_id = ? AND token = ?)) \
             ORDER BY created_at, token LIMIT ?",
        )
        .bind(agent_id)
        .bind(page.after)
        .bind(agent_id)
        .bind(page.after)
        .bind(page.limit())
        .fetch_all(&self.read)
        .await?;
        Ok(rows.iter().map(card_from_row).collect())
    }

    /// The standing card with this provider token, if registered.
    pub async fn card(&self, provider: &str, token: &str) -> Result<Option<Card>> {
        let row = query("SELECT * FROM cards WHERE provider = ? AND token = ?")
            .bind(provider)
            .bind(token)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.as_ref().map(card_from_row))
    }

    /// The payment `provider` issued the card `card_token` for: a payment
    /// forwarded to it (under a `fwd_` reference) whose transaction id is
    /// the card. A card authorization recorded as a payment carries the
    /// authorization's token as its id and is never one.
    pub async fn issued_card_payment(&self, provider: &str, card_token: &str) -> Result<Option<Payment>> {
        let sql = format!(
            "{PAYMENT_SELECT} WHERE p.provider = ? AND p.provider_txn_id = ? \
             AND p.provider_reference LIKE 'fwd!_%' ESCAPE '!'"
        );
        let row = query(&sql).bind(provider).bind(card_token).fetch_optional(&self.read).await?;
        row.as_ref().map(payments::payment_from_row).transpose()
    }
}

/// An authorization on an issued card, as first answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedAuthorization {
    pub card_token: String,
    pub amount_minor: i64,
    pub approved: bool,
}

impl WriteTx {
    /// The authorization with this token, if one was already answered.
    pub async fn issued_authorization(&mut self, token: &str) -> Result<Option<IssuedAuthorization>> {
        let row = query(
            "SELECT card_token, amount_minor, approved FROM issued_card_authorizations WHERE token = ?",
        )
        .bind(token)
        .fetch_optional(self.read())
        .await?;
        Ok(row.map(|r| IssuedAuthorization {
            card_token: r.get("card_token"),
            amount_minor: r.get("amount_minor"),
            approved: r.get::<i64, _>("approved") == 1,
        }))
    }

    /// What the card has been authorized for so far, in minor units.
    pub async fn issued_card_authorized(&mut self, card_token: &str) -> Result<i64> {
        let row = query(
            // PostgreSQL sums BIGINTs as NUMERIC; the cast keeps one type.
            "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) AS total FROM issued_card_authorizations \
             WHERE card_token = ? AND approved = 1",
        )
        .bind(card_token)
        .fetch_one(self.read())
        .await?;
        Ok(row.get("total"))
    }

    pub async fn insert_issued_authorization(
        &mut self,
        token: &str,
        payment_id: &str,
        auth: &IssuedAuthorization,
        now: &str,
    ) -> Result<()> {
        query(
            "INSERT INTO issued_card_authorizations (token, card_token, payment_id, amount_minor, approved, \
             created_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(token)
        .bind(&auth.card_token)
        .bind(payment_id)
        .bind(auth.amount_minor)
        .bind(i64::from(auth.approved))
        .bind(now)
        .execute(self.write())
        .await?;
        Ok(())
    }

    /// Registers a card; `false` if the token is already registered.
    pub async fn insert_card(&mut self, card: &Card) -> Result<bool> {
        let done = query(
            "INSERT INTO cards (token, provider, agent_id, created_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (token) DO NOTHING",
        )
        .bind(&card.card_token)
        .bind(&card.provider)
        .bind(&card.agent_id)
        .bind(&card.created_at)
        .execute(self.write())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn delete_card(&mut self, agent_id: &str, token: &str) -> Result<bool> {
        let done = query("DELETE FROM cards WHERE agent_id = ? AND token = ?")
            .bind(agent_id)
            .bind(token)
            .execute(self.write())
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
