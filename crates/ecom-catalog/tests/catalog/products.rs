use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use ecom_catalog::schema::products;
use ecom_testkit::{TestDb, access_token as token};
use serde_json::json;

use crate::app;
use crate::support::{ADMIN, CREATOR, SHOPPER, ids, product};

#[actix_web::test]
async fn create_then_get_a_product() {
    let db = TestDb::new().await;
    let app = app!(&db);
    let res = app
        .post(
            "/products",
            json!({"name": "  Wireless Keyboard ", "description": "Quiet keys", "price": 49.9, "stock": 12}),
            Some(&token(ADMIN)),
        )
        .await;
    res.assert_status(201);
    let created = res.json();
    let id = created["id"].as_i64().expect("id");
    assert_eq!(
        res.header("location"),
        Some(format!("/products/{id}").as_str())
    );
    assert_eq!(created["name"], "Wireless Keyboard");
    assert_eq!(created["price"], "49.90");
    assert_eq!(created["stock"], 12);
    assert_eq!(created["category"], serde_json::Value::Null);
    assert_eq!(created["avg_rating"], serde_json::Value::Null);
    assert_eq!(created["review_count"], 0);
    assert!(created["created_at"].as_str().expect("time").ends_with('Z'));

    let got = app
        .get(&format!("/products/{id}"))
        .await
        .assert_status(200)
        .json();
    assert_eq!(got, created);
    app.get("/products/999999")
        .await
        .assert_problem(404, "not_found");
    app.get("/products/abc")
        .await
        .assert_problem(400, "invalid_path");
}

#[actix_web::test]
async fn a_category_name_creates_the_category_once() {
    let db = TestDb::new().await;
    let app = app!(&db);
    let admin = token(ADMIN);
    let first = app
        .post(
            "/products",
            json!({"name": "Novel", "description": "", "price": "9.99", "stock": 1, "category_name": "Books"}),
            Some(&admin),
        )
        .await
        .assert_status(201)
        .json();
    let category_id = first["category"]["id"].as_i64().expect("category");
    assert_eq!(first["category"]["name"], "Books");
    // Same name in another case: the same category, not a second one.
    let second = app
        .post(
            "/products",
            json!({"name": "Atlas", "description": "", "price": "19.99", "stock": 1, "category_name": "books"}),
            Some(&admin),
        )
        .await
        .assert_status(201)
        .json();
    assert_eq!(second["category"]["id"], category_id);
    let by_id = app
        .post(
            "/products",
            json!({"name": "Poems", "description": "", "price": "5", "stock": 1, "category_id": category_id}),
            Some(&admin),
        )
        .await
        .assert_status(201)
        .json();
    assert_eq!(by_id["category"]["name"], "Books");
    let cats = app.get("/categories").await.assert_status(200).json();
    assert_eq!(cats["total"], 1);
    assert_eq!(cats["items"][0]["product_count"], 3);

    app.post(
        "/products",
        json!({"name": "Ghost", "description": "", "price": "5", "stock": 1, "category_id": 424242}),
        Some(&admin),
    )
    .await
    .assert_problem(422, "unknown_category");
}

