//! A cart's problems, computed from the catalog at every read.

use actix_web::http::Method;
use serde_json::json;

use crate::shop;
use crate::support::{
    As, call, change_product, delete_product, guest_cart, problem_codes, put_item, variant_of,
};

#[actix_web::test]
async fn problems_follow_the_catalog_at_every_read() {
    let (_db, _conn, [mug, pot, lamp], app) = shop!(
        ("Mug", "8.50", 10),
        ("Pot", "30.00", 5),
        ("Lamp", "12.00", 3)
    )
    .await;
    let (mug_v, pot_v, lamp_v) = (
        variant_of(&app, mug).await,
        variant_of(&app, pot).await,
        variant_of(&app, lamp).await,
    );
    let (id, token) = guest_cart(&app).await;
    let guest = As::guest(&token);
    put_item(&app, id, mug_v, 2, guest).await.assert_status(200);
    put_item(&app, id, pot_v, 4, guest).await.assert_status(200);
    put_item(&app, id, lamp_v, 1, guest)
        .await
        .assert_status(200);
    let path = format!("/carts/{id}");
    let read = async || {
        call(&app, Method::GET, &path, None, guest)
            .await
            .assert_status(200)
            .json()
    };
    assert_eq!(read().await["problems"], json!([]));

    change_product(&app, mug, json!({"price": "9.00"})).await;
    change_product(&app, pot, json!({"stock": 3})).await;
    delete_product(&app, lamp).await;
    let cart = read().await;
    assert_eq!(problem_codes(&cart, mug_v), ["price_changed"]);
    assert_eq!(problem_codes(&cart, pot_v), ["insufficient_stock"]);
    assert_eq!(problem_codes(&cart, lamp_v), ["unavailable"]);
    let items = cart["items"].as_array().expect("items");
    assert_eq!(items[0]["unit_price"], "9.00", "prices are never frozen");
    assert_eq!(items[0]["line_total"], "18.00");
    assert_eq!(items[1]["available"], 3);
    assert_eq!(
        items[2]["available"], 0,
        "a deleted variant has nothing on sale"
    );
    assert_eq!(
        cart["subtotal"], "138.00",
        "18.00 + 120.00; the unavailable lamp is left out"
    );
    assert_eq!(cart["total"], cart["subtotal"]);
    let detail = cart["problems"][0]["detail"].as_str().expect("detail");
    assert!(
        detail.contains("8.50") && detail.contains("9.00"),
        "{detail}"
    );

    // A PUT acknowledges the current price; lowering the quantity settles the stock.
    put_item(&app, id, mug_v, 2, guest).await.assert_status(200);
    let cart = put_item(&app, id, pot_v, 3, guest)
        .await
        .assert_status(200)
        .json();
    assert_eq!(problem_codes(&cart, mug_v), Vec::<String>::new());
    assert_eq!(problem_codes(&cart, pot_v), Vec::<String>::new());
    assert_eq!(problem_codes(&cart, lamp_v), ["unavailable"]);
    // A price that goes back to the acknowledged one is no problem either.
    change_product(&app, mug, json!({"price": "9.50"})).await;
    assert_eq!(problem_codes(&read().await, mug_v), ["price_changed"]);
    change_product(&app, mug, json!({"price": "9.00"})).await;
    assert_eq!(problem_codes(&read().await, mug_v), Vec::<String>::new());
}
