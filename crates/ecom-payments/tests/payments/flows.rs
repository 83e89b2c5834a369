//! The payment flows end to end over HTTP: manual payments, refunds, cancelling a paid
//! order, a capture the order can no longer take, expiry held off by an authorization,
//! providers offered and webhook signatures.

use actix_web::http::Method;
use chrono::{DateTime, Utc};
use ecom_payments::CaptureMethod;
use serde_json::json;

use crate::support::*;

fn due_at(order: &serde_json::Value) -> DateTime<Utc> {
    order["payment_due_at"]
        .as_str()
        .expect("a due time")
        .parse()
        .expect("RFC 3339")
}

#[actix_web::test]
async fn a_manual_payment_waits_for_the_administrator_then_pays_the_order() {
    let shop = Shop::open(payments_with(None)).await;
    let order = shop.order(SHOPPER, "19.90").await;
    let order_id = order["id"].as_i64().expect("id");
    let (status, payment) = shop.pay(order_id, SHOPPER, "manual", None).await;
    assert_eq!(status, 201, "{payment}");
    assert_eq!(
        (&payment["provider"], &payment["status"]),
        (&json!("manual"), &json!("pending"))
    );
    assert_eq!(
        (&payment["amount"], &payment["currency"]),
        (&json!("19.90"), &json!("usd"))
    );
    // The window is now MANUAL_PAYMENT_WINDOW_HOURS (72 h), not the 30 minutes of a new order.
    let after = shop.get(&format!("/orders/{order_id}"), SHOPPER).await;
    let hours = (due_at(&after) - Utc::now()).num_minutes() as f64 / 60.0;
    assert!((71.5..=72.1).contains(&hours), "{hours} h");

    let manual = format!("/admin/orders/{order_id}/payments/manual");
    let (status, body) = shop
        .post(
            &manual,
            json!({"amount": "19.00", "reference": "wire 1"}),
            MANAGER,
        )
        .await;
    assert_eq!(
        (status, &body["code"]),
        (422, &json!("amount_mismatch")),
        "{body}"
    );
    let (status, body) = shop
        .post(
            &manual,
            json!({"amount": "19.90", "reference": "wire 1"}),
            SHOPPER,
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, paid) = shop
        .post(
            &manual,
            json!({"amount": "19.90", "reference": "wire 1"}),
            MANAGER,
        )
        .await;
    assert_eq!(status, 201, "{paid}");
    assert_eq!(
        paid["id"], payment["id"],
        "the shopper's manual payment is completed"
    );
    assert_eq!(
        (&paid["status"], &paid["captured"], &paid["reference"]),
        (&json!("captured"), &json!("19.90"), &json!("wire 1"))
    );
    let history = shop.history(order_id).await;
    let last = history.last().expect("history");
    assert_eq!(
        (&last["to_status"], &last["actor"], &last["reason"]),
        (&json!("paid"), &json!("admin"), &json!("manual_payment"))
    );
    let (status, body) = shop
        .post(
            &manual,
            json!({"amount": "19.90", "reference": "wire 2"}),
            MANAGER,
        )
        .await;
    assert_eq!((status, &body["code"]), (409, &json!("order_not_payable")));
    let mut conn = shop.db.connect().await;
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM audit_log WHERE action = 'payment.manual'"
        )
        .await,
        1
    );
}

#[actix_web::test]
async fn without_a_stripe_key_only_manual_is_offered() {
    let shop = Shop::open(payments_with(None)).await;
    let order = shop.order(SHOPPER, "5.00").await;
    let order_id = order["id"].as_i64().expect("id");
    for provider in ["stripe", "paypal", ""] {
        let (status, body) = shop.pay(order_id, SHOPPER, provider, None).await;
        assert_eq!(
            (status, &body["code"]),
            (422, &json!("unsupported_provider")),
            "{provider}"
        );
    }
    // Someone else's order is missing, not refused.
    let (status, body) = shop.pay(order_id, OTHER, "manual", None).await;
    assert_eq!((status, &body["code"]), (404, &json!("not_found")));
    assert!(shop.payments_of(order_id).await.is_empty());
}

