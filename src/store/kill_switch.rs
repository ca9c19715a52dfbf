//! The gateway-wide kill switch, read on every decision from memory: the
//! store reloads it at start, after every change made here, and on
//! PostgreSQL under the write lock at the start of every write transaction
//! (another replica may have flipped it).

use std::sync::RwLock;

use sqlx::{AnyConnection, Row};

use super::{query, Result, Store, WriteTx};
use crate::model::KillSwitch;

#[derive(Debug, Default)]
pub(super) struct KillSwitchCache(RwLock<Option<KillSwitch>>);

impl KillSwitchCache {
    pub(super) async fn reload(&self, conn: &mut AnyConnection) -> Result<()> {
        let row = query("SELECT reason, actor, engaged_at FROM kill_switch WHERE id = 1")
            .fetch_optional(conn)
            .await?;
        let current = row.map(|r| KillSwitch {
            reason: r.get("reason"),
            actor: r.get("actor"),
            engaged_at: r.get("engaged_at"),
        });
        *self.0.write().expect("kill switch lock") = current;
        Ok(())
    }

    fn get(&self) -> Option<KillSwitch> {
        self.0.read().expect("kill switch lock").clone()
    }
}

impl Store {
    pub fn kill_switch(&self) -> Option<KillSwitch> {
        self.shared.kill_switch.get()
    }

    /// The kill switch as it stands in the database now. On SQLite this
    /// gateway is the only writer, so its copy is current; on PostgreSQL
    /// another replica may have flipped it since this one last wrote.
    pub async fn current_kill_switch(&self) -> Result<Option<KillSwitch>> {
        if self.backend() == super::Backend::Postgres {
            self.reload_kill_switch().await?;
        }
        Ok(self.kill_switch())
    }

    pub async fn reload_kill_switch(&self) -> Result<()> {
        let mut conn = self.read.acquire().await?;
        self.shared.kill_switch.reload(&mut conn).await
    }
}

impl WriteTx {
    /// The kill switch as this transaction sees it.
    pub fn kill_switch(&self) -> Option<KillSwitch> {
        self.kill_switch.get()
    }

    /// Engages (`Some`) or releases (`None`) the kill switch; returns
    /// whether it changed. The in-memory copy follows after COMMIT.
    pub async fn set_kill_switch(&mut self, to: Option<&KillSwitch>) -> Result<bool> {
        let done = match to {
            Some(k) => {
                query(
                    "INSERT INTO kill_switch (id, reason, actor, engaged_at) VALUES (1, ?, ?, ?) \
                 ON CONFLICT (id) DO NOTHING",
                )
                .bind(&k.reason)
                .bind(&k.actor)
                .bind(&k.engaged_at)
                .execute(self.write())
                .await?
            }
            None => query("DELETE FROM kill_switch WHERE id = 1").execute(self.write()).await?,
        };
        Ok(done.rows_affected() == 1)
    }
}
