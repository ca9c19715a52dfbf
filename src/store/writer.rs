//! The single writer: runs write jobs in batches, one transaction and one
//! fsync per batch (group commit), and answers each job after its COMMIT.
//!
//! Jobs are isolated from each other: a job that fails is undone alone and
//! answered with its own error, and its batch-mates commit. A job runs in a
//! savepoint of its own, which also clears the aborted state a failed
//! statement leaves a PostgreSQL transaction in. The savepoint costs one
//! statement (`RELEASE; SAVEPOINT`, one round trip), so two kinds of job go
//! without: a job alone in its batch (if it fails, the transaction is only
//! its own and is dropped), and a job submitted as validated (it fails
//! before it writes; payment decisions are, and measured about a tenth
//! faster for it, see docs/performance.md). A validated job that fails
//! after writing anyway breaks the batch, like a fault of the store itself
//! (a savepoint or the COMMIT failing): every job in it is answered
//! `NotCommitted`, nothing happened, and clients retry safely with their
//! idempotency keys.

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
    /// Whether the job fails only before it writes (see `Store::write_validated`).
    fn validated(&self) -> bool;
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
    validated: bool,
    done: oneshot::Sender<Result<T, E>>,
}

struct Outcome<T, E> {
    result: Result<T, E>,
    done: oneshot::Sender<Result<T, E>>,
}

pub(super) fn job<F, T, E>(f: F, validated: bool, done: oneshot::Sender<Result<T, E>>) -> Job
where
    F: for<'c> FnOnce(&'c mut WriteTx) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    Box::new(TypedJob { f, validated, done })
}

impl<F, T, E> ErasedJob for TypedJob<F, T, E>
where
    F: for<'c> FnOnce(&'c mut WriteTx) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    fn validated(&self) -> bool {
        self.validated
    }

    fn run<'c>(self: Box<Self>, tx: &'c mut WriteTx) -> BoxFuture<'c, Box<dyn Finished>> {
        let TypedJob { f, done, .. } = *self;
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

/// In-memory state every write transaction sees.
#[derive(Clone, Default)]
pub(super) struct Shared {
    pub(super) subscriptions: Arc<Subscriptions>,
    pub(super) kill_switch: Arc<KillSwitchCache>,
}

/// Starts the writer on a thread of its own. Each job is a chain of
/// statements, and every statement wakes the writer once; on the shared
/// runtime each wake-up would queue behind HTTP tasks, and that queueing,
/// not SQLite, bounded throughput (measured: 2,650/s shared, see docs/performance.md).
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
    /// PostgreSQL: this writer takes the replicas' one transaction-scoped
    /// advisory lock exclusively, as SQLite's single writer is exclusive:
    /// admin changes, approvals, fan-out, retention and the chaining of
    /// waiting audit records never run beside anything. Payment decisions
    /// and provider outcomes (`run_for_agents`) hold the same lock shared
    /// plus their agents' rows, so they run beside each other and never
    /// beside this writer. The lock is released by COMMIT or ROLLBACK, and
    /// by PostgreSQL when a replica's connection dies.
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

