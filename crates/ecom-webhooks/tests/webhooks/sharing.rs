//! Several delivery workers (as several replicas run them) share the deliveries without
//! sending any twice.

use std::collections::BTreeMap;
use std::time::Duration;

use ecom_testkit::fixtures::count;

use crate::support::{
    Receiver, Reply, Tasks, app_on, config_for, create_endpoint, record, settings_for,
    start_fan_out, start_worker,
};

#[actix_web::test]
async fn two_workers_share_deliveries_without_doubling() {
    let (db, app) = app_on(&[]).await;
    let receiver = Receiver::answering(Reply::after(200, Duration::from_millis(20))).await;
    let (endpoint, _) = create_endpoint(&app, &receiver.url, &["*"]).await;
    let settings = settings_for(&db, &[]);
    let mut tasks = Tasks::default();
    start_fan_out(&db, &mut tasks);
    start_fan_out(&db, &mut tasks);
    for _ in 0..2 {
        let mut config = config_for(&settings);
        config.max_in_flight = 4;
        config.per_endpoint = 4;
        start_worker(&db, config, &mut tasks);
    }

    let mut expected = Vec::new();
    for _ in 0..20 {
        expected.extend(
            record(&db, &["order.created"; 10])
                .await
                .into_iter()
                .map(|e| e.id),
        );
    }
    let got = receiver.wait_for(200, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = if receiver.received().len() > got.len() {
        receiver.received()
    } else {
        got
    };
    let mut per_id: BTreeMap<i64, usize> = BTreeMap::new();
    for r in &got {
        *per_id.entry(r.webhook_id()).or_default() += 1;
    }
    assert_eq!(per_id.keys().copied().collect::<Vec<_>>(), expected);
    assert!(per_id.values().all(|n| *n == 1), "no event sent twice");
    let mut conn = db.connect().await;
    assert_eq!(
        count(&mut conn, &format!("SELECT count(*) AS n FROM webhook_deliveries WHERE endpoint_id = {endpoint} AND status = 'succeeded' AND attempts = 1")).await,
        200
    );
}
