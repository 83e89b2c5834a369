//! The concurrency claims of payments, with real concurrent requests against the real
//! PostgreSQL and localstripe: identical events at once, duplicate ids, events out of
//! order, an event that overtakes our own create call, racing captures.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use actix_web::http::Method;
use ecom_core::Money;
use ecom_payments::{CaptureMethod, IntentRequest, PaymentProvider, ProviderError, ProviderState};
use futures_util::future::join_all;
use serde_json::json;

use crate::support::*;

/// Three identical `payment_intent.succeeded` at once (one event id, and on a second order
/// three ids for the same capture): the order is paid once, the payment captured once.
#[actix_web::test]
async fn three_identical_succeeded_events_at_once_pay_the_order_once() {
    let shop = Shop::stripe(CaptureMethod::Automatic).await;
    for distinct_ids in [false, true] {
        let order = shop.order(SHOPPER, "25.00").await;
        let order_id = order["id"].as_i64().expect("id");
        let (status, payment) = shop.pay(order_id, SHOPPER, "stripe", None).await;
        assert_eq!(status, 201, "{payment}");
        assert_eq!(payment["status"], "pending");
        let intent = payment["reference"].as_str().expect("a PaymentIntent");
        let payment_id = payment["id"].as_i64().expect("id");
        let events: Vec<_> = (0..3)
            .map(|i| {
                let id = if distinct_ids {
                    format!("evt_{payment_id}_{i}")
                } else {
                    format!("evt_{payment_id}")
                };
                intent_event(
                    &id,
                    "payment_intent.succeeded",
                    intent,
                    "succeeded",
                    2500,
                    payment_id,
                    order_id,
                )
            })
            .collect();
        let answers = join_all(events.iter().map(|e| shop.post_event(e))).await;
        for (status, body) in &answers {
            assert_eq!((*status, body), (200, &json!({"received": true})));
        }
        assert_eq!(shop.times_paid(order_id).await, 1, "paid exactly once");
        let history = shop.history(order_id).await;
        let paid = history
            .iter()
            .find(|h| h["to_status"] == "paid")
            .expect("paid");
        assert_eq!(
            (&paid["actor"], &paid["reason"]),
            (&json!("system"), &json!("payment_captured"))
        );
        let payments = shop.payments_of(order_id).await;
        assert_eq!(payments.len(), 1);
        assert_eq!(payments[0]["status"], "captured");
        assert_eq!(payments[0]["captured"], "25.00");
        assert_eq!(payments[0]["refunded"], "0.00");
        let order = shop.get(&format!("/orders/{order_id}"), SHOPPER).await;
        assert_eq!(order["status"], "paid");
        let kept = count(
            &mut shop.db.connect().await,
            &format!(
                "SELECT count(*) AS n FROM payments_provider_events WHERE payment_id = {payment_id}"
            ),
        )
        .await;
        assert_eq!(kept, if distinct_ids { 3 } else { 1 });
    }
}

/// A seen event id is acknowledged and not applied again, even with another body.
#[actix_web::test]
async fn a_seen_event_id_is_applied_once() {
    let shop = Shop::stripe(CaptureMethod::Automatic).await;
    let (order_id, payment) = shop.paid_by_card("40.00", "captured").await;
    let intent = payment["reference"].as_str().expect("a PaymentIntent");
    let first = refunded_event("evt_refund_1", intent, 4000, 1000);
    assert_eq!(shop.post_event(&first).await.0, 200);
    // The same id again, now claiming more refunded: nothing is applied.
    let replay = refunded_event("evt_refund_1", intent, 4000, 4000);
    assert_eq!(
        shop.post_event(&replay).await,
        (200, json!({"received": true}))
    );
    let payments = shop.payments_of(order_id).await;
    assert_eq!(payments[0]["status"], "partially_refunded");
    assert_eq!(payments[0]["refunded"], "10.00");
    assert_eq!(payments[0]["refunds"].as_array().map(Vec::len), Some(1));
    let order = shop.get(&format!("/orders/{order_id}"), SHOPPER).await;
    assert_eq!(
        order["status"], "paid",
        "not refunded: the replay was not applied"
    );
    // A new id with the full amount refunds the rest, and the order with it.
    let rest = refunded_event("evt_refund_2", intent, 4000, 4000);
    assert_eq!(shop.post_event(&rest).await.0, 200);
    let payments = shop.payments_of(order_id).await;
    assert_eq!(
        (&payments[0]["status"], &payments[0]["refunded"]),
        (&json!("refunded"), &json!("40.00"))
    );
    let order = shop.get(&format!("/orders/{order_id}"), SHOPPER).await;
    assert_eq!(order["status"], "refunded");
}

