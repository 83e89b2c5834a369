use actix_web::http::Method;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use ecom_catalog::schema::products;
use ecom_testkit::TestDb;
use serde_json::json;

use crate::support::{ADMIN, CREATOR, SHOPPER, ids, product, stocked};
use crate::{app, open_shop};

#[actix_web::test]
async fn create_then_get_a_product() {
    let (_db, app) = open_shop!().await;
    let keyboard = json!({"name": "  Wireless Keyboard ", "description": "Quiet keys", "price": 49.9, "stock": 12});
    let created = app
        .fixed(ADMIN)
        .post("/products", keyboard)
        .await
        .assert_created("/products");
    let id = created["id"].as_i64().expect("id");
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
    app.anonymous()
        .assert_problems([
            ("/products/999999", 404, "not_found"),
            ("/products/abc", 400, "invalid_path"),
        ])
        .await;
}

#[actix_web::test]
async fn a_category_name_creates_the_category_once() {
    let (_db, app) = open_shop!().await;
    let as_admin = app.fixed(ADMIN);
    let first = as_admin.post("/products", json!({"name": "Novel", "description": "", "price": "9.99", "stock": 1, "category_name": "Books"}))
        .await
        .assert_status(201)
        .json();
    let category_id = first["category"]["id"].as_i64().expect("category");
    assert_eq!(first["category"]["name"], "Books");
    // Same name in another case: the same category, not a second one.
    let second = as_admin.post("/products", json!({"name": "Atlas", "description": "", "price": "19.99", "stock": 1, "category_name": "books"}))
        .await
        .assert_status(201)
        .json();
    assert_eq!(second["category"]["id"], category_id);
    let by_id = as_admin.post("/products", json!({"name": "Poems", "description": "", "price": "5", "stock": 1, "category_id": category_id}))
        .await
        .assert_status(201)
        .json();
    assert_eq!(by_id["category"]["name"], "Books");
    let cats = app.get("/categories").await.assert_status(200).json();
    assert_eq!(cats["total"], 1);
    assert_eq!(cats["items"][0]["product_count"], 3);

    as_admin.post("/products", json!({"name": "Ghost", "description": "", "price": "5", "stock": 1, "category_id": 424242}))
    .await
    .assert_problem(422, "unknown_category");
}

#[actix_web::test]
async fn invalid_products_are_422_naming_the_field() {
    let (_db, app) = open_shop!().await;
    let as_admin = app.fixed(ADMIN);
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
        let res = as_admin.post("/products", body).await;
        res.assert_problem(422, "validation_failed");
        assert_eq!(res.json()["errors"][0]["field"], field, "{field} = {value}");
    }
    // No mass assignment: fields the endpoint does not offer are refused.
    for extra in ["review_count", "id", "deleted_at", "role"] {
        let mut body = base.clone();
        body[extra] = json!(1);
        let res = as_admin.post("/products", body).await;
        res.assert_problem(422, "validation_failed");
        assert_eq!(res.json()["errors"][0]["field"], extra);
    }
    let mut both = base.clone();
    both["category_id"] = json!(1);
    both["category_name"] = json!("Books");
    #[rustfmt::skip]
    let cases = [
        ("/products", both, 422, "validation_failed"),
        ("/products", json!({"name": "Mug"}), 422, "validation_failed"),
    ];
    as_admin.assert_writes_refused(Method::POST, cases).await;
    // Nothing was written.
    let listed = app.get("/products").await.json();
    assert_eq!(listed["total"], 0);
}

