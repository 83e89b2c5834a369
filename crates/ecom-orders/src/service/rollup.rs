//! Daily rollups of closed UTC days for the sales report.
//!
//! A rollup is only a cache: the report reads, in one snapshot, the rollups of the
//! closed days that have one and the orders themselves for every other day (see
//! [`sources`]), so a rollup dropped or not yet built never shows a day as zero.
//!
//! A day is rolled up the first time a report covers it after it has closed (with an
//! hour's grace for transactions that started before midnight). A status change of an
//! order drops its creation day's rollup in its own transaction; the next report
//! rebuilds it. A builder holds the day's advisory lock exclusively from before it
//! claims the day until it commits, and a status change holds it shared until it
//! commits, so a rollup visible in a snapshot always agrees with the orders of that
//! snapshot: either the builder read the change, or the change deleted the rollup.

use std::collections::HashSet;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use diesel::sql_types::{Array, Date, Integer, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::Result;
use super::queries::{day_end, day_start};
use crate::model::ReportRange;

/// First key of the per-day advisory locks ("ro"llup).
const LOCK_CLASS: i32 = 0x726f;

/// Grace after midnight before a day counts as closed.
const GRACE: Duration = Duration::hours(1);

/// The last day that may be rolled up at `now`.
pub(crate) fn last_closed_day(now: DateTime<Utc>) -> NaiveDate {
    (now - GRACE).date_naive() - Duration::days(1)
}

fn lock_key(day: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(2000, 1, 1).expect("valid date");
    (day - epoch).num_days() as i32
}

/// Where each day of a period is read from, as one snapshot sees the rollups.
#[derive(Debug, Clone)]
pub(crate) struct Sources {
    /// Rollup rows of days `range.from..=rolled_to` are read (none when `rolled_to < from`);
    /// a day without a rollup in the snapshot has no rows there and is read live.
    pub rolled_to: NaiveDate,
    /// Orders created in `[live_lo[i], live_hi[i])` are read directly: the open days and
    /// every closed day the snapshot has no rollup for. The intervals are disjoint.
    pub live_lo: Vec<DateTime<Utc>>,
    pub live_hi: Vec<DateTime<Utc>>,
}

#[derive(diesel::QueryableByName)]
struct Key {
    #[diesel(sql_type = Integer)]
    k: i32,
}

#[derive(diesel::QueryableByName)]
struct Day {
    #[diesel(sql_type = Date)]
    day: NaiveDate,
}

/// The sources of `range` in the caller's snapshot: call it inside the repeatable-read
/// transaction that reads the figures, so the days it finds rolled up are the days the
/// figures read from rollups.
pub(crate) async fn sources(
    conn: &mut AsyncPgConnection,
    range: ReportRange,
    now: DateTime<Utc>,
) -> Result<Sources> {
    let closed = last_closed_day(now);
    let rolled_to = range.to.min(closed);
    let unrolled: Vec<Day> = diesel::sql_query(
        "SELECT d::date AS day \
         FROM generate_series($1::date::timestamp, $2::date::timestamp, interval '1 day') AS d \
         WHERE NOT EXISTS (SELECT 1 FROM order_rollup_days r WHERE r.day = d::date) \
         ORDER BY 1",
    )
    .bind::<Date, _>(range.from)
    .bind::<Date, _>(rolled_to)
    .load(conn)
    .await?;
    let mut sources = Sources {
        rolled_to,
        live_lo: Vec::new(),
        live_hi: Vec::new(),
    };
    for Day { day } in unrolled {
        sources.push_live(day_start(day), day_end(day));
    }
    let open_from = day_start(range.from.max(closed + Duration::days(1)));
    let open_until = day_end(range.to);
    if open_from < open_until {
        sources.push_live(open_from, open_until);
    }
    Ok(sources)
}

impl Sources {
    /// Adds `[lo, hi)` after the intervals so far, merged with the last when they touch,
    /// so a run of unrolled days is one index range scan.
    fn push_live(&mut self, lo: DateTime<Utc>, hi: DateTime<Utc>) {
        if let Some(last) = self.live_hi.last_mut()
            && *last == lo
        {
            *last = hi;
            return;
        }
        self.live_lo.push(lo);
        self.live_hi.push(hi);
    }
}

/// Days rolled up per transaction, so each statement stays well under the statement
/// timeout whatever the period.
const CHUNK_DAYS: i64 = 31;

/// Builds the rollups of every closed day of the period that has none, a month per
/// transaction (call it outside a transaction). Days another builder or a status change
/// holds are skipped: the report reads them live this time.
pub(crate) async fn ensure(
    conn: &mut AsyncPgConnection,
    range: ReportRange,
    now: DateTime<Utc>,
) -> Result<()> {
    let last = range.to.min(last_closed_day(now));
    let mut first = range.from;
    while first <= last {
        let chunk_end = (first + Duration::days(CHUNK_DAYS - 1)).min(last);
        build(conn, first, chunk_end).await?;
        first = chunk_end + Duration::days(1);
    }
    Ok(())
}

/// Rolls up orders and revenue per status of the claimed days `$3`, whose orders were
/// created in `[$1, $2)`.
const ROLL_UP_STATUSES: &str = "INSERT INTO order_rollup_status (day, status, orders, revenue) \
     SELECT m.day, o.status, count(*), sum(o.total_price) \
     FROM orders o \
     JOIN unnest($3::date[]) AS m(day) ON m.day = (o.created_at AT TIME ZONE 'UTC')::date \
     WHERE o.created_at >= $1 AND o.created_at < $2 \
     GROUP BY 1, 2";

/// Rolls up units and revenue per product of the same days (cancelled orders left out),
/// with the name of the product's latest line.
const ROLL_UP_PRODUCTS: &str = "INSERT INTO order_rollup_products (day, product_id, units, revenue, last_order_id, name) \
     SELECT m.day, l.product_id, sum(l.quantity), sum(l.line_total), max(l.order_id), \
            (array_agg(l.product_name ORDER BY l.order_id DESC))[1] \
     FROM orders o \
     JOIN unnest($3::date[]) AS m(day) ON m.day = (o.created_at AT TIME ZONE 'UTC')::date \
     JOIN order_lines l ON l.order_id = o.id \
     WHERE o.created_at >= $1 AND o.created_at < $2 AND o.status <> 'cancelled' \
     GROUP BY 1, 2";

/// Rolls up the days of `first..=last` that have no rollup yet, in one transaction.
/// It never waits: a day whose lock is held (a status change in flight, or another
/// builder, here or on another replica) is left for later, so builders cannot deadlock
/// with each other or with status changes, and a day is never built twice.
async fn build(conn: &mut AsyncPgConnection, first: NaiveDate, last: NaiveDate) -> Result<()> {
    conn.transaction(async |conn| {
        let unrolled: Vec<Day> = diesel::sql_query(
            "SELECT d::date AS day \
             FROM generate_series($1::date::timestamp, $2::date::timestamp, interval '1 day') AS d \
             WHERE NOT EXISTS (SELECT 1 FROM order_rollup_days r WHERE r.day = d::date)",
        )
        .bind::<Date, _>(first)
        .bind::<Date, _>(last)
        .load(conn)
        .await?;
        if unrolled.is_empty() {
            return Ok(());
        }
        // The days of those whose lock this transaction gets, held until it ends.
        let keys: Vec<i32> = unrolled.iter().map(|d| lock_key(d.day)).collect();
        let held: Vec<Key> = diesel::sql_query(
            "SELECT k FROM unnest($2::int[]) AS k WHERE pg_try_advisory_xact_lock($1, k)",
        )
        .bind::<Integer, _>(LOCK_CLASS)
        .bind::<Array<Integer>, _>(&keys)
        .load(conn)
        .await?;
        let held: HashSet<i32> = held.into_iter().map(|k| k.k).collect();
        let locked: Vec<NaiveDate> = unrolled
            .into_iter()
            .map(|d| d.day)
            .filter(|d| held.contains(&lock_key(*d)))
            .collect();
        if locked.is_empty() {
            return Ok(());
        }
        // A day another builder committed since the check above is skipped here; none can
        // be in flight, since its builder would hold the lock.
        let claimed: Vec<Day> = diesel::sql_query(
            "INSERT INTO order_rollup_days (day) SELECT unnest($1::date[]) \
             ON CONFLICT (day) DO NOTHING RETURNING day",
        )
        .bind::<Array<Date>, _>(&locked)
        .load(conn)
        .await?;
        if claimed.is_empty() {
            return Ok(());
        }
        let mut days: Vec<NaiveDate> = claimed.into_iter().map(|d| d.day).collect();
        days.sort();
        let (lo, hi) = (day_start(days[0]), day_end(days[days.len() - 1]));
        // Read committed: each statement reads after the locks were taken, so every status
        // change of these days either committed before (and is counted) or waits for this
        // commit and then deletes the rollup. The claimed days join as a hashed set.
        for statement in [ROLL_UP_STATUSES, ROLL_UP_PRODUCTS] {
            diesel::sql_query(statement)
                .bind::<Timestamptz, _>(lo)
                .bind::<Timestamptz, _>(hi)
                .bind::<Array<Date>, _>(&days)
                .execute(conn)
                .await?;
        }
        Ok(())
    })
    .await
}

/// Drops the rollup of the day an order was created on; call it in the transaction of
/// the order's status change, after the order's update. The shared lock, held until
/// that transaction ends, keeps a builder from reading the day before the change
/// commits; the transaction must be read committed, so the delete sees a rollup that a
/// builder committed while this waited for the lock.
pub(crate) async fn invalidate(
    conn: &mut AsyncPgConnection,
    created_at: DateTime<Utc>,
) -> Result<()> {
    let day = created_at.date_naive();
    diesel::sql_query("SELECT pg_advisory_xact_lock_shared($1, $2)")
        .bind::<Integer, _>(LOCK_CLASS)
        .bind::<Integer, _>(lock_key(day))
        .execute(conn)
        .await?;
    diesel::sql_query("DELETE FROM order_rollup_days WHERE day = $1")
        .bind::<Date, _>(day)
        .execute(conn)
        .await?;
    Ok(())
}
