//! Persistence: the only module that speaks SQL.
//!
//! Reads go through a pool of read connections. Every change is a job run by
//! [`Store::write`] on the single write connection, inside a `BEGIN
//! IMMEDIATE` transaction: SQLite allows one writer at a time anyway, and
//! taking the write lock up front means a job that reads (say, the day's
//! spend) and then writes (the reservation) can never act on a stale read.
//! That is what makes check-and-reserve atomic.
//!
//! Group commit: the writer runs every job that is waiting, one after the
//! other, in one transaction, and answers them only after the COMMIT (one
//! fsync for the batch). Jobs still see each other's writes in order, so
//! the result is exactly that of running them one by one.

mod agents;
mod approvals;
mod audit;
mod cards;
mod payments;
mod webhooks;
mod writer;

use std::str::FromStr;
use std::time::Duration;

use futures_util::future::BoxFuture;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqliteConnection, SqlitePool, Transaction};
use tokio::sync::{mpsc, oneshot};

pub use agents::{AgentPatch, KeyAuth, NewKey};
pub use approvals::{ApprovalState, ConsoleSession};
pub use audit::AuditFilter;
pub use payments::{DecisionContext, ForwardOutcome, NewPayment, PaymentFilter, SpendQuery};
pub use webhooks::{AttemptResult, DueDelivery, EndpointPatch, SealedSecrets};

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
    /// The change was not committed (its batch was rolled back or the
    /// writer stopped); nothing happened and the caller may retry.
    #[error("not committed: {0}")]
    NotCommitted(String),
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
                    matches!(c.parse::<i32>().map(|c| c & 0xff), Ok(5 | 6 | 8 | 10 | 13 | 14))
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
    jobs: mpsc::Sender<writer::Job>,
    subscriptions: std::sync::Arc<webhooks::Subscriptions>,
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
        let subscriptions = std::sync::Arc::new(webhooks::Subscriptions::default());
        let jobs = writer::start(write.clone(), subscriptions.clone())?;
        let store = Store { read, write, jobs, subscriptions };
        store.refresh_subscriptions().await?;
        Ok(store)
    }

    /// Runs `job` in a write transaction and returns its result once the
    /// transaction has committed. If the job fails, its writes are undone
    /// (see `writer` for how) and its error is returned.
    pub async fn write<T, E, F>(&self, job: F) -> Result<T, E>
    where
        F: for<'c> FnOnce(&'c mut WriteTx) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (done, result) = oneshot::channel();
        let stopped = || E::from(StoreError::NotCommitted("the store writer has stopped".into()));
        self.jobs.send(writer::job(job, done)).await.map_err(|_| stopped())?;
        result.await.map_err(|_| stopped())?
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

/// The open write transaction a job runs in.
pub struct WriteTx {
    tx: Transaction<'static, Sqlite>,
    /// Set by every method that writes; lets the writer tell a failed job
    /// that changed nothing from one whose changes must be undone.
    dirty: bool,
    /// (seq, hash) of the newest audit record, once read in this transaction.
    audit_head: Option<(i64, String)>,
    /// Audit records appended but not yet inserted (see `flush_audit`).
    pending_audit: Vec<crate::audit::AuditRecord>,
    /// Webhook events emitted but not yet inserted (see `flush_outbox`).
    pending_events: Vec<webhooks::PendingEvent>,
    subscriptions: std::sync::Arc<webhooks::Subscriptions>,
}

impl WriteTx {
    fn new(tx: Transaction<'static, Sqlite>, subscriptions: std::sync::Arc<webhooks::Subscriptions>) -> Self {
        WriteTx {
            tx,
            dirty: false,
            audit_head: None,
            pending_audit: Vec::new(),
            pending_events: Vec::new(),
            subscriptions,
        }
    }

    /// Writes what the jobs buffered (audit records, webhook events), then
    /// commits: all of it or none.
    async fn commit(mut self) -> Result<()> {
        self.flush_audit().await?;
        self.flush_outbox().await?;
        self.tx.commit().await?;
        Ok(())
    }

    /// The connection, for a statement that reads.
    fn read(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }

    /// The connection, for a statement that writes.
    fn write(&mut self) -> &mut SqliteConnection {
        self.dirty = true;
        &mut self.tx
    }
}

/// Decodes a JSON column written by this module; failure means corruption.
fn from_json<T: serde::de::DeserializeOwned>(column: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Internal(format!("column {column}: {e}")))
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("in-memory values serialize")
}
