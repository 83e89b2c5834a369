use ecom_testkit::TestDb;
use ecom_testkit::fixtures::{assert_parameters, assert_schemas};

use crate::app;

const OPERATIONS: [(&str, &str, &str, bool); 10] = [
    ("/categories", "get", "listCategories", false),
    ("/categories", "post", "createCategory", true),
    ("/products", "get", "listProducts", false),
    ("/products", "post", "createProduct", true),
    ("/products/{id}", "get", "getProduct", false),
    ("/products/{id}", "put", "updateProduct", true),
    ("/products/{id}", "patch", "patchProduct", true),
    ("/products/{id}", "delete", "deleteProduct", true),
    ("/products/{id}/reviews", "get", "listProductReviews", false),
    (
        "/products/{id}/reviews",
        "post",
        "createProductReview",
        true,
    ),
];

#[actix_web::test]
async fn every_route_is_documented_with_its_security_and_errors() {
    let db = TestDb::new().await;
    let app = app!(&db);
    let doc = app.get("/openapi.json").await.assert_status(200).json();
    for (path, method, operation_id, authenticated) in OPERATIONS {
        let op = &doc["paths"][path][method];
        assert_eq!(op["operationId"], operation_id, "{method} {path}");
        assert_eq!(op["tags"][0], "catalog");
        let security = &op["security"][0][ecom_core::openapi::BEARER];
        assert_eq!(
            security.is_array(),
            authenticated,
            "{operation_id} security"
        );
        let responses = op["responses"].as_object().expect("responses");
        let errors: Vec<&String> = responses.keys().filter(|s| s.starts_with('4')).collect();
        assert!(!errors.is_empty(), "{operation_id} documents its errors");
        for status in errors {
            assert!(
                responses[status]["content"]["application/problem+json"].is_object(),
                "{operation_id} {status} is problem+json"
            );
        }
        if authenticated {
            assert!(responses.contains_key("401"), "{operation_id} 401");
        }
        // The documented method is routed (anything else on a known path is 405).
        let concrete = path.replace("{id}", "1");
        let res = app
            .request(
                method.to_uppercase().parse().expect("method"),
                &concrete,
                None,
                None,
            )
            .await;
        assert_ne!(res.status.as_u16(), 405, "{method} {path} is routed");
    }
    assert_parameters(
        &doc,
        "/products",
        "get",
        &[
            "search",
            "name",
            "category_id",
            "min_price",
            "max_price",
            "in_stock",
            "sort",
            "limit",
            "offset",
            "skip",
        ],
    );
    assert_schemas(
        &doc,
        &[
            "ProductOut",
            "ProductPage",
            "CreateProductRequest",
            "UpdateProductRequest",
            "CreateReviewRequest",
            "CategoryOut",
            "ReviewOut",
        ],
    );
}