#[actix_web::test]
async fn stripe_payments_follow_the_card_and_one_stays_open() {
    let shop = Shop::stripe(CaptureMethod::Automatic).await;
    let order = shop.order(SHOPPER, "9.99").await;
    let order_id = order["id"].as_i64().expect("id");
    // A declined card: the payment failed, the order still pending.
    let (status, failed) = shop
        .pay(
            order_id,
            SHOPPER,
            "stripe",
            Some("pm_card_chargeCustomerFail"),
        )
        .await;
    assert_eq!(status, 201, "{failed}");
    assert_eq!(
        (&failed["status"], &failed["failure_code"]),
        (&json!("failed"), &json!("card_declined"))
    );
    // Waiting for Stripe.js: pending with a client secret for the owner only.
    let (_, first) = shop.pay(order_id, SHOPPER, "stripe", None).await;
    assert_eq!(first["status"], "pending");
    assert!(
        first["client_secret"]
            .as_str()
            .is_some_and(|s| s.contains("_secret_")),
        "{first}"
    );
    let listed = shop.payments_of(order_id).await;
    assert!(
        listed.iter().all(|p| p.get("client_secret").is_none()),
        "not to a manager"
    );
    let own = shop
        .get(&format!("/orders/{order_id}/payments"), SHOPPER)
        .await;
    assert!(own["items"][1]["client_secret"].is_string(), "{own}");
    // A new payment cancels the open pending one, at Stripe too.
    let (status, second) = shop
        .pay(order_id, SHOPPER, "stripe", Some("pm_card_visa"))
        .await;
    assert_eq!(
        (status, &second["status"]),
        (201, &json!("captured")),
        "{second}"
    );
    let listed = shop.payments_of(order_id).await;
    let statuses: Vec<_> = listed
        .iter()
        .map(|p| p["status"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(statuses, ["failed", "cancelled", "captured"]);
    let (code, intent) = ecom_testkit::localstripe::localstripe()
        .request(
            "GET",
            &format!(
                "/v1/payment_intents/{}",
                first["reference"].as_str().expect("pi")
            ),
            "",
        )
        .expect("localstripe answers");
    assert_eq!(code, 200);
    assert!(intent.contains("\"canceled\""), "{intent}");
    // Paid: no further payment.
    let (status, body) = shop
        .pay(order_id, SHOPPER, "stripe", Some("pm_card_visa"))
        .await;
    assert_eq!((status, &body["code"]), (409, &json!("order_not_payable")));
    assert_eq!(shop.times_paid(order_id).await, 1);
}

#[actix_web::test]
async fn an_authorized_payment_is_in_progress_and_holds_off_expiry() {
    let shop = Shop::stripe(CaptureMethod::Manual).await;
    let (order_id, payment) = shop.paid_by_card("15.00", "authorized").await;
    let (status, body) = shop.pay(order_id, SHOPPER, "manual", None).await;
    assert_eq!(
        (status, &body["code"]),
        (409, &json!("payment_in_progress"))
    );
    // Past due: the expiry task (with payments' gate) leaves the order alone.
    shop.make_overdue(order_id).await;
    let expired = shop.run_expiry().await;
    assert_eq!(expired, 0);
    assert_eq!(
        shop.get(&format!("/orders/{order_id}"), SHOPPER).await["status"],
        "pending"
    );
    // A capture now finds the order past due: it cannot take the money, which goes back.
    let payment_id = payment["id"].as_i64().expect("id");
    let (status, captured) = shop
        .send(
            Method::POST,
            &format!("/admin/payments/{payment_id}/capture"),
            None,
            Some(MANAGER),
        )
        .await;
    assert_eq!(status, 200, "{captured}");
    assert_eq!(
        (&captured["status"], &captured["refunded"]),
        (&json!("refunded"), &json!("15.00"))
    );
    assert_eq!(captured["refunds"][0]["reason"], "capture_not_payable");
    assert_eq!(shop.times_paid(order_id).await, 0);
    // Nothing authorized any more: the order expires on the next round.
    let expired = shop.run_expiry().await;
    assert_eq!(expired, 1);
    assert_eq!(
        shop.get(&format!("/orders/{order_id}"), SHOPPER).await["status"],
        "cancelled"
    );
}

#[actix_web::test]
async fn refunds_are_partial_then_full_and_the_order_follows() {
    let shop = Shop::stripe(CaptureMethod::Automatic).await;
    let (order_id, payment) = shop.paid_by_card("30.00", "captured").await;
    let refund = format!("/admin/payments/{}/refund", payment["id"]);
    let (status, body) = shop
        .post(
            &refund,
            json!({"amount": "10.00", "reason": "scratched"}),
            MANAGER,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["status"], &body["refunded"]),
        (&json!("partially_refunded"), &json!("10.00"))
    );
    assert_eq!(body["refunds"][0]["reason"], "scratched");
    let (status, body) = shop
        .post(&refund, json!({"amount": "20.01"}), MANAGER)
        .await;
    assert_eq!(
        (status, &body["code"]),
        (422, &json!("refund_exceeds_captured"))
    );
    assert_eq!(
        shop.get(&format!("/orders/{order_id}"), SHOPPER).await["status"],
        "paid"
    );
    // No body: all that is left.
    let (status, body) = shop.send(Method::POST, &refund, None, Some(MANAGER)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["status"], &body["refunded"]),
        (&json!("refunded"), &json!("30.00"))
    );
    assert_eq!(body["refunds"].as_array().map(Vec::len), Some(2));
    let order = shop.get(&format!("/orders/{order_id}"), SHOPPER).await;
    assert_eq!(order["status"], "refunded");
    let last = shop.history(order_id).await.pop().expect("history");
    assert_eq!(
        (&last["from_status"], &last["actor"], &last["reason"]),
        (&json!("paid"), &json!("system"), &json!("refunded"))
    );
    let (status, body) = shop.post(&refund, json!({"amount": "1.00"}), MANAGER).await;
    assert_eq!(
        (status, &body["code"]),
        (409, &json!("invalid_payment_state"))
    );
    let mut conn = shop.db.connect().await;
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM audit_log WHERE action = 'payment.refund'"
        )
        .await,
        2
    );
}

