//! Timing of the whole sales report (every statement of one request) on a bench database:
//! `REPORT_BENCH_URL=postgres://…/report_bench cargo test -p ecom-orders --test orders \
//!  report_bench -- --ignored --nocapture` after `ecom migrate`, `ecom seed-demo` and
//! `bench/load_orders.sql` (see `bench/report.sql`). Not part of the normal run.

use std::time::Instant;

use chrono::{Duration, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use ecom_orders::ReportRange;

#[actix_web::test]
#[ignore = "needs REPORT_BENCH_URL: a database loaded with bench/load_orders.sql"]
async fn report_bench() {
    let url = std::env::var("REPORT_BENCH_URL").expect("REPORT_BENCH_URL");
    let mut conn = AsyncPgConnection::establish(&url).await.expect("connect");
    let today = Utc::now().date_naive();
    for days in [30_i64, 365, 1096] {
        let range = ReportRange::new(today - Duration::days(days - 1), today).expect("valid range");
        let mut times = Vec::new();
        for _ in 0..7 {
            let start = Instant::now();
            let report = ecom_orders::sales_report(&mut conn, range, 5)
                .await
                .expect("report");
            times.push(start.elapsed().as_secs_f64() * 1000.0);
            std::hint::black_box(report);
        }
        let first = times[0];
        let mut warm = times[1..].to_vec();
        warm.sort_by(f64::total_cmp);
        println!(
            "{days:>5} days: first {first:.1} ms, warm min {:.1} / median {:.1} / max {:.1} ms",
            warm[0],
            warm[warm.len() / 2],
            warm[warm.len() - 1]
        );
    }
}
