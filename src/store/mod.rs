//! Persistence: the only module that speaks SQL, on SQLite (embedded, the
//! default) or PostgreSQL (several stateless replicas on one database).
//! The statements are the same on both (sqlx's `Any` driver; the few
//! places where the dialects differ ask [`Backend`]); each has its own
//! migrations, numbered alike (`migrations`).
//!
//! Reads go through a pool of read connections. Every change is a job run by
//! [`Store::write`] on the single write connection, inside a transaction that
//! takes the database's write lock up front: `BEGIN IMMEDIATE` on SQLite
//! (which allows one writer at a time anyway), and on PostgreSQL a
//! transaction-scoped advisory lock that every replica's writer takes first
//! (see `writer`). A job that reads (say, the day's spend) and then writes
//! (the reservation) can therefore never act on a stale read, whichever
//! replica runs it. That is what makes check-and-reserve atomic.
//!
//! Group commit: the writer runs every job that is waiting, one after the
//! other, in one transaction, and answers them only after the COMMIT (one
//! fsync for the batch). Jobs still see each other's writes in order, so
//! the result is exactly that of running them one by one.

mod admins;
mod agents;
mod approvals;
mod audit;
mod backup;
mod cards;
mod kill_switch;
mod migrations;
mod payments;
mod rate_budgets;
mod retention;
mod signing;
mod webhooks;
mod writer;

use std::collections::HashMap;
use std::sync::{LazyLock, RwLock};
use std::time::Duration;

use futures_util::future::BoxFuture;
use sqlx::any::{AnyArguments, AnyPoolOptions};
use sqlx::{Any, AnyConnection, AnyPool, Executor, Transaction};
use tokio::sync::{mpsc, oneshot};

pub use agents::{AgentPatch, Credential, KeyAuth};
pub use approvals::{ApprovalState, ConsoleSession};
pub use audit::AuditFilter;
pub use cards::IssuedAuthorization;
pub use payments::{Claim, DecisionContext, ForwardOutcome, NewPayment, PaymentFilter, SpendQuery};
pub use retention::Expired;
pub use webhooks::{AttemptResult, DueDelivery, EndpointPatch, SealedSecrets, StoredSecret};

/// One page of a list as the store reads it: at most `limit` items, after
/// the item whose key (its id; a card's token) is `after`, in the list's
/// own order. Keys are unique, so pages never skip or repeat an item,
/// whatever is added meanwhile.
#[derive(Debug, Clone, Copy)]
pub struct Slice<'a> {
    pub after: Option<&'a str>,
    pub limit: u32,
}

impl Slice<'_> {
    /// The first `limit` items.
    pub fn first(limit: u32) -> Slice<'static> {
        Slice { after: None, limit }
    }

    /// Every item (for internal readers that need them all).
    pub fn all() -> Slice<'static> {
        Slice::first(u32::MAX)
    }

    fn limit(&self) -> i64 {
        i64::from(self.limit)
    }
}

/// The database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of(url: &str) -> anyhow::Result<Backend> {
        match url.split_once(':').map(|(scheme, _)| scheme) {
            Some("sqlite") => Ok(Backend::Sqlite),
            Some("postgres" | "postgresql") => Ok(Backend::Postgres),
            _ => anyhow::bail!("unsupported database URL: use sqlite://FILE or postgres://..."),
        }
    }

    /// The column that orders webhook events as they were committed.
    fn event_seq(self) -> &'static str {
        match self {
            Backend::Sqlite => "rowid",
            Backend::Postgres => "seq",
        }
    }

    /// An expression for 24 random hex digits (unique row ids made in SQL).
    fn random_hex(self) -> &'static str {
        match self {
            Backend::Sqlite => "lower(hex(randomblob(12)))",
            Backend::Postgres => "substr(replace(gen_random_uuid()::text, '-', ''), 1, 24)",
        }
    }

    /// A condition true when the JSON array of strings `array` (a column,
    /// or a `?` bound to JSON text) holds `value_expr` or `'*'`.
    fn json_array_matches(self, array: &str, value_expr: &str) -> String {
        self.json_array_holds(array, &format!("{value_expr} OR value = '*'"))
    }

    /// A condition true when the JSON array of strings `array` holds a
    /// value for which `value = <condition>` is true.
    fn json_array_holds(self, array: &str, condition: &str) -> String {
        match self {
            Backend::Sqlite => format!("EXISTS (SELECT 1 FROM json_each({array}) WHERE value = {condition})"),
            Backend::Postgres => format!(
                "EXISTS (SELECT 1 FROM jsonb_array_elements_text(({array})::jsonb) AS j(value) \
                 WHERE value = {condition})"
            ),
        }
    }
}

