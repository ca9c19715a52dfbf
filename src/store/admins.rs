//! Administrators: people with their own admin tokens and roles.

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{from_json, query, to_json, Result, Slice, Store, StoreError, WriteTx};
use crate::model::Administrator;

const ADMIN_COLUMNS: &str = "id, name, role, allowed_cidrs, created_at, revoked_at";

fn admin_from_row(row: &AnyRow) -> Result<Administrator> {
    let role: String = row.get("role");
    Ok(Administrator {
        id: row.get("id"),
        name: row.get("name"),
        role: role.parse().map_err(StoreError::Internal)?,
        allowed_cidrs: from_json("allowed_cidrs", row.get("allowed_cidrs"))?,
        created_at: row.get("created_at"),
        revoked_at: row.get("revoked_at"),
    })
}

impl Store {
    /// Oldest first, revoked ones included.
    pub async fn admins(&self, page: Slice<'_>) -> Result<Vec<Administrator>> {
        let sql =
            format!("SELECT {ADMIN_COLUMNS} FROM admins WHERE (? IS NULL OR id > ?) ORDER BY id LIMIT ?");
        let rows =
            query(&sql).bind(page.after).bind(page.after).bind(page.limit()).fetch_all(&self.read).await?;
        rows.iter().map(admin_from_row).collect()
    }

    /// A live (not revoked) administrator by the SHA-256 of its token, with
    /// the stored hash for the constant-time comparison.
    pub async fn admin_by_token_hash(&self, token_hash: &str) -> Result<Option<(Administrator, String)>> {
        let sql = format!(
            "SELECT {ADMIN_COLUMNS}, token_hash FROM admins WHERE token_hash = ? AND revoked_at IS NULL"
        );
        let row = query(&sql).bind(token_hash).fetch_optional(&self.read).await?;
        row.map(|r| Ok((admin_from_row(&r)?, r.get("token_hash")))).transpose()
    }
}

impl WriteTx {
    pub async fn insert_admin(&mut self, admin: &Administrator, token_hash: &str) -> Result<()> {
        query(
            "INSERT INTO admins (id, name, role, allowed_cidrs, token_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&admin.id)
        .bind(&admin.name)
        .bind(admin.role.as_str())
        .bind(to_json(&admin.allowed_cidrs))
        .bind(token_hash)
        .bind(&admin.created_at)
        .execute(self.write())
        .await?;
        Ok(())
    }

    /// Revokes a live administrator; `false` when there is none with `id`.
    pub async fn revoke_admin(&mut self, id: &str, now: &str) -> Result<bool> {
        let done = query("UPDATE admins SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(self.write())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Revokes every live administrator named `name` (dev mode replaces its
    /// own admin on each start, and only that one); answers how many.
    pub async fn revoke_admins_named(&mut self, name: &str, now: &str) -> Result<u64> {
        let done = query("UPDATE admins SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL")
            .bind(now)
            .bind(name)
            .execute(self.write())
            .await?;
        Ok(done.rows_affected())
    }
}
