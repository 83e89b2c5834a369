//! Figures for the note (ignored: a measurement, not a check). Run with
//! `cargo test -p ecom-webhooks --test webhooks measure -- --ignored --nocapture`:
//! events per second one replica delivers to a fast local receiver from a backlog, and
//! the delay from an event's commit to its arrival at a steady pace.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ecom_testkit::TestDb;
use ecom_webhooks::api::CreateWebhookRequest;

use crate::support::{
    Receiver, Reply, Tasks, config_for, record, settings_for, start_fan_out, start_worker,
};

const BACKLOG: usize = 5000;
const PACED: usize = 2000;
const PER_COMMIT: usize = 10;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement for the issue's note"]
async fn measure_throughput_and_commit_to_delivery_delay() {
    let db = TestDb::new().await;
    let receiver = Receiver::answering(Reply::OK).await;
    let mut conn = db.connect().await;
    let new = ecom_webhooks::service::check_new_endpoint(
        &CreateWebhookRequest {
            url: receiver.url.clone(),
            events: vec!["*".into()],
            description: None,
        },
        true,
    )
    .await
    .expect("a valid endpoint");
    ecom_webhooks::service::create_endpoint(&mut conn, 1, &new)
        .await
        .expect("endpoint");
    let settings = settings_for(&db, &[]);

    // Throughput: a backlog recorded first, then the consumer and one worker start.
    for _ in 0..BACKLOG / PER_COMMIT {
        record(&db, &["order.created"; PER_COMMIT]).await;
    }
    let mut tasks = Tasks::default();
    let started = Instant::now();
    start_fan_out(&db, &mut tasks);
    start_worker(&db, config_for(&settings), &mut tasks);
    receiver.wait_for(BACKLOG, Duration::from_secs(600)).await;
    let took = started.elapsed();
    println!(
        "throughput: {BACKLOG} events delivered in {took:.2?}: {:.0} events/s",
        BACKLOG as f64 / took.as_secs_f64()
    );

    // Delay: PER_COMMIT events per commit, a commit every 10 ms.
    let mut committed: HashMap<i64, Instant> = HashMap::new();
    for _ in 0..PACED / PER_COMMIT {
        let events = record(&db, &["order.created"; PER_COMMIT]).await;
        let at = Instant::now();
        for e in events {
            committed.insert(e.id, at);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let got = receiver
        .wait_for(BACKLOG + PACED, Duration::from_secs(600))
        .await;
    let mut delays: Vec<Duration> = got
        .iter()
        .filter_map(|r| {
            committed
                .get(&r.webhook_id())
                .map(|at| r.at.saturating_duration_since(*at))
        })
        .collect();
    delays.sort();
    assert_eq!(delays.len(), PACED);
    println!(
        "commit→delivery over {PACED} events ({PER_COMMIT} per commit, a commit every 10 ms): p50 {:.1?}, p99 {:.1?}, max {:.1?}",
        percentile(&delays, 0.50),
        percentile(&delays, 0.99),
        delays[delays.len() - 1]
    );
}
