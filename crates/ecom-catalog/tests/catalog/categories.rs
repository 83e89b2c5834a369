use ecom_testkit::{TestDb, access_token as token};
use serde_json::json;

use crate::app;
use crate::support::{ADMIN, product};

#[actix_web::test]
async fn categories_are_listed_by_name_with_live_product_counts() {
    let db = TestDb::new().await;
    let mut conn = db.connect().await;
    product!(&mut conn, "Hammer", "", "10.00", 1, Some("Tools")).await;
    let gone = product!(&mut conn, "Saw", "", "10.00", 1, Some("Tools")).await;
    product!(&mut conn, "Teapot", "", "10.00", 1, Some("Kitchen")).await;
    let app = app!(&db);
    let admin = token(ADMIN);
    app.post("/categories", json!({"name": "Garden"}), Some(&admin))
        .await
        .assert_status(201);
    app.delete(&format!("/products/{gone}"), Some(&admin))
        .await
        .assert_status(204);

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
    let db = TestDb::new().await;
    let app = app!(&db);
    let admin = token(ADMIN);
    let res = app
        .post("/categories", json!({"name": " Garden "}), Some(&admin))
        .await;
    res.assert_status(201);
    let body = res.json();
    assert_eq!(body["name"], "Garden");
    assert_eq!(body["product_count"], 0);
    assert!(body["id"].as_i64().is_some());

    app.post("/categories", json!({"name": "Garden"}), Some(&admin))
        .await
        .assert_problem(409, "category_exists");
    app.post("/categories", json!({"name": "GARDEN"}), Some(&admin))
        .await
        .assert_problem(409, "category_exists");
    app.post("/categories", json!({"name": ""}), Some(&admin))
        .await
        .assert_problem(422, "validation_failed");
    app.post(
        "/categories",
        json!({"name": "x".repeat(101)}),
        Some(&admin),
    )
    .await
    .assert_problem(422, "validation_failed");
    app.post(
        "/categories",
        json!({"name": "Pets", "id": 7}),
        Some(&admin),
    )
    .await
    .assert_problem(422, "validation_failed");
    app.post("/categories", json!({"title": "Pets"}), Some(&admin))
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(app.get("/categories").await.json()["total"], 1);
}
