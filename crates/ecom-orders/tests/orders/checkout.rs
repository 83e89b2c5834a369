//! POST /orders: pricing, stock, all-or-nothing and validation.

use serde_json::json;

use crate::shop;
use crate::support::{OTHER, SHOPPER, count_rows, stock_of};

#[actix_web::test]
async fn an_order_takes_stock_and_prices_exactly_from_the_catalog() {
    let (_db, mut conn, [dime, book], app) =
        shop!(("Dime sticker", "0.10", 10), ("Book", "19.99", 5)).await;

    let order = app
        .fixed(SHOPPER)
        .try_order(&[(book, 1), (dime, 3)])
        .await
        .assert_created("/orders");
    let id = order["id"].as_i64().expect("id");
    assert_eq!(order["user_id"], SHOPPER);
    assert_eq!(order["status"], "pending");
    assert_eq!(order["total_price"], "20.29");
    // Lines in product-id order, the name and unit price copied from the catalog.
    assert_eq!(order["items"][0]["product_id"], dime);
    assert_eq!(order["items"][0]["product_name"], "Dime sticker");
    assert_eq!(order["items"][0]["unit_price"], "0.10");
    assert_eq!(order["items"][0]["quantity"], 3);
    assert_eq!(order["items"][0]["line_total"], "0.30");
    assert_eq!(order["items"][1]["line_total"], "19.99");
    assert_eq!(stock_of(&mut conn, dime).await, 7);
    assert_eq!(stock_of(&mut conn, book).await, 4);

    // The placing is the first entry of the history.
    let history = ecom_orders::status_history(&mut conn, id)
        .await
        .expect("history");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].from_status, None);
    assert_eq!(history[0].to_status, ecom_orders::OrderStatus::Pending);
    assert_eq!(history[0].actor, ecom_orders::ActorKind::User);
    assert_eq!(history[0].actor_id, Some(SHOPPER));
    assert_eq!(history[0].reason, None);

    // A later price change does not touch the order.
    app.fixed(crate::support::ADMIN)
        .put(&format!("/products/{dime}"), json!({"price": "5.00"}))
        .await
        .assert_status(200);
    let again: serde_json::Value = app.fixed(SHOPPER).read(format!("/orders/{id}")).await;
    assert_eq!(again["items"][0]["unit_price"], "0.10");
    assert_eq!(again["total_price"], "20.29");
}

