//! The sales report while orders change status and other reports build rollups: every
//! report is one true picture of some instant, whatever commits around it.

use std::cell::Cell;

use chrono::{Duration, NaiveDate, Utc};
use diesel::sql_types::{BigInt, Date, Integer, Numeric, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use ecom_core::Money;
use ecom_orders::{OrderStatus, ReportRange, SalesReport};
use futures_util::future::join_all;

use crate::support::{count, count_rows, stocked};
use ecom_testkit::TestDb;

/// Closed days with orders, and orders per day.
const DAYS: i64 = 6;
const PER_DAY: i64 = 30;
/// Of each day's orders, the first `CANCELLED` are cancelled; the others shipped, then
/// delivered.
const CANCELLED: i64 = 12;

/// The first day with orders: well closed, whatever the hour.
fn first_day() -> NaiveDate {
    Utc::now().date_naive() - Duration::days(DAYS + 5)
}

/// Every order of day `d` costs `price(d)`, so a day's revenue must be exactly its
/// order count times that price: a torn read of a day shows up as a mismatch.
fn price(d: i64) -> Money {
    Money::from_cents(1_000 + 100 * d).expect("price")
}

fn revenue(d: i64, orders: i64) -> Money {
    price(d).times(orders).expect("revenue")
}

/// The period of the report: the order days plus an empty day either side.
fn period() -> ReportRange {
    let first = first_day();
    ReportRange::new(first - Duration::days(1), first + Duration::days(DAYS)).expect("range")
}

#[derive(diesel::QueryableByName)]
struct Placed {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Integer)]
    d: i32,
    #[diesel(sql_type = BigInt)]
    k: i64,
}

/// `PER_DAY` paid orders of one unit of `product` on each of the `DAYS` days from
/// `first`, a minute apart; returns `(order id, day index, index within the day)`.
async fn place_paid_orders(
    conn: &mut AsyncPgConnection,
    first: NaiveDate,
    product: i64,
) -> Vec<(i64, i64, i64)> {
    diesel::sql_query(
        "INSERT INTO orders (user_id, status, total_price, created_at, updated_at) \
         SELECT 1000 + k, 'paid', (1000 + 100 * d) / 100.0, t, t \
         FROM generate_series(0, $2 - 1) AS d, generate_series(0, $3 - 1) AS k, \
              LATERAL (SELECT ($1::date + d)::timestamp AT TIME ZONE 'UTC' \
                              + (k + 1) * interval '1 minute' AS t) AS at",
    )
    .bind::<Date, _>(first)
    .bind::<Integer, _>(DAYS as i32)
    .bind::<Integer, _>(PER_DAY as i32)
    .execute(conn)
    .await
    .expect("orders");
    diesel::sql_query(
        "INSERT INTO order_lines \
         (order_id, product_id, variant_id, product_name, unit_price, quantity, line_total) \
         SELECT id, $1, (SELECT v.id FROM product_variants v WHERE v.product_id = $1), \
                'Kite', total_price, 1, total_price FROM orders",
    )
    .bind::<BigInt, _>(product)
    .execute(conn)
    .await
    .expect("lines");
    let placed: Vec<Placed> = diesel::sql_query(
        "SELECT id, ((created_at AT TIME ZONE 'UTC')::date - $1)::int AS d, \
                row_number() OVER (PARTITION BY (created_at AT TIME ZONE 'UTC')::date ORDER BY created_at) - 1 AS k \
         FROM orders ORDER BY id",
    )
    .bind::<Date, _>(first)
    .load(conn)
    .await
    .expect("placed orders");
    placed
        .into_iter()
        .map(|p| (p.id, i64::from(p.d), p.k))
        .collect()
}