/// sqlx's `query`, with `?` placeholders numbered `$1, $2, ...`: PostgreSQL
/// needs the numbers and SQLite reads them too, so one text serves both.
fn query<'q>(sql: &str) -> sqlx::query::Query<'q, Any, AnyArguments<'q>> {
    sqlx::query(numbered(sql))
}

type AnyQuery<'q> = sqlx::query::Query<'q, Any, AnyArguments<'q>>;

/// `items` in runs of 256, 64, 16, 4 and 1 rows: multi-row statements stay
/// few, and so do their distinct texts (which `numbered` keeps).
fn runs<T>(items: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = items;
    std::iter::from_fn(move || {
        let n = [256, 64, 16, 4, 1].into_iter().find(|&n| n <= rest.len())?;
        let (run, tail) = rest.split_at(n);
        rest = tail;
        Some(run)
    })
}

/// `sql` with its placeholders numbered. Each distinct text is numbered once
/// and kept for the life of the process; the set is bounded (this module's
/// statements, and batch inserts of at most a few hundred rows).
fn numbered(sql: &str) -> &'static str {
    static CACHE: LazyLock<RwLock<HashMap<String, &'static str>>> = LazyLock::new(Default::default);
    if let Some(done) = CACHE.read().expect("sql cache lock").get(sql) {
        return done;
    }
    let mut out = String::with_capacity(sql.len() + 16);
    let (mut n, mut quoted) = (0, false);
    for c in sql.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            }
            _ => out.push(c),
        }
    }
    let done: &'static str = Box::leak(out.into_boxed_str());
    CACHE.write().expect("sql cache lock").insert(sql.to_owned(), done);
    done
}

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
            sqlx::Error::Database(ref db) if store_cannot_write(db.as_ref()) => StoreError::Unavailable(e),
            other => StoreError::Internal(other.to_string()),
        }
    }
}

/// Whether a database error means the store cannot take the change now
/// (rather than that the change is wrong).
fn store_cannot_write(db: &dyn sqlx::error::DatabaseError) -> bool {
    if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        // SQLSTATE classes: connection exception, insufficient resources,
        // operator intervention, transaction rollback (serialization,
        // deadlock).
        return ["08", "53", "57", "40"].iter().any(|class| pg.code().starts_with(class));
    }
    // SQLITE_BUSY / SQLITE_LOCKED / SQLITE_READONLY / SQLITE_IOERR /
    // SQLITE_FULL / SQLITE_CANTOPEN (primary codes, extended ones masked).
    db.code().is_some_and(|c| matches!(c.parse::<i32>().map(|c| c & 0xff), Ok(5 | 6 | 8 | 10 | 13 | 14)))
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Clone)]
pub struct Store {
    backend: Backend,
    read: AnyPool,
    write: AnyPool,
    /// PostgreSQL: connections for payment decisions, which commit beside
    /// each other (see [`Store::write_for_agent`]).
    decisions: Option<AnyPool>,
    jobs: mpsc::Sender<writer::Job>,
    /// The caches every write transaction reads (webhook subscriptions,
    /// the kill switch).
    shared: writer::Shared,
}

