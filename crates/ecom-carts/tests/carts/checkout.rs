//! Checking a cart out into an order.

use actix_web::http::Method;
use serde_json::json;

use crate::shop;
use crate::support::{
    As, OTHER, SHOPPER, call, change_product, get_cart, guest_cart, post_cart, put_item, stock_of,
    token, user_cart, variant_of,
};

#[actix_web::test]
async fn checkout_places_the_order_and_converts_the_cart() {
    let (_db, _conn, [mug, pot], app) = shop!(("Mug", "8.50", 10), ("Pot", "30.00", 5)).await;
    let (mug_v, pot_v) = (variant_of(&app, mug).await, variant_of(&app, pot).await);
    let shopper = token(SHOPPER);
    let id = user_cart(&app, &shopper).await;
    let me = As::user(&shopper);
    put_item(&app, id, mug_v, 3, me).await.assert_status(200);
    put_item(&app, id, pot_v, 1, me).await.assert_status(200);

    let checkout = format!("/carts/{id}/checkout");
    call(&app, Method::POST, &checkout, None, me)
        .await
        .assert_problem(400, "idempotency_key_required");
    let res = call(&app, Method::POST, &checkout, None, me.with_key("k-1")).await;
    res.assert_status(201);
    let order = res.json();
    let order_id = order["id"].as_i64().expect("order id");
    assert_eq!(
        res.header("location"),
        Some(format!("/orders/{order_id}").as_str())
    );
    assert_eq!(order["status"], "pending");
    assert_eq!(order["user_id"], SHOPPER);
    assert_eq!(order["total_price"], "55.50");
    assert_eq!(order["items"].as_array().expect("items").len(), 2);
    assert_eq!(stock_of(&app, mug).await, 7);
    assert_eq!(stock_of(&app, pot).await, 4);
    // The order is exactly what GET /orders/{id} shows.
    let shown = app
        .get_as(format!("/orders/{order_id}"), &shopper)
        .await
        .assert_status(200)
        .json();
    assert_eq!(shown, order);

    let cart = get_cart(&app, id, me).await.assert_status(200).json();
    assert_eq!(cart["status"], "converted");
    assert_eq!(cart["order_id"], order_id);

    // The same key replays the order; another key, or any write, is refused.
    let replay = call(&app, Method::POST, &checkout, None, me.with_key("k-1")).await;
    replay.assert_status(201);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.json(), order);
    call(&app, Method::POST, &checkout, None, me.with_key("k-2"))
        .await
        .assert_problem(409, "cart_converted");
    put_item(&app, id, mug_v, 1, me)
        .await
        .assert_problem(409, "cart_converted");
    assert_eq!(stock_of(&app, mug).await, 7, "taken once");

    // The key is the one `POST /orders` keeps: the same goods replay the cart's order, other
    // goods under it are a reused key.
    let same_goods = json!({"items": [
        {"variant_id": mug_v, "quantity": 3},
        {"variant_id": pot_v, "quantity": 1},
    ]});
    let replayed = call(
        &app,
        Method::POST,
        "/orders",
        Some(same_goods),
        me.with_key("k-1"),
    )
    .await;
    replayed.assert_status(201);
    assert_eq!(replayed.json()["id"], order_id);
    let other_goods = json!({"items": [{"variant_id": mug_v, "quantity": 1}]});
    call(
        &app,
        Method::POST,
        "/orders",
        Some(other_goods),
        me.with_key("k-1"),
    )
    .await
    .assert_problem(422, "idempotency_key_reused");
    assert_eq!(stock_of(&app, mug).await, 7, "still taken once");

    // A converted cart is no longer the active one: the user gets a new cart.
    let fresh = post_cart(&app, me).await;
    fresh.assert_status(201);
    assert_ne!(fresh.json()["id"], id);
}

#[actix_web::test]
async fn an_empty_cart_or_one_with_problems_is_not_checked_out() {
    let (_db, _conn, [mug, pot], app) = shop!(("Mug", "8.50", 10), ("Pot", "30.00", 5)).await;
    let (mug_v, pot_v) = (variant_of(&app, mug).await, variant_of(&app, pot).await);
    let shopper = token(SHOPPER);
    let me = As::user(&shopper);
    let id = user_cart(&app, &shopper).await;
    let checkout = format!("/carts/{id}/checkout");
    call(&app, Method::POST, &checkout, None, me.with_key("k"))
        .await
        .assert_problem(422, "cart_empty");

    put_item(&app, id, mug_v, 2, me).await.assert_status(200);
    put_item(&app, id, pot_v, 4, me).await.assert_status(200);
    change_product(&app, mug, json!({"price": "9.00"})).await;
    change_product(&app, pot, json!({"stock": 1})).await;
    let res = call(&app, Method::POST, &checkout, None, me.with_key("k")).await;
    res.assert_problem(409, "cart_has_problems");
    let mut problems: Vec<(i64, String)> = res.json()["problems"]
        .as_array()
        .expect("the problems are in the body")
        .iter()
        .map(|p| {
            (
                p["variant_id"].as_i64().expect("variant"),
                p["code"].as_str().expect("code").to_string(),
            )
        })
        .collect();
    problems.sort();
    let mut expected = vec![
        (mug_v, "price_changed".to_string()),
        (pot_v, "insufficient_stock".to_string()),
    ];
    expected.sort();
    assert_eq!(problems, expected);
    assert_eq!(stock_of(&app, mug).await, 10, "nothing was ordered");
    let orders = app
        .get_as("/orders", &shopper)
        .await
        .assert_status(200)
        .json();
    assert_eq!(orders["total"], 0);

    // Settled, the same key now places the order.
    put_item(&app, id, mug_v, 2, me).await.assert_status(200);
    put_item(&app, id, pot_v, 1, me).await.assert_status(200);
    let order = call(&app, Method::POST, &checkout, None, me.with_key("k"))
        .await
        .assert_status(201)
        .json();
    assert_eq!(order["total_price"], "48.00");
}

#[actix_web::test]
async fn a_guest_cart_is_checked_out_by_a_signed_in_holder_for_themselves() {
    let (_db, _conn, [mug], app) = shop!(("Mug", "8.50", 10)).await;
    let mug_v = variant_of(&app, mug).await;
    let (id, cart_token) = guest_cart(&app).await;
    put_item(&app, id, mug_v, 1, As::guest(&cart_token))
        .await
        .assert_status(200);
    let checkout = format!("/carts/{id}/checkout");
    call(
        &app,
        Method::POST,
        &checkout,
        None,
        As::guest(&cart_token).with_key("g"),
    )
    .await
    .assert_status(401);
    let other = token(OTHER);
    call(
        &app,
        Method::POST,
        &checkout,
        None,
        As::user(&other).with_key("g"),
    )
    .await
    .assert_problem(404, "not_found");
    let holder = As {
        bearer: Some(&other),
        cart_token: Some(&cart_token),
        idempotency_key: Some("g"),
    };
    let order = call(&app, Method::POST, &checkout, None, holder)
        .await
        .assert_status(201)
        .json();
    assert_eq!(order["user_id"], OTHER, "the order is the caller's");
    // Another signed-in holder of the token cannot replay someone else's order.
    let shopper = token(SHOPPER);
    let someone = As {
        bearer: Some(&shopper),
        ..holder
    };
    call(&app, Method::POST, &checkout, None, someone)
        .await
        .assert_problem(409, "cart_converted");
}
