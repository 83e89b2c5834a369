//! Every domain write of API.md's Events list records its event, through the whole store:
//! one test per event type, read back through `GET /admin/events` (and the owner's
//! `GET /users/me/events`). Also what records none: a no-op update, stock moved by orders,
//! a refused write.

use ecom_testkit::db_and_app;
use serde_json::{Value, json};

use crate::{PASSWORD, make_admin, store_context};

/// The events of `types` (webhook patterns), oldest first, as the admin reads them.
async fn events_of<S: ecom_testkit::AppService>(
    app: &ecom_testkit::TestApp<S>,
    admin: &str,
    types: &str,
) -> Vec<Value> {
    app.get_as(&format!("/admin/events?types={types}&limit=100"), admin)
        .await
        .assert_status(200)
        .json()["items"]
        .as_array()
        .expect("items")
        .clone()
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["type"].as_str().expect("type"))
        .collect()
}

#[actix_web::test]
async fn product_writes_record_created_updated_and_deleted_and_no_ops_record_nothing() {
    let (db, app) = db_and_app(store_context).await;
    make_admin(&db, "root@example.com").await;
    let admin = app.login("root@example.com", PASSWORD).await;
    let as_admin = app.admin(&admin);
    let product = as_admin
        .post(
            "/products",
            json!({"name": "Lamp", "description": "Brass", "variants": [
                {"price": "24.50", "stock": 5, "options": {"Finish": "Brass"}, "is_default": true},
            ]}),
        )
        .await
        .assert_status(201)
        .json();
    let id = product["id"].as_i64().expect("id");
    let created = events_of(&app, &admin, "product.*").await;
    assert_eq!(kinds(&created), vec!["product.created"]);
    assert_eq!(created[0]["aggregate_type"], "product");
    assert_eq!(created[0]["aggregate_id"], id);
    assert_eq!(created[0]["sequence"], 1);
    assert_eq!(created[0]["data"]["product"]["name"], "Lamp");
    assert_eq!(created[0]["data"]["product"]["price"], "24.50");

    // A change: product.updated with the product as it is now.
    as_admin
        .patch(&format!("/products/{id}"), json!({"name": "Brass lamp"}))
        .await
        .assert_status(200);
    // The same value again: nothing written, `updated_at` kept, no event.
    let before = app.get(&format!("/products/{id}")).await.json();
    let same = as_admin
        .patch(
            &format!("/products/{id}"),
            json!({"name": "Brass lamp", "price": "24.50"}),
        )
        .await
        .assert_status(200)
        .json();
    assert_eq!(same["updated_at"], before["updated_at"]);
    // A variant write is a product write.
    as_admin
        .post(
            &format!("/products/{id}/variants"),
            json!({"price": "30", "stock": 2, "options": {"Finish": "Chrome"}}),
        )
        .await
        .assert_status(201);
    // Stock moved by an order is not.
    let (_, shopper) = app.sign_up("amy@example.com", PASSWORD).await;
    app.user(&shopper)
        .post(
            "/orders",
            json!({"items": [{"product_id": id, "quantity": 1}]}),
        )
        .await
        .assert_status(201);
    as_admin
        .delete(&format!("/products/{id}"))
        .await
        .assert_status(204);

    let all = events_of(&app, &admin, "product.*").await;
    assert_eq!(
        kinds(&all),
        vec![
            "product.created",
            "product.updated",
            "product.updated",
            "product.deleted"
        ]
    );
    let sequences: Vec<i64> = all
        .iter()
        .map(|e| e["sequence"].as_i64().expect("sequence"))
        .collect();
    assert_eq!(sequences, vec![1, 2, 3, 4]);
    assert_eq!(all[1]["data"]["product"]["name"], "Brass lamp");
    assert_eq!(
        all[2]["data"]["product"]["variants"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    assert_eq!(all[3]["data"], json!({"product_id": id}));
    let ids: Vec<i64> = all.iter().map(|e| e["id"].as_i64().expect("id")).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids grow: {ids:?}");
}

#[actix_web::test]
async fn order_and_payment_writes_record_their_events_for_their_owner() {
    let (db, app) = db_and_app(store_context).await;
    make_admin(&db, "root@example.com").await;
    let admin = app.login("root@example.com", PASSWORD).await;
    let as_admin = app.admin(&admin);
    let lamp = as_admin
        .post(
            "/products",
            json!({"name": "Lamp", "description": "", "price": "20.00", "stock": 3}),
        )
        .await
        .json()["id"]
        .as_i64()
        .expect("id");
    let (amy_id, amy) = app.sign_up("amy@example.com", PASSWORD).await;
    let as_amy = app.user(&amy);
    let place = async || {
        as_amy
            .post(
                "/orders",
                json!({"items": [{"product_id": lamp, "quantity": 1}]}),
            )
            .await
            .assert_status(201)
            .json()["id"]
            .as_i64()
            .expect("id")
    };

    // Placed, paid by hand, shipped, delivered, refunded.
    let sold = place().await;
    as_admin
        .post(
            &format!("/admin/orders/{sold}/payments/manual"),
            json!({"amount": "20.00", "reference": "wire 7"}),
        )
        .await
        .assert_status(201);
    for status in ["shipped", "delivered"] {
        as_admin
            .patch(
                &format!("/admin/orders/{sold}/status"),
                json!({"status": status}),
            )
            .await
            .assert_status(200);
    }
    let payment = app
        .get_as(&format!("/orders/{sold}/payments"), &amy)
        .await
        .json()["items"][0]["id"]
        .as_i64()
        .expect("payment");
    as_admin
        .post(&format!("/admin/payments/{payment}/refund"), json!({}))
        .await
        .assert_status(200);
    // Placed and cancelled by its owner.
    let dropped = place().await;
    as_amy
        .post(&format!("/orders/{dropped}/cancel"), json!({}))
        .await
        .assert_status(200);
    // Refused (too many): no event.
    as_amy
        .post(
            "/orders",
            json!({"items": [{"product_id": lamp, "quantity": 9}]}),
        )
        .await
        .assert_problem(409, "insufficient_stock");

    let orders = events_of(&app, &admin, "order.*").await;
    let of = |order: i64| -> Vec<&Value> {
        orders
            .iter()
            .filter(|e| e["aggregate_id"] == order)
            .collect()
    };
    let sold_events = of(sold);
    assert_eq!(
        sold_events
            .iter()
            .map(|e| e["type"].as_str().expect("type"))
            .collect::<Vec<_>>(),
        vec![
            "order.created",
            "order.paid",
            "order.status_changed",
            "order.status_changed",
            "order.refunded"
        ]
    );
    let steps: Vec<(Value, Value)> = sold_events
        .iter()
        .map(|e| {
            (
                e["data"]["from_status"].clone(),
                e["data"]["to_status"].clone(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        vec![
            (Value::Null, json!("pending")),
            (json!("pending"), json!("paid")),
            (json!("paid"), json!("shipped")),
            (json!("shipped"), json!("delivered")),
            (json!("delivered"), json!("refunded")),
        ]
    );
    let seq: Vec<i64> = sold_events
        .iter()
        .map(|e| e["sequence"].as_i64().expect("sequence"))
        .collect();
    assert_eq!(seq, vec![1, 2, 3, 4, 5]);
    assert_eq!(
        sold_events[0]["data"]["actor"],
        json!({"type": "user", "id": amy_id})
    );
    assert_eq!(sold_events[1]["data"]["actor"]["type"], "admin");
    assert_eq!(sold_events[1]["data"]["reason"], "manual_payment");
    assert_eq!(
        sold_events[4]["data"]["actor"],
        json!({"type": "system", "id": null})
    );
    assert_eq!(sold_events[4]["data"]["order"]["status"], "refunded");
    assert_eq!(sold_events[0]["data"]["order"]["total_price"], "20.00");
    let dropped_types: Vec<&str> = of(dropped)
        .iter()
        .map(|e| e["type"].as_str().expect("type"))
        .collect();
    assert_eq!(dropped_types, vec!["order.created", "order.cancelled"]);
    assert_eq!(orders.len(), 7, "the refused order recorded nothing");

    let payments = events_of(&app, &admin, "payment.updated").await;
    let statuses: Vec<(Value, Value)> = payments
        .iter()
        .map(|e| {
            (
                e["data"]["previous_status"].clone(),
                e["data"]["payment"]["status"].clone(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        vec![
            (Value::Null, json!("pending")),
            (json!("pending"), json!("captured")),
            (json!("captured"), json!("refunded")),
        ]
    );
    assert!(
        payments
            .iter()
            .all(|e| e["data"]["payment"].get("client_secret").is_none())
    );
    assert!(payments.iter().all(|e| e["aggregate_id"] == payment));

    // The owner sees their order and payment events; another shopper sees none of them.
    let mine = app.get_as("/users/me/events?limit=100", &amy).await.json();
    assert_eq!(mine["total"], 10);
    let (_, bob) = app.sign_up("bob@example.com", PASSWORD).await;
    assert_eq!(
        app.get_as("/users/me/events", &bob).await.json()["total"],
        0
    );
}
