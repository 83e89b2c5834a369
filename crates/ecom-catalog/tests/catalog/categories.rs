use actix_web::http::Method;
use ecom_testkit::TestDb;
use serde_json::json;

use crate::support::{ADMIN, product};
use crate::{app, open_shop};

#[actix_web::test]
async fn categories_are_listed_by_name_with_live_product_counts() {
    let (db, mut conn) = TestDb::connected().await;
    product!(&mut conn, "Hammer", "", "10.00", 1, Some("Tools")).await;
    let gone = product!(&mut conn, "Saw", "", "10.00", 1, Some("Tools")).await;
    product!(&mut conn, "Teapot", "", "10.00", 1, Some("Kitchen")).await;
    let app = app!(&db);
    let as_admin = app.fixed(ADMIN);
    as_admin
        .post("/categories", json!({"name": "Garden"}))
        .await
        .assert_status(201);
    as_admin.delete_product(gone).await.assert_status(204);

    let list = app.get("/categories").await.assert_status(200).json();
    assert_eq!(list["total"], 3);
    let items: Vec<(String, i64)> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().expect("name").to_string(),
                c["product_count"].as_i64().expect("count"),
            )
        })
        .collect();
    assert_eq!(
        items,
        vec![
            ("Garden".into(), 0),
            ("Kitchen".into(), 1),
            ("Tools".into(), 1)
        ]
    );
    let page = app.get("/categories?limit=1&offset=1").await.json();
    assert_eq!(page["items"][0]["name"], "Kitchen");
    assert_eq!(page["total"], 3);
}

#[actix_web::test]
async fn creating_a_category() {
    let (_db, app) = open_shop!().await;
    let as_admin = app.fixed(ADMIN);
    let res = as_admin
        .post("/categories", json!({"name": " Garden "}))
        .await;
    res.assert_status(201);
    let body = res.json();
    assert_eq!(body["name"], "Garden");
    assert_eq!(body["product_count"], 0);
    assert!(body["id"].as_i64().is_some());

    #[rustfmt::skip]
    let cases = [
        ("/categories", json!({"name": "Garden"}), 409, "category_exists"),
        ("/categories", json!({"name": "GARDEN"}), 409, "category_exists"),
        ("/categories", json!({"name": ""}), 422, "validation_failed"),
        ("/categories", json!({"name": "x".repeat(101)}), 422, "validation_failed"),
        ("/categories", json!({"name": "Pets", "id": 7}), 422, "validation_failed"),
        ("/categories", json!({"title": "Pets"}), 422, "validation_failed"),
    ];
    as_admin.assert_writes_refused(Method::POST, cases).await;
    assert_eq!(app.get("/categories").await.json()["total"], 1);
}

/// Length limits hold for names as sent (what the OpenAPI schema promises); what is stored
/// is trimmed.
#[test]
fn names_over_the_limit_as_sent_are_refused() {
    use ecom_catalog::api::{CreateCategoryRequest, CreateProductRequest};
    let category = |name: String| CreateCategoryRequest { name }.validate();
    assert!(category(format!(" {}", "a".repeat(100))).is_err());
    assert_eq!(category("a".repeat(100)).ok(), Some("a".repeat(100)));
    assert_eq!(category("  Tools ".into()).ok().as_deref(), Some("Tools"));
    assert!(category("   ".into()).is_err());

    let product = |name: String| CreateProductRequest {
        name,
        description: String::new(),
        price: Some(json!("9.99")),
        stock: Some(1),
        variants: None,
        category_id: None,
        category_name: None,
    };
    assert!(
        product(format!("{}\t", "b".repeat(200)))
            .validate()
            .is_err()
    );
    assert!(product("b".repeat(200)).validate().is_ok());
}
