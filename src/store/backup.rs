//! Online backups of an SQLite store.

use super::{query, Result, Store};

impl Store {
    /// Writes a consistent copy of an SQLite database to the new file `to`
    /// while the gateway keeps running: `VACUUM INTO` reads one snapshot
    /// (writers go on meanwhile) into a compacted file, and fails rather
    /// than overwrite an existing one. SQLite only; PostgreSQL has its own
    /// tools (`pg_dump`, base backups with WAL archiving).
    pub async fn backup_sqlite(&self, to: &str) -> Result<()> {
        query("VACUUM INTO ?").bind(to).execute(&self.read).await?;
        Ok(())
    }
}
