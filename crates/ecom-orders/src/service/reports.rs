//! The order figures of the admin's sales report, over UTC days. Whole closed months and
//! weeks come from the span rollups, other closed days from the daily rollups (see
//! [`super::rollup`]), the still-open days, and any closed day whose rollup is missing,
//! from the orders by their `created_at` index, one fenced index range scan per
//! interval; each figure is one set-based statement (no per-order loops), and every
//! function reads all of its figures, and which days and spans are rolled up, in one
//! repeatable-read snapshot. Rollup revenue is in integer cents, turned back into money
//! at the end.

use std::collections::HashMap;
use std::pin::Pin;

use chrono::{DateTime, NaiveDate, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::sql_types::{Array, BigInt, Bytea, Date, Integer, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use ecom_core::Money;

use super::Result;
use super::rollup::{self, Sources};
use crate::error::OrdersError;
use crate::model::{
    DailySales, OrderStatus, ReportRange, SalesReport, SalesTotals, StatusCounts, TopProduct,
};

/// Longest period a report covers, in days (three years, leap day included). The one
/// owner of this limit: ecom-admin's report endpoint checks it through [`ReportRange::new`].
pub const MAX_REPORT_DAYS: i64 = 1096;
/// Most products a top-products list may ask for (the report's `top`).
pub const MAX_TOP_PRODUCTS: i64 = 50;

impl ReportRange {
    /// UTC days `from..=to`; `from` after `to` or a period over [`MAX_REPORT_DAYS`] is a
    /// 422 naming `from`.
    pub fn new(from: NaiveDate, to: NaiveDate) -> std::result::Result<Self, OrdersError> {
        if to < from {
            return Err(OrdersError::invalid("from", "must not be after `to`"));
        }
        if (to - from).num_days() + 1 > MAX_REPORT_DAYS {
            return Err(OrdersError::invalid(
                "from",
                format!("the period is at most {MAX_REPORT_DAYS} days"),
            ));
        }
        Ok(Self { from, to })
    }
}

#[derive(QueryableByName)]
struct StatusRow {
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = BigInt)]
    orders: i64,
    #[diesel(sql_type = BigInt)]
    cents: i64,
}

/// A figure's statement with the sources bound: `$1`, `$2` the rolled-up spans, `$3`,
/// `$4` the bounds of the day-rollup intervals (inclusive), `$5`, `$6` the bounds of the
/// live intervals. Each interval is read by its own index range scan: the planner cannot see
/// bounds inside the arrays, so every interval's read is a lateral fenced by `OFFSET 0`.
fn figure_query<'a>(statement: &str, src: &'a Sources) -> BoxedSqlQuery<'a, Pg, SqlQuery> {
    diesel::sql_query(statement)
        .into_boxed()
        .bind::<Array<Date>, _>(&src.span_lo)
        .bind::<Array<Date>, _>(&src.span_hi)
        .bind::<Array<Date>, _>(&src.day_lo)
        .bind::<Array<Date>, _>(&src.day_hi)
        .bind::<Array<Timestamptz>, _>(&src.live_lo)
        .bind::<Array<Timestamptz>, _>(&src.live_hi)
}

/// Orders and revenue (cents) per status over the period: rollups plus the live days.
async fn status_rows(conn: &mut AsyncPgConnection, src: &Sources) -> Result<Vec<StatusRow>> {
    Ok(figure_query(
        "SELECT status, sum(orders)::bigint AS orders, sum(cents)::bigint AS cents FROM ( \
             SELECT s.status, s.orders, s.revenue_cents AS cents \
             FROM unnest($1::date[], $2::date[]) AS k(lo, hi) \
             CROSS JOIN LATERAL (SELECT status, orders, revenue_cents \
                                 FROM order_rollup_span_status \
                                 WHERE first = k.lo AND last = k.hi OFFSET 0) AS s \
             UNION ALL \
             SELECT s.status, s.orders, s.revenue_cents \
             FROM unnest($3::date[], $4::date[]) AS r(lo, hi) \
             CROSS JOIN LATERAL (SELECT status, orders, revenue_cents FROM order_rollup_status \
                                 WHERE day >= r.lo AND day <= r.hi OFFSET 0) AS s \
             UNION ALL \
             SELECT o.status, count(*), (sum(o.total_price) * 100)::bigint \
             FROM unnest($5::timestamptz[], $6::timestamptz[]) AS r(lo, hi) \
             CROSS JOIN LATERAL (SELECT status, total_price FROM orders \
                                 WHERE created_at >= r.lo AND created_at < r.hi OFFSET 0) AS o \
             GROUP BY o.status \
         ) AS s GROUP BY status",
        src,
    )
    .load(conn)
    .await?)
}

