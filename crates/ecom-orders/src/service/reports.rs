//! The order figures of the admin's sales report. Each is one set-based statement over
//! the `created_at` index of the period (no per-order loops); days are UTC.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Date, Numeric, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use ecom_core::Money;

use super::Result;
use super::queries::{day_end, day_start};
use crate::error::OrdersError;
use crate::model::{
    DailySales, OrderStatus, ReportRange, SalesReport, SalesTotals, StatusCounts, TopProduct,
};

/// Longest period a report covers, in days (two years, leap day included).
pub const MAX_REPORT_DAYS: i64 = 731;
/// Most products a top-products list may ask for.
pub const MAX_TOP_PRODUCTS: i64 = 100;

impl ReportRange {
    /// UTC days `from..=to`; `to` before `from` or a period over [`MAX_REPORT_DAYS`] is a
    /// 422 naming `to`.
    pub fn new(from: NaiveDate, to: NaiveDate) -> std::result::Result<Self, OrdersError> {
        if to < from {
            return Err(OrdersError::invalid("to", "must not be before `from`"));
        }
        if (to - from).num_days() + 1 > MAX_REPORT_DAYS {
            return Err(OrdersError::invalid(
                "to",
                format!("the period must not exceed {MAX_REPORT_DAYS} days"),
            ));
        }
        Ok(Self { from, to })
    }

    fn start(&self) -> DateTime<Utc> {
        day_start(self.from)
    }

    fn end(&self) -> DateTime<Utc> {
        day_end(self.to)
    }
}

#[derive(QueryableByName)]
struct TotalsRow {
    #[diesel(sql_type = BigInt)]
    total_orders: i64,
    #[diesel(sql_type = Numeric)]
    total_revenue: Money,
    #[diesel(sql_type = Numeric)]
    average_order_value: Money,
    #[diesel(sql_type = BigInt)]
    active_customers: i64,
}

/// Orders, revenue and average order value of the period (cancelled orders left out), and
/// the distinct customers who placed an order in it: one statement.
pub async fn sales_totals(conn: &mut AsyncPgConnection, range: ReportRange) -> Result<SalesTotals> {
    let row: TotalsRow = diesel::sql_query(
        "SELECT count(*) FILTER (WHERE status <> 'cancelled') AS total_orders, \
                coalesce(sum(total_price) FILTER (WHERE status <> 'cancelled'), 0) AS total_revenue, \
                coalesce(round(avg(total_price) FILTER (WHERE status <> 'cancelled'), 2), 0) \
                    AS average_order_value, \
                count(DISTINCT user_id) AS active_customers \
         FROM orders WHERE created_at >= $1 AND created_at < $2",
    )
    .bind::<Timestamptz, _>(range.start())
    .bind::<Timestamptz, _>(range.end())
    .get_result(conn)
    .await?;
    Ok(SalesTotals {
        total_orders: row.total_orders,
        total_revenue: row.total_revenue,
        average_order_value: row.average_order_value,
        active_customers: row.active_customers,
    })
}

#[derive(QueryableByName)]
struct StatusRow {
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = BigInt)]
    orders: i64,
}

/// Orders placed in the period per status, every status present: one statement.
pub async fn orders_by_status(
    conn: &mut AsyncPgConnection,
    range: ReportRange,
) -> Result<StatusCounts> {
    let statuses: Vec<&str> = OrderStatus::ALL.iter().map(OrderStatus::as_str).collect();
    let rows: Vec<StatusRow> = diesel::sql_query(
        "SELECT s.status, coalesce(c.orders, 0) AS orders \
         FROM unnest($3::text[]) AS s(status) \
         LEFT JOIN (SELECT status, count(*) AS orders FROM orders \
                    WHERE created_at >= $1 AND created_at < $2 GROUP BY status) AS c \
           ON c.status = s.status",
    )
    .bind::<Timestamptz, _>(range.start())
    .bind::<Timestamptz, _>(range.end())
    .bind::<Array<Text>, _>(statuses)
    .load(conn)
    .await?;
    let mut counts = StatusCounts::default();
    for row in rows {
        if let Ok(status) = row.status.parse::<OrderStatus>() {
            counts.set(status, row.orders);
        }
    }
    Ok(counts)
}

