//! Agents, their API keys, and dev admin tokens.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{from_json, query, to_json, Result, Slice, Store, StoreError, WriteTx};
use crate::model::{Agent, ApiKey};
use crate::policy::TrustLevel;

pub(super) const AGENT_COLUMNS: &str =
    "id, name, policy, trust_level, frozen, frozen_reason, created_at, updated_at";
const KEY_COLUMNS: &str =
    "id, agent_id, prefix, scopes, allowed_cidrs, rate_limit, expires_at, created_at, revoked_at, replaced_by, last_used_at";
const KEY_COLUMNS_K: &str = "k.id, k.agent_id, k.prefix, k.scopes, k.allowed_cidrs, k.rate_limit, \
     k.expires_at, k.created_at, k.revoked_at, k.replaced_by, k.last_used_at";

pub(super) fn agent_from_row(row: &AnyRow) -> Result<Agent> {
    agent_from_prefixed_row(row, "")
}

/// Reads agent columns named `{prefix}{column}` (joins alias them).
fn agent_from_prefixed_row(row: &AnyRow, prefix: &str) -> Result<Agent> {
    let col = |name: &str| format!("{prefix}{name}");
    let trust: String = row.get(col("trust_level").as_str());
    Ok(Agent {
        id: row.get(col("id").as_str()),
        name: row.get(col("name").as_str()),
        policy: row.get(col("policy").as_str()),
        trust_level: TrustLevel::parse(&trust)
            .ok_or_else(|| StoreError::Internal(format!("column trust_level: {trust:?}")))?,
        frozen: row.get::<i64, _>(col("frozen").as_str()) != 0,
        frozen_reason: row.get(col("frozen_reason").as_str()),
        created_at: row.get(col("created_at").as_str()),
        updated_at: row.get(col("updated_at").as_str()),
    })
}

fn key_from_row(row: &AnyRow) -> Result<ApiKey> {
    Ok(ApiKey {
        id: row.get("id"),
        agent_id: row.get("agent_id"),
        prefix: row.get("prefix"),
        scopes: from_json("scopes", row.get("scopes"))?,
        allowed_cidrs: from_json("allowed_cidrs", row.get("allowed_cidrs"))?,
        rate_limit: from_json("rate_limit", row.get("rate_limit"))?,
        expires_at: row.get("expires_at"),
        created_at: row.get("created_at"),
        revoked_at: row.get("revoked_at"),
        replaced_by: row.get("replaced_by"),
        last_used_at: row.get("last_used_at"),
    })
}

/// The credentials an agent authenticates with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// A bearer API key (`key_...`).
    ApiKey,
    /// An Ed25519 signing key (`sk_...`).
    SigningKey,
}

impl Credential {
    fn table(self) -> &'static str {
        match self {
            Credential::ApiKey => "api_keys",
            Credential::SigningKey => "signing_keys",
        }
    }
}

/// A key found by its hash, with the agent it belongs to.
#[derive(Debug, Clone)]
pub struct KeyAuth {
    pub key: ApiKey,
    pub key_hash: String,
    pub agent: Agent,
}

#[derive(Debug, Clone, Default)]
pub struct AgentPatch {
    pub trust_level: Option<TrustLevel>,
    pub policy: Option<String>,
}

async fn agent_by_id(conn: &mut AnyConnection, id: &str) -> Result<Option<Agent>> {
    let sql = format!("SELECT {AGENT_COLUMNS} FROM agents WHERE id = ?");
    let row = query(&sql).bind(id).fetch_optional(conn).await?;
    row.as_ref().map(agent_from_row).transpose()
}

impl Store {
    pub async fn agent(&self, id: &str) -> Result<Option<Agent>> {
        let mut conn = self.read.acquire().await?;
        agent_by_id(&mut conn, id).await
    }

    /// Oldest first (ids are time-ordered).
    pub async fn agents(&self, page: Slice<'_>) -> Result<Vec<Agent>> {
        let sql =
            format!("SELECT {AGENT_COLUMNS} FROM agents WHERE (? IS NULL OR id > ?) ORDER BY id LIMIT ?");
        let rows =
            query(&sql).bind(page.after).bind(page.after).bind(page.limit()).fetch_all(&self.read).await?;
        rows.iter().map(agent_from_row).collect()
    }

    /// Oldest first.
    pub async fn keys(&self, agent_id: &str, page: Slice<'_>) -> Result<Vec<ApiKey>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE agent_id = ? AND (? IS NULL OR id > ?) ORDER BY id LIMIT ?"
        );
        let rows = query(&sql)
            .bind(agent_id)
            .bind(page.after)
            .bind(page.after)
            .bind(page.limit())
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// Looks a presented key up by its SHA-256. Revoked and expired keys are
    /// returned too: the caller decides (and reports) why they fail.
    pub async fn key_by_hash(&self, key_hash: &str) -> Result<Option<KeyAuth>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS_K}, k.key_hash, a.id AS a_id, a.name AS a_name, a.policy AS a_policy, \
             a.trust_level AS a_trust_level, a.frozen AS a_frozen, a.frozen_reason AS a_frozen_reason, \
             a.created_at AS a_created_at, a.updated_at AS a_updated_at \
             FROM api_keys k JOIN agents a ON a.id = k.agent_id WHERE k.key_hash = ?"
        );
        let Some(row) = query(&sql).bind(key_hash).fetch_optional(&self.read).await? else {
            return Ok(None);
        };
        Ok(Some(KeyAuth {
            key: key_from_row(&row)?,
            key_hash: row.get("key_hash"),
            agent: agent_from_prefixed_row(&row, "a_")?,
        }))
    }
}