/// Runs a job that changes the data of `agents` (sorted, distinct) only,
/// in a transaction of its own on PostgreSQL (see `Store::write_for_agent`):
/// the write lock held shared, the agents' rows exclusively, the caches
/// another replica may have made stale reloaded, the audit records left
/// for the chain's next writer.
pub(super) async fn run_for_agents<T, E, F>(
    pool: &AnyPool,
    shared: &Shared,
    agents: &[String],
    job: F,
) -> Result<T, E>
where
    F: for<'c> FnOnce(&'c mut WriteTx) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
    E: From<StoreError>,
{
    let not_committed = |e: StoreError| E::from(StoreError::NotCommitted(e.to_string()));
    let begin = async {
        let mut tx = pool.begin().await?;
        tx.execute(format!("SELECT pg_advisory_xact_lock_shared({WRITE_LOCK})").as_str()).await?;
        shared.subscriptions.reload(&mut tx).await?;
        shared.kill_switch.reload(&mut tx).await?;
        // Its own statement, so the job's reads (a statement later) see
        // what the agents' previous decisions committed; in id order.
        if !agents.is_empty() {
            let sql = format!(
                "SELECT id FROM agents WHERE id IN ({}) ORDER BY id FOR UPDATE",
                vec!["?"; agents.len()].join(", ")
            );
            let lock = agents.iter().fold(super::query(&sql), |q, id| q.bind(id));
            lock.execute(&mut *tx).await?;
        }
        Ok::<_, StoreError>(tx)
    };
    let mut tx = WriteTx::new(Backend::Postgres, begin.await.map_err(not_committed)?, shared);
    tx.unchained = true;
    // An error drops the transaction, which rolls it back.
    let value = job(&mut tx).await?;
    tx.commit().await.map_err(not_committed)?;
    Ok(value)
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
    let alone = jobs.len() == 1;
    let mut savepoint_open = false;
    let mut finished: Vec<Box<dyn Finished>> = Vec::with_capacity(jobs.len());
    let mut broken = None;
    let mut jobs = jobs.into_iter();
    for job in jobs.by_ref() {
        let isolated = !alone && !job.validated();
        if isolated {
            if let Err(e) = tx.savepoint(savepoint_open).await {
                job.abort(StoreError::NotCommitted(e.to_string()));
                broken = Some(e.to_string());
                break;
            }
            savepoint_open = true;
        }
        let mark = tx.mark();
        tx.dirty = false;
        let done = job.run(&mut tx).await;
        let failed = done.failed();
        finished.push(done);
        if !failed || alone {
            continue;
        }
        tx.rewind(mark);
        if isolated {
            if let Err(e) = tx.rollback_savepoint().await {
                broken = Some(e.to_string());
                break;
            }
        } else if tx.dirty || tx.aborted().await {
            broken = Some("a validated job failed after writing".to_owned());
            break;
        }
    }
    let not_committed = match broken {
        Some(why) => {
            tracing::error!(why, "a write batch broke and was rolled back");
            // Dropping the transaction rolls it back.
            drop(tx);
            Some(why)
        }
        // Nothing to keep (the jobs all failed): dropping rolls back.
        None if finished.iter().all(|done| done.failed()) => None,
        None => tx.commit().await.err().map(|e| {
            tracing::error!(error = %e, "commit failed");
            e.to_string()
        }),
    };
    for done in finished {
        done.answer(not_committed.clone().map(StoreError::NotCommitted));
    }
    // Jobs after the break have not run yet: they get a batch of their own
    // (smaller than this one, so this ends).
    let rest: Vec<Job> = jobs.collect();
    if !rest.is_empty() {
        Box::pin(run_batch(writer, rest)).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::Utc;

    use super::super::{query, AuditFilter, Store, StoreError, WriteTx};
    use crate::audit::{AuditEvent, ChainVerifier};
    use crate::model::KillSwitch;

    type Outcome = Result<(), StoreError>;

    /// Submits `job` without waiting for its answer.
    fn submit(
        store: &Store,
        job: impl for<'c> FnOnce(&'c mut WriteTx) -> futures_util::future::BoxFuture<'c, Outcome> + Send + 'static,
    ) -> tokio::task::JoinHandle<Outcome> {
        let store = store.clone();
        tokio::spawn(async move { store.write(job).await })
    }

    /// A job that holds the writer until released, so that the jobs
    /// submitted meanwhile queue up and then run as one batch.
    struct Hold {
        release: tokio::sync::oneshot::Sender<()>,
        job: tokio::task::JoinHandle<Outcome>,
    }

    impl Hold {
        async fn start(store: &Store) -> Hold {
            let (release, held) = tokio::sync::oneshot::channel::<()>();
            let job = submit(store, move |_| {
                Box::pin(async move {
                    let _ = held.await;
                    Ok(())
                })
            });
            tokio::time::sleep(Duration::from_millis(100)).await;
            Hold { release, job }
        }

        async fn release(self) {
            // Time for the last submitted job to reach the queue.
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.release.send(()).unwrap();
            self.job.await.unwrap().unwrap();
        }
    }

    fn audited<'c>(tx: &'c mut WriteTx, kind: &'static str) -> futures_util::future::BoxFuture<'c, Outcome> {
        Box::pin(tx.append_audit(AuditEvent::new(kind, "test"), Utc::now()))
    }

    /// Four jobs in one batch: the second undoes the first's change and then
    /// fails, the third fails on a statement error (which on PostgreSQL
    /// aborts the transaction), the fourth writes. Only the failing ones are
    /// undone, rows and audit records alike.
    async fn failing_jobs_are_undone_alone(store: Store) {
        // Hold the writer so that the next jobs queue up and run as one batch.
        let hold = Hold::start(&store).await;
        let engage = submit(&store, |tx| {
            Box::pin(async move {
                let k = KillSwitch { reason: "r".into(), actor: "a".into(), engaged_at: "t".into() };
                tx.set_kill_switch(Some(&k)).await?;
                audited(tx, "kept.first").await
            })
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let undo_then_fail = submit(&store, |tx| {
            Box::pin(async move {
                audited(tx, "dropped.partial").await?;
                tx.set_kill_switch(None).await?;
                Err(StoreError::Internal("fails after writing".into()))
            })
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let bad_statement = submit(&store, |tx| {
            Box::pin(async move {
                audited(tx, "dropped.statement").await?;
                query("INSERT INTO no_such_table VALUES (1)").execute(tx.write()).await?;
                Ok(())
            })
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let last = submit(&store, |tx| Box::pin(audited(tx, "kept.last")));
        hold.release().await;
        engage.await.unwrap().expect("a batch-mate commits");
        let own = undo_then_fail.await.unwrap().unwrap_err();
        assert!(matches!(own, StoreError::Internal(ref m) if m == "fails after writing"), "{own}");
        assert!(matches!(bad_statement.await.unwrap(), Err(StoreError::Internal(_))));
        last.await.unwrap().expect("a job after two failures commits");

        let engaged = query("SELECT COUNT(*) AS n FROM kill_switch").fetch_one(&store.read).await.unwrap();
        assert_eq!(sqlx::Row::get::<i64, _>(&engaged, "n"), 1, "the failed job's DELETE was undone");
        let filter = AuditFilter { limit: 10, ..Default::default() };
        let records = store.audit_records(&filter).await.unwrap();
        let kinds: Vec<&str> = records.iter().map(|r| r.kind.as_str()).collect();
        assert_eq!(kinds, ["kept.first", "kept.last"]);
        let mut chain = ChainVerifier::default();
        for record in &records {
            chain.check(record).expect("the chain has no gap where the failed jobs' records were");
        }
    }

    /// A validated job that fails before writing (an idempotency conflict)
    /// costs its batch-mates nothing; one that fails after writing breaks
    /// the batch, and every job in it is told that nothing was committed.
    async fn validated_jobs_break_their_batch_only_after_writing(store: Store) {
        let hold = Hold::start(&store).await;
        let kept = submit(&store, |tx| Box::pin(audited(tx, "kept")));
        tokio::time::sleep(Duration::from_millis(20)).await;
        let refused = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .write_validated(|tx| {
                        Box::pin(async move {
                            query("SELECT 1").execute(tx.read()).await?;
                            Err::<(), _>(StoreError::Internal("refused before writing".into()))
                        })
                    })
                    .await
            })
        };
        hold.release().await;
        kept.await.unwrap().expect("a validated job's refusal costs its batch-mates nothing");
        assert!(matches!(refused.await.unwrap(), Err(StoreError::Internal(_))));

        let hold = Hold::start(&store).await;
        let lost = submit(&store, |tx| Box::pin(audited(tx, "lost")));
        tokio::time::sleep(Duration::from_millis(20)).await;
        let broken = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .write_validated(|tx| {
                        Box::pin(async move {
                            tx.set_kill_switch(None).await?;
                            Err::<(), _>(StoreError::Internal("failed after writing".into()))
                        })
                    })
                    .await
            })
        };
        hold.release().await;
        assert!(matches!(lost.await.unwrap(), Err(StoreError::NotCommitted(_))), "told, not lost");
        assert!(matches!(broken.await.unwrap(), Err(StoreError::Internal(_))), "its own error");
        let records = store.audit_records(&AuditFilter { limit: 10, ..Default::default() }).await.unwrap();
        let kinds: Vec<&str> = records.iter().map(|r| r.kind.as_str()).collect();
        assert_eq!(kinds.last(), Some(&"kept"), "nothing of the broken batch was kept: {kinds:?}");

        // A validated job whose statement fails without writing: SQLite
        // carries on, a PostgreSQL transaction is aborted by it. Either way
        // a batch-mate answered Ok is committed, and one that was not is
        // told so (PostgreSQL would otherwise turn COMMIT into ROLLBACK).
        let hold = Hold::start(&store).await;
        // Rows only, no audit record: nothing is left to write at COMMIT.
        let mate = submit(&store, |tx| {
            Box::pin(async move {
                tx.set_kill_switch(None).await?;
                Ok(())
            })
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let bad = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .write_validated(|tx| {
                        Box::pin(async move {
                            query("SELECT * FROM no_such_table").execute(tx.read()).await?;
                            Ok::<(), StoreError>(())
                        })
                    })
                    .await
            })
        };
        hold.release().await;
        assert!(bad.await.unwrap().is_err());
        let mate = mate.await.unwrap();
        let engaged = query("SELECT COUNT(*) AS n FROM kill_switch").fetch_one(&store.read).await.unwrap();
        let committed = sqlx::Row::get::<i64, _>(&engaged, "n") == 0;
        match store.backend() {
            super::super::Backend::Sqlite => assert!(mate.is_ok() && committed),
            super::super::Backend::Postgres => {
                assert!(matches!(mate, Err(StoreError::NotCommitted(_))) && !committed)
            }
        }
    }

    #[tokio::test]
    async fn failing_jobs_are_undone_alone_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&format!("sqlite://{}", dir.path().join("t.db").display())).await.unwrap();
        failing_jobs_are_undone_alone(store.clone()).await;
        validated_jobs_break_their_batch_only_after_writing(store).await;
    }

    #[tokio::test]
    async fn failing_jobs_are_undone_alone_on_postgres() {
        let Some(url) = super::super::test_postgres().await else { return };
        let store = Store::connect(&url).await.unwrap();
        failing_jobs_are_undone_alone(store.clone()).await;
        validated_jobs_break_their_batch_only_after_writing(store).await;
    }
}
