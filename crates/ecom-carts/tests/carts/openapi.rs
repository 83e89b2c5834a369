//! The carts' operations in the served document.

use ecom_testkit::fixtures::{assert_parameters, assert_problem_responses, assert_schemas};

#[actix_web::test]
async fn every_cart_operation_is_documented_with_its_headers_and_errors() {
    let doc = ecom_testkit::served_openapi(|db| {
        ecom_testkit::fixtures::context(db, crate::support::modules())
    })
    .await;
    let operations = [
        ("/carts", "post", "createCart"),
        ("/carts/{id}", "get", "getCart"),
        ("/carts/{id}/items/{variant_id}", "put", "setCartItem"),
        ("/carts/{id}/items/{variant_id}", "delete", "removeCartItem"),
        ("/carts/{id}/merge", "post", "mergeCart"),
        ("/carts/{id}/checkout", "post", "checkoutCart"),
    ];
    for (path, method, id) in operations {
        let op = &doc["paths"][path][method];
        assert_eq!(op["operationId"], id, "{method} {path}");
        assert_problem_responses(op, id);
    }
    for (path, method) in [
        ("/carts/{id}", "get"),
        ("/carts/{id}/items/{variant_id}", "put"),
        ("/carts/{id}/items/{variant_id}", "delete"),
        ("/carts/{id}/checkout", "post"),
    ] {
        assert_parameters(&doc, path, method, &["X-Cart-Token"]);
    }
    assert_parameters(&doc, "/carts/{id}/checkout", "post", &["Idempotency-Key"]);
    let conflict = &doc["paths"]["/carts/{id}/checkout"]["post"]["responses"]["409"];
    assert_eq!(
        conflict["content"]["application/problem+json"]["schema"]["$ref"],
        "#/components/schemas/CartHasProblems"
    );
    assert_schemas(
        &doc,
        &[
            "CartOut",
            "NewCartOut",
            "CartItemOut",
            "CartProblem",
            "CartHasProblems",
        ],
    );
}
