//! Racing requests over a real socket: one cart per user, one merge per guest cart, one
//! order per cart.

use actix_web::http::Method;
use futures_util::future::join_all;
use serde_json::json;

use crate::support::{As, CROWD, SHOPPER, Socket, count, token};

#[actix_web::test]
async fn sixteen_racing_posts_make_one_cart_per_user() {
    let (db, mut conn) = ecom_testkit::TestDb::connected().await;
    let socket = Socket::serve(&db, 20);
    let shopper = token(SHOPPER);
    let answers =
        join_all((0..16).map(|_| socket.send(Method::POST, "/carts", None, As::user(&shopper))))
            .await;
    let created = answers.iter().filter(|(status, _)| *status == 201).count();
    let found = answers.iter().filter(|(status, _)| *status == 200).count();
    assert_eq!((created, found), (1, 15), "{answers:?}");
    let ids: std::collections::BTreeSet<i64> = answers
        .iter()
        .map(|(_, body)| body["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(ids.len(), 1, "every answer is the same cart");
    let sql = format!("SELECT count(*) AS n FROM carts WHERE user_id = {SHOPPER}");
    assert_eq!(count(&mut conn, &sql).await, 1);
    socket.server.stop().await;
}

#[actix_web::test]
async fn of_racing_merges_of_one_guest_cart_exactly_one_applies() {
    let (db, mut conn, [mug]) = ecom_testkit::stocked!(("Mug", "8.50", 50)).await;
    let socket = Socket::serve(&db, 20);
    let (guest, _) = socket.cart_with(As::anonymous(), mug, 2).await;
    let tokens: Vec<String> = (CROWD..CROWD + 8).map(token).collect();
    let mut paths = Vec::new();
    for t in &tokens {
        let (_, own) = socket.send(Method::POST, "/carts", None, As::user(t)).await;
        paths.push(format!("/carts/{}/merge", own["id"]));
    }
    let body = json!({"cart_token": guest["token"]});
    let answers = join_all(
        paths
            .iter()
            .zip(&tokens)
            .map(|(path, t)| socket.send(Method::POST, path, Some(body.clone()), As::user(t))),
    )
    .await;
    let merged: Vec<_> = answers.iter().filter(|(s, _)| *s == 200).collect();
    let missing = answers
        .iter()
        .filter(|(s, b)| *s == 404 && b["code"] == "not_found")
        .count();
    assert_eq!((merged.len(), missing), (1, 7), "{answers:?}");
    assert_eq!(merged[0].1["items"][0]["quantity"], 2);
    let lines = count(&mut conn, "SELECT count(*) AS n FROM cart_lines").await;
    assert_eq!(
        lines, 1,
        "the guest's line went to one cart only, and the guest cart is gone"
    );
    socket.server.stop().await;
}

#[actix_web::test]
async fn twenty_racing_checkouts_of_one_cart_place_one_order() {
    let (db, mut conn, [mug]) = ecom_testkit::stocked!(("Mug", "8.50", 10)).await;
    let socket = Socket::serve(&db, 20);
    let shopper = token(SHOPPER);
    let me = As::user(&shopper);
    let (cart, _) = socket.cart_with(me, mug, 3).await;

    let keys: Vec<String> = (0..20).map(|i| format!("key-{i}")).collect();
    let checkout = format!("/carts/{}/checkout", cart["id"]);
    let answers = join_all(
        keys.iter()
            .map(|k| socket.send(Method::POST, &checkout, None, me.with_key(k))),
    )
    .await;
    let placed = answers.iter().filter(|(s, _)| *s == 201).count();
    let converted = answers
        .iter()
        .filter(|(s, b)| *s == 409 && b["code"] == "cart_converted")
        .count();
    assert_eq!((placed, converted), (1, 19), "{answers:?}");
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM orders").await,
        1
    );
    assert_eq!(socket.product(mug).await["stock"], 7, "stock taken once");

    // Racing replays of the winning key all get the same order.
    let winner = answers
        .iter()
        .position(|(s, _)| *s == 201)
        .expect("a winner");
    let order_id = answers[winner].1["id"].clone();
    let replays = join_all(
        (0..4).map(|_| socket.send(Method::POST, &checkout, None, me.with_key(&keys[winner]))),
    )
    .await;
    for (status, body) in &replays {
        assert_eq!((*status, &body["id"]), (201, &order_id));
    }
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM orders").await,
        1
    );
    socket.server.stop().await;
}

/// Fifty shoppers' carts want one unit each of a variant with 30 in stock, and check out
/// at once: exactly 30 orders, the stock at zero and never below, the rest refused.
#[actix_web::test]
async fn fifty_racing_carts_sell_exactly_the_stock_of_one_variant() {
    let (db, mut conn, [mug]) = ecom_testkit::stocked!(("Mug", "8.50", 30)).await;
    let socket = Socket::serve(&db, 16);
    let tokens: Vec<String> = (CROWD..CROWD + 50).map(token).collect();
    let mut checkouts = Vec::new();
    for t in &tokens {
        let (cart, _) = socket.cart_with(As::user(t), mug, 1).await;
        checkouts.push(format!("/carts/{}/checkout", cart["id"]));
    }
    let answers = join_all(
        checkouts
            .iter()
            .zip(&tokens)
            .map(|(path, t)| socket.send(Method::POST, path, None, As::user(t).with_key("k"))),
    )
    .await;
    let placed = answers.iter().filter(|(s, _)| *s == 201).count();
    let refused = answers
        .iter()
        .filter(|(s, b)| {
            *s == 409 && (b["code"] == "cart_has_problems" || b["code"] == "insufficient_stock")
        })
        .count();
    assert_eq!((placed, refused), (30, 20), "{answers:?}");
    assert_eq!(socket.product(mug).await["stock"], 0);
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM orders").await,
        30
    );
    socket.server.stop().await;
}