#[actix_web::test]
async fn writes_need_a_token_and_their_permission() {
    let (db, _, [id]) = stocked!(("Lamp", "20.00", 5)).await;
    let app = app!(&db);
    let body = json!({"name": "Desk", "description": "", "price": "99.00", "stock": 1});
    let path = format!("/products/{id}");

    let res = app.anonymous().post("/products", body.clone()).await;
    res.assert_problem(401, "not_authenticated");
    assert_eq!(res.header("www-authenticate"), Some("Bearer"));
    // Every write; the first is the only one `create:product` allows.
    let writes = [
        (Method::POST, "/products", Some(body.clone())),
        (Method::PUT, &*path, Some(json!({"stock": 1}))),
        (Method::PATCH, &*path, Some(json!({"stock": 1}))),
        (Method::DELETE, &*path, None),
        (Method::POST, "/categories", Some(json!({"name": "X"}))),
    ];
    for (caller, status, code) in [
        (app.anonymous(), 401, "not_authenticated"),
        (app.fixed(SHOPPER), 403, "forbidden"),
    ] {
        caller.assert_refused(status, code, writes.clone()).await;
    }

    let as_creator = app.fixed(CREATOR);
    as_creator.post("/products", body).await.assert_status(201);
    as_creator
        .assert_refused(403, "forbidden", writes[1..].to_vec())
        .await;

    let unchanged = app.get(&path).await.assert_status(200).json();
    assert_eq!(unchanged["stock"], 5);
}

#[actix_web::test]
async fn put_and_patch_change_only_the_fields_sent() {
    let (db, mut conn) = TestDb::connected().await;
    let id = product!(&mut conn, "Lamp", "Warm light", "20.00", 5, Some("Home")).await;
    let app = app!(&db);
    let as_admin = app.fixed(ADMIN);
    let path = format!("/products/{id}");
    let before = app.get(&path).await.json();

    let put = as_admin
        .put(&path, json!({"price": "18.50"}))
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

    let patched = as_admin
        .patch(
            &path,
            json!({"name": "Desk Lamp", "stock": 0, "category_id": null}),
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
    let same = as_admin
        .patch(&path, json!({}))
        .await
        .assert_status(200)
        .json();
    assert_eq!(same, patched);

    as_admin
        .put(&path, json!({"price": "1.001"}))
        .await
        .assert_problem(422, "validation_failed");
    #[rustfmt::skip]
    let cases = [
        (&path, json!({"stock": -3}), 422, "validation_failed"),
        (&path, json!({"review_count": 100}), 422, "validation_failed"),
        (&path, json!({"category_id": 987654}), 422, "unknown_category"),
    ];
    as_admin.assert_writes_refused(Method::PATCH, cases).await;
    as_admin
        .put("/products/987654", json!({"stock": 1}))
        .await
        .assert_problem(404, "not_found");
    assert_eq!(app.get(&path).await.json()["stock"], 0);
}

#[actix_web::test]
async fn deleted_products_leave_the_catalog_but_stay_in_the_database() {
    let (db, mut conn) = TestDb::connected().await;
    let keep = product!(&mut conn, "Kept Lamp", "", "20.00", 5, Some("Home")).await;
    let gone = product!(&mut conn, "Gone Lamp", "", "30.00", 5, Some("Home")).await;
    let app = app!(&db);
    let as_admin = app.fixed(ADMIN);
    let path = format!("/products/{gone}");

    let res = as_admin.delete(&path).await;
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
    as_admin
        .delete(&path)
        .await
        .assert_problem(404, "not_found");
    as_admin
        .patch(&path, json!({"stock": 1}))
        .await
        .assert_problem(404, "not_found");
    app.fixed(SHOPPER)
        .post(&format!("{path}/reviews"), json!({"rating": 5}))
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
    let (_db, app) = open_shop!().await;
    app.fixed(ADMIN)
        .delete("/products")
        .await
        .assert_problem(405, "method_not_allowed");
    app.anonymous()
        .assert_refused(
            405,
            "method_not_allowed",
            [
                (Method::PUT, "/categories", Some(json!({}))),
                (Method::POST, "/products/1", Some(json!({}))),
                (Method::DELETE, "/products/1/reviews", None),
            ],
        )
        .await;
}
