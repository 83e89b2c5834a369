use actix_web::http::Method;
use ecom_testkit::{TestDb, db_and_app, http_client, spawn_server, test_app, test_context};
use serde_json::json;

use crate::support;

#[actix_web::test]
async fn unknown_path_is_problem_json_with_request_id() {
    let (_db, app) = db_and_app(|db| test_context(db, vec![support::module()], &[])).await;
    let res = app.get("/no/such/thing").await;
    res.assert_problem(404, "not_found");
    assert_eq!(res.json()["type"], "urn:ecom:problem:not_found");
    assert_eq!(res.json()["title"], "Not Found");
    assert!(res.header("x-request-id").is_some_and(|id| id.len() >= 16));
}

#[actix_web::test]
async fn request_id_is_echoed_and_bad_ids_are_replaced() {
    let (_db, app) = db_and_app(|db| test_context(db, vec![], &[])).await;
    let req = actix_web::test::TestRequest::get()
        .uri("/health")
        .insert_header(("x-request-id", "shop-42"));
    assert_eq!(app.send(req).await.header("x-request-id"), Some("shop-42"));
    let long = "x".repeat(500);
    let req = actix_web::test::TestRequest::get()
        .uri("/health")
        .insert_header(("x-request-id", long.as_str()));
    let res = app.send(req).await;
    assert_ne!(res.header("x-request-id"), Some(long.as_str()));
    assert!(res.header("x-request-id").is_some());
}

#[actix_web::test]
async fn wrong_method_is_405_problem() {
    let (_db, app) = db_and_app(|db| test_context(db, vec![], &[])).await;
    app.anonymous()
        .post("/health", json!({}))
        .await
        .assert_problem(405, "method_not_allowed");
}

#[actix_web::test]
async fn body_errors_are_problems() {
    let (_db, app) = db_and_app(|db| test_context(db, vec![support::module()], &[])).await;

    let ok = app
        .anonymous()
        .post("/t/echo", json!({"name": "mug", "price": 9.99}))
        .await;
    ok.assert_status(200);
    assert_eq!(ok.json()["price"], "9.99", "money is a two-place string");

    let res = app
        .anonymous()
        .post(
            "/t/echo",
            json!({"name": "mug", "price": "1", "role": "admin"}),
        )
        .await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(
        res.json()["errors"][0]["field"],
        "role",
        "unknown field named: {}",
        res.json()
    );

    #[rustfmt::skip]
    let cases = [
        ("/t/echo", json!({"name": "mug", "price": 1.005}), 422, "validation_failed"),
        ("/t/echo", json!({"name": "mug", "price": -1}), 422, "validation_failed"),
    ];
    app.anonymous()
        .assert_writes_refused(Method::POST, cases)
        .await;

    for (content_type, payload, status, code) in [
        ("application/json", "{\"name\": ", 400, "malformed_json"),
        ("text/plain", "hello", 415, "unsupported_media_type"),
    ] {
        app.post_raw("/t/echo", content_type, payload)
            .await
            .assert_problem(status, code);
    }

    let huge = json!({"name": "x".repeat(70 * 1024), "price": 1});
    app.anonymous()
        .post("/t/echo", huge)
        .await
        .assert_problem(413, "payload_too_large");
}

#[actix_web::test]
async fn query_and_path_errors_are_problems() {
    let (_db, app) = db_and_app(|db| test_context(db, vec![support::module()], &[])).await;
    app.anonymous()
        .assert_problems([
            ("/t/items/abc", 400, "invalid_path"),
            ("/t/page?limit=ten", 400, "invalid_query"),
        ])
        .await;
    let res = app.get("/t/page?limit=101").await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.json()["errors"][0]["field"], "limit");
    let res = app.get("/t/page?limit=5&skip=10").await;
    res.assert_status(200);
    assert_eq!(res.json(), json!({"limit": 5, "offset": 10}));
}

#[actix_web::test]
async fn server_errors_hide_internals_and_carry_the_request_id() {
    let (_db, app) = db_and_app(|db| test_context(db, vec![support::module()], &[])).await;
    for path in ["/t/boom", "/t/bad-sql"] {
        let req = actix_web::test::TestRequest::get()
            .uri(path)
            .insert_header(("x-request-id", "req-500"));
        let res = app.send(req).await;
        res.assert_problem(500, "internal_error");
        let text = res.text();
        assert!(
            !text.contains("SELECT") && !text.contains("table_that_does_not_exist"),
            "{text}"
        );
        assert_eq!(res.json()["request_id"], "req-500");
    }
}

/// A pool of a database nobody serves: nothing listens on port 1.
fn dead_pool() -> ecom_core::db::PgPool {
    let options = ecom_core::db::PoolOptions {
        max_size: 2,
        wait_timeout: std::time::Duration::from_millis(500),
        statement_timeout: std::time::Duration::from_secs(5),
        application_name: "t".into(),
    };
    ecom_core::db::build_pool("postgres://postgres@127.0.0.1:1/none", &options).expect("lazy pool")
}

#[actix_web::test]
async fn pool_that_cannot_connect_answers_503() {
    let db = TestDb::new().await;
    let mut ctx = test_context(&db, vec![support::module()], &[]);
    ctx.pool = actix_web::web::Data::new(dead_pool());
    let app = test_app(ctx).await;
    let res = app.get("/ready").await;
    res.assert_problem(503, "service_unavailable");
    assert!(res.json()["request_id"].is_string());
    assert_eq!(res.json()["pools"]["primary"]["state"], "down");
    app.get("/t/bad-sql")
        .await
        .assert_problem(503, "service_unavailable");
}