/// Checks one report against what any instant of the run could show. Every order is
/// either still counted (paid, shipped, delivered) or cancelled, and cancelling is one
/// way, so for each order day: `PER_DAY - CANCELLED <= orders <= PER_DAY` and revenue is
/// exactly `orders × price`; no day is ever below the orders that are never cancelled.
/// Across the report: every order appears in exactly one status, the counted ones are
/// the days' sum, and the one product sold them all. `previous` is the same reporter's
/// last report (a later snapshot has at least the cancels of an earlier one).
fn check(report: &SalesReport, previous: Option<&SalesReport>) {
    let first = first_day();
    assert_eq!(report.daily.len() as i64, DAYS + 2, "every day present");
    let mut orders = 0;
    let mut total = Money::ZERO;
    for day in &report.daily {
        let d = (day.date - first).num_days();
        if !(0..DAYS).contains(&d) {
            assert_eq!((day.orders, day.revenue), (0, Money::ZERO), "{day:?}");
            continue;
        }
        assert!(
            (PER_DAY - CANCELLED..=PER_DAY).contains(&day.orders),
            "{} shows {} orders, never fewer than {} were uncancelled: {report:?}",
            day.date,
            day.orders,
            PER_DAY - CANCELLED
        );
        assert_eq!(day.revenue, revenue(d, day.orders), "{day:?}");
        orders += day.orders;
        total = total.plus(day.revenue).expect("sum");
    }
    let by_status = &report.orders_by_status;
    let all = by_status.pending
        + by_status.paid
        + by_status.shipped
        + by_status.delivered
        + by_status.cancelled;
    assert_eq!(
        all,
        DAYS * PER_DAY,
        "every order in one status: {by_status:?}"
    );
    assert_eq!(by_status.cancelled, DAYS * PER_DAY - orders, "{report:?}");
    assert_eq!(report.totals.total_orders, orders, "{report:?}");
    assert_eq!(report.totals.total_revenue, total, "{report:?}");
    assert_eq!(report.totals.active_customers, PER_DAY);
    assert_eq!(report.top_products.len(), 1, "{report:?}");
    assert_eq!(report.top_products[0].units_sold, orders, "{report:?}");
    assert_eq!(report.top_products[0].revenue, total, "{report:?}");
    if let Some(previous) = previous {
        assert!(
            by_status.cancelled >= previous.orders_by_status.cancelled
                && by_status.delivered >= previous.orders_by_status.delivered,
            "a later report shows fewer changes: {previous:?} then {report:?}"
        );
    }
}

/// One worker's share of the status changes (every `workers`-th job, the jobs sweeping
/// across the days), through the real lifecycle service.
async fn change_statuses(
    db: &TestDb,
    jobs: &[(i64, bool)],
    worker: usize,
    workers: usize,
) -> usize {
    let mut conn = db.connect().await;
    let mut changes = 0;
    for (order, cancel) in jobs.iter().skip(worker).step_by(workers) {
        let path: &[OrderStatus] = if *cancel {
            &[OrderStatus::Cancelled]
        } else {
            &[OrderStatus::Shipped, OrderStatus::Delivered]
        };
        for to in path {
            ecom_orders::change_status(&mut conn, *order, *to, 99, &ecom_orders::NoPayments)
                .await
                .expect("status change");
            changes += 1;
        }
    }
    changes
}

/// Reports in a loop until the workers are done (and once more after), each checked.
async fn report_until(db: &TestDb, done: &Cell<usize>, workers: usize) -> usize {
    let mut conn = db.connect().await;
    let mut previous: Option<SalesReport> = None;
    let mut reports = 0;
    loop {
        let finished = done.get() == workers;
        let report = ecom_orders::sales_report(&mut conn, period(), 5)
            .await
            .expect("report");
        check(&report, previous.as_ref());
        previous = Some(report);
        reports += 1;
        if finished {
            return reports;
        }
    }
}

#[derive(diesel::QueryableByName)]
struct DayTruth {
    #[diesel(sql_type = Date)]
    day: NaiveDate,
    #[diesel(sql_type = BigInt)]
    orders: i64,
    #[diesel(sql_type = Numeric)]
    revenue: Money,
}