impl Store {
    /// Opens the database at `url` (an SQLite file is created if missing)
    /// and applies pending migrations.
    pub async fn connect(url: &str) -> anyhow::Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of(url)?;
        let (write, read, decisions) = match backend {
            Backend::Sqlite => {
                create_private(url)?;
                let write = sqlite_pool(url, "rwc", 1).await?;
                migrations::sqlite(&write).await?;
                (write, sqlite_pool(url, "ro", 8).await?, None)
            }
            Backend::Postgres => {
                // Replicas share the database: the write pool holds the
                // writer's connection and the sweeps' leases; reads scale,
                // and so do decisions, up to PostgreSQL's own commit rate.
                let pool = |n| {
                    AnyPoolOptions::new()
                        .max_connections(n)
                        .acquire_timeout(Duration::from_secs(10))
                        .idle_timeout(Duration::from_secs(60))
                };
                migrations::postgres(url).await?;
                (
                    pool(2).connect(url).await?,
                    pool(16).connect(url).await?,
                    Some(pool(16).connect(url).await?),
                )
            }
        };
        let shared = writer::Shared::default();
        let jobs = writer::start(backend, write.clone(), shared.clone())?;
        let store = Store { backend, read, write, decisions, jobs, shared };
        store.refresh_subscriptions().await?;
        store.reload_kill_switch().await?;
        Ok(store)
    }

    /// [`Store::connect`] to a store that must already exist: the
    /// operator's tools (`audit verify` on a restored backup) must not
    /// create an empty database and then find it intact.
    pub async fn open_existing(url: &str) -> anyhow::Result<Store> {
        sqlx::any::install_default_drivers();
        let probe = match Backend::of(url)? {
            Backend::Sqlite => sqlite_pool(url, "ro", 1).await,
            Backend::Postgres => Ok(AnyPoolOptions::new().max_connections(1).connect(url).await?),
        };
        let found = match probe {
            Ok(pool) => {
                let found = query("SELECT 1 FROM audit_log LIMIT 1").fetch_optional(&pool).await.is_ok();
                pool.close().await;
                found
            }
            Err(_) => false,
        };
        if !found {
            anyhow::bail!(
                "no purser database at that URL (it does not exist or has no audit log); nothing was created"
            );
        }
        Store::connect(url).await
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Runs `job` in a write transaction and returns its result once the
    /// transaction has committed. If the job fails, its writes are undone,
    /// and only its own (see `writer`), and its error is returned.
    pub async fn write<T, E, F>(&self, job: F) -> Result<T, E>
    where
        F: for<'c> FnOnce(&'c mut WriteTx) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.submit(job, false).await
    }

    /// [`Store::write`] for a job that validates before it writes: every
    /// way it can fail other than a store fault comes before its first
    /// write. It then needs no savepoint of its own, which saves a round
    /// trip on the hot path (payment decisions). If it fails after writing
    /// anyway, its whole batch is rolled back and answered `NotCommitted`,
    /// as for a store fault.
    pub async fn write_validated<T, E, F>(&self, job: F) -> Result<T, E>
    where
        F: for<'c> FnOnce(&'c mut WriteTx) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.submit(job, true).await
    }

    /// A validated write (see [`Store::write_validated`]) that reads and
    /// changes one agent's data only: a payment decision. On SQLite it
    /// joins the single writer's batches. On PostgreSQL it commits on its
    /// own connection beside other agents' decisions, of this replica and
    /// of the others: it holds the write lock shared and the agent's row
    /// exclusively, so decisions of one agent take turns, those of
    /// different agents do not wait for each other, and every other write
    /// (which holds the lock exclusively) still sees none in flight. Its
    /// audit records wait in `audit_pending` until such a write chains
    /// them (docs/audit.md).
    pub async fn write_for_agent<T, E, F>(&self, agent_id: &str, job: F) -> Result<T, E>
    where
        F: for<'c> FnOnce(&'c mut WriteTx) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        match &self.decisions {
            None => self.write_validated(job).await,
            Some(pool) => writer::run_for_agents(pool, &self.shared, &[agent_id.to_owned()], job).await,
        }
    }

    /// [`Store::write`] for a job that changes the data of `agents` only
    /// (their payments and spend), such as recording provider outcomes: on
    /// PostgreSQL it runs beside decisions like [`Store::write_for_agent`],
    /// locking the agents' rows in id order, the one order every
    /// transaction takes them in, so two such jobs never deadlock.
    pub async fn write_for_agents<T, E, F>(&self, mut agents: Vec<String>, job: F) -> Result<T, E>
    where
        F: for<'c> FnOnce(&'c mut WriteTx) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        match &self.decisions {
            None => self.write(job).await,
            Some(pool) => {
                agents.sort();
                agents.dedup();
                writer::run_for_agents(pool, &self.shared, &agents, job).await
            }
        }
    }

    /// Places the audit records that decisions left waiting into the hash
    /// chain (PostgreSQL; SQLite chains every record as it is written).
    /// Readers of the chain call it first, so they see every committed
    /// record; replicas also run it every few hundred milliseconds.
    pub async fn seal_audit(&self) -> Result<()> {
        if self.backend == Backend::Sqlite {
            return Ok(());
        }
        self.write(|tx| Box::pin(async move { tx.audit_head().await.map(drop) })).await
    }

    async fn submit<T, E, F>(&self, job: F, validated: bool) -> Result<T, E>
    where
        F: for<'c> FnOnce(&'c mut WriteTx) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (done, result) = oneshot::channel();
        let stopped = || E::from(StoreError::NotCommitted("the store writer has stopped".into()));
        self.jobs.send(writer::job(job, validated, done)).await.map_err(|_| stopped())?;
        result.await.map_err(|_| stopped())?
    }

    /// Readiness: the store answers a query.
    pub async fn ping(&self) -> Result<()> {
        query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
        if let Some(decisions) = &self.decisions {
            decisions.close().await;
        }
    }
}