#[derive(QueryableByName)]
struct Customers {
    #[diesel(sql_type = Array<BigInt>)]
    customers: Vec<i64>,
}

/// Distinct customers cannot be summed: the period's sorted customer arrays of its spans
/// and days, and the user ids of its live orders, are fetched and their union counted
/// here (a bitset, or a hash set for sparse ids), which is faster than PostgreSQL's
/// `DISTINCT` over the unnested arrays.
async fn active_customers(conn: &mut AsyncPgConnection, src: &Sources) -> Result<i64> {
    // In slices of at most 2,048 ids: a month's array in one row would be a message of
    // half a megabyte, and a pooled connection's read buffer keeps the size of the largest
    // message it received (30 year-long reports on a warm pool: 53 -> 92 MiB). `|| '{}'`
    // reads each stored array once; sliced as stored, every slice would read it again.
    let arrays: Vec<Customers> = figure_query(
        "SELECT a.customers[i : i + 2047] AS customers FROM ( \
         SELECT c.customers || '{}'::bigint[] FROM unnest($1::date[], $2::date[]) AS k(lo, hi) \
         CROSS JOIN LATERAL (SELECT customers FROM order_rollup_span_customers \
                             WHERE first = k.lo AND last = k.hi OFFSET 0) AS c \
         UNION ALL \
         SELECT c.customers || '{}'::bigint[] FROM unnest($3::date[], $4::date[]) AS r(lo, hi) \
         CROSS JOIN LATERAL (SELECT customers FROM order_rollup_customers \
                             WHERE day >= r.lo AND day <= r.hi OFFSET 0) AS c \
         UNION ALL \
         SELECT coalesce(array_agg(o.user_id), '{}') AS customers \
         FROM unnest($5::timestamptz[], $6::timestamptz[]) AS r(lo, hi) \
         CROSS JOIN LATERAL (SELECT user_id FROM orders \
                             WHERE created_at >= r.lo AND created_at < r.hi OFFSET 0) AS o \
         ) AS a(customers) \
         CROSS JOIN LATERAL generate_series(1, cardinality(a.customers), 2048) AS i",
        src,
    )
    .load(conn)
    .await?;
    Ok(count_distinct(
        arrays.iter().map(|a| a.customers.as_slice()),
    ))
}

/// The number of distinct ids in `lists`.
fn count_distinct<'a>(lists: impl Iterator<Item = &'a [i64]> + Clone) -> i64 {
    let (mut min, mut max, mut len) = (i64::MAX, i64::MIN, 0usize);
    for list in lists.clone() {
        for &id in list {
            min = min.min(id);
            max = max.max(id);
        }
        len += list.len();
    }
    if len == 0 {
        return 0;
    }
    let span = u64::try_from(i128::from(max) - i128::from(min)).unwrap_or(u64::MAX);
    // A bitset as long as the input (or 8 KiB) at most; otherwise hashing.
    if span / 64 <= (len as u64).max(1024) {
        let mut bits = vec![0u64; (span / 64 + 1) as usize];
        let mut count = 0;
        for &id in lists.flat_map(|l| l.iter()) {
            let at = (id - min) as u64;
            let (word, bit) = ((at / 64) as usize, 1u64 << (at % 64));
            if bits[word] & bit == 0 {
                bits[word] |= bit;
                count += 1;
            }
        }
        return count;
    }
    let mut seen = std::collections::HashSet::with_capacity(len);
    for &id in lists.flat_map(|l| l.iter()) {
        seen.insert(id);
    }
    seen.len() as i64
}

