//! Cards whose real-time authorizations purser decides.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::payments::PAYMENT_SELECT;
use super::{payments, query, Result, Store, WriteTx};
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
    pub async fn cards(&self, agent_id: &str) -> Result<Vec<Card>> {
        let rows = query("SELECT * FROM cards WHERE agent_id = ? ORDER BY created_at, token")
            .bind(agent_id)
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

    /// The payment a provider answered with this transaction id (for a
    /// card issuer: the card it issued for that payment).
    pub async fn payment_by_provider_txn(&self, provider: &str, txn: &str) -> Result<Option<Payment>> {
        let sql = format!("{PAYMENT_SELECT} WHERE p.provider = ? AND p.provider_txn_id = ?");
        let row = query(&sql).bind(provider).bind(txn).fetch_optional(&self.read).await?;
        row.as_ref().map(payments::payment_from_row).transpose()
    }
}

impl WriteTx {
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