/// Creates a missing SQLite file readable by its owner only (0600), in a
/// directory of its own (0700) if that is missing too: it holds payments,
/// audit records and key hashes. SQLite gives its WAL files the same mode.
/// Existing files and directories are left as the operator made them.
fn create_private(url: &str) -> anyhow::Result<()> {
    let path = url.trim_start_matches("sqlite://").split('?').next().unwrap_or_default();
    let path = std::path::Path::new(path);
    if path.as_os_str().is_empty() || path.exists() || path.to_str() == Some(":memory:") {
        return Ok(());
    }
    let mut dir = std::fs::DirBuilder::new();
    dir.recursive(true);
    let mut file = std::fs::OpenOptions::new();
    file.write(true).create_new(true);
    #[cfg(unix)]
    {
        std::os::unix::fs::DirBuilderExt::mode(&mut dir, 0o700);
        std::os::unix::fs::OpenOptionsExt::mode(&mut file, 0o600);
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty() && !p.exists()) {
        dir.create(parent)?;
    }
    file.open(path)?;
    Ok(())
}

/// `url` with one more query parameter.
fn with_param(url: &str, param: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{param}")
}

/// Creates a new, empty schema `<prefix>_<ulid>` on the PostgreSQL at
/// `database_url` and returns a URL whose connections use it: a database
/// of its own for each test and benchmark run, without creating databases.
pub async fn create_schema(database_url: &str, prefix: &str) -> anyhow::Result<String> {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let schema = crate::ids::new(prefix);
    let mut conn = AnyConnection::connect(database_url).await?;
    conn.execute(format!("CREATE SCHEMA {schema}").as_str()).await?;
    Ok(with_param(database_url, &format!("options[search_path]={schema}")))
}

/// For tests: a fresh schema on `PURSER_TEST_DATABASE_URL`, or `None` where
/// PostgreSQL tests are skipped (never under CI).
#[cfg(test)]
pub(crate) async fn test_postgres() -> Option<String> {
    let Ok(url) = std::env::var("PURSER_TEST_DATABASE_URL") else {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI must set PURSER_TEST_DATABASE_URL");
        return None;
    };
    Some(create_schema(&url, "t").await.expect("the test PostgreSQL is reachable"))
}

/// An SQLite pool on the file `url` opened in `mode` (`rwc` creates it,
/// `ro` reads only). Every connection is in WAL mode with
/// `synchronous=FULL`: a decision acknowledged to a client survives power
/// loss, not just a process crash (measured cost in docs/performance.md).
async fn sqlite_pool(url: &str, mode: &str, connections: u32) -> anyhow::Result<AnyPool> {
    let url = with_param(url, &format!("mode={mode}"));
    // A read-only connection cannot switch a file to WAL, and need not: a
    // backup copy (`VACUUM INTO` writes a rollback-journal file) must open
    // for `audit verify` as it is.
    let pragmas = if mode == "ro" {
        "PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;"
    } else {
        "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;"
    };
    let pool = AnyPoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(move |conn, _| Box::pin(async move { conn.execute(pragmas).await.map(drop) }))
        .connect(&url)
        .await?;
    Ok(pool)
}

/// The open write transaction a job runs in.
pub struct WriteTx {
    backend: Backend,
    tx: Transaction<'static, Any>,
    /// Set by every statement that writes; tells the writer whether a
    /// validated job that failed left anything to undo (see `writer`).
    dirty: bool,
    /// (seq, hash) of the newest audit record, once read in this transaction.
    audit_head: Option<(i64, String)>,
    /// Audit records appended but not yet inserted (see `flush_audit`).
    pending_audit: Vec<crate::audit::AuditRecord>,
    /// Whether this transaction runs beside others (a PostgreSQL decision,
    /// see `writer::run_for_agent`): its audit records then wait in
    /// `audit_pending` for a writer holding the lock to chain them.
    unchained: bool,
    /// Audit records of an `unchained` transaction, not yet inserted.
    pending_unchained: Vec<audit::Unchained>,
    /// Webhook events emitted but not yet inserted (see `flush_outbox`).
    pending_events: Vec<webhooks::PendingEvent>,
    subscriptions: std::sync::Arc<webhooks::Subscriptions>,
    kill_switch: std::sync::Arc<kill_switch::KillSwitchCache>,
}

/// The transaction's in-memory part at the start of a job (see
/// [`WriteTx::mark`]): what undoing the job must restore besides the rows.
pub(super) struct Mark {
    audit_head: Option<(i64, String)>,
    pending_audit: usize,
    pending_unchained: usize,
    pending_events: usize,
}

/// The savepoint each job of a batch runs in (see `writer`).
const JOB_SAVEPOINT: &str = "job";

