//! Merging a guest cart into the signed-in owner's cart.

use actix_web::http::Method;
use serde_json::json;

use crate::shop;
use crate::support::{
    As, OTHER, SHOPPER, call, get_cart, guest_cart, put_item, quantity_in, token, user_cart,
    variant_of,
};

#[actix_web::test]
async fn merge_takes_the_larger_of_own_and_the_capped_sum_then_the_guest_cart_is_gone() {
    let (_db, _conn, [mug, pot, lamp, bulk, tea], app) = shop!(
        ("Mug", "8.50", 6),
        ("Pot", "30.00", 5),
        ("Lamp", "12.00", 2),
        ("Bulk", "1.00", 5000),
        ("Tea", "4.00", 9),
    )
    .await;
    let mut v = Vec::new();
    for p in [mug, pot, lamp, bulk, tea] {
        v.push(variant_of(&app, p).await);
    }
    let [mug, pot, lamp, bulk, tea] = v[..] else {
        unreachable!()
    };
    let shopper = token(SHOPPER);
    let own = user_cart(&app, &shopper).await;
    for (variant, q) in [(mug, 2), (lamp, 4), (bulk, 900), (tea, 3)] {
        // The lamp's 4 exceed its stock of 2: PUT allows it, the cart shows the problem.
        put_item(&app, own, variant, q, As::user(&shopper))
            .await
            .assert_status(200);
    }
    let (guest, guest_token) = guest_cart(&app).await;
    for (variant, q) in [(mug, 5), (pot, 3), (lamp, 3), (bulk, 300)] {
        put_item(&app, guest, variant, q, As::guest(&guest_token))
            .await
            .assert_status(200);
    }

    let merge = format!("/carts/{own}/merge");
    let body = json!({"cart_token": guest_token});
    let cart = call(
        &app,
        Method::POST,
        &merge,
        Some(body.clone()),
        As::user(&shopper),
    )
    .await
    .assert_status(200)
    .json();
    assert_eq!(quantity_in(&cart, mug), 6, "min(2 + 5, 1000, 6 available)");
    assert_eq!(quantity_in(&cart, pot), 3, "new to the own cart");
    assert_eq!(quantity_in(&cart, lamp), 4, "never below the own quantity");
    assert_eq!(quantity_in(&cart, bulk), 1000, "capped at 1000");
    assert_eq!(quantity_in(&cart, tea), 3, "only in the own cart");

    // The guest cart is gone: its token reads nothing and merges nothing.
    get_cart(&app, guest, As::guest(&guest_token))
        .await
        .assert_problem(404, "not_found");
    call(&app, Method::POST, &merge, Some(body), As::user(&shopper))
        .await
        .assert_problem(404, "not_found");
}

#[actix_web::test]
async fn only_the_signed_in_owner_merges_and_only_a_guest_cart() {
    let (_db, _conn, [mug], app) = shop!(("Mug", "8.50", 6)).await;
    let mug = variant_of(&app, mug).await;
    let shopper = token(SHOPPER);
    let own = user_cart(&app, &shopper).await;
    let theirs = user_cart(&app, &token(OTHER)).await;
    let (guest, guest_token) = guest_cart(&app).await;
    put_item(&app, guest, mug, 1, As::guest(&guest_token))
        .await
        .assert_status(200);
    let body = json!({"cart_token": guest_token});

    let merge = format!("/carts/{own}/merge");
    call(
        &app,
        Method::POST,
        &merge,
        Some(body.clone()),
        As::guest(&guest_token),
    )
    .await
    .assert_status(401);
    call(
        &app,
        Method::POST,
        &merge,
        Some(body.clone()),
        As::user(&token(OTHER)),
    )
    .await
    .assert_problem(404, "not_found");
    call(
        &app,
        Method::POST,
        &format!("/carts/{theirs}/merge"),
        Some(body.clone()),
        As::user(&shopper),
    )
    .await
    .assert_problem(404, "not_found");
    call(
        &app,
        Method::POST,
        &merge,
        Some(json!({"cart_token": "0".repeat(64)})),
        As::user(&shopper),
    )
    .await
    .assert_problem(404, "not_found");
    // The guest cart was untouched by the refusals.
    let cart = get_cart(&app, guest, As::guest(&guest_token))
        .await
        .assert_status(200)
        .json();
    assert_eq!(quantity_in(&cart, mug), 1);
    let cart = call(&app, Method::POST, &merge, Some(body), As::user(&shopper))
        .await
        .assert_status(200)
        .json();
    assert_eq!(quantity_in(&cart, mug), 1);
}
