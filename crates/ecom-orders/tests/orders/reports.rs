//! The sales report queries against hand-computed figures of a fixture.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::sql_types::{BigInt, Integer, Numeric, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use ecom_core::Money;
use ecom_orders::{DailySales, OrderStatus, OrdersError, ReportRange, StatusCounts, TopProduct};
use ecom_testkit::TestDb;

use crate::support::money;

#[derive(diesel::QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Inserts an order as placed at `at`, with `(product_id, name, unit price, quantity)` lines.
async fn placed(
    conn: &mut AsyncPgConnection,
    user: i64,
    status: OrderStatus,
    at: &str,
    lines: &[(i64, &str, &str, i32)],
) -> i64 {
    let at: DateTime<Utc> = at.parse().expect("timestamp");
    let total = lines.iter().fold(Money::ZERO, |sum, (_, _, price, q)| {
        sum.plus(money(price).times(i64::from(*q)).expect("line"))
            .expect("total")
    });
    let order: Id = diesel::sql_query(
        "INSERT INTO orders (user_id, status, total_price, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $4) RETURNING id",
    )
    .bind::<BigInt, _>(user)
    .bind::<Text, _>(status.as_str())
    .bind::<Numeric, _>(total)
    .bind::<Timestamptz, _>(at)
    .get_result(conn)
    .await
    .expect("order");
    for (product_id, name, price, quantity) in lines {
        let price = money(price);
        diesel::sql_query(
            "INSERT INTO order_lines \
             (order_id, product_id, variant_id, product_name, unit_price, quantity, line_total) \
             VALUES ($1, $2, $2, $3, $4, $5, $6)",
        )
        .bind::<BigInt, _>(order.id)
        .bind::<BigInt, _>(*product_id)
        .bind::<Text, _>(*name)
        .bind::<Numeric, _>(price)
        .bind::<Integer, _>(*quantity)
        .bind::<Numeric, _>(price.times(i64::from(*quantity)).expect("line total"))
        .execute(conn)
        .await
        .expect("line");
    }
    order.id
}

fn day(s: &str) -> NaiveDate {
    s.parse().expect("date")
}

fn range(from: &str, to: &str) -> ReportRange {
    ReportRange::new(day(from), day(to)).expect("valid range")
}

fn top_row(product_id: i64, name: &str, units_sold: i64, revenue: &str) -> TopProduct {
    TopProduct {
        product_id,
        name: name.into(),
        units_sold,
        revenue: money(revenue),
    }
}

fn day_row(date: &str, orders: i64, revenue: &str) -> DailySales {
    DailySales {
        date: day(date),
        orders,
        revenue: money(revenue),
    }
}

const ALPHA: i64 = 501;
const BETA: i64 = 502;
const GAMMA: i64 = 503;

/// A placed order of [`fixture`]: user, status, when, lines (product, name, price, quantity).
type Placed = (
    i64,
    OrderStatus,
    &'static str,
    &'static [(i64, &'static str, &'static str, i32)],
);

/// Orders over several days and statuses, the last two just outside April 1st..3rd (by
/// one second either way).
#[rustfmt::skip]
const FIXTURE: &[Placed] = {
    use OrderStatus::*;
    &[
        (10, Pending, "2026-04-01T08:00:00Z", &[(ALPHA, "Alpha", "10.00", 2)]),
        (11, Paid, "2026-04-01T23:59:59Z", &[(BETA, "Beta", "5.50", 1), (ALPHA, "Alpha", "10.00", 1)]),
        (10, Cancelled, "2026-04-01T12:00:00Z", &[(GAMMA, "Gamma", "100.00", 5)]),
        (16, Cancelled, "2026-04-02T09:00:00Z", &[(ALPHA, "Alpha", "10.00", 3)]),
        (12, Delivered, "2026-04-03T00:00:00Z", &[(GAMMA, "Gamma", "100.00", 1), (BETA, "Beta", "5.50", 3)]),
        (13, Shipped, "2026-04-03T10:00:00Z", &[(BETA, "Beta Renamed", "6.00", 2)]),
        (14, Paid, "2026-03-31T23:59:59Z", &[(ALPHA, "Alpha", "10.00", 50)]),
        (15, Paid, "2026-04-04T00:00:00Z", &[(ALPHA, "Alpha", "10.00", 50)]),
    ]
};

