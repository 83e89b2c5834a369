//! The optional streaming replica (`DATABASE_READ_URL`) that serves anonymous catalog reads
//! and the sales report, so that browsing and reporting do not load the primary.
//!
//! Each server checks the replica every [`CHECK_EVERY`]: how far its replay is behind the
//! primary's WAL, measured in time. Reads go to the replica only while it answers and is at
//! most `READ_REPLICA_MAX_LAG_MS` behind; otherwise, and whenever a read fails on it, they
//! run on the primary ([`crate::request_db::Db::read_replica`]). `/ready` shows the state.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool, Nullable};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::PgPool;

/// How often each server checks the replica.
pub const CHECK_EVERY: Duration = Duration::from_millis(250);
/// A check that takes longer than this finds the replica down (a host that drops packets
/// must not hold reads on a replica that stopped answering).
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// A database pool's state as `/ready` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PoolState {
    /// Answers (and, for the replica, is within `READ_REPLICA_MAX_LAG_MS`): in use.
    Up,
    /// The replica answers but is further behind than `READ_REPLICA_MAX_LAG_MS`: skipped.
    Lagging,
    /// Does not answer: skipped (the replica) or not ready (the primary).
    Down,
}

impl PoolState {
    fn from_u8(value: u8) -> Self {
        match value {
            0 => PoolState::Up,
            1 => PoolState::Lagging,
            _ => PoolState::Down,
        }
    }

    fn as_u8(self) -> u8 {
        match self {
            PoolState::Up => 0,
            PoolState::Lagging => 1,
            PoolState::Down => 2,
        }
    }
}

/// The replica's pool and its last known state, shared by requests and the checker.
pub struct ReadReplica {
    pool: PgPool,
    max_lag: Duration,
    state: AtomicU8,
    /// The last measured lag in milliseconds; `u64::MAX` when unknown.
    lag_ms: AtomicU64,
}

impl ReadReplica {
    /// Down until its first check: reads stay on the primary until the replica is known.
    pub fn new(pool: PgPool, max_lag: Duration) -> Arc<Self> {
        Arc::new(Self {
            pool,
            max_lag,
            state: AtomicU8::new(PoolState::Down.as_u8()),
            lag_ms: AtomicU64::new(u64::MAX),
        })
    }

    /// The replica's pool while it is up, else `None`: read from the primary.
    pub fn usable(&self) -> Option<&PgPool> {
        (self.state() == PoolState::Up).then_some(&self.pool)
    }

    pub fn state(&self) -> PoolState {
        PoolState::from_u8(self.state.load(Ordering::Relaxed))
    }

    /// The last measured lag, when the replica answered its last check.
    pub fn lag(&self) -> Option<Duration> {
        match self.lag_ms.load(Ordering::Relaxed) {
            u64::MAX => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }

    /// After a read failed on the replica: skip it until the next check finds it up, so
    /// that the requests behind this one do not each fail there first.
    pub fn mark_down(&self) {
        self.set(PoolState::Down, None);
    }

    fn set(&self, state: PoolState, lag: Option<Duration>) {
        let lag_ms = lag.map_or(u64::MAX, |l| l.as_millis().min(u64::MAX as u128 - 1) as u64);
        self.lag_ms.store(lag_ms, Ordering::Relaxed);
        let previous = PoolState::from_u8(self.state.swap(state.as_u8(), Ordering::Relaxed));
        if previous != state {
            match state {
                PoolState::Up => tracing::info!(lag_ms, "read replica up: serving reads"),
                PoolState::Lagging => tracing::warn!(
                    lag_ms,
                    max_lag_ms = self.max_lag.as_millis() as u64,
                    "read replica lagging: reads go to the primary"
                ),
                PoolState::Down => {
                    tracing::warn!("read replica down: reads go to the primary")
                }
            }
        }
    }

    /// Checks the replica every [`CHECK_EVERY`] against `primary` (a pool of the primary;
    /// the background pool, so checks never wait behind requests) until aborted.
    pub fn spawn_checker(self: &Arc<Self>, primary: PgPool) -> tokio::task::JoinHandle<()> {
        let replica = Arc::clone(self);
        tokio::spawn(async move {
            let mut positions = PrimaryPositions::default();
            let mut every = tokio::time::interval(CHECK_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                replica.check(&primary, &mut positions).await;
            }
        })
    }

    /// One check: the primary's WAL position now, then how far the replica has replayed.
    async fn check(&self, primary: &PgPool, positions: &mut PrimaryPositions) {
        let now = Instant::now();
        match tokio::time::timeout(CHECK_TIMEOUT, primary_position(primary)).await {
            Ok(Ok(lsn)) => positions.record(now, lsn, self.max_lag + Duration::from_secs(1)),
            // The primary is /ready's concern; without its position the lag is unknown, so
            // the replica keeps its state until the next check.
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "replica check: the primary's WAL position");
                return;
            }
            Err(_) => return,
        }
        match tokio::time::timeout(CHECK_TIMEOUT, replayed_position(&self.pool)).await {
            Ok(Ok(Some(replayed))) => {
                let lag = positions.lag(replayed, Instant::now());
                let state = if lag > self.max_lag {
                    PoolState::Lagging
                } else {
                    PoolState::Up
                };
                self.set(state, Some(lag));
            }
            Ok(Ok(None)) => {
                // Not in recovery: a promoted replica (or a primary by mistake) is no
                // longer a copy of this primary, and reading it could show another history.
                if self.state() != PoolState::Down {
                    tracing::error!(
                        "DATABASE_READ_URL is not a streaming replica (not in recovery): not reading from it"
                    );
                }
                self.set(PoolState::Down, None);
            }
            Ok(Err(e)) => {
                if self.state() != PoolState::Down {
                    tracing::warn!(error = %e, "read replica check failed");
                }
                self.set(PoolState::Down, None);
            }
            Err(_) => self.set(PoolState::Down, None),
        }
    }
}

