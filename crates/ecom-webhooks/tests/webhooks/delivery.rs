//! Deliveries that arrive: signatures, the envelope, who gets what, test deliveries,
//! leases, and a slow receiver beside a fast one.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use diesel_async::RunQueryDsl;
use ecom_testkit::fixtures::{ADMIN, count};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;
use sha2::Sha256;

use crate::support::{
    Receiver, Reply, create_endpoint, deliveries, eventually, record, running, settled,
};

/// The Standard Webhooks signature computed here, from the specification, independently
/// of the crate's signer.
fn expected_signature(secret: &str, id: &str, timestamp: &str, body: &[u8]) -> String {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("prefix"))
        .expect("base64 secret");
    let mut signed = format!("{id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).expect("key");
    mac.update(&signed);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[actix_web::test]
async fn deliveries_carry_the_event_signed() {
    let (db, app, _tasks) = running(&[], |_| {}).await;
    let receiver = Receiver::answering(Reply::OK).await;
    let (endpoint, secret) = create_endpoint(&app, &receiver.url, &["order.*"]).await;
    let event = record(&db, &["order.created"]).await.remove(0);

    let got = receiver
        .wait_for(1, Duration::from_secs(10))
        .await
        .remove(0);
    assert_eq!(got.path, "/hook");
    assert_eq!(got.header("content-type"), "application/json");
    assert_eq!(got.webhook_id(), event.id);
    let timestamp: i64 = got
        .header("webhook-timestamp")
        .parse()
        .expect("unix seconds");
    assert!((chrono::Utc::now().timestamp() - timestamp).abs() <= 5);
    assert_eq!(
        got.header("webhook-signature"),
        expected_signature(
            &secret,
            &event.id.to_string(),
            got.header("webhook-timestamp"),
            &got.body
        )
    );
    // A different secret does not verify.
    assert_ne!(
        got.header("webhook-signature"),
        expected_signature(
            "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            &event.id.to_string(),
            got.header("webhook-timestamp"),
            &got.body
        )
    );
    let body = got.json();
    assert_eq!(
        body,
        json!({
            "id": event.id,
            "type": "order.created",
            "occurred_at": event.occurred_at,
            "aggregate_type": "order",
            "aggregate_id": event.aggregate_id,
            "sequence": 1,
            "data": event.data,
        })
    );

    let log = settled(&app, endpoint, 1, Duration::from_secs(10)).await;
    assert_eq!(log[0]["status"], "succeeded");
    assert_eq!(log[0]["attempts"], 1);
    assert_eq!(log[0]["response_code"], 200);
    assert_eq!(log[0]["event_id"], event.id);
    assert_eq!(log[0]["event_type"], "order.created");
    assert_eq!(log[0]["next_attempt_at"], serde_json::Value::Null);
}

#[actix_web::test]
async fn each_endpoint_gets_the_events_its_patterns_name() {
    let (db, app, _tasks) = running(&[], |_| {}).await;
    let exact = Receiver::answering(Reply::OK).await;
    let prefix = Receiver::answering(Reply::OK).await;
    let any = Receiver::answering(Reply::OK).await;
    let payments = Receiver::answering(Reply::OK).await;
    let disabled = Receiver::answering(Reply::OK).await;
    create_endpoint(&app, &exact.url, &["order.created"]).await;
    create_endpoint(&app, &prefix.url, &["order.*"]).await;
    create_endpoint(&app, &any.url, &["*"]).await;
    create_endpoint(&app, &payments.url, &["payment.updated", "product.deleted"]).await;
    let (off, _) = create_endpoint(&app, &disabled.url, &["*"]).await;
    app.fixed(ADMIN)
        .patch(
            format!("/admin/webhooks/{off}"),
            json!({"is_active": false}),
        )
        .await
        .assert_status(200);

    record(
        &db,
        &[
            "order.created",
            "order.paid",
            "product.created",
            "payment.updated",
        ],
    )
    .await;
    let types = |r: &Receiver| {
        let mut t: Vec<String> = r
            .received()
            .iter()
            .map(|g| g.json()["type"].as_str().expect("type").to_string())
            .collect();
        t.sort();
        t
    };
    any.wait_for(4, Duration::from_secs(10)).await;
    prefix.wait_for(2, Duration::from_secs(10)).await;
    exact.wait_for(1, Duration::from_secs(10)).await;
    payments.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        types(&any),
        [
            "order.created",
            "order.paid",
            "payment.updated",
            "product.created"
        ]
    );
    assert_eq!(types(&prefix), ["order.created", "order.paid"]);
    assert_eq!(types(&exact), ["order.created"]);
    assert_eq!(types(&payments), ["payment.updated"]);
    assert!(
        disabled.received().is_empty(),
        "a disabled endpoint gets nothing"
    );
    let mut conn = db.connect().await;
    assert_eq!(
        count(
            &mut conn,
            &format!("SELECT count(*) AS n FROM webhook_deliveries WHERE endpoint_id = {off}")
        )
        .await,
        0
    );
}

