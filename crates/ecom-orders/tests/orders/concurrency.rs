//! Real parallel requests over a socket: no oversell, no deadlock, idempotency races.

use futures_util::future::join_all;
use serde_json::Value;

use crate::support::{
    CROWD, SHOPPER, body, count, count_rows, orders_server, stock_of, stocked, token,
};

/// Sends `POST /orders` and returns the status and JSON body.
async fn post_order(
    client: &awc::Client,
    url: &str,
    user: i64,
    payload: Value,
    key: Option<&str>,
) -> (u16, Value) {
    let mut req = client
        .post(url)
        .insert_header(("authorization", format!("Bearer {}", token(user))));
    if let Some(key) = key {
        req = req.insert_header(("idempotency-key", key.to_string()));
    }
    let mut res = req.send_json(&payload).await.expect("request sent");
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    (status, body)
}

#[actix_web::test]
async fn two_hundred_racing_orders_never_oversell_fifty_units() {
    let (db, mut conn, [hot]) = stocked!(("Hot item", "9.99", 50)).await;
    let (server, client, url) = orders_server(&db, 16, "/orders");

    let results = join_all(
        (0..200).map(|i| post_order(&client, &url, CROWD + i % 20, body(&[(hot, 1)]), None)),
    )
    .await;
    let created = results.iter().filter(|(s, _)| *s == 201).count();
    let refused = results
        .iter()
        .filter(|(s, b)| *s == 409 && b["code"] == "insufficient_stock")
        .count();
    assert!(results.iter().all(|(s, _)| *s < 500), "no 5xx: {results:?}");
    assert_eq!(created, 50);
    assert_eq!(refused, 150);
    assert_eq!(stock_of(&mut conn, hot).await, 0);
    assert_eq!(count_rows(&mut conn, "orders").await, 50);
    assert_eq!(
        count(
            &mut conn,
            "SELECT coalesce(sum(quantity), 0)::bigint AS n FROM order_lines"
        )
        .await,
        50
    );
    server.stop().await;
}

#[actix_web::test]
async fn opposite_two_line_orders_do_not_deadlock() {
    // 50 orders want 75 units of each: most succeed, some are refused for stock.
    let (db, mut conn, [a, b]) = stocked!(("A", "1.00", 70), ("B", "2.00", 70)).await;
    let (server, client, url) = orders_server(&db, 16, "/orders");

    let results = join_all((0..50).map(|i| {
        let lines = if i % 2 == 0 {
            [(a, 2), (b, 1)]
        } else {
            [(b, 2), (a, 1)]
        };
        post_order(&client, &url, CROWD + i % 20, body(&lines), None)
    }))
    .await;
    assert!(
        results.iter().all(|(s, _)| *s == 201 || *s == 409),
        "{results:?}"
    );
    let created: Vec<&Value> = results
        .iter()
        .filter(|(s, _)| *s == 201)
        .map(|(_, b)| b)
        .collect();
    // Whatever the interleaving, at least 45 fit in 70 units, and not all 50 do.
    assert!(
        (45..50).contains(&created.len()),
        "{} orders",
        created.len()
    );
    let ordered = |product: i64| -> i64 {
        created
            .iter()
            .flat_map(|o| o["items"].as_array().expect("items").iter())
            .filter(|l| l["product_id"] == product)
            .map(|l| l["quantity"].as_i64().expect("quantity"))
            .sum()
    };
    assert_eq!(i64::from(stock_of(&mut conn, a).await), 70 - ordered(a));
    assert_eq!(i64::from(stock_of(&mut conn, b).await), 70 - ordered(b));
    assert!(stock_of(&mut conn, a).await >= 0 && stock_of(&mut conn, b).await >= 0);
    assert_eq!(count_rows(&mut conn, "orders").await, created.len() as i64);
    server.stop().await;
}

#[actix_web::test]
async fn twenty_racing_requests_with_one_key_make_one_order() {
    let (db, mut conn, [mug]) = stocked!(("Mug", "8.50", 100)).await;
    let (server, client, url) = orders_server(&db, 16, "/orders");

    let results = join_all(
        (0..20).map(|_| post_order(&client, &url, SHOPPER, body(&[(mug, 3)]), Some("race-key"))),
    )
    .await;
    assert!(
        results.iter().all(|(s, _)| *s == 201),
        "all 201: {results:?}"
    );
    let first_id = &results[0].1["id"];
    assert!(first_id.is_i64());
    assert!(
        results.iter().all(|(_, b)| &b["id"] == first_id),
        "one order id"
    );
    assert_eq!(count_rows(&mut conn, "orders").await, 1);
    assert_eq!(stock_of(&mut conn, mug).await, 97, "one decrement");

    // A racing different body with the same key is refused, never a second order.
    let mixed = join_all((0..10).map(|i| {
        let qty = if i % 2 == 0 { 1 } else { 2 };
        post_order(
            &client,
            &url,
            SHOPPER,
            body(&[(mug, qty)]),
            Some("mixed-key"),
        )
    }))
    .await;
    assert!(
        mixed
            .iter()
            .all(|(s, b)| *s == 201 || (*s == 422 && b["code"] == "idempotency_key_reused"))
    );
    let ids: std::collections::BTreeSet<i64> = mixed
        .iter()
        .filter(|(s, _)| *s == 201)
        .map(|(_, b)| b["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(ids.len(), 1, "one order for the key");
    assert_eq!(count_rows(&mut conn, "orders").await, 2);
    server.stop().await;
}