/// Exposes the replica's state and lag as Prometheus gauges, read at scrape time:
/// `ecom_read_replica_state` (0 up, 1 lagging, 2 down) and `ecom_read_replica_lag_seconds`
/// (the last check's; absent while the replica does not answer).
pub struct ReplicaCollector {
    replica: Arc<ReadReplica>,
    descs: Vec<prometheus::core::Desc>,
}

impl ReplicaCollector {
    pub fn new(replica: Arc<ReadReplica>) -> Self {
        let desc = crate::db::metric_desc;
        let descs = vec![
            desc(
                "ecom_read_replica_state",
                "The read replica's state: 0 up (serving reads), 1 lagging, 2 down.",
            ),
            desc(
                "ecom_read_replica_lag_seconds",
                "How far the read replica's last check found it behind the primary.",
            ),
        ];
        Self { replica, descs }
    }
}

impl prometheus::core::Collector for ReplicaCollector {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        let state = f64::from(self.replica.state().as_u8());
        let lag = self.replica.lag().map(|l| l.as_secs_f64());
        self.descs
            .iter()
            .zip([Some(state), lag])
            .filter_map(|(desc, value)| Some(crate::db::gauge_family(desc, value?)))
            .collect()
    }
}

/// The primary's WAL positions seen by recent checks, oldest first: the replica's lag is
/// the age of the oldest position it has not replayed yet. Measured in time (not bytes)
/// so that `READ_REPLICA_MAX_LAG_MS` means what a shopper sees: how old a page can be.
/// An idle primary gives no lag, since its position does not move.
#[derive(Debug, Default)]
struct PrimaryPositions {
    seen: VecDeque<(Instant, i64)>,
}

impl PrimaryPositions {
    /// Keeps positions no older than `keep` (enough to tell any lag beyond the maximum).
    fn record(&mut self, at: Instant, lsn: i64, keep: Duration) {
        self.seen.push_back((at, lsn));
        while self
            .seen
            .front()
            .is_some_and(|(t, _)| at.duration_since(*t) > keep)
        {
            self.seen.pop_front();
        }
    }

    /// How long ago the primary first stood past `replayed`; zero when the replica has
    /// replayed every position seen.
    fn lag(&self, replayed: i64, now: Instant) -> Duration {
        self.seen
            .iter()
            .find(|(_, lsn)| *lsn > replayed)
            .map_or(Duration::ZERO, |(t, _)| now.duration_since(*t))
    }
}

#[derive(QueryableByName)]
struct Position {
    #[diesel(sql_type = BigInt)]
    lsn: i64,
}

#[derive(QueryableByName)]
struct Replayed {
    #[diesel(sql_type = Bool)]
    in_recovery: bool,
    #[diesel(sql_type = Nullable<BigInt>)]
    lsn: Option<i64>,
}

type CheckError = Box<dyn std::error::Error + Send + Sync>;

async fn primary_position(pool: &PgPool) -> Result<i64, CheckError> {
    // Imported here: its blanket `load` would shadow the atomics' above.
    use diesel_async::RunQueryDsl;
    let mut conn = pool.get().await?;
    let row: Position =
        diesel::sql_query("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::int8 AS lsn")
            .get_result(&mut conn)
            .await?;
    Ok(row.lsn)
}

/// The replica's replayed WAL position; `None` when it is not a replica.
async fn replayed_position(pool: &PgPool) -> Result<Option<i64>, CheckError> {
    use diesel_async::RunQueryDsl;
    let mut conn = pool.get().await?;
    let row: Replayed = diesel::sql_query(
        "SELECT pg_is_in_recovery() AS in_recovery, \
                (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::int8 AS lsn",
    )
    .get_result(&mut conn)
    .await?;
    Ok(if row.in_recovery { row.lsn } else { None })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEEP: Duration = Duration::from_secs(2);

    #[test]
    fn an_idle_primary_gives_no_lag() {
        let t0 = Instant::now();
        let mut seen = PrimaryPositions::default();
        for i in 0..8 {
            seen.record(t0 + CHECK_EVERY * i, 100, KEEP);
        }
        assert_eq!(seen.lag(100, t0 + CHECK_EVERY * 8), Duration::ZERO);
    }

    #[test]
    fn lag_is_the_age_of_the_oldest_position_not_replayed() {
        let t0 = Instant::now();
        let mut seen = PrimaryPositions::default();
        seen.record(t0, 100, KEEP);
        seen.record(t0 + Duration::from_millis(250), 200, KEEP);
        seen.record(t0 + Duration::from_millis(500), 300, KEEP);
        let now = t0 + Duration::from_millis(600);
        assert_eq!(seen.lag(150, now), Duration::from_millis(350));
        assert_eq!(seen.lag(99, now), Duration::from_millis(600));
        assert_eq!(seen.lag(300, now), Duration::ZERO);
        // Replayed beyond what the check saw (the primary moved on since): no lag.
        assert_eq!(seen.lag(400, now), Duration::ZERO);
    }

    #[test]
    fn a_replica_stuck_longer_than_kept_still_shows_a_lag_beyond_the_maximum() {
        let t0 = Instant::now();
        let mut seen = PrimaryPositions::default();
        for i in 0..40 {
            seen.record(t0 + CHECK_EVERY * i, 500, KEEP);
        }
        let now = t0 + CHECK_EVERY * 40;
        assert_eq!(seen.seen.len(), 9, "only the last 2 s are kept");
        assert!(seen.lag(100, now) >= KEEP);
    }
}