#[actix_web::test]
async fn a_test_delivery_goes_to_its_endpoint_only() {
    let (db, app, _tasks) = running(&[], |_| {}).await;
    let tested = Receiver::answering(Reply::OK).await;
    let other = Receiver::answering(Reply::OK).await;
    let (id, secret) = create_endpoint(&app, &tested.url, &["order.created"]).await;
    let (other_id, _) = create_endpoint(&app, &other.url, &["*"]).await;

    let res = app
        .fixed(ADMIN)
        .post(format!("/admin/webhooks/{id}/test"), json!({}))
        .await;
    res.assert_status(202);
    assert_eq!(
        res.json(),
        json!({"endpoint_id": id, "event_type": "webhook.test"})
    );

    let got = tested.wait_for(1, Duration::from_secs(10)).await.remove(0);
    let event_id = got.webhook_id();
    let body = got.json();
    assert_eq!(body["id"], event_id);
    assert_eq!(body["type"], "webhook.test");
    assert_eq!(body["aggregate_type"], "webhook");
    assert_eq!(body["aggregate_id"], id);
    assert_eq!(body["data"]["endpoint_id"], id);
    assert_eq!(
        got.header("webhook-signature"),
        expected_signature(
            &secret,
            &event_id.to_string(),
            got.header("webhook-timestamp"),
            &got.body
        )
    );

    // A real outbox event, which the fan-out has passed without giving it to anyone else.
    let mut conn = db.connect().await;
    assert_eq!(
        count(&mut conn, &format!("SELECT count(*) AS n FROM events WHERE id = {event_id} AND event_type = 'webhook.test'")).await,
        1
    );
    eventually("the fan-out passes the test event", Duration::from_secs(10), async || {
        let n = count(&mut conn, &format!("SELECT count(*) AS n FROM event_cursors WHERE consumer = 'webhooks' AND last_event_id >= {event_id}")).await;
        (n == 1).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(other.received().is_empty());
    assert!(deliveries(&app, other_id).await.is_empty());
    assert_eq!(deliveries(&app, id).await.len(), 1, "one delivery, not two");
    app.fixed(ADMIN)
        .post("/admin/webhooks/999999/test", json!({}))
        .await
        .assert_problem(404, "not_found");
}

#[actix_web::test]
async fn a_slow_receiver_does_not_delay_a_fast_one() {
    // The real 10 s timeout; the slow receiver takes 12 s to answer each request.
    let (db, app, _tasks) = running(&[], |c| c.timeout = Duration::from_secs(10)).await;
    let slow = Receiver::answering(Reply::after(200, Duration::from_secs(12))).await;
    let fast = Receiver::answering(Reply::OK).await;
    create_endpoint(&app, &slow.url, &["*"]).await;
    create_endpoint(&app, &fast.url, &["*"]).await;

    let started = Instant::now();
    // More deliveries to the slow receiver than sends in flight (64).
    for _ in 0..20 {
        record(
            &db,
            &[
                "order.created",
                "order.paid",
                "order.cancelled",
                "product.created",
            ],
        )
        .await;
    }
    let got = fast.wait_for(80, Duration::from_secs(8)).await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(8),
        "the fast receiver had everything after {took:?}"
    );
    let ids: std::collections::BTreeSet<i64> = got.iter().map(|r| r.webhook_id()).collect();
    assert_eq!(ids.len(), 80);
    let waiting = slow.received().len();
    assert!(
        (1..=16).contains(&waiting),
        "the slow receiver holds at most 16 sends ({waiting})"
    );
}

#[actix_web::test]
async fn a_delivery_whose_worker_died_is_sent_when_its_lease_expires() {
    let (db, app, tasks) = running(&[], |_| {}).await;
    let receiver = Receiver::answering(Reply::OK).await;
    let (endpoint, _) = create_endpoint(&app, &receiver.url, &["order.*"]).await;
    drop(tasks); // no worker yet
    let event = record(&db, &["order.created"]).await.remove(0);
    let mut conn = db.connect().await;
    // As a worker that claimed it (attempt 1, leased for 2 s) and died would leave it.
    let body = serde_json::to_vec(&event).expect("body");
    diesel::sql_query(
        "INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, body, attempts, next_attempt_at) \
         VALUES ($1, $2, 'order.created', $3, 1, now() + interval '2 seconds')",
    )
    .bind::<diesel::sql_types::BigInt, _>(endpoint)
    .bind::<diesel::sql_types::BigInt, _>(event.id)
    .bind::<diesel::sql_types::Bytea, _>(body.clone())
    .execute(&mut conn)
    .await
    .expect("leased delivery");

    let started = Instant::now();
    let mut tasks = crate::support::Tasks::default();
    crate::support::start_fan_out(&db, &mut tasks);
    let settings = crate::support::settings_for(&db, &[]);
    crate::support::start_worker(&db, crate::support::config_for(&settings), &mut tasks);
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1500),
        "not before the lease expired ({waited:?})"
    );
    assert_eq!(got[0].body, body);
    let log = settled(&app, endpoint, 1, Duration::from_secs(10)).await;
    assert_eq!(log[0]["status"], "succeeded");
    assert_eq!(log[0]["attempts"], 2);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        receiver.received().len(),
        1,
        "the fan-out did not queue it again"
    );
}
