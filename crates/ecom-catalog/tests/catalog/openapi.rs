use ecom_testkit::fixtures::{assert_parameters, assert_problem_responses, assert_schemas};

use crate::open_shop;

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
    let (_db, app) = open_shop!().await;
    let doc = app.openapi().await;
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
        let errors = assert_problem_responses(op, operation_id);
        assert!(!errors.is_empty(), "{operation_id} documents its errors");
        if authenticated {
            assert!(errors.contains(&"401"), "{operation_id} 401");
        }
        app.assert_routed(method, path).await;
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
