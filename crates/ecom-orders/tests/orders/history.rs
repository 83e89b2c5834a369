//! `GET /orders/{id}/history` and `payment_due_at` over HTTP.

use ecom_orders::EveryOrderExpires;
use ecom_testkit::fixtures::accounts;
use serde_json::{Value, json};

use crate::shop;
use crate::support::{ADMIN, MANAGER, OTHER, SHOPPER, body, order, stocked};

/// `(from_status, to_status, actor, actor_id, reason)` of each entry of a history page.
fn steps(page: &Value) -> Vec<(Value, Value, Value, Value, Value)> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| {
            (
                e["from_status"].clone(),
                e["to_status"].clone(),
                e["actor"].clone(),
                e["actor_id"].clone(),
                e["reason"].clone(),
            )
        })
        .collect()
}

#[actix_web::test]
async fn the_history_names_who_made_each_change_oldest_first() {
    let (_db, mut conn, [mug], app) = shop!(("Mug", "8.50", 10)).await;
    let id = order(&mut conn, SHOPPER, &[(mug, 2)]).await.id;
    // An administrator records a manual payment.
    let paid = ecom_orders::mark_paid(
        &mut conn,
        id,
        ecom_orders::PaidBy::Manual { admin_id: ADMIN },
    )
    .await
    .expect("paid");
    assert!(matches!(paid, ecom_orders::PaidOutcome::Paid(_)));
    app.fixed(MANAGER).cancel_order(id).await.assert_status(200);
    let path = format!("/orders/{id}/history");

    let page = app
        .fixed(SHOPPER)
        .get(&path)
        .await
        .assert_status(200)
        .json();
    assert_eq!(page["total"], 3);
    assert_eq!(
        (page["limit"].clone(), page["offset"].clone()),
        (json!(20), json!(0))
    );
    assert_eq!(
        steps(&page),
        vec![
            (
                json!(null),
                json!("pending"),
                json!("user"),
                json!(SHOPPER),
                json!(null)
            ),
            (
                json!("pending"),
                json!("paid"),
                json!("admin"),
                json!(ADMIN),
                json!("manual_payment")
            ),
            (
                json!("paid"),
                json!("cancelled"),
                json!("admin"),
                json!(MANAGER),
                json!(null)
            ),
        ]
    );
    for entry in page["items"].as_array().expect("items") {
        let mut keys: Vec<&str> = entry
            .as_object()
            .expect("entry")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "actor",
                "actor_id",
                "created_at",
                "from_status",
                "reason",
                "to_status"
            ]
        );
    }
    let times: Vec<&str> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["created_at"].as_str().expect("created_at"))
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");

    // A manager sees any order's history; pages are the list envelope's.
    let second = app
        .fixed(MANAGER)
        .get(format!("{path}?limit=1&offset=1"))
        .await
        .assert_status(200)
        .json();
    assert_eq!(second["total"], 3);
    assert_eq!(steps(&second), steps(&page)[1..2].to_vec());
    let skipped = app
        .fixed(MANAGER)
        .get(format!("{path}?limit=2&skip=2"))
        .await
        .json();
    assert_eq!(steps(&skipped), steps(&page)[2..].to_vec());

    // Someone else's order does not exist for them; nor does a missing one.
    app.fixed(OTHER)
        .get(&path)
        .await
        .assert_problem(404, "not_found");
    app.fixed(SHOPPER)
        .get("/orders/999999/history")
        .await
        .assert_problem(404, "not_found");
    app.fixed(SHOPPER)
        .get("/orders/abc/history")
        .await
        .assert_problem(400, "invalid_path");
    app.fixed(SHOPPER)
        .get(format!("{path}?limit=0"))
        .await
        .assert_status(422);
    app.anonymous().get(&path).await.assert_status(401);
}

#[actix_web::test]
async fn an_expired_order_shows_the_system_and_its_reason() {
    let (_db, mut conn, [mug], app) = shop!(("Mug", "8.50", 10)).await;
    let id = order(&mut conn, SHOPPER, &[(mug, 1)]).await.id;
    diesel_async::RunQueryDsl::execute(
        diesel::sql_query(format!(
            "UPDATE orders SET payment_due_at = now() - interval '1 minute' WHERE id = {id}"
        )),
        &mut conn,
    )
    .await
    .expect("overdue");
    ecom_orders::expire_due_orders(&mut conn, &EveryOrderExpires, &ecom_orders::NoPayments, 10)
        .await
        .expect("expiry runs");
    let page = app
        .fixed(SHOPPER)
        .get(format!("/orders/{id}/history"))
        .await
        .assert_status(200)
        .json();
    assert_eq!(
        steps(&page)[1],
        (
            json!("pending"),
            json!("cancelled"),
            json!("system"),
            json!(null),
            json!("payment_timeout")
        )
    );
    let order = app.fixed(SHOPPER).get(format!("/orders/{id}")).await.json();
    assert_eq!(order["status"], "cancelled");
    assert_eq!(order["payment_due_at"], Value::Null);
}

#[actix_web::test]
async fn an_order_is_due_the_configured_window_after_it_is_placed() {
    let (db, _conn, [mug]) = stocked!(("Mug", "8.50", 10)).await;
    let ctx = ecom_testkit::test_context(
        &db,
        vec![ecom_catalog::module(), ecom_orders::module()],
        &[("ORDER_PAYMENT_WINDOW_SECONDS", "120")],
    )
    .with_resolver(accounts());
    let app = ecom_testkit::test_app(ctx).await;
    let placed = app
        .fixed(SHOPPER)
        .post("/orders", body(&[(mug, 1)]))
        .await
        .assert_status(201)
        .json();
    let at = |field: &str| {
        chrono::DateTime::parse_from_rfc3339(placed[field].as_str().expect(field)).expect(field)
    };
    assert_eq!(
        at("payment_due_at") - at("created_at"),
        chrono::Duration::seconds(120)
    );
    let id = placed["id"].as_i64().expect("id");
    let read = app.fixed(SHOPPER).get(format!("/orders/{id}")).await.json();
    assert_eq!(read["payment_due_at"], placed["payment_due_at"]);
    let listed = app.fixed(SHOPPER).get("/orders").await.json();
    assert_eq!(
        listed["items"][0]["payment_due_at"],
        placed["payment_due_at"]
    );

    let cancelled = app.fixed(SHOPPER).cancel_order(id).await.json();
    assert_eq!(cancelled["payment_due_at"], Value::Null);
}
