use ecom_testkit::TestDb;
use ecom_testkit::fixtures::{assert_parameters, assert_problem_responses, assert_schemas};

use crate::app;

const OPERATIONS: [(&str, &str, &str); 5] = [
    ("/orders", "post", "createOrder"),
    ("/orders", "get", "listOrders"),
    ("/orders/{id}", "get", "getOrder"),
    ("/orders/{id}/history", "get", "getOrderHistory"),
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
    assert_parameters(
        &doc,
        "/orders/{id}/history",
        "get",
        &["id", "limit", "offset", "skip"],
    );
    let history = &doc["paths"]["/orders/{id}/history"]["get"]["responses"];
    assert_eq!(
        history["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/OrderHistoryPage"
    );
    assert!(history["404"].is_object(), "getOrderHistory 404");
    let order = &doc["components"]["schemas"]["OrderOut"];
    assert!(
        order["properties"]["payment_due_at"].is_object(),
        "OrderOut documents payment_due_at"
    );
    assert!(
        !order["required"]
            .as_array()
            .expect("required")
            .iter()
            .any(|r| r == "payment_due_at")
            || order["properties"]["payment_due_at"]["type"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t == "null")),
        "payment_due_at may be null"
    );
    let entry = &doc["components"]["schemas"]["OrderHistoryEntry"]["properties"];
    for field in [
        "from_status",
        "to_status",
        "actor",
        "actor_id",
        "reason",
        "created_at",
    ] {
        assert!(entry[field].is_object(), "OrderHistoryEntry.{field}");
    }
    assert!(
        entry["id"].is_null() && entry["order_id"].is_null(),
        "no ids"
    );
    assert_schemas(
        &doc,
        &[
            "OrderHistoryEntry",
            "OrderHistoryPage",
            "OrderActor",
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