/// Cancels, shipments and deliveries commit while reports run: no report ever shows a
/// day below its never-cancelled orders (the old code showed a day whose rollup a status
/// change dropped between rebuilding and reading as zero), and once the changes stop the
/// report equals the figures computed from the orders themselves.
#[actix_web::test]
async fn reports_racing_status_changes_never_drop_a_day() {
    const WORKERS: usize = 3;
    const REPORTERS: usize = 2;
    let (db, mut conn, [kite]) = stocked!(("Kite", "10.00", 0)).await;
    let placed = place_paid_orders(&mut conn, first_day(), kite).await;
    assert_eq!(placed.len() as i64, DAYS * PER_DAY);

    // Before anything changes: every day whole, and its rollup built.
    let before = ecom_orders::sales_report(&mut conn, period(), 5)
        .await
        .expect("report");
    check(&before, None);
    assert_eq!(before.totals.total_orders, DAYS * PER_DAY);

    // Jobs sweep the days in turn, so every day's rollup keeps being dropped.
    let mut jobs: Vec<(i64, i64, i64)> = placed;
    jobs.sort_by_key(|&(id, d, k)| (k, d, id));
    let jobs: Vec<(i64, bool)> = jobs
        .into_iter()
        .map(|(id, _, k)| (id, k < CANCELLED))
        .collect();

    let done = Cell::new(0);
    let workers = join_all((0..WORKERS).map(|w| {
        let (db, jobs, done) = (&db, &jobs, &done);
        async move {
            let changes = change_statuses(db, jobs, w, WORKERS).await;
            done.set(done.get() + 1);
            changes
        }
    }));
    let reporters = join_all((0..REPORTERS).map(|_| report_until(&db, &done, WORKERS)));
    let (changes, reports) = futures_util::future::join(workers, reporters).await;
    let changes: usize = changes.iter().sum();
    assert_eq!(
        changes as i64,
        DAYS * (CANCELLED + 2 * (PER_DAY - CANCELLED))
    );
    assert!(reports.iter().all(|&n| n >= 1));

    // Settled: the report equals a from-scratch computation over the orders.
    let after = ecom_orders::sales_report(&mut conn, period(), 5)
        .await
        .expect("report");
    check(&after, None);
    let truth: Vec<DayTruth> = diesel::sql_query(
        "SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(*) AS orders, \
                sum(total_price) AS revenue \
         FROM orders WHERE status <> 'cancelled' AND created_at >= $1 GROUP BY 1 ORDER BY 1",
    )
    .bind::<Timestamptz, _>(ecom_core::calendar::utc_day_start(period().from))
    .load(&mut conn)
    .await
    .expect("truth");
    let shown: Vec<(NaiveDate, i64, Money)> = after
        .daily
        .iter()
        .filter(|d| d.orders > 0)
        .map(|d| (d.date, d.orders, d.revenue))
        .collect();
    let truth: Vec<(NaiveDate, i64, Money)> = truth
        .into_iter()
        .map(|t| (t.day, t.orders, t.revenue))
        .collect();
    assert_eq!(shown, truth);
    for (d, day) in after.daily.iter().skip(1).take(DAYS as usize).enumerate() {
        let d = d as i64;
        assert_eq!(
            (day.orders, day.revenue),
            (PER_DAY - CANCELLED, revenue(d, PER_DAY - CANCELLED))
        );
    }
    assert_eq!(after.orders_by_status.cancelled, DAYS * CANCELLED);
    assert_eq!(
        after.orders_by_status.delivered,
        DAYS * (PER_DAY - CANCELLED)
    );
    // And the closed days are served from rollups again.
    assert_eq!(count_rows(&mut conn, "order_rollup_days").await, DAYS + 2);
}

/// Many reports (as from several replicas) building the same missing rollups at once,
/// over overlapping periods that cross the builder's month chunks: none fails, none
/// doubles a day, and all agree with the orders.
#[actix_web::test]
async fn concurrent_reports_build_each_rollup_once() {
    let (db, mut conn, [kite]) = stocked!(("Kite", "10.00", 0)).await;
    place_paid_orders(&mut conn, first_day(), kite).await;
    // Forty more days of one order each, reaching back over a chunk boundary.
    diesel::sql_query(
        "INSERT INTO orders (user_id, status, total_price, created_at, updated_at) \
         SELECT 5000 + g, 'delivered', 1.00, t, t FROM generate_series(1, 40) AS g, \
              LATERAL (SELECT ($1::date - g)::timestamp AT TIME ZONE 'UTC' \
                              + interval '12 hours' AS t) AS at",
    )
    .bind::<Date, _>(first_day())
    .execute(&mut conn)
    .await
    .expect("older orders");
    let to = period().to;
    let ranges: Vec<ReportRange> = (0..8)
        .map(|i| ReportRange::new(to - Duration::days(45 + 3 * i), to).expect("range"))
        .collect();
    let reports = join_all(ranges.iter().map(|&range| {
        let db = &db;
        async move {
            let mut conn = db.connect().await;
            ecom_orders::sales_report(&mut conn, range, 5).await
        }
    }))
    .await;
    for (range, report) in ranges.iter().zip(&reports) {
        let report = report.as_ref().expect("every concurrent report succeeds");
        let older = (first_day() - range.from).num_days().min(40);
        assert_eq!(
            report.totals.total_orders,
            DAYS * PER_DAY + older,
            "{range:?}"
        );
    }
    let widest = (to - ranges[7].from).num_days() + 1;
    assert_eq!(
        count_rows(&mut conn, "order_rollup_days").await,
        widest,
        "one rollup per day"
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT coalesce(sum(orders), 0)::bigint AS n FROM order_rollup_status"
        )
        .await,
        DAYS * PER_DAY + 40,
        "no order counted twice"
    );
}
