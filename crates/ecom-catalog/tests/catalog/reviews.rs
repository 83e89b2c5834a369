use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use ecom_catalog::model::NewReview;
use ecom_catalog::schema::products;
use ecom_catalog::service;
use ecom_testkit::TestDb;
use serde_json::json;

use crate::open_shop;
use crate::support::{ADMIN, OTHER, SHOPPER, product, stocked};

/// A product to review on `db`: its id and its reviews path.
async fn teapot(db: &TestDb) -> (i64, String) {
    let mut conn = db.connect().await;
    let id = product!(&mut conn, "Teapot", "25.00", 3).await;
    (id, format!("/products/{id}/reviews"))
}

#[actix_web::test]
async fn reviews_update_the_rating_aggregates() {
    let (_db, (id, path), app) = open_shop!(teapot).await;

    let res = app
        .fixed(SHOPPER)
        .post(&path, json!({"rating": 5, "comment": "Lovely"}))
        .await;
    res.assert_status(201);
    let review = res.json();
    assert_eq!(review["user_id"], SHOPPER);
    assert_eq!(review["product_id"], id);
    assert_eq!(review["rating"], 5);
    assert_eq!(review["comment"], "Lovely");
    assert!(review["id"].as_i64().is_some());
    assert!(review["created_at"].as_str().is_some());

    app.fixed(OTHER)
        .post(&path, json!({"rating": 4}))
        .await
        .assert_status(201);
    app.fixed(ADMIN)
        .post(&path, json!({"rating": 2, "comment": null}))
        .await
        .assert_status(201);

    let got = app.get(&format!("/products/{id}")).await.json();
    assert_eq!(got["review_count"], 3);
    assert_eq!(got["avg_rating"], 3.67);
    let listed = app.get("/products").await.json();
    assert_eq!(listed["items"][0]["review_count"], 3);
    assert_eq!(listed["items"][0]["avg_rating"], 3.67);
}

#[actix_web::test]
async fn a_second_review_by_the_same_user_is_409_and_changes_nothing() {
    let (_db, (id, path), app) = open_shop!(teapot).await;
    let as_shopper = app.fixed(SHOPPER);
    as_shopper
        .post(&path, json!({"rating": 5}))
        .await
        .assert_status(201);
    as_shopper
        .post(&path, json!({"rating": 1}))
        .await
        .assert_problem(409, "already_reviewed");
    let got = app.get(&format!("/products/{id}")).await.json();
    assert_eq!(got["review_count"], 1);
    assert_eq!(got["avg_rating"], 5.0);
    assert_eq!(app.get(&path).await.json()["total"], 1);
}

#[actix_web::test]
async fn invalid_reviews_are_refused() {
    let (_db, (id, path), app) = open_shop!(teapot).await;
    let as_shopper = app.fixed(SHOPPER);
    let res = app.anonymous().post(&path, json!({"rating": 5})).await;
    res.assert_problem(401, "not_authenticated");
    assert_eq!(res.header("www-authenticate"), Some("Bearer"));
    for body in [
        json!({"rating": 0}),
        json!({"rating": 6}),
        json!({"rating": -1}),
        json!({"rating": 5, "comment": "x".repeat(5001)}),
        json!({"rating": 5, "user_id": 99}),
        json!({"comment": "no rating"}),
    ] {
        as_shopper
            .post(&path, body)
            .await
            .assert_problem(422, "validation_failed");
    }
    as_shopper
        .post("/products/987654/reviews", json!({"rating": 5}))
        .await
        .assert_problem(404, "not_found");
    let got = app.get(&format!("/products/{id}")).await.json();
    assert_eq!(got["review_count"], 0);
}

#[actix_web::test]
async fn reviews_are_listed_newest_first() {
    let (_db, (_, path), app) = open_shop!(teapot).await;
    for (user, rating) in [(SHOPPER, 3), (OTHER, 4), (ADMIN, 5)] {
        app.fixed(user)
            .post(&path, json!({"rating": rating}))
            .await
            .assert_status(201);
    }
    let list = app.get(&path).await.assert_status(200).json();
    assert_eq!(list["total"], 3);
    let ratings: Vec<&serde_json::Value> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|r| &r["rating"])
        .collect();
    assert_eq!(ratings, [5, 4, 3]);
    let page = app.get(&format!("{path}?limit=1&offset=1")).await.json();
    assert_eq!(page["items"][0]["rating"], 4);
    assert_eq!(page["total"], 3);
    assert_eq!(page["limit"], 1);
    app.get("/products/987654/reviews")
        .await
        .assert_problem(404, "not_found");
}

#[actix_web::test]
async fn concurrent_reviews_keep_the_aggregates_exact() {
    let (db, mut conn, [id]) = stocked!(("Teapot", "25.00", 3)).await;
    let pool = db.pool();
    let tasks = (1..=40_i64).map(|user| {
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut conn = pool.get().await.expect("conn");
            let rating = (user % 5 + 1) as i16;
            service::create_review(
                &mut conn,
                id,
                user,
                NewReview {
                    rating,
                    comment: None,
                },
            )
            .await
            .expect("review");
        })
    });
    for t in futures_util::future::join_all(tasks).await {
        t.expect("task");
    }
    let (count, sum): (i32, i64) = products::table
        .find(id)
        .select((products::review_count, products::rating_sum))
        .first(&mut conn)
        .await
        .expect("product");
    assert_eq!(count, 40);
    let expected: i64 = (1..=40_i64).map(|u| u % 5 + 1).sum();
    assert_eq!(sum, expected);
}