#[actix_web::test]
async fn invalid_products_are_422_naming_the_field() {
    let db = TestDb::new().await;
    let app = app!(&db);
    let admin = token(ADMIN);
    let base = json!({"name": "Mug", "description": "", "price": "9.99", "stock": 3});
    let cases = [
        ("price", json!(9.999)),
        ("price", json!("9.999")),
        ("price", json!(0)),
        ("price", json!("-1.00")),
        ("price", json!("100000000.00")),
        ("price", json!("nine")),
        ("stock", json!(-1)),
        ("stock", json!(3_000_000_000_i64)),
        ("name", json!("   ")),
        ("name", json!("x".repeat(201))),
    ];
    for (field, value) in cases {
        let mut body = base.clone();
        body[field] = value.clone();
        let res = app.post("/products", body, Some(&admin)).await;
        res.assert_problem(422, "validation_failed");
        assert_eq!(res.json()["errors"][0]["field"], field, "{field} = {value}");
    }
    // No mass assignment: fields the endpoint does not offer are refused.
    for extra in ["review_count", "id", "deleted_at", "role"] {
        let mut body = base.clone();
        body[extra] = json!(1);
        let res = app.post("/products", body, Some(&admin)).await;
        res.assert_problem(422, "validation_failed");
        assert_eq!(res.json()["errors"][0]["field"], extra);
    }
    let mut both = base.clone();
    both["category_id"] = json!(1);
    both["category_name"] = json!("Books");
    app.post("/products", both, Some(&admin))
        .await
        .assert_problem(422, "validation_failed");
    app.post("/products", json!({"name": "Mug"}), Some(&admin))
        .await
        .assert_problem(422, "validation_failed");
    // Nothing was written.
    let listed = app.get("/products").await.json();
    assert_eq!(listed["total"], 0);
}

#[actix_web::test]
async fn writes_need_a_token_and_their_permission() {
    let db = TestDb::new().await;
    let mut conn = db.connect().await;
    let id = product!(&mut conn, "Lamp", "20.00", 5).await;
    let app = app!(&db);
    let body = json!({"name": "Desk", "description": "", "price": "99.00", "stock": 1});
    let path = format!("/products/{id}");

    let res = app.post("/products", body.clone(), None).await;
    res.assert_problem(401, "not_authenticated");
    assert_eq!(res.header("www-authenticate"), Some("Bearer"));
    app.put(&path, json!({"stock": 1}), None)
        .await
        .assert_problem(401, "not_authenticated");
    app.patch(&path, json!({"stock": 1}), None)
        .await
        .assert_problem(401, "not_authenticated");
    app.delete(&path, None)
        .await
        .assert_problem(401, "not_authenticated");
    app.post("/categories", json!({"name": "X"}), None)
        .await
        .assert_problem(401, "not_authenticated");

    let shopper = token(SHOPPER);
    app.post("/products", body.clone(), Some(&shopper))
        .await
        .assert_problem(403, "forbidden");
    app.put(&path, json!({"stock": 1}), Some(&shopper))
        .await
        .assert_problem(403, "forbidden");
    app.patch(&path, json!({"stock": 1}), Some(&shopper))
        .await
        .assert_problem(403, "forbidden");
    app.delete(&path, Some(&shopper))
        .await
        .assert_problem(403, "forbidden");
    app.post("/categories", json!({"name": "X"}), Some(&shopper))
        .await
        .assert_problem(403, "forbidden");

    // `create:product` creates, and nothing more.
    let creator = token(CREATOR);
    app.post("/products", body, Some(&creator))
        .await
        .assert_status(201);
    app.put(&path, json!({"stock": 1}), Some(&creator))
        .await
        .assert_problem(403, "forbidden");
    app.delete(&path, Some(&creator))
        .await
        .assert_problem(403, "forbidden");
    app.post("/categories", json!({"name": "X"}), Some(&creator))
        .await
        .assert_problem(403, "forbidden");

    let unchanged = app.get(&path).await.assert_status(200).json();
    assert_eq!(unchanged["stock"], 5);
}

