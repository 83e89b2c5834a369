use ecom_testkit::{TestDb, http_client, spawn_server, test_app};

use crate::store_context;

#[actix_web::test]
async fn the_store_answers_its_operational_endpoints() {
    let db = TestDb::new().await;
    let app = test_app(store_context(&db)).await;
    app.get("/health").await.assert_status(200);
    app.get("/ready").await.assert_status(200);
    let doc = app.get("/openapi.json").await.assert_status(200).json();
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
    let res = client
        .get(server.url("/nowhere"))
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status().as_u16(), 404);
    assert_eq!(
        res.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    assert!(res.headers().contains_key("x-request-id"));
    server.stop().await;
}
