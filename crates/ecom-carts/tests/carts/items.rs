//! Setting and removing lines: absolute quantities, 0 removes, unknown variants, full carts.

use actix_web::http::Method;
use serde_json::json;

use crate::shop;
use crate::support::{As, call, guest_cart, put_item, quantity_in, variant_of};

#[actix_web::test]
async fn put_sets_absolute_quantities_and_zero_or_delete_removes() {
    let (_db, _conn, [mug, pot], app) = shop!(("Mug", "8.50", 10), ("Pot", "30.00", 5)).await;
    let (mug, pot) = (variant_of(&app, mug).await, variant_of(&app, pot).await);
    let (id, token) = guest_cart(&app).await;
    let guest = As::guest(&token);

    let cart = put_item(&app, id, mug, 2, guest)
        .await
        .assert_status(200)
        .json();
    assert_eq!(quantity_in(&cart, mug), 2);
    let cart = put_item(&app, id, mug, 2, guest)
        .await
        .assert_status(200)
        .json();
    assert_eq!(
        quantity_in(&cart, mug),
        2,
        "the same PUT again changes nothing"
    );
    let cart = put_item(&app, id, mug, 3, guest)
        .await
        .assert_status(200)
        .json();
    assert_eq!(quantity_in(&cart, mug), 3, "absolute, not added");
    let cart = put_item(&app, id, pot, 1, guest)
        .await
        .assert_status(200)
        .json();
    let item = &cart["items"][0];
    assert_eq!(
        item["variant_id"], mug,
        "lines in the order they were added"
    );
    assert_eq!(item["name"], "Mug");
    assert_eq!(item["unit_price"], "8.50");
    assert_eq!(item["line_total"], "25.50");
    assert_eq!(item["available"], 10);
    assert_eq!(cart["subtotal"], "55.50");
    assert_eq!(cart["total"], "55.50");
    assert_eq!(cart["problems"], json!([]));

    let cart = put_item(&app, id, mug, 0, guest)
        .await
        .assert_status(200)
        .json();
    assert_eq!(quantity_in(&cart, mug), 0, "0 removes the line");
    assert_eq!(cart["items"].as_array().expect("items").len(), 1);
    let path = format!("/carts/{id}/items/{pot}");
    let cart = call(&app, Method::DELETE, &path, None, guest)
        .await
        .assert_status(200)
        .json();
    assert_eq!(cart["items"], json!([]));
    call(&app, Method::DELETE, &path, None, guest)
        .await
        .assert_status(200);
    put_item(&app, id, mug, 0, guest).await.assert_status(200);

    for bad in [-1, 1001] {
        put_item(&app, id, mug, bad, guest)
            .await
            .assert_problem(422, "validation_failed");
    }
    put_item(&app, id, mug, 1000, guest)
        .await
        .assert_status(200);
    let res = call(
        &app,
        Method::PUT,
        &format!("/carts/{id}/items/{mug}"),
        Some(json!({"quantity": 1, "price": "0.01"})),
        guest,
    )
    .await;
    res.assert_problem(422, "validation_failed");
}

#[actix_web::test]
async fn unknown_or_deleted_variants_cannot_be_added() {
    let (_db, _conn, [mug], app) = shop!(("Mug", "8.50", 10)).await;
    let mug_variant = variant_of(&app, mug).await;
    let (id, token) = guest_cart(&app).await;
    let guest = As::guest(&token);
    put_item(&app, id, 987_654, 1, guest)
        .await
        .assert_problem(422, "unknown_variant");
    put_item(&app, id, 987_654, 0, guest)
        .await
        .assert_status(200);
    crate::support::delete_product(&app, mug).await;
    put_item(&app, id, mug_variant, 1, guest)
        .await
        .assert_problem(422, "unknown_variant");
}

#[actix_web::test]
async fn a_cart_holds_at_most_100_lines() {
    let (_db, mut conn) = ecom_testkit::TestDb::connected().await;
    let mut products = Vec::new();
    for i in 0..101 {
        products.push(ecom_testkit::product!(&mut conn, format!("Item {i}"), "1.00", 5).await);
    }
    let app = crate::app!(&_db);
    let (id, token) = guest_cart(&app).await;
    let guest = As::guest(&token);
    let mut variants = Vec::new();
    for &p in &products {
        variants.push(variant_of(&app, p).await);
    }
    for &v in &variants[..100] {
        put_item(&app, id, v, 1, guest).await.assert_status(200);
    }
    put_item(&app, id, variants[100], 1, guest)
        .await
        .assert_problem(422, "cart_full");
    // Changing an existing line still works, and so does a new one after a removal.
    put_item(&app, id, variants[0], 4, guest)
        .await
        .assert_status(200);
    put_item(&app, id, variants[1], 0, guest)
        .await
        .assert_status(200);
    let cart = put_item(&app, id, variants[100], 1, guest)
        .await
        .assert_status(200)
        .json();
    assert_eq!(cart["items"].as_array().expect("items").len(), 100);
}
