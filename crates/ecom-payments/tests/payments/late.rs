//! Money that moves at Stripe while the store looks elsewhere: a PaymentIntent paid before
//! its event arrives, a failed payment's PaymentIntent left open. Against localstripe, with
//! the events the store would get posted by hand, signed as Stripe signs them.

use std::sync::Arc;

use ecom_payments::{
    CaptureMethod, Payment, PaymentProvider, ProviderError, ProviderState, StripeProvider,
};
use serde_json::{Value, json};

use crate::support::*;

/// A pending Stripe payment (no payment method yet) of a new order of `price`: the order's
/// id, the payment's id and its PaymentIntent.
async fn pending_stripe_payment(shop: &Shop, price: &str) -> (i64, i64, String) {
    let order = shop.order(SHOPPER, price).await;
    let order_id = order["id"].as_i64().expect("id");
    let (status, payment) = shop.pay(order_id, SHOPPER, "stripe", None).await;
    assert_eq!(
        (status, &payment["status"]),
        (201, &json!("pending")),
        "{payment}"
    );
    let intent = payment["reference"].as_str().expect("a PaymentIntent");
    (
        order_id,
        payment["id"].as_i64().expect("id"),
        intent.to_string(),
    )
}

const FAILED: &str = "payment_intent.payment_failed";
const SUCCEEDED: &str = "payment_intent.succeeded";

/// Stripe's [`FAILED`] (a declined card) or [`SUCCEEDED`] event for the payment.
fn event(id: &str, kind: &str, intent: &str, cents: i64, payment: i64, order: i64) -> Value {
    let status = if kind == SUCCEEDED {
        "succeeded"
    } else {
        "requires_payment_method"
    };
    intent_event(id, kind, intent, status, cents, payment, order)
}

async fn order_status(shop: &Shop, order_id: i64) -> Value {
    shop.get(&format!("/orders/{order_id}"), SHOPPER).await["status"].clone()
}

/// The shopper paid the open PaymentIntent at Stripe and its event has not arrived: a new
/// payment records that capture as the webhook would (the order paid once, by the system)
/// and answers 409 `order_not_payable`; an administrator's manual payment finds the
/// capture the same way, and cancelling the order refunds it.
#[actix_web::test]
async fn a_new_payment_finds_the_open_one_already_paid_at_stripe() {
    let shop = Shop::stripe(CaptureMethod::Automatic).await;
    let (order_id, payment_id, intent) = pending_stripe_payment(&shop, "14.00").await;
    assert_eq!(
        complete_at_localstripe(&intent, "pm_card_visa")["status"],
        "succeeded"
    );
    let answer = shop
        .pay(order_id, SHOPPER, "stripe", Some("pm_card_visa"))
        .await;
    assert_problem(&answer, 409, "order_not_payable");
    assert_eq!(order_status(&shop, order_id).await, "paid");
    let payments = shop.payments_of(order_id).await;
    assert_eq!(payments.len(), 1, "no second payment: {payments:?}");
    assert_eq!(
        (&payments[0]["status"], &payments[0]["captured"]),
        (&json!("captured"), &json!("14.00"))
    );
    let paid: Vec<_> = shop
        .history(order_id)
        .await
        .into_iter()
        .filter(|h| h["to_status"] == "paid")
        .collect();
    assert_eq!(paid.len(), 1);
    assert_eq!(
        (&paid[0]["actor"], &paid[0]["reason"]),
        (&json!("system"), &json!("payment_captured"))
    );
    // The event arrives after all: acknowledged, nothing applied twice, nothing refunded.
    let late = event(
        "evt_late_capture",
        SUCCEEDED,
        &intent,
        1400,
        payment_id,
        order_id,
    );
    assert_eq!(shop.post_event(&late).await.0, 200);
    assert_eq!(shop.times_paid(order_id).await, 1);
    assert!(refunds_at_localstripe(&intent).is_empty());
    assert_eq!(status_at_localstripe(&intent), "succeeded");

    // An administrator recording a transfer finds the capture the same way.
    let (order_id, _, intent) = pending_stripe_payment(&shop, "7.00").await;
    complete_at_localstripe(&intent, "pm_card_visa");
    let answer = shop
        .post(
            &format!("/admin/orders/{order_id}/payments/manual"),
            json!({"amount": "7.00", "reference": "bank-1"}),
            MANAGER,
        )
        .await;
    assert_problem(&answer, 409, "order_not_payable");
    assert_eq!(order_status(&shop, order_id).await, "paid");
    let payments = shop.payments_of(order_id).await;
    assert_eq!(payments.len(), 1);
    assert_eq!(payments[0]["provider"], "stripe");
    assert_eq!(shop.times_paid(order_id).await, 1);

    // Cancelling an order whose open payment was paid meanwhile refunds that capture.
    let shop = Shop::stripe(CaptureMethod::Automatic).await;
    let (order_id, _, intent) = pending_stripe_payment(&shop, "5.00").await;
    complete_at_localstripe(&intent, "pm_card_visa");
    let (status, order) = shop.cancel(order_id, SHOPPER).await;
    assert_eq!(
        (status, &order["status"]),
        (200, &json!("cancelled")),
        "{order}"
    );
    assert_eq!(refunds_at_localstripe(&intent), [500]);
    assert_eq!(shop.payments_of(order_id).await[0]["status"], "refunded");
}