impl WriteTx {
    fn new(backend: Backend, tx: Transaction<'static, Any>, shared: &writer::Shared) -> Self {
        WriteTx {
            backend,
            tx,
            dirty: false,
            audit_head: None,
            pending_audit: Vec::new(),
            unchained: false,
            pending_unchained: Vec::new(),
            pending_events: Vec::new(),
            subscriptions: shared.subscriptions.clone(),
            kill_switch: shared.kill_switch.clone(),
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
    fn read(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    /// The connection, for a statement that writes.
    fn write(&mut self) -> &mut AnyConnection {
        self.dirty = true;
        &mut self.tx
    }

    /// Whether a failed statement has left the transaction unusable:
    /// PostgreSQL refuses every later statement (and turns COMMIT into a
    /// silent ROLLBACK) until a savepoint is rolled back. SQLite carries on
    /// after a failed statement, and a failure that ends its transaction
    /// makes COMMIT fail.
    async fn aborted(&mut self) -> bool {
        self.backend == Backend::Postgres && self.tx.execute("SELECT 1").await.is_err()
    }

    /// Opens the savepoint the next job runs in; `release` first keeps
    /// what was written since the last one. One statement, one round trip.
    async fn savepoint(&mut self, release: bool) -> Result<()> {
        let sql = if release {
            format!("RELEASE SAVEPOINT {JOB_SAVEPOINT}; SAVEPOINT {JOB_SAVEPOINT}")
        } else {
            format!("SAVEPOINT {JOB_SAVEPOINT}")
        };
        self.tx.execute(sql.as_str()).await?;
        Ok(())
    }

    /// Undoes everything since the savepoint was opened, which stays open
    /// for the next job. On PostgreSQL this also clears the aborted state a
    /// failed statement leaves the transaction in.
    async fn rollback_savepoint(&mut self) -> Result<()> {
        self.tx.execute(format!("ROLLBACK TO SAVEPOINT {JOB_SAVEPOINT}").as_str()).await?;
        Ok(())
    }

    /// Inserts `rows` into `table` (`columns`, comma-separated), one
    /// multi-row statement per run (see [`runs`]); `bind` binds one row's
    /// values in column order.
    async fn insert_rows<'r, T>(
        &mut self,
        table: &str,
        columns: &str,
        rows: &'r [T],
        bind: impl Fn(AnyQuery<'r>, &'r T) -> AnyQuery<'r>,
    ) -> Result<()> {
        let row = format!("({})", vec!["?"; columns.split(',').count()].join(", "));
        for run in runs(rows) {
            let sql = format!(
                "INSERT INTO {table} ({columns}) VALUES {}",
                vec![row.as_str(); run.len()].join(", ")
            );
            run.iter().fold(query(&sql), &bind).execute(self.write()).await?;
        }
        Ok(())
    }

    /// Where the buffers stand before a job runs.
    fn mark(&self) -> Mark {
        Mark {
            audit_head: self.audit_head.clone(),
            pending_audit: self.pending_audit.len(),
            pending_unchained: self.pending_unchained.len(),
            pending_events: self.pending_events.len(),
        }
    }

    /// Drops the audit records and events appended since `mark`: a failed
    /// job leaves no trace in the batch.
    fn rewind(&mut self, mark: Mark) {
        self.audit_head = mark.audit_head;
        self.pending_audit.truncate(mark.pending_audit);
        self.pending_unchained.truncate(mark.pending_unchained);
        self.pending_events.truncate(mark.pending_events);
    }
}

/// Decodes a JSON column written by this module; failure means corruption.
fn from_json<T: serde::de::DeserializeOwned>(column: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Internal(format!("column {column}: {e}")))
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("in-memory values serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_outside_quotes() {
        assert_eq!(numbered("SELECT ? , '?', x = ? LIMIT ?"), "SELECT $1 , '?', x = $2 LIMIT $3");
        assert!(std::ptr::eq(numbered("SELECT ?"), numbered("SELECT ?")), "numbered once, then cached");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_new_database_is_private_to_its_owner() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("data").join("purser.db");
        let store = Store::connect(&format!("sqlite://{}", db.display())).await.unwrap();
        store.close().await;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(db.parent().unwrap()), 0o700);
    }

    #[test]
    fn runs_cover_everything_in_few_sizes() {
        let items: Vec<u32> = (0..600).collect();
        let sizes: Vec<usize> = runs(&items).map(<[u32]>::len).collect();
        assert_eq!(sizes, [256, 256, 64, 16, 4, 4]);
        assert_eq!(runs(&items).flatten().count(), 600);
        assert_eq!(runs::<u32>(&[]).count(), 0);
    }
}