/// Money from a sum of cents.
fn from_cents(cents: i64) -> Money {
    Money::from_db(rust_decimal::Decimal::new(cents, 2))
}

fn totals_of(rows: &[StatusRow], active_customers: i64) -> SalesTotals {
    let (mut total_orders, mut cents) = (0, 0);
    for row in rows {
        // A status this build does not know is no sale either.
        let sale = row.status.parse::<OrderStatus>().is_ok_and(|s| s.is_sale());
        if sale {
            total_orders += row.orders;
            cents += row.cents;
        }
    }
    let total_revenue = rust_decimal::Decimal::new(cents, 2);
    let average = if total_orders == 0 {
        rust_decimal::Decimal::ZERO
    } else {
        (total_revenue / rust_decimal::Decimal::from(total_orders))
            .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
    };
    SalesTotals {
        total_orders,
        total_revenue: from_cents(cents),
        average_order_value: Money::from_db(average),
        active_customers,
    }
}

async fn totals_in(conn: &mut AsyncPgConnection, src: &Sources) -> Result<SalesTotals> {
    let rows = status_rows(conn, src).await?;
    Ok(totals_of(&rows, active_customers(conn, src).await?))
}

/// Orders, revenue and average order value of the period (cancelled and refunded orders
/// left out), and
/// the distinct customers who placed an order in it.
pub async fn sales_totals(conn: &mut AsyncPgConnection, range: ReportRange) -> Result<SalesTotals> {
    in_snapshot(conn, range, |conn, src| Box::pin(totals_in(conn, src))).await
}

fn by_status_of(rows: &[StatusRow]) -> StatusCounts {
    let mut counts = StatusCounts::default();
    for row in rows {
        if let Ok(status) = row.status.parse::<OrderStatus>() {
            counts.set(status, row.orders);
        }
    }
    counts
}

/// Orders placed in the period per status, every status present.
pub async fn orders_by_status(
    conn: &mut AsyncPgConnection,
    range: ReportRange,
) -> Result<StatusCounts> {
    in_snapshot(conn, range, |conn, src| {
        Box::pin(async move { Ok(by_status_of(&status_rows(conn, src).await?)) })
    })
    .await
}

/// A top-products `limit` outside 1..=[`MAX_TOP_PRODUCTS`] is a 422 naming `top`.
fn check_top(limit: i64) -> Result<()> {
    if !(1..=MAX_TOP_PRODUCTS).contains(&limit) {
        return Err(OrdersError::invalid(
            "top",
            format!("must be between 1 and {MAX_TOP_PRODUCTS}"),
        ));
    }
    Ok(())
}

#[derive(QueryableByName)]
struct Pack {
    #[diesel(sql_type = Bytea)]
    products: Vec<u8>,
}

#[derive(QueryableByName)]
struct LiveLine {
    #[diesel(sql_type = BigInt)]
    product_id: i64,
    #[diesel(sql_type = Integer)]
    quantity: i32,
    #[diesel(sql_type = BigInt)]
    cents: i64,
    #[diesel(sql_type = BigInt)]
    order_id: i64,
}

#[derive(QueryableByName)]
struct LineName {
    #[diesel(sql_type = BigInt)]
    order_id: i64,
    #[diesel(sql_type = BigInt)]
    product_id: i64,
    #[diesel(sql_type = Text)]
    product_name: String,
}

/// A product's units, cents and latest order over the period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Sold {
    units: i64,
    cents: i64,
    last_order_id: i64,
}

impl Sold {
    fn add(&mut self, units: i64, cents: i64, order_id: i64) {
        self.units += units;
        self.cents += cents;
        self.last_order_id = self.last_order_id.max(order_id);
    }
}

/// Bytes per product in a pack (see the `orders_product_packs` migration): product id,
/// units, cents and last order id, each 8 big-endian bytes.
const PACKED: usize = 32;

