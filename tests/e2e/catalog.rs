//! The catalog through the whole store: anonymous browsing, search and refusals.
//! (Signed-in flows are covered in ecom-catalog's own tests with fixed accounts.)

use ecom_testkit::fixtures::ids;
use ecom_testkit::{TestDb, db_and_app, http_client, spawn_server, test_app};

use crate::store_context;

async fn seeded(db: &TestDb, products: usize) -> ecom_catalog::SeedSummary {
    let mut conn = db.connect().await;
    ecom_catalog::seed_demo(&mut conn, products, &[7001, 7002, 7003])
        .await
        .expect("seed the demo catalog")
}

#[actix_web::test]
async fn shoppers_browse_search_and_read_reviews_without_signing_in() {
    let db = TestDb::new().await;
    let summary = seeded(&db, 300).await;
    let app = test_app(store_context(&db)).await;

    let page = app.get("/products?limit=7").await.assert_status(200).json();
    assert_eq!(page["total"], summary.products);
    assert_eq!(ids(&page).len(), 7);
    let newest: Vec<&str> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| p["created_at"].as_str().expect("created_at"))
        .collect();
    assert!(newest.windows(2).all(|w| w[0] >= w[1]), "newest first");

    let cheap = app.get("/products?sort=price_asc&limit=50").await.json();
    let prices: Vec<f64> = cheap["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| {
            p["min_price"]
                .as_str()
                .expect("price as string")
                .parse()
                .expect("number")
        })
        .collect();
    assert!(
        prices.windows(2).all(|w| w[0] <= w[1]),
        "cheapest variant first"
    );

    let in_stock = app.get("/products?in_stock=true&limit=100").await.json();
    // In stock: some variant has stock (the default's, shown as `stock`, may be sold out).
    assert!(
        in_stock["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|p| {
                p["in_stock"] == true
                    && p["variants"]
                        .as_array()
                        .is_some_and(|vs| vs.iter().any(|v| v["stock"].as_i64() > Some(0)))
            })
    );

    let found = app.get("/products?search=keyboard&limit=100").await.json();
    assert!(found["total"].as_i64() > Some(0));
    assert!(
        found["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|p| p["name"].as_str().expect("name").contains("Keyboard"))
    );
    let alias = app.get("/products?name=keyboard&limit=100").await.json();
    assert_eq!(ids(&alias), ids(&found));

    let categories = app.get("/categories").await.assert_status(200).json();
    assert_eq!(categories["total"], 12);
    let counted: i64 = categories["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| c["product_count"].as_i64().expect("count"))
        .sum();
    assert_eq!(counted, summary.products);

    let rated = app.get("/products?sort=rating&limit=1").await.json();
    let top = &rated["items"][0];
    let id = top["id"].as_i64().expect("id");
    let product = app
        .get(&format!("/products/{id}"))
        .await
        .assert_status(200)
        .json();
    assert_eq!(&product, top);
    let reviews = app
        .get(&format!("/products/{id}/reviews"))
        .await
        .assert_status(200)
        .json();
    assert_eq!(reviews["total"], product["review_count"]);
    app.get("/products/0")
        .await
        .assert_problem(404, "not_found");
}

#[actix_web::test]
async fn catalog_writes_are_refused_without_a_token() {
    let db = TestDb::new().await;
    seeded(&db, 5).await;
    let app = test_app(store_context(&db)).await;
    let id = ids(&app.get("/products").await.json())[0];
    let body = serde_json::json!({"name": "X", "description": "", "price": "1.00", "stock": 1});
    for res in [
        app.anonymous().post("/products", body.clone()).await,
        app.anonymous()
            .put(&format!("/products/{id}"), body.clone())
            .await,
        app.anonymous()
            .patch(&format!("/products/{id}"), body.clone())
            .await,
        app.anonymous().delete_product(id).await,
        app.anonymous()
            .post("/categories", serde_json::json!({"name": "X"}))
            .await,
        app.anonymous()
            .post(
                &format!("/products/{id}/reviews"),
                serde_json::json!({"rating": 5}),
            )
            .await,
    ] {
        res.assert_problem(401, "not_authenticated");
        assert_eq!(res.header("www-authenticate"), Some("Bearer"));
    }
    app.user("forged.token.value")
        .post("/products", body)
        .await
        .assert_problem(401, "invalid_token");
    app.anonymous()
        .assert_problems([
            ("/products?limit=500", 422, "validation_failed"),
            ("/products?sort=cheapest", 422, "validation_failed"),
            ("/products?category_id=abc", 400, "invalid_query"),
        ])
        .await;
    assert_eq!(app.get("/products").await.json()["total"], 5);
}

#[actix_web::test]
async fn the_store_documents_and_serves_the_catalog_over_a_socket() {
    let db = TestDb::new().await;
    seeded(&db, 20).await;
    let app = test_app(store_context(&db)).await;
    let doc = app.openapi().await;
    for path in [
        "/categories",
        "/products",
        "/products/{id}",
        "/products/{id}/reviews",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
    assert_eq!(
        doc["paths"]["/products"]["get"]["operationId"],
        "listProducts"
    );

    let server = spawn_server(store_context(&db));
    let mut res = http_client()
        .get(server.url("/products?limit=3&sort=price_desc"))
        .send()
        .await
        .expect("answers");
    assert_eq!(res.status().as_u16(), 200);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["total"], 20);
    assert_eq!(ids(&body).len(), 3);
    server.stop().await;
}

/// Permissions through real accounts: an admin writes, a shopper cannot, and a custom
/// role grants exactly what it lists.
#[actix_web::test]
async fn catalog_permissions_follow_roles_of_real_accounts() {
    use serde_json::json;
    let (db, app) = db_and_app(store_context).await;
    let admin_id = crate::make_admin(&db, "chief@example.com").await;
    let admin = app.login("chief@example.com", crate::PASSWORD).await;
    let as_admin = app.admin(&admin);
    let (clerk_id, clerk) = app.sign_up("clerk@example.com", crate::PASSWORD).await;
    let as_clerk = app.manager(&clerk);
    let (_, shopper) = app.sign_up("shopper@example.com", crate::PASSWORD).await;
    let as_shopper = app.shopper(&shopper);

    let product = json!({"name": "Teapot", "description": "Cast iron", "price": "24.50", "stock": 5, "category_name": "Kitchen"});
    let created = as_admin.post("/products", product.clone()).await;
    created.assert_status(201);
    let id = created.json()["id"].as_i64().expect("id");
    as_shopper
        .post("/products", product.clone())
        .await
        .assert_problem(403, "forbidden");

    let mut conn = db.connect().await;
    ecom_auth::service::roles::put_role(
        &mut conn,
        &crate::acting_admin(admin_id),
        "clerk",
        &["create:product".into()],
    )
    .await
    .expect("role");
    ecom_auth::service::roles::change_role(
        &mut conn,
        &crate::acting_admin(admin_id),
        clerk_id,
        "clerk",
    )
    .await
    .expect("grant");
    as_clerk
        .post(
            "/products",
            json!({"name": "Mug", "description": "", "price": 5, "stock": 1}),
        )
        .await
        .assert_status(201);
    as_clerk
        .delete_product(id)
        .await
        .assert_problem(403, "forbidden");

    let review = as_shopper
        .post(
            &format!("/products/{id}/reviews"),
            json!({"rating": 4, "comment": "Pours well"}),
        )
        .await;
    review.assert_status(201);
    as_shopper
        .post(
            &format!("/products/{id}/reviews"),
            json!({"rating": 5, "comment": "again"}),
        )
        .await
        .assert_status(409);
    let read = app.get(&format!("/products/{id}")).await.json();
    assert_eq!(read["review_count"], 1);
    assert_eq!(read["avg_rating"], 4.0);

    as_admin.delete_product(id).await.assert_status(204);
    app.get(&format!("/products/{id}"))
        .await
        .assert_problem(404, "not_found");
}
