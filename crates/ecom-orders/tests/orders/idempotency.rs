//! `Idempotency-Key` on POST /orders (sequential cases; the race is in `concurrency`).

use actix_web::test::TestRequest;
use diesel_async::RunQueryDsl;
use serde_json::Value;

use crate::shop;
use crate::support::{OTHER, SHOPPER, body, count, count_rows, stock_of, token};

fn keyed(key: &str, user: i64, payload: Value) -> TestRequest {
    TestRequest::post()
        .uri("/orders")
        .insert_header(("authorization", format!("Bearer {}", token(user))))
        .insert_header(("idempotency-key", key.to_string()))
        .set_json(payload)
}

#[actix_web::test]
async fn the_same_key_and_body_replay_the_first_order() {
    let (_db, mut conn, [mug, pot], app) = shop!(("Mug", "8.50", 10), ("Pot", "30.00", 10)).await;

    let first = app
        .send(keyed("k-1", SHOPPER, body(&[(mug, 2), (pot, 1)])))
        .await;
    first.assert_status(201);
    assert_eq!(first.header("idempotent-replayed"), None);
    let again = app
        .send(keyed("k-1", SHOPPER, body(&[(mug, 2), (pot, 1)])))
        .await;
    again.assert_status(201);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json(), first.json(), "the first 201 body, replayed");
    assert_eq!(again.header("location"), first.header("location"));
    // The same goods in another line order (or split) are the same request.
    let reordered = app
        .send(keyed("k-1", SHOPPER, body(&[(pot, 1), (mug, 1), (mug, 1)])))
        .await;
    reordered.assert_status(201);
    assert_eq!(reordered.json()["id"], first.json()["id"]);
    assert_eq!(stock_of(&mut conn, mug).await, 8, "one decrement");
    assert_eq!(stock_of(&mut conn, pot).await, 9);
    assert_eq!(count_rows(&mut conn, "orders").await, 1);

    // Same key, different body: refused, nothing ordered.
    app.send(keyed("k-1", SHOPPER, body(&[(mug, 3)])))
        .await
        .assert_problem(422, "idempotency_key_reused");
    assert_eq!(stock_of(&mut conn, mug).await, 8);

    // Keys belong to a user: another user's identical key is a new order.
    let theirs = app
        .send(keyed("k-1", OTHER, body(&[(mug, 2), (pot, 1)])))
        .await;
    theirs.assert_status(201);
    assert_ne!(theirs.json()["id"], first.json()["id"]);
    // A new key is a new order.
    let fresh = app
        .send(keyed("k-2", SHOPPER, body(&[(mug, 2), (pot, 1)])))
        .await;
    assert_ne!(fresh.assert_status(201).json()["id"], first.json()["id"]);
    assert_eq!(stock_of(&mut conn, mug).await, 4);
    // Without a key, every request is an order.
    app.fixed(SHOPPER).place_order(&[(mug, 1)]).await;
    app.fixed(SHOPPER).place_order(&[(mug, 1)]).await;
    assert_eq!(stock_of(&mut conn, mug).await, 2);
}

#[actix_web::test]
async fn a_refused_request_is_not_remembered() {
    let (_db, mut conn, [mug], app) = shop!(("Mug", "8.50", 1)).await;

    app.send(keyed("retry-me", SHOPPER, body(&[(mug, 2)])))
        .await
        .assert_problem(409, "insufficient_stock");
    assert_eq!(count_rows(&mut conn, "order_idempotency").await, 0);
    app.fixed(crate::support::ADMIN)
        .put(&format!("/products/{mug}"), serde_json::json!({"stock": 5}))
        .await
        .assert_status(200);
    let res = app
        .send(keyed("retry-me", SHOPPER, body(&[(mug, 2)])))
        .await;
    res.assert_status(201);
    assert_eq!(res.header("idempotent-replayed"), None);
    assert_eq!(stock_of(&mut conn, mug).await, 3);
}

#[actix_web::test]
async fn bad_keys_are_422() {
    let (_db, mut conn, [mug], app) = shop!(("Mug", "8.50", 10)).await;
    for key in ["".to_string(), "x".repeat(256), "has space".to_string()] {
        let res = app.send(keyed(&key, SHOPPER, body(&[(mug, 1)]))).await;
        res.assert_problem(422, "validation_failed");
        assert_eq!(res.json()["errors"][0]["field"], "Idempotency-Key");
    }
    app.send(keyed(&"x".repeat(255), SHOPPER, body(&[(mug, 1)])))
        .await
        .assert_status(201);
    assert_eq!(stock_of(&mut conn, mug).await, 9);
}

#[actix_web::test]
async fn expired_keys_start_over_and_are_cleaned_up() {
    let (_db, mut conn, [mug], app) = shop!(("Mug", "8.50", 10)).await;

    let first = app.send(keyed("old", SHOPPER, body(&[(mug, 1)]))).await;
    first.assert_status(201);
    app.send(keyed("stale", OTHER, body(&[(mug, 1)])))
        .await
        .assert_status(201);
    let expiry = count(
        &mut conn,
        "SELECT count(*) AS n FROM order_idempotency \
         WHERE expires_at BETWEEN created_at + interval '23 hours 59 minutes' AND created_at + interval '24 hours'",
    )
    .await;
    assert_eq!(expiry, 2, "records live 24 hours");
    // A day later...
    diesel::sql_query(
        "UPDATE order_idempotency SET created_at = now() - interval '25 hours', \
                                     expires_at = now() - interval '1 hour'",
    )
    .execute(&mut conn)
    .await
    .expect("age the records");

    // The same key and body after expiry is a new order, and a different body is no
    // longer a reuse.
    let later = app.send(keyed("old", SHOPPER, body(&[(mug, 1)]))).await;
    later.assert_status(201);
    assert_ne!(later.json()["id"], first.json()["id"]);
    assert_eq!(stock_of(&mut conn, mug).await, 7);
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM order_idempotency WHERE expires_at > now()"
        )
        .await,
        1
    );

    diesel::sql_query("UPDATE order_idempotency SET expires_at = now() - interval '1 second'")
        .execute(&mut conn)
        .await
        .expect("expire");
    // The periodic clean-up takes both: the re-used key's record and the other user's.
    let purged = ecom_orders::service::purge_expired_idempotency(&mut conn, 1000)
        .await
        .expect("purge");
    assert_eq!(purged, 2);
}
