//! Bounded periodic background work run in every replica: clean-ups (expired throttle
//! rows, refresh tokens, idempotency records, …) every minute, and on a shorter
//! [`Schedule`] of its own the expiry of unpaid orders.
//!
//! Each chore works off at most one batch per call and is written so that several
//! replicas may run it at once (`FOR UPDATE SKIP LOCKED`): none waits on another, no row
//! is handled twice. A round calls each chore until it returns less than a full batch (or
//! a round's cap is hit), then sleeps. A failing chore is logged and retried next round.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::db::{PgConn, PgPool};
use crate::error::AppError;

/// Rows one chore call may delete.
pub const BATCH: i64 = 1000;
/// Calls of one chore per round, so a huge backlog is worked off over several rounds.
const MAX_BATCHES_PER_ROUND: usize = 50;

type ChoreFn = dyn for<'c> Fn(
        &'c mut PgConn,
        i64,
    ) -> Pin<Box<dyn Future<Output = Result<usize, AppError>> + Send + 'c>>
    + Send
    + Sync;

/// One chore: works off up to `batch` rows on the given connection, returns how many.
#[derive(Clone)]
pub struct Chore {
    pub name: &'static str,
    run: Arc<ChoreFn>,
}

impl Chore {
    pub fn new<F>(name: &'static str, run: F) -> Self
    where
        F: for<'c> Fn(
                &'c mut PgConn,
                i64,
            )
                -> Pin<Box<dyn Future<Output = Result<usize, AppError>> + Send + 'c>>
            + Send
            + Sync
            + 'static,
    {
        Self {
            name,
            run: Arc::new(run),
        }
    }

    /// One batch.
    pub async fn run_once(&self, conn: &mut PgConn, batch: i64) -> Result<usize, AppError> {
        (self.run)(conn, batch).await
    }
}

/// Runs every chore until its backlog is gone (or the round's cap is hit); returns rows
/// deleted per chore. A chore's failure is logged and does not stop the others.
pub async fn run_round(pool: &PgPool, chores: &[Chore], batch: i64) -> Vec<(&'static str, usize)> {
    let mut done = Vec::with_capacity(chores.len());
    for chore in chores {
        let mut total = 0;
        for _ in 0..MAX_BATCHES_PER_ROUND {
            let result = match pool.get().await {
                Ok(mut conn) => chore.run_once(&mut conn, batch).await,
                Err(e) => Err(AppError::from(e)),
            };
            match result {
                Ok(n) => {
                    total += n;
                    if (n as i64) < batch {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(chore = chore.name, error = %e, "clean-up failed; retried next round");
                    break;
                }
            }
        }
        if total > 0 {
            tracing::info!(chore = chore.name, rows = total, "housekeeping");
        }
        done.push((chore.name, total));
    }
    done
}

/// When a housekeeping loop runs its chores, and how much one chore call may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// The pause between rounds (±20 % jitter, so replicas drift apart).
    pub every: Duration,
    /// Rows one chore call may work off.
    pub batch: i64,
}

/// Spawns the clean-up loop: a first round soon after start, then one every `every`
/// (±20 % jitter, so replicas drift apart), [`BATCH`] rows per call. Abort the handle to
/// stop it.
pub fn spawn(pool: PgPool, chores: Vec<Chore>, every: Duration) -> tokio::task::JoinHandle<()> {
    spawn_on(
        pool,
        chores,
        Schedule {
            every,
            batch: BATCH,
        },
    )
}

/// Spawns a loop running `chores` on `schedule`: a first round within 5 s of start (sooner
/// when `every` is shorter), then one every `every`, sleeping in between (no polling).
/// Abort the handle to stop it: chores keep each unit of work in one transaction, so an
/// abort leaves none half done (the interrupted transaction's connection is discarded by
/// the pool as broken and PostgreSQL rolls it back).
pub fn spawn_on(
    pool: PgPool,
    chores: Vec<Chore>,
    schedule: Schedule,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut wait = jittered(schedule.every.min(Duration::from_secs(5)));
        loop {
            tokio::time::sleep(wait).await;
            run_round(&pool, &chores, schedule.batch).await;
            wait = jittered(schedule.every);
        }
    })
}

fn jittered(base: Duration) -> Duration {
    use rand::Rng;
    let factor = rand::rng().random_range(0.8..1.2);
    base.mul_f64(factor)
}
