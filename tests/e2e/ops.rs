use ecom_testkit::{TestDb, db_and_app, http_client, spawn_server};

use crate::store_context;

#[actix_web::test]
async fn the_store_answers_its_operational_endpoints() {
    let (_db, app) = db_and_app(store_context).await;
    app.get("/health").await.assert_status(200);
    app.get("/ready").await.assert_status(200);
    let doc = app.openapi().await;
    assert_eq!(doc["info"]["title"], "ecom");
    app.get("/docs/").await.assert_status(200);
    let missing = app.get("/nowhere").await;
    missing.assert_problem(404, "not_found");
    assert!(missing.header("x-request-id").is_some());
}

#[actix_web::test]
async fn over_a_real_socket() {
    let db = TestDb::new().await;
    let server = spawn_server(store_context(&db));
    let client = http_client();
    let res = server.get(&client, "/nowhere", &[]).await;
    res.assert_status(404);
    assert_eq!(res.header("content-type"), Some("application/problem+json"));
    assert!(res.header("x-request-id").is_some());
    server.stop().await;
}

/// One housekeeping round of the binary's chores works off a backlog larger than a
/// batch, in batches, and leaves live rows alone.
#[actix_web::test]
async fn a_housekeeping_round_clears_every_expired_row_in_batches() {
    use diesel_async::SimpleAsyncConnection;
    let (db, mut conn) = TestDb::connected().await;
    conn.batch_execute(
        "INSERT INTO login_throttle (key, attempts, expires_at) \
         SELECT 'addr:192.0.2.' || g, 1, now() - interval '1 minute' FROM generate_series(1, 2345) g; \
         INSERT INTO login_throttle (key, attempts, expires_at) VALUES ('addr:live', 1, now() + interval '1 hour');",
    )
    .await
    .expect("seed");
    let done = ecom_core::housekeeping::run_round(
        &db.pool(),
        &ecom_api::chores(&ecom_testkit::test_settings(&db, &[])),
        1000,
    )
    .await;
    let throttle = done
        .iter()
        .find(|(name, _)| *name == "login_throttle")
        .map(|(_, n)| *n);
    assert_eq!(throttle, Some(2345));
    assert!(
        done.iter().any(|(name, _)| *name == "order_idempotency"),
        "every domain's chores run: {done:?}"
    );
    let again = ecom_core::housekeeping::run_round(
        &db.pool(),
        &ecom_api::chores(&ecom_testkit::test_settings(&db, &[])),
        1000,
    )
    .await;
    assert!(again.iter().all(|(_, n)| *n == 0), "{again:?}");
}