/// Events in any order: a late `authorized`, `failed` or `canceled` never moves a captured
/// payment back; an early capture is not undone by the authorization that follows it.
#[actix_web::test]
async fn events_out_of_order_never_move_a_payment_back() {
    let shop = Shop::stripe(CaptureMethod::Manual).await;
    let order = shop.order(SHOPPER, "12.00").await;
    let order_id = order["id"].as_i64().expect("id");
    let (_, payment) = shop.pay(order_id, SHOPPER, "stripe", None).await;
    let intent = payment["reference"]
        .as_str()
        .expect("a PaymentIntent")
        .to_string();
    let payment_id = payment["id"].as_i64().expect("id");
    let event = |id: &str, kind: &str, status: &str| {
        intent_event(id, kind, &intent, status, 1200, payment_id, order_id)
    };
    for e in [
        event("evt_o1", "payment_intent.succeeded", "succeeded"),
        event(
            "evt_o2",
            "payment_intent.amount_capturable_updated",
            "requires_capture",
        ),
        event(
            "evt_o3",
            "payment_intent.payment_failed",
            "requires_payment_method",
        ),
        event("evt_o4", "payment_intent.canceled", "canceled"),
    ] {
        assert_eq!(shop.post_event(&e).await.0, 200);
    }
    let payments = shop.payments_of(order_id).await;
    assert_eq!(payments[0]["status"], "captured");
    assert_eq!(
        (&payments[0]["authorized"], &payments[0]["captured"]),
        (&json!("12.00"), &json!("12.00"))
    );
    assert_eq!(payments[0]["failure_code"], serde_json::Value::Null);
    assert_eq!(shop.times_paid(order_id).await, 1);

    // The other way round on a second order: authorized, then captured.
    let order = shop.order(SHOPPER, "12.00").await;
    let order_id = order["id"].as_i64().expect("id");
    let (_, payment) = shop.pay(order_id, SHOPPER, "stripe", None).await;
    let intent = payment["reference"]
        .as_str()
        .expect("a PaymentIntent")
        .to_string();
    let payment_id = payment["id"].as_i64().expect("id");
    let authorized = intent_event(
        "evt_i1",
        "payment_intent.amount_capturable_updated",
        &intent,
        "requires_capture",
        1200,
        payment_id,
        order_id,
    );
    assert_eq!(shop.post_event(&authorized).await.0, 200);
    let payments = shop.payments_of(order_id).await;
    assert_eq!(
        (&payments[0]["status"], &payments[0]["authorized"]),
        (&json!("authorized"), &json!("12.00"))
    );
    assert_eq!(
        shop.get(&format!("/orders/{order_id}"), SHOPPER).await["status"],
        "pending"
    );
    let captured = intent_event(
        "evt_i2",
        "payment_intent.succeeded",
        &intent,
        "succeeded",
        1200,
        payment_id,
        order_id,
    );
    assert_eq!(shop.post_event(&captured).await.0, 200);
    assert_eq!(shop.payments_of(order_id).await[0]["status"], "captured");
    assert_eq!(
        shop.get(&format!("/orders/{order_id}"), SHOPPER).await["status"],
        "paid"
    );
}

