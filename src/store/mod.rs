//! Persistence: the only module that speaks SQL.
//!
//! Reads go through a pool of read connections. Every change goes through
//! [`WriteTx`], a `BEGIN IMMEDIATE` transaction on the single write
//! connection: SQLite allows one writer at a time anyway, and taking the
//! write lock up front means a transaction that reads (say, the day's spend)
//! and then writes (the reservation) can never act on a stale read. That is
//! what makes check-and-reserve atomic.

mod agents;
mod audit;

mod payments;

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

pub use agents::{AgentPatch, KeyAuth, NewKey};
pub use audit::AuditFilter;
pub use payments::{ForwardOutcome, NewPayment, PaymentFilter, SpendQuery};

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or did not answer in time.
    #[error("store unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// A query failed for a reason that is not the caller's: a constraint,
    /// a corrupt row, a bug.
    #[error("store error: {0}")]
    Internal(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_) => StoreError::Unavailable(e),
            // SQLITE_BUSY / SQLITE_LOCKED / SQLITE_READONLY / SQLITE_IOERR /
            // SQLITE_FULL / SQLITE_CANTOPEN: the store cannot take writes now.
            sqlx::Error::Database(ref db)
                if db.code().is_some_and(|c| {
                    matches!(
                        c.parse::<i32>().map(|c| c & 0xff),
                        Ok(5 | 6 | 8 | 10 | 13 | 14)
                    )
                }) =>
            {
                StoreError::Unavailable(e)
            }
            other => StoreError::Internal(other.to_string()),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Clone)]
pub struct Store {
    read: SqlitePool,
    write: SqlitePool,
}

impl Store {
    /// Opens (creating if needed) the database at `url` and applies pending
    /// migrations.
    pub async fn connect(url: &str) -> anyhow::Result<Store> {
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a decision acknowledged to a client survives power loss,
            // not just a process crash. Measured cost in README (bench).
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts.clone())
            .await?;
        MIGRATIONS.run(&write).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(opts.read_only(true))
            .await?;
        Ok(Store { read, write })
    }

    /// Starts the one kind of write transaction there is (see module docs).
    pub async fn begin(&self) -> Result<WriteTx> {
        let tx = self.write.begin_with("BEGIN IMMEDIATE").await?;
        Ok(WriteTx { tx })
    }

    /// Readiness: the store answers a query.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

/// An open write transaction. Dropping it without [`WriteTx::commit`] rolls
/// everything back, so an early `?` return never leaves half a change.
pub struct WriteTx {
    tx: Transaction<'static, Sqlite>,
}

impl WriteTx {
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

/// Decodes a JSON column written by this module; failure means corruption.
fn from_json<T: serde::de::DeserializeOwned>(column: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Internal(format!("column {column}: {e}")))
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("in-memory values serialize")
}