/// `payment_intent.payment_failed` makes the payment `failed` and cancels the PaymentIntent
/// at Stripe, so the shopper cannot complete it later. A PaymentIntent the shopper had
/// paid meanwhile (the failure event arriving late) is found paid by that cancel and
/// refunded in full, once, whatever events follow.
#[actix_web::test]
async fn a_failed_payment_cancels_its_payment_intent() {
    let shop = Shop::stripe(CaptureMethod::Automatic).await;
    let (order_id, payment_id, intent) = pending_stripe_payment(&shop, "16.00").await;
    let failed = event("evt_failed_1", FAILED, &intent, 1600, payment_id, order_id);
    assert_eq!(
        shop.post_event(&failed).await,
        (200, json!({"received": true}))
    );
    let payments = shop.payments_of(order_id).await;
    assert_eq!(
        (&payments[0]["status"], &payments[0]["failure_code"]),
        (&json!("failed"), &json!("card_declined"))
    );
    assert_eq!(status_at_localstripe(&intent), "canceled");
    assert_eq!(order_status(&shop, order_id).await, "pending");

    // Paid at Stripe before the failure event arrived.
    let (order_id, payment_id, intent) = pending_stripe_payment(&shop, "18.00").await;
    complete_at_localstripe(&intent, "pm_card_visa");
    let failed = event("evt_failed_2", FAILED, &intent, 1800, payment_id, order_id);
    assert_eq!(shop.post_event(&failed).await.0, 200);
    assert_eq!(refunds_at_localstripe(&intent), [1800]);
    let succeeded = |id: &str| event(id, SUCCEEDED, &intent, 1800, payment_id, order_id);
    for id in ["evt_paid_a", "evt_paid_b", "evt_paid_a"] {
        assert_eq!(shop.post_event(&succeeded(id)).await.0, 200);
    }
    assert_eq!(refunds_at_localstripe(&intent), [1800], "refunded once");
    assert_eq!(shop.payments_of(order_id).await[0]["status"], "failed");
    assert_eq!(order_status(&shop, order_id).await, "pending");
    assert_eq!(shop.times_paid(order_id).await, 0);
}

/// Cancelling goes to a port where nothing listens: a provider outage exactly when a
/// failed payment's PaymentIntent is to be cancelled.
struct CancelUnreachable(StripeProvider);

#[async_trait::async_trait]
impl Interception for CancelUnreachable {
    async fn cancel(
        &self,
        _: &dyn PaymentProvider,
        payment: &Payment,
    ) -> Result<ProviderState, ProviderError> {
        self.0.cancel(payment).await
    }
}

/// The failure event is applied even when Stripe cannot be reached to cancel the
/// PaymentIntent; when the shopper then completes it, its `payment_intent.succeeded` gives
/// the money back in full, once, and the order is not paid by a failed payment.
#[actix_web::test]
async fn a_failed_payment_paid_after_all_is_refunded_by_its_event() {
    let provider = Intercepted {
        real: localstripe_provider(CaptureMethod::Automatic),
        interception: CancelUnreachable(unreachable_stripe()),
    };
    let shop = Shop::open(payments_with(Some(Arc::new(provider)))).await;
    let (order_id, payment_id, intent) = pending_stripe_payment(&shop, "21.00").await;
    let failed = event(
        "evt_failed_out",
        FAILED,
        &intent,
        2100,
        payment_id,
        order_id,
    );
    assert_eq!(
        shop.post_event(&failed).await,
        (200, json!({"received": true}))
    );
    assert_eq!(shop.payments_of(order_id).await[0]["status"], "failed");
    let kept = count(
        &mut shop.db.connect().await,
        "SELECT count(*) AS n FROM payments_provider_events WHERE event_id = 'evt_failed_out'",
    )
    .await;
    assert_eq!(kept, 1, "the event is recorded");
    assert_eq!(status_at_localstripe(&intent), "requires_payment_method");

    // The PaymentIntent stayed open: the shopper pays it.
    assert_eq!(
        complete_at_localstripe(&intent, "pm_card_visa")["status"],
        "succeeded"
    );
    let succeeded = |id: &str| event(id, SUCCEEDED, &intent, 2100, payment_id, order_id);
    let events: Vec<_> = ["evt_late_a", "evt_late_b", "evt_late_a"]
        .into_iter()
        .map(succeeded)
        .collect();
    let answers = futures_util::future::join_all(events.iter().map(|e| shop.post_event(e))).await;
    for answer in answers {
        assert_eq!(answer, (200, json!({"received": true})));
    }
    assert_eq!(
        refunds_at_localstripe(&intent),
        [2100],
        "refunded once, in full"
    );
    let payments = shop.payments_of(order_id).await;
    assert_eq!(
        (&payments[0]["status"], &payments[0]["captured"]),
        (&json!("failed"), &json!("0.00"))
    );
    assert_eq!(order_status(&shop, order_id).await, "pending");
    assert_eq!(shop.times_paid(order_id).await, 0);
}
