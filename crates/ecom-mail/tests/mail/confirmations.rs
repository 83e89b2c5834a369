use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use ecom_core::events::{self, NewEvent, event_cursors};
use ecom_core::mail::mail_outbox;
use ecom_testkit::smtp::SmtpPeer;
use ecom_testkit::{TestDb, test_app};
use serde_json::json;

use crate::{FROM, PASSWORD, mail_context, mail_settings};

/// `order.paid` as ecom-orders records it (API.md, Events).
fn paid(order_id: i64, user_id: i64) -> serde_json::Value {
    json!({
        "order": {
            "id": order_id, "user_id": user_id, "status": "paid", "total_price": "61.50",
            "payment_due_at": null,
            "items": [
                {"product_id": 7, "variant_id": 70, "product_name": "Trail backpack", "sku": "TB-40",
                 "options": {"Size": "L"}, "quantity": 1, "unit_price": "49.50", "line_total": "49.50"},
                {"product_id": 8, "variant_id": 80, "product_name": "Water bottle", "sku": null,
                 "options": {}, "quantity": 2, "unit_price": "6.00", "line_total": "12.00"}
            ]
        },
        "from_status": "pending", "to_status": "paid", "actor": "system", "reason": "payment_captured"
    })
}

/// Records an event of order `order_id` in a transaction of its own; returns its id, read
/// back after the commit (the outbox may draw ids at commit).
async fn record(db: &TestDb, event_type: &'static str, order_id: i64, user_id: i64) -> i64 {
    let mut conn = db.connect().await;
    conn.transaction(async |conn| {
        events::record(
            conn,
            NewEvent {
                event_type,
                aggregate_type: "order",
                aggregate_id: order_id,
                owner_id: Some(user_id),
                data: paid(order_id, user_id),
            },
        )
        .await
        .map(drop)
    })
    .await
    .expect("recorded");
    events::events::table
        .filter(events::events::aggregate_type.eq("order"))
        .filter(events::events::aggregate_id.eq(order_id))
        .filter(events::events::event_type.eq(event_type))
        .select(diesel::dsl::max(events::events::id))
        .get_result::<Option<i64>>(&mut conn)
        .await
        .expect("read back")
        .expect("the event")
}

/// The mail tasks as `ecom serve` starts them: a paid order's owner gets one confirmation,
/// whose Message-ID comes from the event; a replay of the events queues nothing new.
#[actix_web::test]
async fn a_paid_order_mails_its_owner_one_confirmation() {
    let peer = SmtpPeer::start();
    let db = TestDb::new().await;
    let extra = [("SMTP_URL", peer.url())];
    let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let settings = mail_settings(&db, &extra);
    let tasks =
        ecom_mail::spawn(&settings, db.pool(), crate::wakeups(&db)).expect("mail tasks start");
    let app = test_app(mail_context(&db, &extra)).await;
    let owner = app.anonymous().register("ray@example.com", PASSWORD).await;
    peer.wait_for("ray@example.com", 1).await;

    record(&db, "order.created", 41, owner).await;
    let paid_event = record(&db, "order.paid", 41, owner).await;
    let mails = peer.wait_for("ray@example.com", 2).await;
    let confirmation = mails
        .iter()
        .find(|m| m.header("Subject") == Some("Your order #41 is confirmed"))
        .expect("a confirmation");
    assert_eq!(confirmation.header("From"), Some(FROM));
    assert_eq!(
        confirmation.header("Message-ID"),
        Some(format!("<order-paid-{paid_event}@shop.example>").as_str())
    );
    for text in [
        "order #41",
        "1 × Trail backpack (TB-40) at 49.50 USD",
        "2 × Water bottle at 6.00 USD",
        "Total: 61.50 USD",
        "https://shop.example/orders/41",
    ] {
        assert!(
            confirmation.body.contains(text),
            "{text:?} in {}",
            confirmation.body
        );
    }

    // A replay (the cursor moved back, as after a crash before its commit) queues nothing new.
    let mut conn = db.connect().await;
    diesel::update(event_cursors::table.filter(event_cursors::consumer.eq("mail")))
        .set(event_cursors::last_event_id.eq(0))
        .execute(&mut conn)
        .await
        .expect("rewind");
    let consumer = ecom_mail::orders::consumer(ecom_mail::confirmation_settings(&settings));
    loop {
        match consumer.step(&mut conn).await.expect("a step") {
            Some(_) => break,
            // The spawned consumer holds the cursor for a moment.
            None => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
    let confirmations: i64 = mail_outbox::table
        .filter(mail_outbox::kind.eq("order_confirmation"))
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!(confirmations, 1);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        peer.mails_to("ray@example.com").len(),
        2,
        "no second confirmation"
    );
    tasks.abort();
}

/// An order whose owner's account is gone, or an event of another shape, is skipped
/// without blocking the cursor.
#[actix_web::test]
async fn confirmations_skip_what_cannot_be_mailed_and_move_on() {
    let db = TestDb::new().await;
    let settings = mail_settings(&db, &[]);
    let consumer = ecom_mail::orders::consumer(ecom_mail::confirmation_settings(&settings));
    let gone = record(&db, "order.paid", 51, 999_999).await;
    let mut conn = db.connect().await;
    conn.transaction(async |conn| {
        events::record(
            conn,
            NewEvent {
                event_type: "order.paid",
                aggregate_type: "order",
                aggregate_id: 52,
                owner_id: None,
                data: json!({"unexpected": true}),
            },
        )
        .await
        .map(drop)
    })
    .await
    .expect("recorded");
    assert_eq!(consumer.step(&mut conn).await.expect("a step"), Some(2));
    let cursor: i64 = event_cursors::table
        .filter(event_cursors::consumer.eq("mail"))
        .select(event_cursors::last_event_id)
        .first(&mut conn)
        .await
        .expect("cursor");
    assert!(cursor > gone);
    let queued: i64 = mail_outbox::table
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!(queued, 0);
}