impl WriteTx {
    /// Reads an agent inside the write transaction: what the decision sees
    /// is what is committed (a concurrent freeze is either before or after).
    pub async fn agent(&mut self, id: &str) -> Result<Option<Agent>> {
        agent_by_id(self.read(), id).await
    }

    pub async fn insert_agent(&mut self, agent: &Agent) -> Result<()> {
        query(
            "INSERT INTO agents (id, name, policy, trust_level, frozen, frozen_reason, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&agent.id)
        .bind(&agent.name)
        .bind(&agent.policy)
        .bind(agent.trust_level.as_str())
        .bind(agent.frozen as i64)
        .bind(&agent.frozen_reason)
        .bind(&agent.created_at)
        .bind(&agent.updated_at)
        .execute(self.write())
        .await?;
        Ok(())
    }

    /// Applies `patch`; returns the agent as it is now, or `None` if absent.
    pub async fn update_agent(&mut self, id: &str, patch: &AgentPatch, now: &str) -> Result<Option<Agent>> {
        query(
            "UPDATE agents SET trust_level = COALESCE(?, trust_level), policy = COALESCE(?, policy), \
             updated_at = ? WHERE id = ?",
        )
        .bind(patch.trust_level.map(TrustLevel::as_str))
        .bind(&patch.policy)
        .bind(now)
        .bind(id)
        .execute(self.write())
        .await?;
        self.agent(id).await
    }

    pub async fn set_frozen(&mut self, id: &str, reason: Option<&str>, now: &str) -> Result<Option<Agent>> {
        query("UPDATE agents SET frozen = ?, frozen_reason = ?, updated_at = ? WHERE id = ?")
            .bind(reason.is_some() as i64)
            .bind(reason)
            .bind(now)
            .bind(id)
            .execute(self.write())
            .await?;
        self.agent(id).await
    }

    pub async fn insert_key(&mut self, key: &ApiKey, key_hash: &str) -> Result<()> {
        query(
            "INSERT INTO api_keys (id, agent_id, key_hash, prefix, scopes, allowed_cidrs, rate_limit, expires_at, \
             created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&key.id)
        .bind(&key.agent_id)
        .bind(key_hash)
        .bind(&key.prefix)
        .bind(to_json(&key.scopes))
        .bind(to_json(&key.allowed_cidrs))
        .bind(to_json(&key.rate_limit))
        .bind(&key.expires_at)
        .bind(&key.created_at)
        .execute(self.write())
        .await?;
        Ok(())
    }

    /// Revokes a live key; `false` when there is no such live key.
    /// Revokes the live credential `id` of `agent_id`; `false` when there
    /// is none.
    pub async fn revoke_credential(
        &mut self,
        kind: Credential,
        agent_id: &str,
        id: &str,
        now: &str,
    ) -> Result<bool> {
        let sql = format!(
            "UPDATE {} SET revoked_at = ? WHERE id = ? AND agent_id = ? AND revoked_at IS NULL",
            kind.table()
        );
        let done = query(&sql).bind(now).bind(id).bind(agent_id).execute(self.write()).await?;
        Ok(done.rows_affected() == 1)
    }

    /// The live (not revoked) key `key_id` of `agent_id`.
    /// The agent's key `key_id`, revoked, expired or replaced as it may be.
    pub async fn agent_key(&mut self, agent_id: &str, key_id: &str) -> Result<Option<ApiKey>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ? AND agent_id = ?");
        let row = query(&sql).bind(key_id).bind(agent_id).fetch_optional(self.read()).await?;
        row.as_ref().map(key_from_row).transpose()
    }

    /// Records that a key authenticated a request at `at`.
    pub async fn touch_key(&mut self, key_id: &str, at: &str) -> Result<()> {
        query("UPDATE api_keys SET last_used_at = ? WHERE id = ?")
            .bind(at)
            .bind(key_id)
            .execute(self.write())
            .await?;
        Ok(())
    }

    /// Marks a key replaced by `successor`, working until `expires_at` (the
    /// end of the rotation's grace period).
    pub async fn replace_key(&mut self, key_id: &str, successor: &str, expires_at: &str) -> Result<()> {
        query("UPDATE api_keys SET expires_at = ?, replaced_by = ? WHERE id = ?")
            .bind(expires_at)
            .bind(successor)
            .bind(key_id)
            .execute(self.write())
            .await?;
        Ok(())
    }

    /// Revokes every live API key and signing key of `agent_id`; returns
    /// how many.
    pub async fn revoke_all_credentials(&mut self, agent_id: &str, now: &str) -> Result<u64> {
        let mut revoked = 0;
        for kind in [Credential::ApiKey, Credential::SigningKey] {
            let sql = format!(
                "UPDATE {} SET revoked_at = ? WHERE agent_id = ? AND revoked_at IS NULL",
                kind.table()
            );
            revoked += query(&sql).bind(now).bind(agent_id).execute(self.write()).await?.rows_affected();
        }
        Ok(revoked)
    }

    /// Revokes every live key of `agent_id` whose id is not `keep`.
    pub async fn revoke_other_keys(&mut self, agent_id: &str, keep: &str, now: &str) -> Result<u64> {
        let done =
            query("UPDATE api_keys SET revoked_at = ? WHERE agent_id = ? AND id <> ? AND revoked_at IS NULL")
                .bind(now)
                .bind(agent_id)
                .bind(keep)
                .execute(self.write())
                .await?;
        Ok(done.rows_affected())
    }

    pub async fn agent_by_name(&mut self, name: &str) -> Result<Option<Agent>> {
        let sql = format!("SELECT {AGENT_COLUMNS} FROM agents WHERE name = ? ORDER BY id LIMIT 1");
        let row = query(&sql).bind(name).fetch_optional(self.read()).await?;
        row.as_ref().map(agent_from_row).transpose()
    }
}
