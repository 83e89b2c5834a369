//! Daily rollups of closed UTC days, and span rollups of whole months and weeks of
//! closed days, for the sales report.
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
//!
//! A span of closed, rolled-up days (a calendar month, or one of its weeks: days 1-7,
//! 8-14, 15-21, 22-28) gets a span rollup, summed from its day rollups by a builder
//! holding every one of its days' locks exclusively. Deleting a day rollup deletes the
//! spans holding that day (a trigger on `order_rollup_days`), in the same transaction,
//! so a span rollup in a snapshot always has all its days' rollups in that snapshot and
//! agrees with them. A report reads the fewest rows it can: the longest rolled-up span
//! starting at each day, else the day. Revenue is kept in integer cents; each day's and
//! span's product sums are also kept packed in one value, which the report sums in Rust.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, Utc};
use diesel::sql_types::{Array, BigInt, Bool, Date, Integer, Nullable, Timestamptz};
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

/// The first day of `day`'s month.
pub(crate) fn month_of(day: NaiveDate) -> NaiveDate {
    day.with_day(1).expect("every month has a first day")
}

/// The last day of the month starting on `month`.
fn month_last(month: NaiveDate) -> NaiveDate {
    month
        .checked_add_months(Months::new(1))
        .expect("a month after a report's month")
        - Duration::days(1)
}

/// The spans lying wholly inside `first..=last`, as `(first day, last day)`: whole
/// months, and the weeks of days 1-7, 8-14, 15-21 and 22-28 of a month.
fn spans_in(first: NaiveDate, last: NaiveDate) -> Vec<(NaiveDate, NaiveDate)> {
    let mut spans = Vec::new();
    let mut month = month_of(first);
    while month <= last {
        let end = month_last(month);
        if month >= first && end <= last {
            spans.push((month, end));
        }
        for start in [0, 7, 14, 21] {
            let (lo, hi) = (
                month + Duration::days(start),
                month + Duration::days(start + 6),
            );
            if lo >= first && hi <= last {
                spans.push((lo, hi));
            }
        }
        month = end + Duration::days(1);
    }
    spans
}

