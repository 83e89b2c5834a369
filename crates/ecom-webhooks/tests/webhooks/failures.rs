//! Deliveries that do not arrive at once: retries with backoff, immediate failures,
//! disabling and re-enabling, manual retries, refused destinations, retention.

use std::time::Duration;

use diesel_async::RunQueryDsl;
use ecom_testkit::fixtures::{ADMIN, count};
use serde_json::json;

use crate::support::{
    Receiver, Reply, create_endpoint, deliveries, eventually, record, running, settled,
};

#[actix_web::test]
async fn retries_send_the_same_bytes_after_growing_delays() {
    // Base 100 ms: retries after about 100, 200, 400 ms (±25 %).
    let (db, app, _tasks) = running(&[("WEBHOOK_MAX_ATTEMPTS", "5")], |_| {}).await;
    let receiver = Receiver::start(|n| match n {
        0 => Reply::status(500),
        1 => Reply::status(429),
        2 => Reply::status(408),
        _ => Reply::OK,
    })
    .await;
    let (endpoint, _) = create_endpoint(&app, &receiver.url, &["*"]).await;
    let event = record(&db, &["product.created"]).await.remove(0);

    let got = receiver.wait_for(4, Duration::from_secs(10)).await;
    let log = settled(&app, endpoint, 1, Duration::from_secs(10)).await;
    assert_eq!(log[0]["status"], "succeeded");
    assert_eq!(log[0]["attempts"], 4);
    assert_eq!(log[0]["last_error"], serde_json::Value::Null);
    for attempt in &got {
        assert_eq!(attempt.body, got[0].body, "the same bytes every attempt");
        assert_eq!(attempt.webhook_id(), event.id);
    }
    for (i, pair) in got.windows(2).enumerate() {
        let gap = pair[1].at - pair[0].at;
        let least = Duration::from_millis(100 * 2u64.pow(i as u32)).mul_f64(0.75);
        assert!(
            gap >= least,
            "retry {} came after {gap:?}, before {least:?}",
            i + 1
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 4, "nothing after the success");
}

#[actix_web::test]
async fn timeouts_are_retried_until_the_attempts_run_out() {
    let (db, app, _tasks) = running(&[("WEBHOOK_MAX_ATTEMPTS", "2")], |c| {
        c.timeout = Duration::from_millis(400)
    })
    .await;
    let receiver = Receiver::answering(Reply::after(200, Duration::from_secs(3))).await;
    let (endpoint, _) = create_endpoint(&app, &receiver.url, &["*"]).await;
    record(&db, &["order.created"]).await;

    let log = settled(&app, endpoint, 1, Duration::from_secs(10)).await;
    assert_eq!(log[0]["status"], "failed");
    assert_eq!(log[0]["attempts"], 2);
    assert_eq!(log[0]["last_error"], "timeout");
    assert_eq!(log[0]["response_code"], serde_json::Value::Null);
    assert_eq!(receiver.received().len(), 2);
}

#[actix_web::test]
async fn unreachable_receivers_are_retried() {
    let (db, app, _tasks) = running(&[("WEBHOOK_MAX_ATTEMPTS", "3")], |_| {}).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a port")
        .port();
    let (endpoint, _) =
        create_endpoint(&app, &format!("http://127.0.0.1:{closed}/hook"), &["*"]).await;
    record(&db, &["order.created"]).await;
    let log = settled(&app, endpoint, 1, Duration::from_secs(10)).await;
    assert_eq!(log[0]["status"], "failed");
    assert_eq!(log[0]["attempts"], 3);
    let error = log[0]["last_error"].as_str().expect("an error");
    assert!(
        error.contains("refused") || error.contains("connect"),
        "{error}"
    );
    assert!(
        !error.contains(&closed.to_string()),
        "no URL in the error: {error}"
    );
}

#[actix_web::test]
async fn other_statuses_and_redirects_fail_at_once() {
    let (db, app, _tasks) = running(&[], |_| {}).await;
    let bad_request = Receiver::answering(Reply::status(400)).await;
    let moved = Receiver::answering(Reply::status(301)).await;
    let (a, _) = create_endpoint(&app, &bad_request.url, &["*"]).await;
    let (b, _) = create_endpoint(&app, &moved.url, &["*"]).await;
    record(&db, &["order.created"]).await;

    for (endpoint, code) in [(a, 400), (b, 301)] {
        let log = settled(&app, endpoint, 1, Duration::from_secs(10)).await;
        assert_eq!(log[0]["status"], "failed");
        assert_eq!(log[0]["attempts"], 1);
        assert_eq!(log[0]["response_code"], code);
        assert_eq!(log[0]["last_error"], format!("http_{code}"));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(bad_request.received().len(), 1);
    let got = moved.received();
    assert_eq!(got.len(), 1, "the redirect was not followed");
    assert_eq!(got[0].path, "/hook");
}

#[actix_web::test]
async fn failures_in_a_row_disable_an_endpoint_until_it_is_re_enabled() {
    let (db, app, _tasks) = running(&[("WEBHOOK_DISABLE_AFTER_FAILURES", "3")], |_| {}).await;
    let receiver = Receiver::answering(Reply::status(400)).await;
    let (endpoint, _) = create_endpoint(&app, &receiver.url, &["*"]).await;
    let admin = app.fixed(ADMIN);

    // Two failures, a success (which resets the count), two failures: still active.
    record(&db, &["order.created"]).await;
    record(&db, &["order.created"]).await;
    settled(&app, endpoint, 2, Duration::from_secs(10)).await;
    receiver.answer(|_| Reply::OK);
    record(&db, &["order.created"]).await;
    settled(&app, endpoint, 3, Duration::from_secs(10)).await;
    receiver.answer(|_| Reply::status(400));
    record(&db, &["order.created"]).await;
    record(&db, &["order.created"]).await;
    settled(&app, endpoint, 5, Duration::from_secs(10)).await;
    let state = admin
        .get(format!("/admin/webhooks/{endpoint}"))
        .await
        .json();
    assert_eq!(state["is_active"], true, "a success reset the count");

    // The third failure in a row disables it.
    record(&db, &["order.created"]).await;
    let log = settled(&app, endpoint, 6, Duration::from_secs(10)).await;
    let state = admin
        .get(format!("/admin/webhooks/{endpoint}"))
        .await
        .json();
    assert_eq!(state["is_active"], false);
    assert_eq!(state["disabled_reason"], "too_many_failures");

    // Disabled: no deliveries, no tests, no retries.
    let sent = receiver.received().len();
    record(&db, &["order.created"]).await;
    let mut conn = db.connect().await;
    let last = record(&db, &["order.paid"]).await.remove(0).id;
    eventually("the fan-out passes the events", Duration::from_secs(10), async || {
        let n = count(&mut conn, &format!("SELECT count(*) AS n FROM event_cursors WHERE consumer = 'webhooks' AND last_event_id >= {last}")).await;
        (n == 1).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(deliveries(&app, endpoint).await.len(), 6);
    assert_eq!(receiver.received().len(), sent);
    admin
        .post(format!("/admin/webhooks/{endpoint}/test"), json!({}))
        .await
        .assert_problem(409, "webhook_disabled");
    let failed = log[0]["id"].as_i64().expect("id");
    admin
        .post(
            format!("/admin/webhooks/{endpoint}/deliveries/{failed}/retry"),
            json!({}),
        )
        .await
        .assert_problem(409, "webhook_disabled");

    // Re-enabled: deliveries flow again.
    receiver.answer(|_| Reply::OK);
    let res = admin
        .patch(
            format!("/admin/webhooks/{endpoint}"),
            json!({"is_active": true}),
        )
        .await;
    res.assert_status(200);
    assert_eq!(res.json()["is_active"], true);
    assert_eq!(res.json()["disabled_reason"], serde_json::Value::Null);
    let fresh = record(&db, &["order.created"]).await.remove(0);
    let got = receiver.wait_for(sent + 1, Duration::from_secs(10)).await;
    assert_eq!(got.last().expect("one more").webhook_id(), fresh.id);
    assert_eq!(
        count(&mut conn, &format!("SELECT count(*) AS n FROM webhook_endpoints WHERE id = {endpoint} AND consecutive_failures = 0")).await,
        1
    );
}

#[actix_web::test]
async fn a_failed_delivery_can_be_retried_by_hand_once() {
    let (db, app, _tasks) = running(&[], |_| {}).await;
    let receiver = Receiver::answering(Reply::status(410)).await;
    let other = Receiver::answering(Reply::OK).await;
    let (endpoint, _) = create_endpoint(&app, &receiver.url, &["*"]).await;
    let (other_endpoint, _) = create_endpoint(&app, &other.url, &["*"]).await;
    record(&db, &["order.created"]).await;
    let log = settled(&app, endpoint, 1, Duration::from_secs(10)).await;
    assert_eq!(log[0]["status"], "failed");
    let id = log[0]["id"].as_i64().expect("id");
    let admin = app.fixed(ADMIN);

    receiver.answer(|_| Reply::OK);
    let res = admin
        .post(
            format!("/admin/webhooks/{endpoint}/deliveries/{id}/retry"),
            json!({}),
        )
        .await;
    res.assert_status(202);
    assert_eq!(res.json()["status"], "pending");
    assert_eq!(res.json()["attempts"], 0, "a fresh attempt budget");
    let log = settled(&app, endpoint, 1, Duration::from_secs(10)).await;
    assert_eq!(log[0]["status"], "succeeded");
    assert_eq!(log[0]["attempts"], 1);
    let got = receiver.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].body, got[1].body);

    admin
        .post(
            format!("/admin/webhooks/{endpoint}/deliveries/{id}/retry"),
            json!({}),
        )
        .await
        .assert_problem(409, "already_delivered");
    admin
        .post(
            format!("/admin/webhooks/{other_endpoint}/deliveries/{id}/retry"),
            json!({}),
        )
        .await
        .assert_problem(404, "not_found");
    admin
        .post(
            format!("/admin/webhooks/{endpoint}/deliveries/999999/retry"),
            json!({}),
        )
        .await
        .assert_problem(404, "not_found");
}

#[actix_web::test]
async fn the_log_is_newest_first_and_filters_by_status() {
    let (db, app, _tasks) = running(&[], |_| {}).await;
    let receiver = Receiver::start(|n| {
        if n % 2 == 0 {
            Reply::OK
        } else {
            Reply::status(404)
        }
    })
    .await;
    let (endpoint, _) = create_endpoint(&app, &receiver.url, &["*"]).await;
    // One at a time, so the 200/404 answers alternate by event. The count to wait for is
    // fixed before recording: read after, a fast delivery was already in it and the wait
    // asked for one more than would ever come.
    for delivered in 1..=4 {
        record(&db, &["order.created"]).await;
        receiver.wait_for(delivered, Duration::from_secs(10)).await;
    }
    let log = settled(&app, endpoint, 4, Duration::from_secs(10)).await;
    let ids: Vec<i64> = log.iter().map(|d| d["id"].as_i64().expect("id")).collect();
    let mut sorted = ids.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted, "newest first");
    let admin = app.fixed(ADMIN);
    for (status, n) in [("succeeded", 2), ("failed", 2), ("pending", 0)] {
        let page = admin
            .get(format!(
                "/admin/webhooks/{endpoint}/deliveries?status={status}"
            ))
            .await
            .json();
        assert_eq!(page["total"], n, "{status}");
        assert!(
            page["items"]
                .as_array()
                .expect("items")
                .iter()
                .all(|d| d["status"] == status)
        );
    }
    admin
        .get("/admin/webhooks/999999/deliveries")
        .await
        .assert_problem(404, "not_found");
}

#[actix_web::test]
async fn private_destinations_are_refused_at_every_attempt() {
    // Endpoints written while private destinations were allowed; the workers refuse them.
    let (db, app, _tasks) = running(&[], |c| c.allow_private = false).await;
    let receiver = Receiver::answering(Reply::OK).await;
    let (literal, _) = create_endpoint(&app, &receiver.url, &["*"]).await;
    let (named, _) = create_endpoint(
        &app,
        &format!("http://localhost:{}/hook", receiver.port),
        &["*"],
    )
    .await;
    record(&db, &["order.created"]).await;
    for endpoint in [literal, named] {
        let log = settled(&app, endpoint, 1, Duration::from_secs(10)).await;
        assert_eq!(log[0]["status"], "failed");
        assert_eq!(log[0]["last_error"], "destination_not_allowed");
        assert_eq!(log[0]["attempts"], 1);
    }
    assert!(
        receiver.received().is_empty(),
        "nothing reached the private address"
    );
}

#[actix_web::test]
async fn deliveries_are_kept_for_the_retention_period() {
    let (db, app) = crate::support::app_on(&[]).await;
    let (endpoint, _) = create_endpoint(&app, "http://127.0.0.1:9/", &["*"]).await;
    let mut conn = db.connect().await;
    diesel::sql_query(
        "INSERT INTO webhook_deliveries (endpoint_id, event_id, event_type, body, status, created_at) \
         SELECT $1, n, 'order.created', '{}', 'succeeded', now() - make_interval(days => n::int) \
         FROM generate_series(1, 40) n",
    )
    .bind::<diesel::sql_types::BigInt, _>(endpoint)
    .execute(&mut conn)
    .await
    .expect("old deliveries");
    let settings = crate::support::settings_for(&db, &[("EVENT_RETENTION_DAYS", "30")]);
    let chores = ecom_webhooks::chores(&settings);
    let pool = db.pool();
    let done = ecom_core::housekeeping::run_round(&pool, &chores, 7).await;
    assert_eq!(done, vec![("webhook_deliveries", 11)]);
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM webhook_deliveries").await,
        29
    );
}