#[derive(QueryableByName)]
struct TopRow {
    #[diesel(sql_type = BigInt)]
    product_id: i64,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = BigInt)]
    units_sold: i64,
    #[diesel(sql_type = Numeric)]
    revenue: Money,
}

/// The `limit` (1..=100) best-selling products of the period by units sold (then revenue,
/// then id), cancelled orders left out: one statement.
pub async fn top_products(
    conn: &mut AsyncPgConnection,
    range: ReportRange,
    limit: i64,
) -> Result<Vec<TopProduct>> {
    if !(1..=MAX_TOP_PRODUCTS).contains(&limit) {
        return Err(OrdersError::invalid(
            "top",
            format!("must be between 1 and {MAX_TOP_PRODUCTS}"),
        ));
    }
    let rows: Vec<TopRow> = diesel::sql_query(
        "SELECT l.product_id, \
                (array_agg(l.product_name ORDER BY l.order_id DESC))[1] AS name, \
                sum(l.quantity)::bigint AS units_sold, \
                sum(l.line_total) AS revenue \
         FROM orders o JOIN order_lines l ON l.order_id = o.id \
         WHERE o.created_at >= $1 AND o.created_at < $2 AND o.status <> 'cancelled' \
         GROUP BY l.product_id \
         ORDER BY units_sold DESC, revenue DESC, l.product_id \
         LIMIT $3",
    )
    .bind::<Timestamptz, _>(range.start())
    .bind::<Timestamptz, _>(range.end())
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| TopProduct {
            product_id: r.product_id,
            name: r.name,
            units_sold: r.units_sold,
            revenue: r.revenue,
        })
        .collect())
}

#[derive(QueryableByName)]
struct DayRow {
    #[diesel(sql_type = Date)]
    date: NaiveDate,
    #[diesel(sql_type = BigInt)]
    orders: i64,
    #[diesel(sql_type = Numeric)]
    revenue: Money,
}

/// Every UTC day of the period with its orders and revenue (cancelled orders left out),
/// days without orders included as zero: one statement.
pub async fn daily_sales(
    conn: &mut AsyncPgConnection,
    range: ReportRange,
) -> Result<Vec<DailySales>> {
    let rows: Vec<DayRow> = diesel::sql_query(
        "WITH per_day AS ( \
             SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS orders, \
                    sum(total_price) AS revenue \
             FROM orders \
             WHERE created_at >= $1 AND created_at < $2 AND status <> 'cancelled' \
             GROUP BY 1) \
         SELECT d.day::date AS date, coalesce(p.orders, 0) AS orders, \
                coalesce(p.revenue, 0) AS revenue \
         FROM generate_series($3::date::timestamp, $4::date::timestamp, interval '1 day') AS d(day) \
         LEFT JOIN per_day p ON p.day = d.day::date \
         ORDER BY d.day",
    )
    .bind::<Timestamptz, _>(range.start())
    .bind::<Timestamptz, _>(range.end())
    .bind::<Date, _>(range.from)
    .bind::<Date, _>(range.to)
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| DailySales {
            date: r.date,
            orders: r.orders,
            revenue: r.revenue,
        })
        .collect())
}

/// Every order figure of the sales report, read from one consistent snapshot (a
/// read-only repeatable-read transaction; call it outside a transaction).
pub async fn sales_report(
    conn: &mut AsyncPgConnection,
    range: ReportRange,
    top: i64,
) -> Result<SalesReport> {
    conn.build_transaction()
        .read_only()
        .repeatable_read()
        .run(async |conn| {
            Ok(SalesReport {
                from: range.from,
                to: range.to,
                totals: sales_totals(conn, range).await?,
                orders_by_status: orders_by_status(conn, range).await?,
                top_products: top_products(conn, range, top).await?,
                daily: daily_sales(conn, range).await?,
            })
        })
        .await
}