/// Where each day of a period is read from, as one snapshot sees the rollups.
#[derive(Debug, Clone)]
pub(crate) struct Sources {
    /// Rollup rows of days `range.from..=rolled_to` exist exactly for the rolled-up days
    /// (a day without a rollup in the snapshot has no rows there and is read live): the
    /// daily figures read them all.
    pub rolled_to: NaiveDate,
    /// Spans `span_lo[i]..=span_hi[i]` of the period whose span rollup is in the snapshot:
    /// the other figures read these rows instead of their days'.
    pub span_lo: Vec<NaiveDate>,
    pub span_hi: Vec<NaiveDate>,
    /// The days read from day rollups by the other figures: `day_lo[i]..=day_hi[i]`, not
    /// covered by the spans.
    pub day_lo: Vec<NaiveDate>,
    pub day_hi: Vec<NaiveDate>,
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

/// A rolled-up day (`last` null), or a rolled-up span `day..=last`.
#[derive(diesel::QueryableByName)]
struct Rolled {
    #[diesel(sql_type = Date)]
    day: NaiveDate,
    #[diesel(sql_type = Nullable<Date>)]
    last: Option<NaiveDate>,
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
    let rolled: Vec<Rolled> = diesel::sql_query(
        "SELECT day, NULL::date AS last FROM order_rollup_days WHERE day >= $1 AND day <= $2 \
         UNION ALL \
         SELECT first, last FROM order_rollup_spans WHERE first >= $1 AND last <= $2",
    )
    .bind::<Date, _>(range.from)
    .bind::<Date, _>(rolled_to)
    .load(conn)
    .await?;
    // Each day's rolled-up spans, by their last day.
    let (mut days, mut spans) = (HashSet::new(), HashMap::<NaiveDate, NaiveDate>::new());
    for r in rolled {
        match r.last {
            Some(last) => {
                let longest = spans.entry(r.day).or_insert(last);
                *longest = (*longest).max(last);
            }
            None => {
                days.insert(r.day);
            }
        }
    }
    let mut sources = Sources {
        rolled_to,
        span_lo: Vec::new(),
        span_hi: Vec::new(),
        day_lo: Vec::new(),
        day_hi: Vec::new(),
        live_lo: Vec::new(),
        live_hi: Vec::new(),
    };
    let mut day = range.from;
    while day <= rolled_to {
        if let Some(&last) = spans.get(&day) {
            sources.span_lo.push(day);
            sources.span_hi.push(last);
            day = last + Duration::days(1);
            continue;
        }
        if days.contains(&day) {
            sources.push_rolled(day);
        } else {
            sources.push_live(day_start(day), day_end(day));
        }
        day += Duration::days(1);
    }
    let open_from = day_start(range.from.max(closed + Duration::days(1)));
    let open_until = day_end(range.to);
    if open_from < open_until {
        sources.push_live(open_from, open_until);
    }
    Ok(sources)
}

impl Sources {
    /// Adds `day` to the day-rollup intervals, merged with the last when adjacent.
    fn push_rolled(&mut self, day: NaiveDate) {
        if let Some(last) = self.day_hi.last_mut()
            && *last + Duration::days(1) == day
        {
            *last = day;
            return;
        }
        self.day_lo.push(day);
        self.day_hi.push(day);
    }

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
/// transaction, then those of the period's spans of closed days that have none (call it
/// outside a transaction). Days another builder or a status change holds are skipped,
/// and so are their spans: the report reads them from their days or live this time.
pub(crate) async fn ensure(
    conn: &mut AsyncPgConnection,
    range: ReportRange,
    now: DateTime<Utc>,
) -> Result<()> {
    let last = range.to.min(last_closed_day(now));
    if last < range.from {
        return Ok(());
    }
    // One look-up finds what is missing, so a report over built rollups costs one statement.
    let (span_lo, span_hi): (Vec<NaiveDate>, Vec<NaiveDate>) =
        spans_in(range.from, last).into_iter().unzip();
    let missing: Vec<Rolled> = diesel::sql_query(
        "SELECT d::date AS day, NULL::date AS last \
         FROM generate_series($1::date::timestamp, $2::date::timestamp, interval '1 day') AS d \
         WHERE NOT EXISTS (SELECT 1 FROM order_rollup_days r WHERE r.day = d::date) \
         UNION ALL \
         SELECT s.first, s.last FROM unnest($3::date[], $4::date[]) AS s(first, last) \
         WHERE NOT EXISTS (SELECT 1 FROM order_rollup_spans r \
                           WHERE r.first = s.first AND r.last = s.last)",
    )
    .bind::<Date, _>(range.from)
    .bind::<Date, _>(last)
    .bind::<Array<Date>, _>(&span_lo)
    .bind::<Array<Date>, _>(&span_hi)
    .load(conn)
    .await?;
    let unrolled: Vec<NaiveDate> = missing
        .iter()
        .filter(|r| r.last.is_none())
        .map(|r| r.day)
        .collect();
    let mut first = range.from;
    while first <= last {
        let chunk_end = (first + Duration::days(CHUNK_DAYS - 1)).min(last);
        if unrolled.iter().any(|d| (first..=chunk_end).contains(d)) {
            build(conn, first, chunk_end).await?;
        }
        first = chunk_end + Duration::days(1);
    }
    for r in &missing {
        if let Some(span_last) = r.last {
            build_span(conn, r.day, span_last).await?;
        }
    }
    Ok(())
}

/// Rolls up orders and revenue per status of the claimed days `$3`, whose orders were
/// created in `[$1, $2)`.
const ROLL_UP_STATUSES: &str = "INSERT INTO order_rollup_status (day, status, orders, revenue_cents) \
     SELECT m.day, o.status, count(*), (sum(o.total_price) * 100)::bigint \
     FROM orders o \
     JOIN unnest($3::date[]) AS m(day) ON m.day = (o.created_at AT TIME ZONE 'UTC')::date \
     WHERE o.created_at >= $1 AND o.created_at < $2 \
     GROUP BY 1, 2";

/// Rolls up units and revenue per product of the same days (cancelled and refunded
/// orders left out), with the name of the product's latest line.
const ROLL_UP_PRODUCTS: &str = "INSERT INTO order_rollup_products (day, product_id, units, revenue_cents, last_order_id, name) \
     SELECT m.day, l.product_id, sum(l.quantity), (sum(l.line_total) * 100)::bigint, max(l.order_id), \
            (array_agg(l.product_name ORDER BY l.order_id DESC))[1] \
     FROM orders o \
     JOIN unnest($3::date[]) AS m(day) ON m.day = (o.created_at AT TIME ZONE 'UTC')::date \
     JOIN order_lines l ON l.order_id = o.id \
     WHERE o.created_at >= $1 AND o.created_at < $2 AND o.status NOT IN ('cancelled', 'refunded') \
     GROUP BY 1, 2";

/// Packs the product rows of the claimed days `$1` (see the `orders_product_packs`
/// migration), for the report to sum in Rust.
const PACK_PRODUCTS: &str = "INSERT INTO order_rollup_product_packs (day, products) \
     SELECT day, string_agg(int8send(product_id) || int8send(units) || int8send(revenue_cents) \
                            || int8send(last_order_id), ''::bytea ORDER BY product_id) \
     FROM order_rollup_products WHERE day = ANY ($1::date[]) \
     GROUP BY day";

/// Rolls up the sorted distinct customers (orders of any status) of the same days.
const ROLL_UP_CUSTOMERS: &str = "INSERT INTO order_rollup_customers (day, customers) \
     SELECT m.day, array_agg(DISTINCT o.user_id ORDER BY o.user_id) \
     FROM orders o \
     JOIN unnest($3::date[]) AS m(day) ON m.day = (o.created_at AT TIME ZONE 'UTC')::date \
     WHERE o.created_at >= $1 AND o.created_at < $2 \
     GROUP BY 1";

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
        for statement in [ROLL_UP_STATUSES, ROLL_UP_PRODUCTS, ROLL_UP_CUSTOMERS] {
            diesel::sql_query(statement)
                .bind::<Timestamptz, _>(lo)
                .bind::<Timestamptz, _>(hi)
                .bind::<Array<Date>, _>(&days)
                .execute(conn)
                .await?;
        }
        diesel::sql_query(PACK_PRODUCTS)
            .bind::<Array<Date>, _>(&days)
            .execute(conn)
            .await?;
        Ok(())
    })
    .await
}

