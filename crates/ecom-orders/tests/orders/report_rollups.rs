//! The report read through the daily, span (month and week) and customer rollups equals the same
//! figures computed straight from the orders, over periods that cover whole months,
//! partial months, today's open day and days with cancelled orders, before and after
//! the rollups are built and after status changes drop some of them.

use chrono::{Datelike, Duration, NaiveDate, Utc};
use diesel::sql_types::{BigInt, Date, Numeric, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use ecom_core::Money;
use ecom_orders::{DailySales, OrderStatus, ReportRange, SalesReport, StatusCounts, TopProduct};
use ecom_testkit::TestDb;

#[derive(diesel::QueryableByName)]
struct StatusRow {
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = BigInt)]
    orders: i64,
    #[diesel(sql_type = Numeric)]
    revenue: Money,
}

#[derive(diesel::QueryableByName)]
struct N {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(diesel::QueryableByName)]
struct Top {
    #[diesel(sql_type = BigInt)]
    product_id: i64,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = BigInt)]
    units_sold: i64,
    #[diesel(sql_type = Numeric)]
    revenue: Money,
}

#[derive(diesel::QueryableByName)]
struct Day {
    #[diesel(sql_type = Date)]
    date: NaiveDate,
    #[diesel(sql_type = BigInt)]
    orders: i64,
    #[diesel(sql_type = Numeric)]
    revenue: Money,
}

/// The report computed from the orders alone, by its definition.
async fn from_orders(conn: &mut AsyncPgConnection, range: ReportRange, top: i64) -> SalesReport {
    let (from, to) = (range.from, range.to);
    let window = "o.created_at >= $1::date::timestamp AT TIME ZONE 'UTC' \
                  AND o.created_at < ($2::date + 1)::timestamp AT TIME ZONE 'UTC'";
    let rows: Vec<StatusRow> = diesel::sql_query(format!(
        "SELECT status, count(*) AS orders, sum(total_price) AS revenue FROM orders o \
         WHERE {window} GROUP BY status"
    ))
    .bind::<Date, _>(from)
    .bind::<Date, _>(to)
    .load(conn)
    .await
    .expect("statuses");
    let mut by_status = StatusCounts::default();
    let (mut orders, mut revenue) = (0, rust_decimal::Decimal::ZERO);
    for row in &rows {
        let status: OrderStatus = row.status.parse().expect("status");
        *match status {
            OrderStatus::Pending => &mut by_status.pending,
            OrderStatus::Paid => &mut by_status.paid,
            OrderStatus::Shipped => &mut by_status.shipped,
            OrderStatus::Delivered => &mut by_status.delivered,
            OrderStatus::Cancelled => &mut by_status.cancelled,
            OrderStatus::Refunded => &mut by_status.refunded,
        } = row.orders;
        if status.is_sale() {
            orders += row.orders;
            revenue += row.revenue.as_decimal();
        }
    }
    let average = if orders == 0 {
        rust_decimal::Decimal::ZERO
    } else {
        (revenue / rust_decimal::Decimal::from(orders))
            .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
    };
    let customers: N = diesel::sql_query(format!(
        "SELECT count(DISTINCT user_id) AS n FROM orders o WHERE {window}"
    ))
    .bind::<Date, _>(from)
    .bind::<Date, _>(to)
    .get_result(conn)
    .await
    .expect("customers");
    let top: Vec<Top> = diesel::sql_query(format!(
        "SELECT l.product_id, \
                (array_agg(l.product_name ORDER BY l.order_id DESC))[1] AS name, \
                sum(l.quantity)::bigint AS units_sold, sum(l.line_total) AS revenue \
         FROM orders o JOIN order_lines l ON l.order_id = o.id \
         WHERE {window} AND o.status <> 'cancelled' GROUP BY l.product_id \
         ORDER BY units_sold DESC, revenue DESC, l.product_id LIMIT $3"
    ))
    .bind::<Date, _>(from)
    .bind::<Date, _>(to)
    .bind::<BigInt, _>(top)
    .load(conn)
    .await
    .expect("top");
    let daily: Vec<Day> = diesel::sql_query(
        "SELECT d::date AS date, count(o.id) AS orders, coalesce(sum(o.total_price), 0) AS revenue \
         FROM generate_series($1::date::timestamp, $2::date::timestamp, interval '1 day') AS d \
         LEFT JOIN orders o ON (o.created_at AT TIME ZONE 'UTC')::date = d::date \
                           AND o.status <> 'cancelled' \
         GROUP BY 1 ORDER BY 1",
    )
    .bind::<Date, _>(from)
    .bind::<Date, _>(to)
    .load(conn)
    .await
    .expect("daily");
    SalesReport {
        from,
        to,
        totals: ecom_orders::SalesTotals {
            total_orders: orders,
            total_revenue: Money::from_db(revenue),
            average_order_value: Money::from_db(average),
            active_customers: customers.n,
        },
        orders_by_status: by_status,
        top_products: top
            .into_iter()
            .map(|t| TopProduct {
                product_id: t.product_id,
                name: t.name,
                units_sold: t.units_sold,
                revenue: t.revenue,
            })
            .collect(),
        daily: daily
            .into_iter()
            .map(|d| DailySales {
                date: d.date,
                orders: d.orders,
                revenue: d.revenue,
            })
            .collect(),
    }
}

