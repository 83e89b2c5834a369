//! Bounded periodic clean-ups (expired throttle rows, refresh tokens, idempotency
//! records, …), run in every replica.
//!
//! Each chore deletes at most one batch per call and is written so that several replicas
//! may run it at once (`FOR UPDATE SKIP LOCKED`): none waits on another, nothing is
//! deleted twice. A round calls each chore until it returns less than a full batch (or a
//! round's cap is hit), then sleeps. A failing chore is logged and retried next round.

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

/// One clean-up: deletes up to `batch` rows on the given connection, returns how many.
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
            tracing::info!(chore = chore.name, deleted = total, "clean-up");
        }
        done.push((chore.name, total));
    }
    done
}

/// Spawns the clean-up loop: a first round soon after start, then one every `every`
/// (±20 % jitter, so replicas drift apart). Abort the handle to stop it.
pub fn spawn(pool: PgPool, chores: Vec<Chore>, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut wait = jittered(Duration::from_secs(5));
        loop {
            tokio::time::sleep(wait).await;
            run_round(&pool, &chores, BATCH).await;
            wait = jittered(every);
        }
    })
}

fn jittered(base: Duration) -> Duration {
    use rand::Rng;
    let factor = rand::rng().random_range(0.8..1.2);
    base.mul_f64(factor)
}