/// A database holding [`FIXTURE`] and a connection to it: how the report tests open.
async fn fixture() -> (TestDb, AsyncPgConnection) {
    let (db, mut conn) = TestDb::connected().await;
    for &(user, status, at, lines) in FIXTURE {
        placed(&mut conn, user, status, at, lines).await;
    }
    (db, conn)
}

#[actix_web::test]
async fn report_figures_match_hand_computed_sums() {
    let (_db, mut conn) = fixture().await;
    let april = range("2026-04-01", "2026-04-03");

    // Not cancelled in the period: 20.00 + 15.50 + 116.50 + 12.00 = 164.00 over 4 orders.
    let totals = ecom_orders::sales_totals(&mut conn, april)
        .await
        .expect("totals");
    assert_eq!(totals.total_orders, 4);
    assert_eq!(totals.total_revenue, money("164.00"));
    assert_eq!(totals.average_order_value, money("41.00"));
    // Users 10, 11, 12, 13 and 16 (whose only order was cancelled) ordered.
    assert_eq!(totals.active_customers, 5);

    let by_status = ecom_orders::orders_by_status(&mut conn, april)
        .await
        .expect("by status");
    assert_eq!(
        by_status,
        StatusCounts {
            pending: 1,
            paid: 1,
            shipped: 1,
            delivered: 1,
            cancelled: 2,
            refunded: 0,
        }
    );

    // Beta: 1 + 3 + 2 units, 5.50 + 16.50 + 12.00; Alpha: 2 + 1 units (the cancelled 3 left
    // out); Gamma: 1 unit (the cancelled 5 left out).
    let top = ecom_orders::top_products(&mut conn, april, 5)
        .await
        .expect("top");
    assert_eq!(
        top,
        vec![
            top_row(BETA, "Beta Renamed", 6, "34.00"),
            top_row(ALPHA, "Alpha", 3, "30.00"),
            top_row(GAMMA, "Gamma", 1, "100.00"),
        ]
    );
    let top2 = ecom_orders::top_products(&mut conn, april, 2)
        .await
        .expect("top 2");
    assert_eq!(
        top2.iter().map(|t| t.product_id).collect::<Vec<_>>(),
        vec![BETA, ALPHA]
    );

    // Every day present; April 2nd had only a cancelled order.
    let daily = ecom_orders::daily_sales(&mut conn, april)
        .await
        .expect("daily");
    assert_eq!(
        daily,
        vec![
            day_row("2026-04-01", 2, "35.50"),
            day_row("2026-04-02", 0, "0.00"),
            day_row("2026-04-03", 2, "128.50"),
        ]
    );
    assert_eq!(
        daily.iter().map(|d| d.orders).sum::<i64>(),
        totals.total_orders
    );

    // One consistent snapshot of everything.
    let report = ecom_orders::sales_report(&mut conn, april, 5)
        .await
        .expect("report");
    assert_eq!(report.totals, totals);
    assert_eq!(report.orders_by_status, by_status);
    assert_eq!(report.top_products, top);
    assert_eq!(report.daily, daily);
    assert_eq!(
        (report.from, report.to),
        (day("2026-04-01"), day("2026-04-03"))
    );
}

#[actix_web::test]
async fn quiet_periods_are_zero_filled_and_bounds_are_exact() {
    let (_db, mut conn) = fixture().await;

    let quiet = range("2026-04-02", "2026-04-02");
    let totals = ecom_orders::sales_totals(&mut conn, quiet)
        .await
        .expect("totals");
    assert_eq!(totals.total_orders, 0);
    assert_eq!(totals.total_revenue, Money::ZERO);
    assert_eq!(totals.average_order_value, Money::ZERO);
    assert_eq!(totals.active_customers, 1);
    assert!(
        ecom_orders::top_products(&mut conn, quiet, 5)
            .await
            .expect("top")
            .is_empty()
    );
    assert_eq!(
        ecom_orders::daily_sales(&mut conn, quiet)
            .await
            .expect("daily"),
        vec![DailySales {
            date: day("2026-04-02"),
            orders: 0,
            revenue: Money::ZERO
        }]
    );

    // The first day alone: 20.00 and 15.50, average 17.75.
    let first = ecom_orders::sales_totals(&mut conn, range("2026-04-01", "2026-04-01"))
        .await
        .expect("totals");
    assert_eq!(
        (
            first.total_orders,
            first.total_revenue,
            first.average_order_value
        ),
        (2, money("35.50"), money("17.75"))
    );

    // A wider period takes in the orders one second outside April 1st..3rd.
    let wide = ecom_orders::sales_totals(&mut conn, range("2026-03-31", "2026-04-04"))
        .await
        .expect("totals");
    assert_eq!(wide.total_orders, 6);
    assert_eq!(wide.total_revenue, money("1164.00"));
    let days = ecom_orders::daily_sales(&mut conn, range("2026-03-01", "2026-04-30"))
        .await
        .expect("daily");
    assert_eq!(days.len(), 61);
    assert_eq!(days.iter().filter(|d| d.orders > 0).count(), 4);

    let empty = ecom_orders::orders_by_status(&mut conn, range("2025-01-01", "2025-01-31"))
        .await
        .expect("by status");
    assert_eq!(empty, StatusCounts::default());
}