/// Orders every few hours over the last 100 days and today, some cancelled, products
/// renamed along the way, a few customers ordering on many days.
async fn load(conn: &mut AsyncPgConnection) {
    diesel::sql_query(
        "WITH o AS ( \
             INSERT INTO orders (user_id, status, total_price, created_at, updated_at) \
             SELECT 1 + (i * 7) % 23, \
                    (ARRAY['pending','paid','shipped','delivered','cancelled'])[1 + (i * 3) % 5], \
                    0, at, at \
             FROM generate_series(0, 799) AS i, \
                  LATERAL (SELECT date_trunc('day', now()) - (i * interval '3 hours') \
                                  + interval '17 minutes' AS at) AS t \
             WHERE at < now() \
             RETURNING id) \
         INSERT INTO order_lines \
         (order_id, product_id, variant_id, product_name, unit_price, quantity, line_total) \
         SELECT o.id, p, p, 'P' || p || CASE WHEN o.id % 5 = 0 THEN ' v2' ELSE '' END, \
                (p * 1.25)::numeric(12,2), 1 + (o.id + p) % 3, (p * 1.25)::numeric(12,2) * (1 + (o.id + p) % 3) \
         FROM o, LATERAL (SELECT DISTINCT 1 + (o.id * k) % 9 AS p FROM generate_series(1, 3) AS k) AS l",
    )
    .execute(conn)
    .await
    .expect("orders");
    diesel::sql_query(
        "UPDATE orders o SET total_price = (SELECT sum(line_total) FROM order_lines WHERE order_id = o.id)",
    )
    .execute(conn)
    .await
    .expect("totals");
}

/// Whether the month starting on `month` has its span rollup.
async fn month_rolled_up(conn: &mut AsyncPgConnection, month: NaiveDate) -> bool {
    let n: N = diesel::sql_query(
        "SELECT count(*) AS n FROM order_rollup_spans \
         WHERE first = $1 AND last = ($1::date + interval '1 month' - interval '1 day')::date",
    )
    .bind::<Date, _>(month)
    .get_result(conn)
    .await
    .expect("month rollup");
    n.n == 1
}

fn month_of(day: NaiveDate) -> NaiveDate {
    day.with_day(1).expect("first of the month")
}