#[actix_web::test]
async fn cancelling_a_paid_order_refunds_it_at_stripe_and_leaves_it_cancelled() {
    let shop = Shop::stripe(CaptureMethod::Automatic).await;
    let (order_id, _) = shop.paid_by_card("44.00", "captured").await;
    let (status, body) = shop.cancel(order_id, MANAGER).await;
    assert_eq!(
        (status, &body["status"]),
        (200, &json!("cancelled")),
        "{body}"
    );
    let payments = shop.payments_of(order_id).await;
    assert_eq!(
        (&payments[0]["status"], &payments[0]["refunded"]),
        (&json!("refunded"), &json!("44.00"))
    );
    assert_eq!(payments[0]["refunds"][0]["reason"], "order_cancelled");
    let last = shop.history(order_id).await.pop().expect("history");
    assert_eq!(
        (&last["from_status"], &last["to_status"]),
        (&json!("paid"), &json!("cancelled"))
    );
    let intent = payments[0]["reference"].as_str().expect("pi");
    let (code, refunds) = ecom_testkit::localstripe::localstripe()
        .request("GET", &format!("/v1/refunds?payment_intent={intent}"), "")
        .expect("localstripe answers");
    assert_eq!(code, 200);
    assert!(refunds.contains("\"amount\": 4400"), "{refunds}");
}

#[actix_web::test]
async fn a_provider_failure_on_cancel_changes_nothing() {
    let unreachable: std::sync::Arc<dyn ecom_payments::PaymentProvider> =
        std::sync::Arc::new(unreachable_stripe());
    let shop = Shop::open(payments_with(Some(unreachable))).await;
    let order = shop.order(SHOPPER, "8.00").await;
    let order_id = order["id"].as_i64().expect("id");
    let (status, body) = shop.pay(order_id, SHOPPER, "stripe", None).await;
    assert_eq!(
        (status, &body["code"]),
        (502, &json!("payment_provider_error")),
        "{body}"
    );
    assert!(!body.to_string().contains("sk_test_unreachable"));
    assert!(
        shop.payments_of(order_id).await.is_empty(),
        "nothing recorded"
    );
    // A pending Stripe payment recorded earlier (as if Stripe had answered then).
    let mut conn = shop.db.connect().await;
    diesel_async::RunQueryDsl::execute(
        diesel::sql_query(format!(
            "INSERT INTO payments (order_id, user_id, provider, amount, currency, reference) \
             VALUES ({order_id}, {SHOPPER}, 'stripe', 8.00, 'usd', 'pi_elsewhere')"
        )),
        &mut conn,
    )
    .await
    .expect("a payment");
    let (status, body) = shop.cancel(order_id, SHOPPER).await;
    assert_eq!(
        (status, &body["code"]),
        (502, &json!("payment_provider_error")),
        "{body}"
    );
    assert_eq!(
        shop.get(&format!("/orders/{order_id}"), SHOPPER).await["status"],
        "pending"
    );
    assert_eq!(shop.payments_of(order_id).await[0]["status"], "pending");
}