/// Stripe at localstripe, except that its create call — before answering — has Stripe's
/// `payment_intent.succeeded` for the new intent posted to the shop's webhook, and waits
/// until that request is surely blocked on the order's lock.
struct OvertakenByItsWebhook {
    webhook_url: Arc<OnceLock<String>>,
    webhook_answer: Arc<Mutex<Option<u16>>>,
}

#[async_trait::async_trait]
impl Interception for OvertakenByItsWebhook {
    async fn create(
        &self,
        real: &dyn PaymentProvider,
        request: &IntentRequest<'_>,
    ) -> Result<ProviderState, ProviderError> {
        let state = real.create(request).await?;
        let intent = state.reference.clone().expect("a PaymentIntent");
        let event = intent_event(
            &format!("evt_early_{}", request.payment_id),
            "payment_intent.succeeded",
            &intent,
            "succeeded",
            request.amount.cents(),
            request.payment_id,
            request.order_id,
        );
        let url = self.webhook_url.get().expect("the shop's URL").clone();
        let answer = self.webhook_answer.clone();
        actix_web::rt::spawn(async move {
            let (status, _) = post_signed(&ecom_testkit::http_client(), &url, &event).await;
            *answer.lock().expect("answer") = Some(status);
        });
        actix_web::rt::time::sleep(Duration::from_millis(500)).await;
        assert!(
            self.webhook_answer.lock().expect("answer").is_none(),
            "the webhook waits for the order this call holds"
        );
        Ok(state)
    }
}