/// Adds a slice of a pack to `sold`; a slice holds whole products.
fn add_pack(sold: &mut HashMap<i64, Sold>, pack: &[u8]) {
    for p in pack.chunks_exact(PACKED) {
        let field = |i: usize| {
            i64::from_be_bytes(p[i * 8..i * 8 + 8].try_into().expect("8 bytes of a field"))
        };
        sold.entry(field(0))
            .or_default()
            .add(field(1), field(2), field(3));
    }
}

/// The `limit` best sellers of `sold`: most units, then revenue, then lowest id.
fn best_sellers(sold: HashMap<i64, Sold>, limit: usize) -> Vec<(i64, Sold)> {
    let mut all: Vec<(i64, Sold)> = sold.into_iter().collect();
    let order = |a: &(i64, Sold), b: &(i64, Sold)| {
        (b.1.units, b.1.cents, a.0).cmp(&(a.1.units, a.1.cents, b.0))
    };
    if all.len() > limit {
        all.select_nth_unstable_by(limit, order);
        all.truncate(limit);
    }
    all.sort_unstable_by(order);
    all
}

async fn top_in(
    conn: &mut AsyncPgConnection,
    src: &Sources,
    limit: i64,
) -> Result<Vec<TopProduct>> {
    // The packs of the spans and days, in slices of 2,048 products (a pack is stored
    // uncompressed, so a slice reads only its part; no message is large), summed here:
    // ~60k products in a 30-day report, where PostgreSQL's HashAggregate took 30 ms.
    let packs: Vec<Pack> = figure_query(
        "SELECT substring(p.products FROM i FOR 65536) AS products FROM ( \
             SELECT s.products FROM unnest($1::date[], $2::date[]) AS k(lo, hi) \
             CROSS JOIN LATERAL (SELECT products FROM order_rollup_span_product_packs \
                                 WHERE first = k.lo AND last = k.hi OFFSET 0) AS s \
             UNION ALL \
             SELECT d.products FROM unnest($3::date[], $4::date[]) AS r(lo, hi) \
             CROSS JOIN LATERAL (SELECT products FROM order_rollup_product_packs \
                                 WHERE day >= r.lo AND day <= r.hi OFFSET 0) AS d \
         ) AS p CROSS JOIN LATERAL generate_series(1, length(p.products), 65536) AS i",
        src,
    )
    .load(conn)
    .await?;
    // The live orders' lines (each live order's by an index look-up), summed here too:
    // grouped by PostgreSQL they cost twice as much.
    let live: Vec<LiveLine> = figure_query(
        "SELECT l.product_id, l.quantity, (l.line_total * 100)::bigint AS cents, l.order_id \
         FROM unnest($5::timestamptz[], $6::timestamptz[]) AS r(lo, hi) \
         CROSS JOIN LATERAL (SELECT id FROM orders \
                             WHERE created_at >= r.lo AND created_at < r.hi \
                               AND status NOT IN ('cancelled', 'refunded') OFFSET 0) AS o \
         CROSS JOIN LATERAL (SELECT product_id, quantity, line_total, order_id \
                             FROM order_lines WHERE order_id = o.id OFFSET 0) AS l",
        src,
    )
    .load(conn)
    .await?;
    let mut sold = HashMap::<i64, Sold>::with_capacity(16 * 1024);
    for pack in &packs {
        add_pack(&mut sold, &pack.products);
    }
    for line in &live {
        sold.entry(line.product_id).or_default().add(
            i64::from(line.quantity),
            line.cents,
            line.order_id,
        );
    }
    let best = best_sellers(sold, usize::try_from(limit).unwrap_or(0));
    // The name on each best seller's latest line.
    let (orders, products): (Vec<i64>, Vec<i64>) =
        best.iter().map(|(id, s)| (s.last_order_id, *id)).unzip();
    let names: Vec<LineName> = diesel::sql_query(
        "SELECT l.order_id, l.product_id, l.product_name \
         FROM unnest($1::bigint[], $2::bigint[]) AS k(order_id, product_id) \
         JOIN order_lines l ON l.order_id = k.order_id AND l.product_id = k.product_id",
    )
    .bind::<Array<BigInt>, _>(&orders)
    .bind::<Array<BigInt>, _>(&products)
    .load(conn)
    .await?;
    let mut names: HashMap<(i64, i64), String> = names
        .into_iter()
        .map(|n| ((n.order_id, n.product_id), n.product_name))
        .collect();
    Ok(best
        .into_iter()
        .filter_map(|(product_id, s)| {
            // Joined as before: a best seller whose latest line is gone is left out.
            let name = names.remove(&(s.last_order_id, product_id))?;
            Some(TopProduct {
                product_id,
                name,
                units_sold: s.units,
                revenue: from_cents(s.cents),
            })
        })
        .collect())
}

