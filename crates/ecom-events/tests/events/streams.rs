//! The lists and the live streams of `/users/me/events` and `/admin/events`.

use std::time::Duration;

use ecom_testkit::{TestDb, access_token, spawn_server, test_app};
use serde_json::Value;

use crate::support::{AMY, BOB, STAFF, SseReader, accounts, context, record, short_token};

fn types(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["type"].as_str().expect("type").to_string())
        .collect()
}

#[actix_web::test]
async fn lists_show_the_callers_own_order_and_payment_events_oldest_first() {
    let db = TestDb::new().await;
    let accounts = accounts();
    let app = test_app(context(&db, &accounts)).await;
    record(&db, "order.created", 10, Some(AMY)).await;
    record(&db, "product.created", 5, None).await;
    record(&db, "order.created", 11, Some(BOB)).await;
    let paid = record(&db, "payment.updated", 20, Some(AMY)).await;
    record(&db, "user.registered", AMY, None).await;

    let amy = access_token(AMY);
    let mine = app
        .get_as("/users/me/events", &amy)
        .await
        .assert_status(200)
        .json();
    assert_eq!(types(&mine), vec!["order.created", "payment.updated"]);
    assert_eq!(mine["total"], 2);
    let first = &mine["items"][0];
    for field in [
        "id",
        "type",
        "occurred_at",
        "aggregate_type",
        "aggregate_id",
        "sequence",
        "data",
    ] {
        assert!(
            first.get(field).is_some(),
            "the envelope has {field}: {first}"
        );
    }
    assert!(
        first.get("owner_id").is_none(),
        "the owner is not part of the envelope"
    );
    assert_eq!(first["sequence"], 1);
    let payments = app
        .get_as("/users/me/events?types=payment.*", &amy)
        .await
        .assert_status(200)
        .json();
    assert_eq!(types(&payments), vec!["payment.updated"]);
    let after = app
        .get_as(&format!("/users/me/events?after={}", paid - 1), &amy)
        .await
        .json();
    assert_eq!(types(&after), vec!["payment.updated"]);

    let all = app
        .get_as("/admin/events", &access_token(STAFF))
        .await
        .assert_status(200)
        .json();
    assert_eq!(all["total"], 5);
    let some = app
        .get_as(
            "/admin/events?types=order.*,user.registered&limit=2",
            &access_token(STAFF),
        )
        .await
        .json();
    assert_eq!((some["total"].as_i64(), types(&some).len()), (Some(3), 2));
    app.get_as("/admin/events", &amy)
        .await
        .assert_problem(403, "forbidden");
    app.get("/users/me/events").await.assert_status(401);
    app.get_as("/users/me/events?types=order.shipped", &amy)
        .await
        .assert_problem(422, "validation_failed");
    app.get_as("/users/me/events?after=-1", &amy)
        .await
        .assert_problem(422, "validation_failed");
}

#[actix_web::test]
async fn a_stream_sends_new_events_and_resumes_after_last_event_id() {
    let db = TestDb::new().await;
    let accounts = accounts();
    let server = spawn_server(context(&db, &accounts));
    let before = record(&db, "order.created", 1, Some(AMY)).await;
    let auth = format!("Bearer {}", access_token(AMY));
    let mut stream =
        SseReader::open(&server.url("/users/me/events"), &[("authorization", &auth)]).await;
    // Without Last-Event-ID only new events come: not `before`.
    record(&db, "order.created", 2, Some(BOB)).await;
    let new = record(&db, "order.paid", 3, Some(AMY)).await;
    let message = stream
        .next_event(Duration::from_secs(10))
        .await
        .expect("the new event");
    assert_eq!(message.id, Some(new));
    assert_eq!(message.event.as_deref(), Some("order.paid"));
    let data = message.data.expect("data");
    assert_eq!(
        (data["id"].as_i64(), data["type"].as_str()),
        (Some(new), Some("order.paid"))
    );
    assert!(new > before);
    drop(stream);

    // Missed while away, then resumed: every one after the last seen, in order, once.
    let mut missed = Vec::new();
    for n in 0..3 {
        missed.push(record(&db, "payment.updated", 100 + n, Some(AMY)).await);
        record(&db, "payment.updated", 200 + n, Some(BOB)).await;
    }
    let last = new.to_string();
    let mut resumed = SseReader::open(
        &server.url("/users/me/events"),
        &[("authorization", &auth), ("last-event-id", &last)],
    )
    .await;
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(
            resumed
                .next_event(Duration::from_secs(10))
                .await
                .expect("a missed event")
                .id
                .expect("id"),
        );
    }
    assert_eq!(got, missed);
    let later = record(&db, "order.cancelled", 3, Some(AMY)).await;
    let next = resumed
        .next_event(Duration::from_secs(10))
        .await
        .expect("the next one");
    assert_eq!(next.id, Some(later), "nothing repeated, nothing skipped");

    let refused = ecom_testkit::http_client()
        .get(server.url("/users/me/events"))
        .insert_header(("accept", "text/event-stream"))
        .insert_header(("authorization", auth.as_str()))
        .insert_header(("last-event-id", "yesterday"))
        .send()
        .await
        .expect("answer");
    assert_eq!(refused.status(), 400);
    server.stop().await;
}

