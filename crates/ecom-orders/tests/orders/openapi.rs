use ecom_testkit::TestDb;
use ecom_testkit::fixtures::{assert_parameters, assert_problem_responses, assert_schemas};

use crate::app;

const OPERATIONS: [(&str, &str, &str); 4] = [
    ("/orders", "post", "createOrder"),
    ("/orders", "get", "listOrders"),
    ("/orders/{id}", "get", "getOrder"),
    ("/orders/{id}/cancel", "post", "cancelOrder"),
];

#[actix_web::test]
async fn every_route_is_documented_with_its_security_and_errors() {
    let db = TestDb::new().await;
    let app = app!(&db);
    let doc = app.openapi().await;
    for (path, method, operation_id) in OPERATIONS {
        let op = &doc["paths"][path][method];
        assert_eq!(op["operationId"], operation_id, "{method} {path}");
        assert_eq!(op["tags"][0], "orders");
        assert!(
            op["security"][0][ecom_core::openapi::BEARER].is_array(),
            "{operation_id} security"
        );
        let errors = assert_problem_responses(op, operation_id);
        assert!(errors.contains(&"401"), "{operation_id} 401");
        app.assert_routed(method, path).await;
    }
    let create = &doc["paths"]["/orders"]["post"];
    assert!(
        create["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header"),
        "createOrder documents Idempotency-Key"
    );
    for code in ["409", "422"] {
        assert!(create["responses"][code].is_object(), "createOrder {code}");
    }
    assert!(doc["paths"]["/orders/{id}/cancel"]["post"]["responses"]["409"].is_object());
    assert_parameters(
        &doc,
        "/orders",
        "get",
        &["status", "limit", "offset", "skip"],
    );
    assert_schemas(
        &doc,
        &[
            "OrderOut",
            "OrderItemOut",
            "OrderPage",
            "CreateOrderRequest",
            "OrderItemRequest",
            "OrderStatus",
        ],
    );
    // PUT on an order is not a route.
    app.request(actix_web::http::Method::PUT, "/orders/1", None, None)
        .await
        .assert_status(405);
}
