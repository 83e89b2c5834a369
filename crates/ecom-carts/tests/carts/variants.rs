//! Lines are per variant: each shows its SKU, options and price, and goes by itself.

use actix_web::http::Method;
use diesel_async::SimpleAsyncConnection;
use serde_json::json;

use crate::shop;
use crate::support::{
    As, SHOPPER, call, count, default_variant, problem_codes, put_item, quantity_in, token,
    user_cart,
};

#[actix_web::test]
async fn each_variant_is_a_line_of_its_own() {
    let (_db, mut conn, [tee], app) = shop!(("Tee", "10.00", 5)).await;
    let medium = default_variant(&app.ctx.pool, tee).await;
    // Until the catalog serves variant endpoints: a second variant written as the
    // catalog stores it (its trigger keeps the product row in step).
    conn.batch_execute(&format!(
        "UPDATE product_variants SET sku = 'TEE-M', options = '{{\"Size\": \"M\"}}' WHERE id = {medium}; \
         INSERT INTO product_variants (product_id, sku, price, stock, options) \
         VALUES ({tee}, 'TEE-L', 11.00, 2, '{{\"Size\": \"L\"}}')"
    ))
    .await
    .expect("a second variant");
    let large = count(
        &mut conn,
        "SELECT id AS n FROM product_variants WHERE sku = 'TEE-L'",
    )
    .await;

    let shopper = token(SHOPPER);
    let me = As::user(&shopper);
    let id = user_cart(&app, &shopper).await;
    put_item(&app, id, medium, 2, me).await.assert_status(200);
    let cart = put_item(&app, id, large, 1, me)
        .await
        .assert_status(200)
        .json();
    let items = cart["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert_eq!(
        (
            &items[0]["sku"],
            &items[0]["options"],
            &items[0]["unit_price"]
        ),
        (&json!("TEE-M"), &json!({"Size": "M"}), &json!("10.00"))
    );
    assert_eq!(
        (
            &items[1]["sku"],
            &items[1]["options"],
            &items[1]["unit_price"]
        ),
        (&json!("TEE-L"), &json!({"Size": "L"}), &json!("11.00"))
    );
    assert!(
        items
            .iter()
            .all(|i| i["product_id"] == tee && i["name"] == "Tee")
    );
    assert_eq!(cart["subtotal"], "31.00");

    conn.batch_execute(&format!(
        "UPDATE product_variants SET deleted_at = now() WHERE id = {large}"
    ))
    .await
    .expect("the large size leaves the catalog");
    let cart = call(&app, Method::GET, &format!("/carts/{id}"), None, me)
        .await
        .assert_status(200)
        .json();
    assert_eq!(problem_codes(&cart, large), ["unavailable"]);
    assert_eq!(problem_codes(&cart, medium), Vec::<String>::new());
    assert_eq!(cart["subtotal"], "20.00", "the deleted size is left out");
    put_item(&app, id, large, 2, me)
        .await
        .assert_problem(422, "unknown_variant");

    let cart = put_item(&app, id, large, 0, me)
        .await
        .assert_status(200)
        .json();
    assert_eq!(quantity_in(&cart, large), 0);
    let order = call(
        &app,
        Method::POST,
        &format!("/carts/{id}/checkout"),
        None,
        me.with_key("tee"),
    )
    .await
    .assert_status(201)
    .json();
    let lines = order["items"].as_array().expect("order lines");
    assert_eq!(lines.len(), 1);
    assert_eq!(
        (&lines[0]["variant_id"], &lines[0]["sku"]),
        (&json!(medium), &json!("TEE-M"))
    );
    assert_eq!(lines[0]["quantity"], 2);
}