#[actix_web::test]
async fn webhooks_need_a_fresh_valid_signature() {
    let shop = Shop::stripe(CaptureMethod::Automatic).await;
    let order = shop.order(SHOPPER, "7.00").await;
    let order_id = order["id"].as_i64().expect("id");
    let (_, payment) = shop.pay(order_id, SHOPPER, "stripe", None).await;
    let event = intent_event(
        "evt_sig",
        "payment_intent.succeeded",
        payment["reference"].as_str().expect("pi"),
        "succeeded",
        700,
        payment["id"].as_i64().expect("id"),
        order_id,
    );
    let body = serde_json::to_vec(&event).expect("JSON");
    let url = shop.server.url("/payments/webhooks/stripe");
    let client = ecom_testkit::http_client();
    let now = Utc::now().timestamp();
    let stale =
        ecom_payments::service::signature::header_for(WEBHOOK_SECRET.as_bytes(), now - 301, &body);
    let wrong = ecom_payments::service::signature::header_for(b"whsec_other", now, &body);
    for header in [
        None,
        Some("t=1,v1=00".to_string()),
        Some(stale),
        Some(wrong),
    ] {
        let mut req = client
            .post(&url)
            .insert_header(("Content-Type", "application/json"));
        if let Some(h) = &header {
            req = req.insert_header(("Stripe-Signature", h.as_str()));
        }
        let mut res = req.send_body(body.clone()).await.expect("answers");
        let problem: serde_json::Value =
            serde_json::from_slice(&res.body().await.expect("body")).expect("JSON");
        assert_eq!(
            (res.status().as_u16(), &problem["code"]),
            (400, &json!("invalid_signature")),
            "{header:?}"
        );
    }
    assert_eq!(
        shop.get(&format!("/orders/{order_id}"), SHOPPER).await["status"],
        "pending"
    );
    // Signed garbage is refused after the check; unknown types and intents are ignored.
    let garbage = serde_json::json!({"hello": "world"});
    assert_eq!(shop.post_event(&garbage).await.0, 422);
    let other =
        serde_json::json!({"id": "evt_x", "type": "customer.created", "data": {"object": {}}});
    assert_eq!(
        shop.post_event(&other).await,
        (200, json!({"received": true}))
    );
    let unknown = intent_event(
        "evt_u",
        "payment_intent.succeeded",
        "pi_unknown",
        "succeeded",
        700,
        999_999,
        999_999,
    );
    assert_eq!(shop.post_event(&unknown).await.0, 200);
    assert_eq!(shop.post_event(&event).await.0, 200);
    assert_eq!(
        shop.get(&format!("/orders/{order_id}"), SHOPPER).await["status"],
        "paid"
    );
}

#[actix_web::test]
async fn expiry_voids_a_pending_stripe_payment_before_cancelling() {
    let shop = Shop::stripe(CaptureMethod::Automatic).await;
    let order = shop.order(SHOPPER, "6.00").await;
    let order_id = order["id"].as_i64().expect("id");
    let (_, payment) = shop.pay(order_id, SHOPPER, "stripe", None).await;
    assert_eq!(payment["status"], "pending");
    shop.make_overdue(order_id).await;
    let expired = shop.run_expiry().await;
    assert_eq!(expired, 1);
    assert_eq!(
        shop.get(&format!("/orders/{order_id}"), SHOPPER).await["status"],
        "cancelled"
    );
    assert_eq!(shop.payments_of(order_id).await[0]["status"], "cancelled");
    let intent = payment["reference"].as_str().expect("pi");
    let (code, body) = ecom_testkit::localstripe::localstripe()
        .request("GET", &format!("/v1/payment_intents/{intent}"), "")
        .expect("localstripe answers");
    assert_eq!(code, 200);
    assert!(body.contains("\"status\": \"canceled\""), "{body}");
}
