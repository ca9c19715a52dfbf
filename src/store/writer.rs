//! The single writer: runs write jobs in batches, one transaction and one
//! fsync per batch (group commit), and answers each job after its COMMIT.
//!
//! A job that fails without having written anything is simply answered with
//! its error. A job that fails after writing cannot be undone on its own
//! (savepoints would cost two more round trips for every job, to cover a
//! case that only store faults reach), so the whole batch is rolled back and
//! every job that ran in it is answered `NotCommitted`: nothing happened, and
//! clients retry safely with their idempotency keys. Jobs queued behind the
//! failed one run in a fresh batch.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use sqlx::{AnyPool, Executor};
use tokio::sync::{mpsc, oneshot};

use super::kill_switch::KillSwitchCache;
use super::webhooks::Subscriptions;
use super::{Backend, StoreError, WriteTx};

/// Most jobs run in one transaction; bounds the latency a batch adds.
const MAX_BATCH: usize = 128;
/// Jobs waiting beyond this make `Store::write` wait (backpressure).
const QUEUE: usize = 4096;

pub(super) type Job = Box<dyn ErasedJob>;

pub(super) trait ErasedJob: Send {
    fn run<'c>(self: Box<Self>, tx: &'c mut WriteTx) -> BoxFuture<'c, Box<dyn Finished>>;
    fn abort(self: Box<Self>, error: StoreError);
}

/// A job that has run and waits for its batch's COMMIT.
pub(super) trait Finished: Send {
    fn failed(&self) -> bool;
    /// `Some(error)` when the batch did not commit.
    fn answer(self: Box<Self>, not_committed: Option<StoreError>);
}

struct TypedJob<F, T, E> {
    f: F,
    done: oneshot::Sender<Result<T, E>>,
}

struct Outcome<T, E> {
    result: Result<T, E>,
    done: oneshot::Sender<Result<T, E>>,
}

pub(super) fn job<F, T, E>(f: F, done: oneshot::Sender<Result<T, E>>) -> Job
where
    F: for<'c> FnOnce(&'c mut WriteTx) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    Box::new(TypedJob { f, done })
}

impl<F, T, E> ErasedJob for TypedJob<F, T, E>
where
    F: for<'c> FnOnce(&'c mut WriteTx) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    fn run<'c>(self: Box<Self>, tx: &'c mut WriteTx) -> BoxFuture<'c, Box<dyn Finished>> {
        let TypedJob { f, done } = *self;
        Box::pin(async move {
            let result = f(tx).await;
            Box::new(Outcome { result, done }) as Box<dyn Finished>
        })
    }

    fn abort(self: Box<Self>, error: StoreError) {
        // The caller may have gone away (request cancelled); nothing to do.
        let _ = self.done.send(Err(error.into()));
    }
}

impl<T: Send, E: From<StoreError> + Send> Finished for Outcome<T, E> {
    fn failed(&self) -> bool {
        self.result.is_err()
    }

    fn answer(self: Box<Self>, not_committed: Option<StoreError>) {
        let result = match not_committed {
            // A job's own error stays its answer; success needs the commit.
            Some(e) if self.result.is_ok() => Err(e.into()),
            _ => self.result,
        };
        let _ = self.done.send(result);
    }
}

/// Starts the writer on a thread of its own. Each job is a chain of
/// statements, and every statement wakes the writer once; on the shared
/// runtime each wake-up would queue behind HTTP tasks, and that queueing,
/// not SQLite, bounded throughput (measured: 2,650/s shared, see README).
/// In-memory state every write transaction sees.
pub(super) struct Shared {
    pub(super) subscriptions: Arc<Subscriptions>,
    pub(super) kill_switch: Arc<KillSwitchCache>,
}

pub(super) fn start(backend: Backend, pool: AnyPool, shared: Shared) -> std::io::Result<mpsc::Sender<Job>> {
    let (tx, rx) = mpsc::channel(QUEUE);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new()
        .name("purser-writer".into())
        .spawn(move || runtime.block_on(run(Writer { backend, pool, shared }, rx)))?;
    Ok(tx)
}

struct Writer {
    backend: Backend,
    pool: AnyPool,
    shared: Shared,
}

/// The key of the PostgreSQL advisory lock every replica's writer holds for
/// the length of its transaction ("purser" in ASCII).
const WRITE_LOCK: i64 = 0x7075_7273_6572;

impl Writer {
    /// Opens a transaction holding the database's write lock.
    ///
    /// PostgreSQL: all writes of all replicas are serialized on one
    /// transaction-scoped advisory lock, which reproduces SQLite's single
    /// writer across processes. Every guarantee then follows from the same
    /// code on both stores: a decision's spend read and its reservation
    /// cannot interleave with another replica's (limits hold), the
    /// idempotency lookup sees every committed payment (one payment per
    /// key), an approval is closed once, and the audit chain has one head.
    /// Row locks per agent would let unrelated agents commit in parallel,
    /// but the audit chain's head is shared by all, so they would meet
    /// there anyway; group commit keeps the lock's cost at one round of
    /// jobs per transaction (measured in README, Performance). The lock
    /// is released by COMMIT or ROLLBACK, and by PostgreSQL when a
    /// replica's connection dies.
    async fn begin(&self) -> Result<WriteTx, StoreError> {
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => {
                let mut tx = self.pool.begin().await?;
                tx.execute(format!("SELECT pg_advisory_xact_lock({WRITE_LOCK})").as_str()).await?;
                // Another replica may have changed the webhook endpoints
                // or the kill switch.
                self.shared.subscriptions.reload(&mut tx).await?;
                self.shared.kill_switch.reload(&mut tx).await?;
                tx
            }
        };
        Ok(WriteTx::new(self.backend, tx, &self.shared))
    }
}

async fn run(writer: Writer, mut rx: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        run_batch(&writer, std::mem::take(&mut batch)).await;
    }
}

async fn run_batch(writer: &Writer, jobs: Vec<Job>) {
    let mut tx = match writer.begin().await {
        Ok(tx) => tx,
        Err(e) => {
            tracing::error!(error = %e, "cannot start a write transaction");
            for job in jobs {
                job.abort(StoreError::NotCommitted(e.to_string()));
            }
            return;
        }
    };
    let mut finished: Vec<Box<dyn Finished>> = Vec::with_capacity(jobs.len());
    let mut rollback = None;
    let mut jobs = jobs.into_iter();
    for job in jobs.by_ref() {
        tx.dirty = false;
        let done = job.run(&mut tx).await;
        let undo = done.failed() && tx.dirty;
        finished.push(done);
        if undo {
            rollback = Some("a job in the same batch failed after writing");
            break;
        }
    }
    let not_committed = match rollback {
        Some(why) => {
            // Dropping the transaction rolls it back.
            drop(tx);
            Some(why.to_owned())
        }
        None => tx.commit().await.err().map(|e| {
            tracing::error!(error = %e, "commit failed");
            e.to_string()
        }),
    };
    for done in finished {
        done.answer(not_committed.clone().map(StoreError::NotCommitted));
    }
    // Jobs after a rolled-back one have not run yet: they get a batch of
    // their own.
    let rest: Vec<Job> = jobs.collect();
    if !rest.is_empty() {
        Box::pin(run_batch(writer, rest)).await;
    }
}