#[actix_web::test]
async fn pending_deliveries_of_a_disabled_endpoint_wait_for_it() {
    // Retries after about a second, so the next attempt falls due while disabled.
    let (db, app, _tasks) = running(&[("WEBHOOK_RETRY_BASE_MS", "800")], |_| {}).await;
    let receiver = Receiver::start(|n| {
        if n == 0 {
            Reply::status(503)
        } else {
            Reply::OK
        }
    })
    .await;
    let (endpoint, _) = create_endpoint(&app, &receiver.url, &["*"]).await;
    let admin = app.fixed(ADMIN);
    record(&db, &["order.created"]).await;
    receiver.wait_for(1, Duration::from_secs(10)).await;
    let log = eventually(
        "the first attempt recorded",
        Duration::from_secs(10),
        async || {
            let log = deliveries(&app, endpoint).await;
            (log.len() == 1 && log[0]["last_error"] == "http_503").then_some(log)
        },
    )
    .await;
    assert_eq!(log[0]["status"], "pending");

    let res = admin
        .patch(
            format!("/admin/webhooks/{endpoint}"),
            json!({"is_active": false}),
        )
        .await;
    res.assert_status(200);
    assert_eq!(res.json()["is_active"], false);
    assert_eq!(
        res.json()["disabled_reason"],
        serde_json::Value::Null,
        "disabled by hand"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.received().len(), 1, "nothing sent while disabled");
    assert_eq!(deliveries(&app, endpoint).await[0]["status"], "pending");

    admin
        .patch(
            format!("/admin/webhooks/{endpoint}"),
            json!({"is_active": true}),
        )
        .await
        .assert_status(200);
    let log = settled(&app, endpoint, 1, Duration::from_secs(10)).await;
    assert_eq!(log[0]["status"], "succeeded");
    assert_eq!(log[0]["attempts"], 2);
    assert_eq!(receiver.received().len(), 2);
}