/// The `limit` (1..=100) best-selling products of the period by units sold (then revenue,
/// then id), cancelled and refunded orders left out.
pub async fn top_products(
    conn: &mut AsyncPgConnection,
    range: ReportRange,
    limit: i64,
) -> Result<Vec<TopProduct>> {
    check_top(limit)?;
    in_snapshot(conn, range, |conn, src| Box::pin(top_in(conn, src, limit))).await
}

async fn daily_in(
    conn: &mut AsyncPgConnection,
    range: ReportRange,
    src: &Sources,
) -> Result<Vec<DailySales>> {
    // Every rolled-up day's rows (a span rollup's days all have theirs), and the live days.
    Ok(diesel::sql_query(
        "WITH per_day AS ( \
             SELECT day, sum(orders) AS orders, sum(cents) AS cents FROM ( \
                 SELECT day, orders, revenue_cents AS cents FROM order_rollup_status \
                 WHERE day >= $1 AND day <= $2 AND status NOT IN ('cancelled', 'refunded') \
                 UNION ALL \
                 SELECT (o.created_at AT TIME ZONE 'UTC')::date, count(*), \
                        (sum(o.total_price) * 100)::bigint \
                 FROM unnest($3::timestamptz[], $4::timestamptz[]) AS r(lo, hi) \
                 CROSS JOIN LATERAL (SELECT created_at, total_price FROM orders \
                                     WHERE created_at >= r.lo AND created_at < r.hi \
                                       AND status NOT IN ('cancelled', 'refunded') OFFSET 0) AS o \
                 GROUP BY 1 \
             ) AS s GROUP BY day) \
         SELECT d.day::date AS date, coalesce(p.orders, 0)::bigint AS orders, \
                coalesce(p.cents, 0) * 0.01 AS revenue \
         FROM generate_series($1::date::timestamp, $5::date::timestamp, interval '1 day') AS d(day) \
         LEFT JOIN per_day p ON p.day = d.day::date \
         ORDER BY d.day",
    )
    .bind::<Date, _>(range.from)
    .bind::<Date, _>(src.rolled_to)
    .bind::<Array<Timestamptz>, _>(&src.live_lo)
    .bind::<Array<Timestamptz>, _>(&src.live_hi)
    .bind::<Date, _>(range.to)
    .load(conn)
    .await?)
}

/// Every UTC day of the period with its orders and revenue (cancelled and refunded orders
/// left out),
/// days without orders included as zero.
pub async fn daily_sales(
    conn: &mut AsyncPgConnection,
    range: ReportRange,
) -> Result<Vec<DailySales>> {
    in_snapshot(conn, range, |conn, src| {
        Box::pin(daily_in(conn, range, src))
    })
    .await
}

/// Every order figure of the sales report in one consistent snapshot (a read-only
/// repeatable-read transaction). The missing rollups are built first, to keep the next
/// reports fast, but correctness does not depend on them: inside the snapshot, a closed
/// month or week without a span rollup is read from its days, and a closed day without a rollup
/// (dropped by a status change since, or skipped by a busy builder) from its orders.
/// Call it outside a transaction.
pub async fn sales_report(
    conn: &mut AsyncPgConnection,
    range: ReportRange,
    top: i64,
) -> Result<SalesReport> {
    check_top(top)?;
    build_rollups(conn, range).await?;
    read_sales_report(conn, range, top).await
}