#[actix_web::test]
async fn an_admin_stream_takes_the_token_in_the_query_and_sees_every_event() {
    let db = TestDb::new().await;
    let accounts = accounts();
    let server = spawn_server(context(&db, &accounts));
    let url = server.url(&format!(
        "/admin/events?access_token={}&types=product.*",
        access_token(STAFF)
    ));
    let mut stream = SseReader::open(&url, &[]).await;
    record(&db, "order.created", 1, Some(AMY)).await;
    let product = record(&db, "product.updated", 7, None).await;
    let message = stream
        .next_event(Duration::from_secs(10))
        .await
        .expect("an event");
    assert_eq!(message.id, Some(product), "filtered by type");
    server.stop().await;
}

#[actix_web::test]
async fn a_stream_ends_when_its_token_expires() {
    let db = TestDb::new().await;
    let accounts = accounts();
    let server = spawn_server(context(&db, &accounts));
    let auth = format!("Bearer {}", short_token(AMY, 3));
    let mut stream =
        SseReader::open(&server.url("/users/me/events"), &[("authorization", &auth)]).await;
    stream
        .ends_within(Duration::from_secs(10))
        .await
        .expect("no event, then the end");
    server.stop().await;
}

#[actix_web::test]
async fn a_stream_ends_when_its_user_is_banned_and_sends_nothing_after() {
    let db = TestDb::new().await;
    let accounts = accounts();
    let server = spawn_server(context(&db, &accounts));
    let auth = format!("Bearer {}", access_token(AMY));
    let mut stream =
        SseReader::open(&server.url("/users/me/events"), &[("authorization", &auth)]).await;
    let first = record(&db, "order.created", 1, Some(AMY)).await;
    assert_eq!(
        stream
            .next_event(Duration::from_secs(10))
            .await
            .and_then(|m| m.id),
        Some(first)
    );
    accounts.set(AMY, "user", &[], false);
    // The next wake-up more than 5 s after the last check re-checks the caller first.
    tokio::time::sleep(Duration::from_millis(5500)).await;
    record(&db, "order.paid", 1, Some(AMY)).await;
    stream
        .ends_within(Duration::from_secs(20))
        .await
        .expect("the stream ends without the event");
    server.stop().await;
}

#[actix_web::test]
async fn a_quiet_stream_pings_within_15_seconds() {
    let db = TestDb::new().await;
    let accounts = accounts();
    let server = spawn_server(context(&db, &accounts));
    let auth = format!("Bearer {}", access_token(BOB));
    let mut stream =
        SseReader::open(&server.url("/users/me/events"), &[("authorization", &auth)]).await;
    let started = std::time::Instant::now();
    loop {
        let message = stream
            .next(Duration::from_secs(17))
            .await
            .expect("a ping in time");
        if message.comment.as_deref() == Some("ping") {
            break;
        }
    }
    assert!(started.elapsed() <= Duration::from_secs(16));
    server.stop().await;
}
