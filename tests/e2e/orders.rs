//! Orders through the whole store: real accounts from /auth, products from /products,
//! then checkout, listing, reading, idempotent replay and cancellation.

use actix_web::test::TestRequest;
use ecom_testkit::db_and_app;
use serde_json::{Value, json};

use crate::store_context;

const PASSWORD: &str = "lantern-mosaic-river-8";

#[actix_web::test]
async fn a_shopper_orders_lists_replays_and_cancels() {
    let (db, app) = db_and_app(store_context).await;
    let anonymous = app.anonymous();
    let login = async |email: &str| anonymous.log_in(email, PASSWORD).await.access_token;
    for email in ["amy@example.com", "bob@example.com"] {
        app.anonymous().register(email, PASSWORD).await;
    }
    let mut conn = db.connect().await;
    ecom_auth::service::accounts::create_admin(&mut conn, "root@example.com", PASSWORD.into())
        .await
        .expect("admin");
    let admin = login("root@example.com").await;
    let as_admin = app.admin(&admin);
    let amy = login("amy@example.com").await;
    let as_amy = app.user(&amy);
    let bob = login("bob@example.com").await;
    let as_bob = app.user(&bob);

    let new_product = async |name: &str, price: &str, stock: i64| -> i64 {
        as_admin
            .post(
                "/products",
                json!({"name": name, "description": "", "price": price, "stock": stock}),
            )
            .await
            .assert_status(201)
            .json()["id"]
            .as_i64()
            .expect("id")
    };
    let dime = new_product("Dime sticker", "0.10", 10).await;
    let lamp = new_product("Lamp", "24.50", 2).await;
    let stock = async |id: i64| -> i64 {
        app.get(&format!("/products/{id}")).await.json()["stock"]
            .as_i64()
            .expect("stock")
    };

    // Checkout: exact totals, duplicates merged, stock taken.
    let order = as_amy.post("/orders", json!({"items": [{"product_id": dime, "quantity": 2}, {"product_id": lamp, "quantity": 1},
                             {"product_id": dime, "quantity": 1}]}))
        .await
        .assert_status(201)
        .json();
    let id = order["id"].as_i64().expect("id");
    assert_eq!(order["total_price"], "24.80");
    assert_eq!(order["items"][0]["line_total"], "0.30");
    assert_eq!(order["items"].as_array().map(Vec::len), Some(2));
    assert_eq!((stock(dime).await, stock(lamp).await), (7, 1));

    // Too much of the lamp: nothing changes.
    as_bob.post("/orders", json!({"items": [{"product_id": dime, "quantity": 1}, {"product_id": lamp, "quantity": 2}]}))
    .await
    .assert_problem(409, "insufficient_stock");
    assert_eq!((stock(dime).await, stock(lamp).await), (7, 1));
    as_bob
        .post(
            "/orders",
            json!({"items": [{"product_id": 424242, "quantity": 1}]}),
        )
        .await
        .assert_problem(422, "unknown_product");

    // Idempotent replay.
    let keyed = |token: &str, payload: Value| {
        TestRequest::post()
            .uri("/orders")
            .insert_header(("authorization", format!("Bearer {token}")))
            .insert_header(("idempotency-key", "checkout-7"))
            .set_json(payload)
    };
    let payload = json!({"items": [{"product_id": dime, "quantity": 1}]});
    let first = app.send(keyed(&bob, payload.clone())).await;
    first.assert_status(201);
    let replay = app.send(keyed(&bob, payload)).await;
    replay.assert_status(201);
    assert_eq!(replay.json()["id"], first.json()["id"]);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(stock(dime).await, 6);
    app.send(keyed(
        &bob,
        json!({"items": [{"product_id": dime, "quantity": 2}]}),
    ))
    .await
    .assert_problem(422, "idempotency_key_reused");

    // Listing and reading: own orders only.
    let mine = as_amy.get("/orders").await.assert_status(200).json();
    assert_eq!(mine["total"], 1);
    assert_eq!(mine["items"][0]["id"], id);
    let theirs = as_bob.get("/orders").await.json();
    assert_eq!(theirs["total"], 1);
    assert_ne!(theirs["items"][0]["id"], id);
    as_amy
        .get(&format!("/orders/{id}"))
        .await
        .assert_status(200);
    as_bob
        .get(&format!("/orders/{id}"))
        .await
        .assert_problem(404, "not_found");
    as_admin
        .get(&format!("/orders/{id}"))
        .await
        .assert_status(200);

    // Cancel: stock back once, a second cancel refused.
    let cancel = format!("/orders/{id}/cancel");
    as_bob
        .post(&cancel, json!({}))
        .await
        .assert_problem(404, "not_found");
    let cancelled = as_amy
        .post(&cancel, json!({}))
        .await
        .assert_status(200)
        .json();
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!((stock(dime).await, stock(lamp).await), (9, 2));
    as_amy
        .post(&cancel, json!({}))
        .await
        .assert_problem(409, "invalid_status_transition");
    assert_eq!((stock(dime).await, stock(lamp).await), (9, 2));
    assert_eq!(as_amy.listed_total("/orders?status=cancelled").await, 1);

    // The routes are in the store's OpenAPI document.
    let doc = app.openapi().await;
    for (path, method) in [
        ("/orders", "post"),
        ("/orders", "get"),
        ("/orders/{id}", "get"),
        ("/orders/{id}/history", "get"),
        ("/orders/{id}/cancel", "post"),
    ] {
        assert!(
            doc["paths"][path][method]["operationId"].is_string(),
            "{method} {path}"
        );
    }
}