/// Builds the rollups missing for a report of `range` (on the primary): what
/// [`sales_report`] does before reading, for a caller that reads elsewhere.
pub async fn build_rollups(conn: &mut AsyncPgConnection, range: ReportRange) -> Result<()> {
    rollup::ensure(conn, range, Utc::now()).await
}

/// [`sales_report`] without building rollups: only reads, so it runs on a read replica
/// (which then uses the rollups it has replayed, and the orders for the rest).
pub async fn read_sales_report(
    conn: &mut AsyncPgConnection,
    range: ReportRange,
    top: i64,
) -> Result<SalesReport> {
    check_top(top)?;
    read_in_snapshot(conn, range, Utc::now(), |conn, src| {
        Box::pin(async move {
            let statuses = status_rows(conn, src).await?;
            Ok(SalesReport {
                from: range.from,
                to: range.to,
                totals: totals_of(&statuses, active_customers(conn, src).await?),
                orders_by_status: by_status_of(&statuses),
                top_products: top_in(conn, src, top).await?,
                daily: daily_in(conn, range, src).await?,
            })
        })
    })
    .await
}

/// Figures read from the period's sources inside the report's snapshot.
type Figures<'c, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'c>>;

/// Builds the missing rollups, then reads `figures` in one [`snapshot`], from the sources
/// as that snapshot sees them. Call it outside a transaction.
async fn in_snapshot<T>(
    conn: &mut AsyncPgConnection,
    range: ReportRange,
    figures: impl for<'c> FnOnce(&'c mut AsyncPgConnection, &'c Sources) -> Figures<'c, T> + Send,
) -> Result<T> {
    let now = Utc::now();
    rollup::ensure(conn, range, now).await?;
    read_in_snapshot(conn, range, now, figures).await
}

/// Reads `figures` in one [`snapshot`] from the period's sources as of `now`, as the
/// rollups stand (nothing is written).
async fn read_in_snapshot<T>(
    conn: &mut AsyncPgConnection,
    range: ReportRange,
    now: DateTime<Utc>,
    figures: impl for<'c> FnOnce(&'c mut AsyncPgConnection, &'c Sources) -> Figures<'c, T> + Send,
) -> Result<T> {
    snapshot(conn)
        .run(async |conn| {
            let src = rollup::sources(conn, range, now).await?;
            figures(conn, &src).await
        })
        .await
}

/// A read-only repeatable-read transaction: every statement in it, the look-up of which
/// days are rolled up included, sees the same committed orders and rollups (and being
/// read-only it never fails to serialize).
fn snapshot(
    conn: &mut AsyncPgConnection,
) -> diesel_async::pg::TransactionBuilder<'_, AsyncPgConnection> {
    conn.build_transaction().read_only().repeatable_read()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(products: &[(i64, i64, i64, i64)]) -> Vec<u8> {
        products
            .iter()
            .flat_map(|&(id, units, cents, last)| {
                [id, units, cents, last]
                    .into_iter()
                    .flat_map(i64::to_be_bytes)
            })
            .collect()
    }

    #[test]
    fn packs_sum_per_product_keeping_the_latest_order() {
        let mut sold = HashMap::new();
        add_pack(&mut sold, &packed(&[(7, 2, 300, 11), (9, 1, 50, 40)]));
        add_pack(&mut sold, &packed(&[(7, 3, 1_000, 5)]));
        let want = Sold {
            units: 5,
            cents: 1_300,
            last_order_id: 11,
        };
        assert_eq!(sold[&7], want);
        assert_eq!(sold[&9].units, 1);
    }

    #[test]
    fn best_sellers_rank_by_units_then_revenue_then_lowest_id() {
        let sold = |units, cents| Sold {
            units,
            cents,
            last_order_id: 1,
        };
        let all = HashMap::from([
            (4, sold(5, 100)),
            (3, sold(5, 100)),
            (2, sold(5, 900)),
            (1, sold(1, 5_000)),
            (5, sold(9, 1)),
        ]);
        let ids: Vec<i64> = best_sellers(all.clone(), 4).iter().map(|b| b.0).collect();
        assert_eq!(ids, [5, 2, 3, 4]);
        assert_eq!(best_sellers(all, 10).len(), 5);
    }
}
