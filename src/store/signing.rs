//! Agents' Ed25519 signing keys and the signatures already seen.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{from_json, query, to_json, Result, Slice, Store, WriteTx};
use crate::model::SigningKey;

const COLUMNS: &str = "id, agent_id, public_key, scopes, rate_limit, created_at, revoked_at";

fn from_row(row: &AnyRow) -> Result<SigningKey> {
    Ok(SigningKey {
        id: row.get("id"),
        agent_id: row.get("agent_id"),
        public_key: row.get("public_key"),
        scopes: from_json("scopes", row.get("scopes"))?,
        rate_limit: from_json("rate_limit", row.get("rate_limit"))?,
        created_at: row.get("created_at"),
        revoked_at: row.get("revoked_at"),
    })
}

impl Store {
    /// Every signing key of `agent_id`, revoked ones included.
    /// Oldest first.
    pub async fn signing_keys(&self, agent_id: &str, page: Slice<'_>) -> Result<Vec<SigningKey>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM signing_keys WHERE agent_id = ? AND (? IS NULL OR id > ?) ORDER BY id LIMIT ?"
        );
        let rows = query(&sql)
            .bind(agent_id)
            .bind(page.after)
            .bind(page.after)
            .bind(page.limit())
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(from_row).collect()
    }
}

impl WriteTx {
    /// `false` if the public key is already registered (to any agent).
    pub async fn insert_signing_key(&mut self, key: &SigningKey) -> Result<bool> {
        let done = query(
            "INSERT INTO signing_keys (id, agent_id, public_key, scopes, rate_limit, created_at) \
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (public_key) DO NOTHING",
        )
        .bind(&key.id)
        .bind(&key.agent_id)
        .bind(&key.public_key)
        .bind(to_json(&key.scopes))
        .bind(to_json(&key.rate_limit))
        .bind(&key.created_at)
        .execute(self.write())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Remembers a signature until `expires_at`; `false` if it was seen
    /// before (a replay). Forgets signatures whose window has passed.
    pub async fn remember_signature(
        &mut self,
        signature_hash: &str,
        now: &str,
        expires_at: &str,
    ) -> Result<bool> {
        query("DELETE FROM seen_signatures WHERE expires_at < ?").bind(now).execute(self.write()).await?;
        let done = query(
            "INSERT INTO seen_signatures (signature_hash, expires_at) VALUES (?, ?) \
             ON CONFLICT (signature_hash) DO NOTHING",
        )
        .bind(signature_hash)
        .bind(expires_at)
        .execute(self.write())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