/// A read replica that does not answer, or is not a replica at all (a primary given by
/// mistake), is found down by its check: `/ready` names it and stays 200, since reads fall
/// back to the primary. (A real streaming replica is tested over the local cluster.)
#[actix_web::test]
async fn a_read_replica_that_is_not_one_is_skipped_and_shown() {
    use ecom_core::read_replica::{CHECK_EVERY, PoolState, ReadReplica};
    let db = TestDb::new().await;
    let max_lag = std::time::Duration::from_secs(1);
    for replica_pool in [dead_pool(), db.pool()] {
        let replica = ReadReplica::new(replica_pool, max_lag);
        let checker = replica.spawn_checker(db.pool());
        tokio::time::sleep(CHECK_EVERY * 4).await;
        assert_eq!(replica.state(), PoolState::Down);
        assert!(replica.usable().is_none());
        let ctx = test_context(&db, vec![], &[]).with_read_replica(replica.clone());
        let app = test_app(ctx).await;
        let ready = app.get("/ready").await.assert_status(200).json();
        assert_eq!(ready["pools"]["primary"]["state"], "up");
        assert_eq!(ready["pools"]["replica"]["state"], "down");
        let metrics = app.get("/metrics").await.assert_status(200).text();
        assert!(metrics.contains("ecom_read_replica_state 2"), "{metrics}");
        checker.abort();
    }
}

#[actix_web::test]
async fn health_ready_metrics_and_openapi() {
    let (_db, app) = db_and_app(|db| test_context(db, vec![], &[])).await;
    assert_eq!(
        app.get("/health").await.assert_status(200).json()["status"],
        "ok"
    );
    assert_eq!(
        app.get("/ready").await.assert_status(200).json()["status"],
        "ready"
    );
    let metrics = app.get("/metrics").await;
    metrics.assert_status(200);
    let text = metrics.text();
    assert!(
        text.contains(
            "ecom_http_requests_total{endpoint=\"/health\",method=\"GET\",status=\"200\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("ecom_http_requests_duration_seconds_bucket{endpoint=\"/ready\""),
        "{text}"
    );
    assert!(text.contains("ecom_db_pool_max_size 8"), "{text}");
    assert!(text.contains("ecom_db_pool_in_use"), "{text}");

    let doc = app.openapi().await;
    assert_eq!(doc["openapi"], "3.1.0");
    for path in ["/health", "/ready", "/metrics"] {
        assert!(doc["paths"][path]["get"].is_object(), "{path} documented");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["oauth2_password"]["flows"]["password"]["tokenUrl"],
        "/auth/login"
    );
    assert!(doc["components"]["schemas"]["Problem"].is_object());

    let docs = app.get("/docs").await;
    docs.assert_status(308);
    assert_eq!(docs.header("location"), Some("/docs/"));
    let ui = app.get("/docs/").await;
    ui.assert_status(200);
    assert!(ui.text().contains("swagger"), "Swagger UI page");
}

#[actix_web::test]
async fn cors_follows_the_setting() {
    let db = TestDb::new().await;
    let app = test_app(test_context(
        &db,
        vec![],
        &[("CORS_ALLOWED_ORIGINS", "https://shop.example")],
    ))
    .await;
    let preflight = actix_web::test::TestRequest::default()
        .method(actix_web::http::Method::OPTIONS)
        .uri("/health")
        .insert_header(("origin", "https://shop.example"))
        .insert_header(("access-control-request-method", "GET"));
    let res = app.send(preflight).await;
    assert_eq!(
        res.header("access-control-allow-origin"),
        Some("https://shop.example")
    );
    let req = actix_web::test::TestRequest::get()
        .uri("/health")
        .insert_header(("origin", "https://shop.example"));
    assert_eq!(
        app.send(req).await.header("access-control-allow-origin"),
        Some("https://shop.example")
    );
}

#[actix_web::test]
async fn real_socket_server_serves_and_stops_gracefully() {
    let db = TestDb::new().await;
    let server = spawn_server(test_context(&db, vec![], &[]));
    let client = http_client();
    let res = server
        .get(&client, "/ready", &[("x-request-id", "socket-1")])
        .await;
    res.assert_status(200);
    assert_eq!(res.header("x-request-id"), Some("socket-1"));
    assert_eq!(
        &res.body[..],
        br#"{"status":"ready","pools":{"primary":{"state":"up"}}}"#
    );
    server.stop().await;
}

#[actix_web::test]
async fn metrics_need_the_metrics_token_when_one_is_set() {
    let db = TestDb::new().await;
    let token = "scrape-me-0123456789";
    let app = test_app(test_context(&db, vec![], &[("METRICS_TOKEN", token)])).await;
    let anonymous = app.get("/metrics").await;
    anonymous.assert_problem(401, "not_authenticated");
    assert_eq!(anonymous.header("www-authenticate"), Some("Bearer"));
    app.user("scrape-me-012345678")
        .get("/metrics")
        .await
        .assert_problem(401, "not_authenticated");
    let scraped = app.user(token).get("/metrics").await;
    scraped.assert_status(200);
    assert!(scraped.text().contains("ecom_db_pool_max_size"));
    // Liveness and readiness stay open for probes.
    app.get("/health").await.assert_status(200);
    app.get("/ready").await.assert_status(200);
}
