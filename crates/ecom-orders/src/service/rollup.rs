//! Daily rollups of closed UTC days for the sales report.
//!
//! A day is rolled up the first time a report covers it after it has closed (with an
//! hour's grace for transactions that started before midnight). A status change of an
//! order drops its creation day's rollup; the next report rebuilds it. Builders and
//! status changes of one day are serialized by a per-day advisory lock (exclusive for
//! the builder, shared for status changes), so a rollup never misses a change.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use diesel::sql_types::{Array, Date, Integer};
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

/// Which part of a period comes from rollups and which from the orders themselves.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Split {
    /// Days `range.from..=rolled_to` are rolled up (none when `rolled_to < from`).
    pub rolled_to: NaiveDate,
    /// Orders created in `[live_from, live_until)` are read directly (none when empty).
    pub live_from: DateTime<Utc>,
    pub live_until: DateTime<Utc>,
}

pub(crate) fn split(range: ReportRange, now: DateTime<Utc>) -> Split {
    let closed = last_closed_day(now);
    let rolled_to = range.to.min(closed);
    let live_first = range.from.max(closed + Duration::days(1));
    Split {
        rolled_to,
        live_from: day_start(live_first),
        live_until: day_end(range.to),
    }
}

#[derive(diesel::QueryableByName)]
struct Day {
    #[diesel(sql_type = Date)]
    day: NaiveDate,
}

/// Days rolled up per transaction, so each statement stays well under the statement
/// timeout whatever the period.
const CHUNK_DAYS: i64 = 31;

/// Builds the rollups of every closed day of the period that has none, a month per
/// transaction (call it outside a transaction).
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

/// Rolls up the days of `first..=last` that have no rollup yet, in one transaction.
async fn build(conn: &mut AsyncPgConnection, first: NaiveDate, last: NaiveDate) -> Result<()> {
    conn.transaction(async |conn| {
        // Concurrent builders: ON CONFLICT waits for the other's insert and skips its days.
        let missing: Vec<Day> = diesel::sql_query(
            "INSERT INTO order_rollup_days (day) \
             SELECT d::date FROM generate_series($1::date::timestamp, $2::date::timestamp, interval '1 day') AS d \
             ON CONFLICT (day) DO NOTHING RETURNING day",
        )
        .bind::<Date, _>(first)
        .bind::<Date, _>(last)
        .load(conn)
        .await?;
        if missing.is_empty() {
            return Ok(());
        }
        let mut days: Vec<NaiveDate> = missing.into_iter().map(|d| d.day).collect();
        days.sort();
        let keys: Vec<i32> = days.iter().map(|d| lock_key(*d)).collect();
        diesel::sql_query("SELECT pg_advisory_xact_lock($1, k) FROM unnest($2::int[]) AS k ORDER BY k")
            .bind::<Integer, _>(LOCK_CLASS)
            .bind::<Array<Integer>, _>(&keys)
            .execute(conn)
            .await?;
        let (lo, hi) = (day_start(days[0]), day_end(days[days.len() - 1]));
        // The missing days join as a hashed set: only those days are (re)built.
        diesel::sql_query(
            "INSERT INTO order_rollup_status (day, status, orders, revenue) \
             SELECT m.day, o.status, count(*), sum(o.total_price) \
             FROM orders o \
             JOIN unnest($3::date[]) AS m(day) ON m.day = (o.created_at AT TIME ZONE 'UTC')::date \
             WHERE o.created_at >= $1 AND o.created_at < $2 \
             GROUP BY 1, 2",
        )
        .bind::<diesel::sql_types::Timestamptz, _>(lo)
        .bind::<diesel::sql_types::Timestamptz, _>(hi)
        .bind::<Array<Date>, _>(&days)
        .execute(conn)
        .await?;
        diesel::sql_query(
            "INSERT INTO order_rollup_products (day, product_id, units, revenue, last_order_id, name) \
             SELECT m.day, l.product_id, sum(l.quantity), sum(l.line_total), max(l.order_id), \
                    (array_agg(l.product_name ORDER BY l.order_id DESC))[1] \
             FROM orders o \
             JOIN unnest($3::date[]) AS m(day) ON m.day = (o.created_at AT TIME ZONE 'UTC')::date \
             JOIN order_lines l ON l.order_id = o.id \
             WHERE o.created_at >= $1 AND o.created_at < $2 AND o.status <> 'cancelled' \
             GROUP BY 1, 2",
        )
        .bind::<diesel::sql_types::Timestamptz, _>(lo)
        .bind::<diesel::sql_types::Timestamptz, _>(hi)
        .bind::<Array<Date>, _>(&days)
        .execute(conn)
        .await?;
        Ok(())
    })
    .await
}

/// Drops the rollup of the day an order was created on; call it in the transaction of
/// the order's status change.
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