#[actix_web::test]
async fn rolled_up_reports_equal_the_orders_figures() {
    let (db, mut conn) = TestDb::connected().await;
    load(&mut conn).await;
    let today = Utc::now().date_naive();
    let day = Duration::days(1);
    // The last three closed calendar months before the current one: m3, m2, m1.
    let m1 = month_of(month_of(today) - day);
    let m2 = month_of(m1 - day);
    let m3 = month_of(m2 - day);
    let mut periods: Vec<(NaiveDate, NaiveDate)> = [
        (0, 0),
        (1, 1),
        (6, 0),
        (30, 0),
        (45, 3),
        (99, 0),
        (120, 40),
        (365, 0),
        (1095, 0),
        (70, 10),
    ]
    .iter()
    .map(|&(back, until)| (today - Duration::days(back), today - Duration::days(until)))
    .collect();
    periods.extend([
        // Whole months only.
        (m3, m2 - day),
        (m3, m1 - day),
        (m2, month_of(today) - day),
        // Whole months with partial months at both ends, or at one.
        (m3 + Duration::days(9), m1 + Duration::days(4)),
        (m3 + Duration::days(1), m1 - Duration::days(2)),
        (m3 + Duration::days(20), today),
        (m2, today),
        (m2 - day, m1),
        // Inside one month.
        (m2 + Duration::days(3), m2 + Duration::days(17)),
    ]);
    let check = async |conn: &mut AsyncPgConnection, round: &str| {
        for &(from, to) in &periods {
            let range = ReportRange::new(from, to).expect("range");
            for top in [1, 5, 50] {
                let got = ecom_orders::sales_report(conn, range, top)
                    .await
                    .expect("report");
                let want = from_orders(conn, range, top).await;
                assert_eq!(got, want, "{round}: {range:?}, top {top}");
            }
        }
    };
    check(&mut conn, "first reports (building)").await;
    assert!(month_rolled_up(&mut conn, m3).await, "{m3} rolled up");
    assert!(month_rolled_up(&mut conn, m2).await, "{m2} rolled up");
    check(&mut conn, "rolled up").await;

    // Status changes of older orders drop their days and months (cancelling would restock
    // products this fixture has not made; cancelled orders are in it from the start):
    // recent ones, and one of day 11 of month m2.
    let ids: Vec<N> = diesel::sql_query(
        "(SELECT id AS n FROM orders WHERE status = 'paid' AND created_at < now() - interval '2 days' \
          ORDER BY id LIMIT 12) \
         UNION ALL \
         (SELECT id FROM orders WHERE status = 'paid' \
            AND created_at >= ($1::date + 10)::timestamp AT TIME ZONE 'UTC' \
            AND created_at < ($1::date + 11)::timestamp AT TIME ZONE 'UTC' \
          ORDER BY created_at LIMIT 1)",
    )
    .bind::<Date, _>(m2)
    .load(&mut conn)
    .await
    .expect("ids");
    for N { n: id } in ids {
        ecom_orders::change_status(
            &mut conn,
            id,
            OrderStatus::Shipped,
            99,
            &ecom_orders::NoPayments,
        )
        .await
        .expect("status change");
    }
    assert!(
        !month_rolled_up(&mut conn, m2).await,
        "{m2} dropped with its day"
    );
    assert!(month_rolled_up(&mut conn, m3).await, "{m3} untouched");

    // Status changes in flight on two days of m2, the changed day 11 and day 21 (their
    // shared day locks held): neither the changed day nor the month can be rebuilt, so
    // reports read m2 from its other days' rollups and day 11 from the orders.
    let mut other = db.connect().await;
    for held in [m2 + Duration::days(10), m2 + Duration::days(20)] {
        diesel::sql_query("SELECT pg_advisory_lock_shared(29295, $1::date - date '2000-01-01')")
            .bind::<Date, _>(held)
            .execute(&mut other)
            .await
            .expect("day lock");
    }
    check(&mut conn, "month and a day held").await;
    assert!(
        !month_rolled_up(&mut conn, m2).await,
        "{m2} not built while held"
    );
    drop(other);
    check(&mut conn, "after status changes").await;
    assert!(month_rolled_up(&mut conn, m2).await, "{m2} rebuilt");
    check(&mut conn, "rebuilt").await;
}

/// Customers are read in slices of 2,048 ids (a large array in one row would grow a pooled
/// connection's read buffer for good): with thousands of customers in a day, a span and
/// today's live orders, every slice boundary still counts each customer once.
#[actix_web::test]
async fn thousands_of_customers_are_counted_once_across_slices() {
    let (_db, mut conn) = TestDb::connected().await;
    let today = Utc::now().date_naive();
    let m1 = month_of(month_of(today) - Duration::days(1));
    // Day 4 of m1: customers 1..=5000; day 21: 3001..=9000 (2,000 shared with day 4);
    // today: 8001..=12000, 1,000 of them shared with day 21.
    for (day, first, last) in [
        (m1 + Duration::days(3), 1, 5000),
        (m1 + Duration::days(20), 3001, 9000),
        (today, 8001, 12000),
    ] {
        diesel::sql_query(
            "INSERT INTO orders (user_id, status, total_price, created_at, updated_at) \
             SELECT u, 'paid', 10, at, at FROM generate_series($2::int8, $3::int8) AS u, \
                  LATERAL (SELECT LEAST($1::date::timestamp AT TIME ZONE 'UTC' \
                                        + (u % 600) * interval '1 minute', now()) AS at) AS t",
        )
        .bind::<Date, _>(day)
        .bind::<BigInt, _>(first)
        .bind::<BigInt, _>(last)
        .execute(&mut conn)
        .await
        .expect("orders");
    }
    for round in ["building", "rolled up"] {
        for (from, to, customers) in [
            (m1 + Duration::days(3), m1 + Duration::days(3), 5000),
            (m1, m1 + Duration::days(27), 9000),
            (m1, today, 12000),
            (today, today, 4000),
        ] {
            let range = ReportRange::new(from, to).expect("range");
            let totals = ecom_orders::sales_totals(&mut conn, range)
                .await
                .expect("totals");
            assert_eq!(totals.active_customers, customers, "{round}: {from}..={to}");
        }
    }
    assert!(month_rolled_up(&mut conn, m1).await, "{m1} rolled up");
}