/// The webhook arrives before our create call has returned (and before the payment row or
/// its PaymentIntent id is committed): it finds the payment through the intent's metadata,
/// waits on the order's lock, and applies the capture once the create commits.
#[actix_web::test]
async fn a_webhook_that_overtakes_the_create_call_applies_once_after_it() {
    let webhook_url = Arc::new(OnceLock::new());
    let webhook_answer = Arc::new(Mutex::new(None));
    let provider = Intercepted {
        real: localstripe_provider(CaptureMethod::Automatic),
        interception: OvertakenByItsWebhook {
            webhook_url: webhook_url.clone(),
            webhook_answer: webhook_answer.clone(),
        },
    };
    let shop = Shop::open(payments_with(Some(Arc::new(provider)))).await;
    webhook_url
        .set(shop.server.url("/payments/webhooks/stripe"))
        .expect("set once");
    let order = shop.order(SHOPPER, "33.00").await;
    let order_id = order["id"].as_i64().expect("id");
    let (status, payment) = shop.pay(order_id, SHOPPER, "stripe", None).await;
    assert_eq!(status, 201, "{payment}");
    // Our own answer is the intent as created: waiting for the customer.
    assert_eq!(payment["status"], "pending");
    let mut waited = 0;
    while webhook_answer.lock().expect("answer").is_none() && waited < 100 {
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    assert_eq!(*webhook_answer.lock().expect("answer"), Some(200));
    let payments = shop.payments_of(order_id).await;
    assert_eq!(payments.len(), 1);
    assert_eq!(
        (&payments[0]["status"], &payments[0]["captured"]),
        (&json!("captured"), &json!("33.00"))
    );
    assert_eq!(payments[0]["reference"], payment["reference"]);
    assert_eq!(shop.times_paid(order_id).await, 1);
    assert_eq!(
        shop.get(&format!("/orders/{order_id}"), SHOPPER).await["status"],
        "paid"
    );
}

/// Concurrent captures of one authorized payment: one 200, the others 409, the provider
/// asked once, the order paid once, one audit entry.
#[actix_web::test]
async fn concurrent_captures_capture_once() {
    let shop = Shop::stripe(CaptureMethod::Manual).await;
    let (order_id, payment) = shop.paid_by_card("50.00", "authorized").await;
    let payment_id = payment["id"].as_i64().expect("id");
    let path = format!("/admin/payments/{payment_id}/capture");
    let answers =
        join_all((0..4).map(|_| shop.send(Method::POST, &path, None, Some(MANAGER)))).await;
    let mut statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    statuses.sort();
    assert_eq!(statuses, [200, 409, 409, 409], "{answers:?}");
    for (status, body) in &answers {
        if *status == 409 {
            assert_eq!(body["code"], "invalid_payment_state");
        } else {
            assert_eq!(
                (&body["status"], &body["captured"]),
                (&json!("captured"), &json!("50.00"))
            );
        }
    }
    assert_eq!(shop.times_paid(order_id).await, 1);
    let mut conn = shop.db.connect().await;
    let audited = count(
        &mut conn,
        &format!("SELECT count(*) AS n FROM audit_log WHERE action = 'payment.capture' AND target_id = '{payment_id}'"),
    )
    .await;
    assert_eq!(audited, 1);
}

/// An `Idempotency-Key` makes racing repeats of a payment POST one operation: the same
/// payment for every create, one refund for every refund; another request under the same
/// key is refused.
#[actix_web::test]
async fn racing_requests_with_one_idempotency_key_act_once() {
    let shop = Shop::stripe(CaptureMethod::Automatic).await;
    let order = shop.order(SHOPPER, "20.00").await;
    let order_id = order["id"].as_i64().expect("id");
    let path = format!("/orders/{order_id}/payments");
    let body = json!({"provider": "stripe", "payment_method": "pm_card_visa"});
    let key = [("Idempotency-Key", "pay-once-1")];
    let answers = join_all(
        (0..3)
            .map(|_| shop.send_with(Method::POST, &path, Some(body.clone()), Some(SHOPPER), &key)),
    )
    .await;
    for (status, payment) in &answers {
        assert_eq!(*status, 201, "{payment}");
        assert_eq!(payment["id"], answers[0].1["id"]);
        assert_eq!(payment["status"], "captured");
    }
    assert_eq!(shop.payments_of(order_id).await.len(), 1);
    let other = json!({"provider": "manual"});
    let (status, problem) = shop
        .send_with(Method::POST, &path, Some(other), Some(SHOPPER), &key)
        .await;
    assert_eq!(
        (status, &problem["code"]),
        (422, &json!("idempotency_key_reused"))
    );
    // Another caller's key of the same name is theirs (scoped per caller): here, a 404.
    let (status, _) = shop
        .send_with(Method::POST, &path, Some(body.clone()), Some(OTHER), &key)
        .await;
    assert_eq!(status, 404);

    let refund = format!("/admin/payments/{}/refund", answers[0].1["id"]);
    let key = [("Idempotency-Key", "refund-5")];
    let answers = join_all((0..3).map(|_| {
        shop.send_with(
            Method::POST,
            &refund,
            Some(json!({"amount": "5.00"})),
            Some(MANAGER),
            &key,
        )
    }))
    .await;
    for (status, payment) in &answers {
        assert_eq!(*status, 200, "{payment}");
        assert_eq!(payment["refunded"], "5.00");
    }
    let payments = shop.payments_of(order_id).await;
    assert_eq!(payments[0]["refunds"].as_array().map(Vec::len), Some(1));
    assert_eq!(payments[0]["status"], "partially_refunded");
}

/// Stripe took the money but our create call rolled back (a timeout, a crash): the
/// PaymentIntent's metadata names a payment the store never kept. Its events (three at
/// once, under two ids) give the money back once, and the order stays unpaid.
#[actix_web::test]
async fn a_capture_no_payment_claims_is_refunded_once() {
    let stripe = localstripe_provider(CaptureMethod::Automatic);
    let shop = Shop::open(payments_with(Some(stripe.clone()))).await;
    let order = shop.order(SHOPPER, "25.00").await;
    let order_id = order["id"].as_i64().expect("id");
    // An id no payment row has: the sequence never hands it out again after a rollback.
    let lost = 9_000_000_000 + i64::from(std::process::id());
    let state = stripe
        .create(&IntentRequest {
            payment_id: lost,
            order_id,
            amount: "25.00".parse::<Money>().expect("money"),
            currency: "usd",
            payment_method: Some("pm_card_visa"),
        })
        .await
        .expect("captured at localstripe");
    let intent = state.reference.expect("a PaymentIntent id");
    let events: Vec<_> = ["evt_lost_a", "evt_lost_b", "evt_lost_a"]
        .iter()
        .map(|id| {
            intent_event(
                id,
                "payment_intent.succeeded",
                &intent,
                "succeeded",
                2500,
                lost,
                order_id,
            )
        })
        .collect();
    for (status, body) in join_all(events.iter().map(|e| shop.post_event(e))).await {
        assert_eq!((status, body), (200, json!({"received": true})));
    }

    assert_eq!(
        refunds_at_localstripe(&intent),
        [2500],
        "refunded once, in full"
    );
    assert!(shop.payments_of(order_id).await.is_empty());
    let order = shop.get(&format!("/orders/{order_id}"), SHOPPER).await;
    assert_eq!(order["status"], "pending");
}

/// A forged webhook is refused before it takes a database connection: while the pool's
/// only connection is held by a payment request waiting on the order's lock, a badly
/// signed event is answered 400 at once, and that request is still waiting.
#[actix_web::test]
async fn a_badly_signed_webhook_is_refused_without_a_database_connection() {
    let shop = Shop::open_with_pool(
        payments_with(Some(localstripe_provider(CaptureMethod::Automatic))),
        1,
    )
    .await;
    let order = shop.order(SHOPPER, "9.00").await;
    let order_id = order["id"].as_i64().expect("id");
    let mut holder = shop.db.connect().await;
    for sql in [
        "BEGIN".to_string(),
        format!("SELECT id FROM orders WHERE id = {order_id} FOR UPDATE"),
    ] {
        diesel_async::RunQueryDsl::execute(diesel::sql_query(sql), &mut holder)
            .await
            .expect("the order locked");
    }
    let pay = shop.pay(order_id, SHOPPER, "stripe", None);
    let forged = async {
        let mut watcher = shop.db.connect().await;
        let waiting = "SELECT count(*) AS n FROM pg_stat_activity \
                       WHERE datname = current_database() AND wait_event_type = 'Lock'";
        while count(&mut watcher, waiting).await == 0 {
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
        let event = intent_event(
            "evt_forged",
            "payment_intent.succeeded",
            "pi_forged",
            "succeeded",
            900,
            1,
            order_id,
        );
        let body = serde_json::to_vec(&event).expect("JSON");
        let header = ecom_payments::service::signature::header_for(
            b"whsec_not_ours",
            chrono::Utc::now().timestamp(),
            &body,
        );
        let mut res = ecom_testkit::http_client()
            .post(shop.server.url("/payments/webhooks/stripe"))
            .insert_header(("Stripe-Signature", header))
            .insert_header(("Content-Type", "application/json"))
            .send_body(body)
            .await
            .expect("the server answers");
        let problem: serde_json::Value =
            serde_json::from_slice(&res.body().await.expect("a body")).expect("JSON");
        (res.status().as_u16(), problem)
    };
    futures_util::pin_mut!(pay, forged);
    let still_paying = match futures_util::future::select(pay, forged).await {
        futures_util::future::Either::Right(((status, problem), pay)) => {
            assert_eq!(
                (status, &problem["code"]),
                (400, &json!("invalid_signature"))
            );
            pay
        }
        futures_util::future::Either::Left((answer, _)) => {
            panic!(
                "the payment request ended first ({answer:?}): the forged webhook waited for its connection"
            )
        }
    };
    diesel_async::RunQueryDsl::execute(diesel::sql_query("ROLLBACK"), &mut holder)
        .await
        .expect("the order released");
    let (status, payment) = still_paying.await;
    assert_eq!(
        (status, &payment["status"]),
        (201, &json!("pending")),
        "{payment}"
    );
}