#[actix_web::test]
async fn bad_periods_and_limits_are_refused() {
    assert!(matches!(
        ReportRange::new(day("2026-04-02"), day("2026-04-01")),
        Err(OrdersError::Invalid(_))
    ));
    // MAX_REPORT_DAYS: three years with their leap day, and not a day more.
    assert!(ReportRange::new(day("2024-01-01"), day("2026-12-31")).is_ok());
    assert!(ReportRange::new(day("2024-01-01"), day("2027-01-01")).is_err());
    let (_db, mut conn) = TestDb::connected().await;
    let april = range("2026-04-01", "2026-04-03");
    for limit in [0, 51] {
        assert!(matches!(
            ecom_orders::top_products(&mut conn, april, limit).await,
            Err(OrdersError::Invalid(_))
        ));
    }
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn rolled_days(conn: &mut AsyncPgConnection) -> i64 {
    diesel::sql_query("SELECT count(*) AS n FROM order_rollup_days")
        .get_result::<Count>(conn)
        .await
        .expect("count")
        .n
}

/// Closed days are rolled up by the first report; a status change of an order of such
/// a day drops that day's rollup so the next report sees the change; today stays live.
#[actix_web::test]
async fn rollups_are_built_once_and_dropped_by_status_changes() {
    let (_db, mut conn) = TestDb::connected().await;
    let old = placed(
        &mut conn,
        1,
        OrderStatus::Paid,
        "2026-05-10T08:00:00Z",
        &[(7, "Kite", "10.00", 3)],
    )
    .await;
    placed(
        &mut conn,
        2,
        OrderStatus::Paid,
        "2026-05-11T08:00:00Z",
        &[(7, "Kite", "10.00", 1)],
    )
    .await;
    let may = range("2026-05-10", "2026-05-11");

    let before = ecom_orders::sales_report(&mut conn, may, 5)
        .await
        .expect("report");
    assert_eq!(before.totals.total_revenue, money("40.00"));
    assert_eq!(
        rolled_days(&mut conn).await,
        2,
        "both closed days rolled up"
    );
    // Built once: a second report adds nothing and reads the same figures.
    assert_eq!(
        ecom_orders::sales_report(&mut conn, may, 5)
            .await
            .expect("report"),
        before
    );
    assert_eq!(rolled_days(&mut conn).await, 2);

    assert_eq!(
        (
            before.orders_by_status.paid,
            before.orders_by_status.shipped
        ),
        (2, 0)
    );
    ecom_orders::change_status(
        &mut conn,
        old,
        OrderStatus::Shipped,
        99,
        &ecom_orders::NoPayments,
    )
    .await
    .expect("ship");
    assert_eq!(
        rolled_days(&mut conn).await,
        1,
        "the changed order's day is dropped"
    );
    let after = ecom_orders::sales_report(&mut conn, may, 5)
        .await
        .expect("report");
    assert_eq!(
        (after.orders_by_status.paid, after.orders_by_status.shipped),
        (1, 1)
    );
    assert_eq!(after.totals.total_revenue, money("40.00"));
    assert_eq!(rolled_days(&mut conn).await, 2, "rebuilt");

    // Today is read live, never rolled up.
    let today = Utc::now().date_naive();
    placed(
        &mut conn,
        3,
        OrderStatus::Pending,
        &Utc::now().to_rfc3339(),
        &[(8, "Yo-yo", "2.50", 2)],
    )
    .await;
    let live = ecom_orders::sales_report(
        &mut conn,
        ReportRange {
            from: today,
            to: today,
        },
        5,
    )
    .await
    .expect("report");
    assert_eq!(live.totals.total_revenue, money("5.00"));
    assert_eq!(rolled_days(&mut conn).await, 2);
}