#[derive(diesel::QueryableByName)]
struct Held {
    #[diesel(sql_type = Bool)]
    held: bool,
}

/// Sums the rollups of the span `first..=last` from its day rollups, in one transaction
/// holding every one of its days' locks (taken without waiting: if a status change or a
/// builder holds one, the span is left for later). Under those locks no day rollup of
/// the span can appear or go until commit, so the span equals its days; a span with a
/// day not rolled up is left alone.
async fn build_span(conn: &mut AsyncPgConnection, first: NaiveDate, last: NaiveDate) -> Result<()> {
    let keys: Vec<i32> = first
        .iter_days()
        .take_while(|d| *d <= last)
        .map(lock_key)
        .collect();
    conn.transaction(async |conn| {
        // bool_and takes every lock it can; those taken go with the transaction.
        let held: Held = diesel::sql_query(
            "SELECT coalesce(bool_and(pg_try_advisory_xact_lock($1, k)), false) AS held \
             FROM unnest($2::int[]) AS k",
        )
        .bind::<Integer, _>(LOCK_CLASS)
        .bind::<Array<Integer>, _>(&keys)
        .get_result(conn)
        .await?;
        if !held.held {
            return Ok(());
        }
        let claimed: Vec<Day> = diesel::sql_query(
            "INSERT INTO order_rollup_spans (first, last) SELECT $1, $2 \
             WHERE (SELECT count(*) FROM order_rollup_days WHERE day >= $1 AND day <= $2) = $3 \
             ON CONFLICT (first, last) DO NOTHING RETURNING first AS day",
        )
        .bind::<Date, _>(first)
        .bind::<Date, _>(last)
        .bind::<BigInt, _>(keys.len() as i64)
        .load(conn)
        .await?;
        if claimed.is_empty() {
            return Ok(());
        }
        for statement in [
            "INSERT INTO order_rollup_span_status (first, last, status, orders, revenue_cents) \
             SELECT $1, $2, status, sum(orders), sum(revenue_cents) FROM order_rollup_status \
             WHERE day >= $1 AND day <= $2 GROUP BY status",
            "INSERT INTO order_rollup_span_product_packs (first, last, products) \
             SELECT $1, $2, string_agg(int8send(product_id) || int8send(units) \
                                       || int8send(cents) || int8send(last_order_id), \
                                       ''::bytea ORDER BY product_id) \
             FROM (SELECT product_id, sum(units)::bigint AS units, \
                          sum(revenue_cents)::bigint AS cents, max(last_order_id) AS last_order_id \
                   FROM order_rollup_products WHERE day >= $1 AND day <= $2 \
                   GROUP BY product_id) AS p \
             HAVING count(*) > 0",
            "INSERT INTO order_rollup_span_customers (first, last, customers) \
             SELECT $1, $2, coalesce(array_agg(DISTINCT c ORDER BY c), '{}') \
             FROM order_rollup_customers, unnest(customers) AS c \
             WHERE day >= $1 AND day <= $2",
        ] {
            diesel::sql_query(statement)
                .bind::<Date, _>(first)
                .bind::<Date, _>(last)
                .execute(conn)
                .await?;
        }
        Ok(())
    })
    .await
}

/// Drops the rollup of the day an order was created on (and, by the trigger, those of
/// the spans holding it); call it in the transaction of
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