/// Payments as `ecom serve` configures them from the test settings (no Stripe key: manual).
fn payments_of(db: &ecom_testkit::TestDb) -> std::sync::Arc<ecom_payments::Payments> {
    ecom_api::payments(&ecom_testkit::test_settings(db, &[])).expect("payments build")
}

/// The store as `ecom serve` wires it, with a one-second payment window.
fn store_with_a_short_window(db: &ecom_testkit::TestDb) -> ecom_core::AppContext {
    ecom_api::app_context(
        ecom_testkit::test_settings(db, &[("ORDER_PAYMENT_WINDOW_SECONDS", "1")]),
        db.pool(),
        &ecom_core::settings::SecretString::new(ecom_testkit::TEST_SECRET),
    )
    .expect("the store's context builds")
}

#[actix_web::test]
async fn an_unpaid_order_expires_through_the_binarys_expiry_chore() {
    let (db, app) = db_and_app(store_with_a_short_window).await;
    app.anonymous().register("cy@example.com", PASSWORD).await;
    let cy = app
        .anonymous()
        .log_in("cy@example.com", PASSWORD)
        .await
        .access_token;
    let as_cy = app.user(&cy);
    let root = crate::make_admin(&db, "root@example.com").await;
    let admin = app
        .anonymous()
        .log_in("root@example.com", PASSWORD)
        .await
        .access_token;
    let as_admin = app.admin(&admin);
    let lamp = as_admin
        .post(
            "/products",
            json!({"name": "Lamp", "description": "", "price": "24.50", "stock": 5}),
        )
        .await
        .assert_status(201)
        .json()["id"]
        .as_i64()
        .expect("id");
    let stock = async || -> i64 {
        app.get(&format!("/products/{lamp}")).await.json()["stock"]
            .as_i64()
            .expect("stock")
    };
    let place = async || {
        as_cy
            .post(
                "/orders",
                json!({"items": [{"product_id": lamp, "quantity": 2}]}),
            )
            .await
            .assert_status(201)
            .json()
    };
    let unpaid = place().await;
    let paid = place().await;
    // The shopper of `paid` chose a manual payment (a longer window, as payments gives
    // it), which an administrator then records: the status PATCH no longer sets `paid`.
    let paid_id = paid["id"].as_i64().expect("id");
    let mut conn = db.connect().await;
    ecom_orders::extend_payment_window(&mut conn, paid_id, 1)
        .await
        .expect("a manual payment's window");
    let at = |order: &Value, field: &str| {
        chrono::DateTime::parse_from_rfc3339(order[field].as_str().expect(field)).expect(field)
    };
    assert_eq!(
        at(&unpaid, "payment_due_at") - at(&unpaid, "created_at"),
        chrono::Duration::seconds(1),
        "due ORDER_PAYMENT_WINDOW_SECONDS after placing"
    );
    let outcome = ecom_orders::mark_paid(
        &mut conn,
        paid_id,
        ecom_orders::PaidBy::Manual { admin_id: root },
    )
    .await
    .expect("mark_paid");
    assert!(
        matches!(outcome, ecom_orders::PaidOutcome::Paid(_)),
        "{outcome:?}"
    );
    assert_eq!(stock().await, 1);

    // Past the window, one round of the binary's expiry chores cancels the unpaid order.
    actix_web::rt::time::sleep(std::time::Duration::from_millis(1200)).await;
    let done = ecom_core::housekeeping::run_round(
        &db.pool(),
        &ecom_api::expiry_chores(&payments_of(&db)),
        ecom_orders::service::EXPIRY_BATCH,
    )
    .await;
    assert_eq!(done, vec![("order_expiry", 1)]);
    let id = unpaid["id"].as_i64().expect("id");
    let expired = as_cy.get(&format!("/orders/{id}")).await.json();
    assert_eq!(expired["status"], "cancelled");
    assert_eq!(expired["payment_due_at"], Value::Null);
    assert_eq!(stock().await, 3, "the unpaid order's lamps are back");
    let kept = as_cy.get(&format!("/orders/{paid_id}")).await.json();
    assert_eq!(kept["status"], "paid");
    assert_eq!(kept["payment_due_at"], Value::Null);

    let history = as_cy
        .get(&format!("/orders/{id}/history"))
        .await
        .assert_status(200)
        .json();
    assert_eq!(history["total"], 2);
    assert_eq!(history["items"][0]["actor"], "user");
    let last = &history["items"][1];
    assert_eq!(
        (
            &last["from_status"],
            &last["to_status"],
            &last["actor"],
            &last["actor_id"],
            &last["reason"]
        ),
        (
            &json!("pending"),
            &json!("cancelled"),
            &json!("system"),
            &Value::Null,
            &json!("payment_timeout")
        )
    );
    let paid_history = as_admin
        .get(&format!("/orders/{paid_id}/history"))
        .await
        .assert_status(200)
        .json();
    assert_eq!(paid_history["items"][1]["actor"], "admin");

    // Nothing more to do; the stock is not returned twice.
    let again = ecom_core::housekeeping::run_round(
        &db.pool(),
        &ecom_api::expiry_chores(&payments_of(&db)),
        100,
    )
    .await;
    assert_eq!(again, vec![("order_expiry", 0)]);
    assert_eq!(stock().await, 3);
}