#[actix_web::test]
async fn put_and_patch_change_only_the_fields_sent() {
    let db = TestDb::new().await;
    let mut conn = db.connect().await;
    let id = product!(&mut conn, "Lamp", "Warm light", "20.00", 5, Some("Home")).await;
    let app = app!(&db);
    let admin = token(ADMIN);
    let path = format!("/products/{id}");
    let before = app.get(&path).await.json();

    let put = app
        .put(&path, json!({"price": "18.50"}), Some(&admin))
        .await
        .assert_status(200)
        .json();
    assert_eq!(put["price"], "18.50");
    assert_eq!(put["name"], "Lamp");
    assert_eq!(put["description"], "Warm light");
    assert_eq!(put["stock"], 5);
    assert_eq!(put["category"], before["category"]);
    assert!(put["updated_at"].as_str() > before["updated_at"].as_str());
    assert_eq!(put["created_at"], before["created_at"]);

    let patched = app
        .patch(
            &path,
            json!({"name": "Desk Lamp", "stock": 0, "category_id": null}),
            Some(&admin),
        )
        .await
        .assert_status(200)
        .json();
    assert_eq!(patched["name"], "Desk Lamp");
    assert_eq!(patched["stock"], 0);
    assert_eq!(patched["price"], "18.50");
    assert_eq!(patched["category"], serde_json::Value::Null);
    assert_eq!(app.get(&path).await.json(), patched);

    // An empty body changes nothing.
    let same = app
        .patch(&path, json!({}), Some(&admin))
        .await
        .assert_status(200)
        .json();
    assert_eq!(same, patched);

    app.put(&path, json!({"price": "1.001"}), Some(&admin))
        .await
        .assert_problem(422, "validation_failed");
    app.patch(&path, json!({"stock": -3}), Some(&admin))
        .await
        .assert_problem(422, "validation_failed");
    app.patch(&path, json!({"review_count": 100}), Some(&admin))
        .await
        .assert_problem(422, "validation_failed");
    app.patch(&path, json!({"category_id": 987654}), Some(&admin))
        .await
        .assert_problem(422, "unknown_category");
    app.put("/products/987654", json!({"stock": 1}), Some(&admin))
        .await
        .assert_problem(404, "not_found");
    assert_eq!(app.get(&path).await.json()["stock"], 0);
}

#[actix_web::test]
async fn deleted_products_leave_the_catalog_but_stay_in_the_database() {
    let db = TestDb::new().await;
    let mut conn = db.connect().await;
    let keep = product!(&mut conn, "Kept Lamp", "", "20.00", 5, Some("Home")).await;
    let gone = product!(&mut conn, "Gone Lamp", "", "30.00", 5, Some("Home")).await;
    let app = app!(&db);
    let admin = token(ADMIN);
    let path = format!("/products/{gone}");

    let res = app.delete(&path, Some(&admin)).await;
    res.assert_status(204);
    assert!(res.body.is_empty());

    app.get(&path).await.assert_problem(404, "not_found");
    let listed = app.get("/products").await.json();
    assert_eq!(ids(&listed), vec![keep]);
    assert_eq!(listed["total"], 1);
    let searched = app.get("/products?search=lamp").await.json();
    assert_eq!(ids(&searched), vec![keep]);
    let cats = app.get("/categories").await.json();
    assert_eq!(cats["items"][0]["product_count"], 1);
    app.delete(&path, Some(&admin))
        .await
        .assert_problem(404, "not_found");
    app.patch(&path, json!({"stock": 1}), Some(&admin))
        .await
        .assert_problem(404, "not_found");
    app.post(
        &format!("{path}/reviews"),
        json!({"rating": 5}),
        Some(&token(SHOPPER)),
    )
    .await
    .assert_problem(404, "not_found");
    app.get(&format!("{path}/reviews"))
        .await
        .assert_problem(404, "not_found");

    // The row is still there for order history.
    let (name, deleted): (String, Option<chrono::DateTime<chrono::Utc>>) = products::table
        .find(gone)
        .select((products::name, products::deleted_at))
        .first(&mut conn)
        .await
        .expect("row kept");
    assert_eq!(name, "Gone Lamp");
    assert!(deleted.is_some());
}

#[actix_web::test]
async fn other_methods_are_405() {
    let db = TestDb::new().await;
    let app = app!(&db);
    app.delete("/products", Some(&token(ADMIN)))
        .await
        .assert_problem(405, "method_not_allowed");
    app.put("/categories", json!({}), None)
        .await
        .assert_problem(405, "method_not_allowed");
    app.post("/products/1", json!({}), None)
        .await
        .assert_problem(405, "method_not_allowed");
    app.delete("/products/1/reviews", None)
        .await
        .assert_problem(405, "method_not_allowed");
}