#[actix_web::test]
async fn duplicate_lines_are_merged_into_one() {
    let (_db, mut conn, [mug], app) = shop!(("Mug", "8.50", 10)).await;

    let order = app
        .fixed(SHOPPER)
        .try_order(&[(mug, 2), (mug, 3)])
        .await
        .assert_status(201)
        .json();
    let items = order["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["quantity"], 5);
    assert_eq!(items[0]["line_total"], "42.50");
    assert_eq!(order["total_price"], "42.50");
    assert_eq!(stock_of(&mut conn, mug).await, 5);
}

#[actix_web::test]
async fn a_short_second_line_changes_nothing_and_names_the_product() {
    let (_db, mut conn, [plenty, scarce], app) =
        shop!(("Plenty", "1.00", 10), ("Scarce", "2.00", 1)).await;

    let res = app
        .fixed(SHOPPER)
        .try_order(&[(plenty, 2), (scarce, 5)])
        .await;
    res.assert_problem(409, "insufficient_stock");
    let detail = res.json()["detail"].as_str().expect("detail").to_string();
    assert!(
        detail.contains(&format!(
            "product {scarce}: 5 requested, 1 available (variant "
        )),
        "{detail}"
    );
    assert!(!detail.contains(&format!("product {plenty}")), "{detail}");
    assert_eq!(
        stock_of(&mut conn, plenty).await,
        10,
        "first line untouched"
    );
    assert_eq!(stock_of(&mut conn, scarce).await, 1);
    assert_eq!(count_rows(&mut conn, "orders").await, 0);
    assert_eq!(count_rows(&mut conn, "order_lines").await, 0);

    // Two short products are both named.
    let res = app
        .fixed(SHOPPER)
        .try_order(&[(plenty, 11), (scarce, 2)])
        .await;
    res.assert_problem(409, "insufficient_stock");
    let detail = res.json()["detail"].as_str().expect("detail").to_string();
    assert!(detail.contains(&format!("product {plenty}: 11 requested, 10 available")));
    assert!(detail.contains(&format!("product {scarce}: 2 requested, 1 available")));
}

#[actix_web::test]
async fn unknown_and_deleted_products_are_422_and_change_nothing() {
    let (_db, mut conn, [mug, gone], app) = shop!(("Mug", "8.50", 10), ("Gone", "1.00", 10)).await;
    ecom_catalog::service::delete_product(&mut conn, gone)
        .await
        .expect("deleted");

    for missing in [gone, 987_654] {
        let res = app
            .fixed(SHOPPER)
            .try_order(&[(mug, 1), (missing, 1)])
            .await;
        res.assert_problem(422, "unknown_product");
        assert!(
            res.json()["detail"]
                .as_str()
                .expect("detail")
                .contains(&missing.to_string())
        );
    }
    assert_eq!(stock_of(&mut conn, mug).await, 10);
    assert_eq!(stock_of(&mut conn, gone).await, 10);
    assert_eq!(count_rows(&mut conn, "orders").await, 0);
}

#[actix_web::test]
async fn quantities_and_bodies_are_validated() {
    let (_db, mut conn, [bulk], app) = shop!(("Bulk", "1.00", 5000)).await;
    let as_shopper = app.fixed(SHOPPER);

    for (quantity, field) in [
        (0, "items[0].quantity"),
        (1001, "items[0].quantity"),
        (-3, "items[0].quantity"),
    ] {
        let res = as_shopper.try_order(&[(bulk, quantity)]).await;
        res.assert_problem(422, "validation_failed");
        assert_eq!(res.json()["errors"][0]["field"], field);
    }
    // Merged lines over 1000 are refused at the line that crosses the limit.
    let res = as_shopper.try_order(&[(bulk, 600), (bulk, 600)]).await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.json()["errors"][0]["field"], "items[1].quantity");
    as_shopper
        .post("/orders", json!({"items": []}))
        .await
        .assert_problem(422, "validation_failed");
    // No mass assignment: unknown fields are refused, at the top and in a line.
    for (path, body, status, code) in [
        (
            "/orders",
            json!({"items": [{"product_id": bulk, "quantity": 1}], "status": "paid"}),
            422,
            "validation_failed",
        ),
        (
            "/orders",
            json!({"items": [{"product_id": bulk, "quantity": 1, "unit_price": "0.01"}]}),
            422,
            "validation_failed",
        ),
        (
            "/orders",
            json!({"items": [{"product_id": bulk, "quantity": 1.5}]}),
            422,
            "validation_failed",
        ),
    ] {
        as_shopper
            .post(path, body)
            .await
            .assert_problem(status, code);
    }
    assert_eq!(stock_of(&mut conn, bulk).await, 5000, "nothing was ordered");

    // The bounds themselves are accepted.
    as_shopper.place_order(&[(bulk, 1000)]).await;
    as_shopper.place_order(&[(bulk, 1)]).await;
    assert_eq!(stock_of(&mut conn, bulk).await, 3999);

    app.anonymous()
        .try_order(&[(bulk, 1)])
        .await
        .assert_problem(401, "not_authenticated");
}

#[actix_web::test]
async fn an_order_total_beyond_the_money_range_is_refused() {
    let (_db, mut conn, [jewel], app) = shop!(("Jewel", "99999999.99", 5)).await;
    app.fixed(OTHER)
        .try_order(&[(jewel, 2)])
        .await
        .assert_problem(422, "validation_failed");
    assert_eq!(stock_of(&mut conn, jewel).await, 5);
}
