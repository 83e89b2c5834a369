//! Stripe's events, applied once each and only forwards. The signature is checked on the
//! raw bytes before anything parses them; then the event's payment is found (by its
//! PaymentIntent id, or — when the event overtook our own create call — by the ids in the
//! PaymentIntent's metadata), its order locked first, then the payment, the event id kept
//! (a seen id stops here), and the report applied like an API answer.

use chrono::Utc;
use diesel_async::AsyncPgConnection;
use ecom_core::Money;
use ecom_core::db::transaction_with_retry;
use serde::Deserialize;

use super::Result;
use super::orders_api;
use super::payments::{Payments, holds_money, settle};
use super::provider::ProviderState;
use super::signature::{self, SignatureError};
use super::store;
use super::stripe::PaymentIntent;
use crate::error::PaymentsError;
use crate::model::{Payment, PaymentStatus, Provider};

/// The refund reason of money Stripe reports returned that the store did not ask for
/// (a refund made in Stripe's dashboard).
pub const REASON_PROVIDER_REFUND: &str = "provider_refund";

#[derive(Debug, Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: EventData,
}

#[derive(Debug, Deserialize)]
struct EventData {
    object: serde_json::Value,
}

/// The part of a Charge that `charge.refunded` needs.
#[derive(Debug, Deserialize)]
struct Charge {
    payment_intent: Option<String>,
    /// In cents, all refunds of the charge so far.
    amount_refunded: i64,
}

/// What an event reports, in our terms.
enum Report {
    Intent(Box<PaymentIntent>),
    Refunded { intent: String, total: Money },
}

/// Which payment an event is about: found by reference, or named by the metadata.
struct Target {
    order_id: i64,
    payment_id: i64,
}

/// A Stripe event whose signature has been checked. Only [`verify_stripe_event`] makes one,
/// so an event cannot be applied unchecked, and the check needs no database connection.
#[derive(Debug)]
pub struct VerifiedEvent(Event);

/// `POST /payments/webhooks/stripe`, first half: the signature over the raw bytes, then the
/// parse. Runs before the handler takes a connection, so forged or stale requests cost
/// the pool nothing.
pub fn verify_stripe_event(
    payments: &Payments,
    signature_header: Option<&str>,
    body: &[u8],
) -> Result<VerifiedEvent> {
    let secret = payments
        .webhook_secret()
        .ok_or(PaymentsError::InvalidSignature(SignatureError::Missing))?;
    signature::verify(
        signature_header,
        body,
        secret.expose().as_bytes(),
        Utc::now().timestamp(),
    )?;
    let event: Event = serde_json::from_slice(body)
        .map_err(|_| PaymentsError::invalid("body", "not a Stripe event"))?;
    Ok(VerifiedEvent(event))
}

/// `POST /payments/webhooks/stripe`, second half: applies a verified event once. Types the
/// store does not use and PaymentIntents it does not know are accepted and ignored.
pub async fn apply_stripe_event(
    conn: &mut AsyncPgConnection,
    payments: &Payments,
    event: VerifiedEvent,
) -> Result<()> {
    let VerifiedEvent(event) = event;
    let Some(report) = read_report(&event)? else {
        return Ok(());
    };
    let Some(target) = locate(conn, &report).await? else {
        tracing::info!(event_id = %event.id, event_type = %event.kind, "Stripe event for an unknown PaymentIntent ignored");
        return Ok(());
    };
    let applied: Result<Option<Payment>> = transaction_with_retry(conn, async |conn| {
        let order = match orders_api::lock_order(conn, target.order_id, None).await {
            Ok(order) => order,
            Err(ecom_orders::OrdersError::OrderNotFound(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let Some(payment) = store::lock(conn, target.payment_id).await? else {
            // Our create call rolled back after Stripe had the PaymentIntent: no payment
            // will ever claim its money, so it goes back.
            if let Report::Intent(pi) = &report {
                let stand_in = stand_in(payments, &target, order.user_id, &pi.state());
                give_back(conn, payments, &pi.state(), &stand_in, None).await?;
            }
            return Ok(None);
        };
        let intent_id = match &report {
            Report::Intent(pi) => pi.id.as_str(),
            Report::Refunded { intent, .. } => intent.as_str(),
        };
        let ours = payment.order_id == target.order_id
            && payment.provider == Provider::Stripe
            && payment.reference.as_deref().is_none_or(|r| r == intent_id);
        if !ours {
            return Ok(None);
        }
        if !store::record_event(
            conn,
            Provider::Stripe,
            &event.id,
            &event.kind,
            Some(payment.id),
        )
        .await?
        {
            return Ok(None);
        }
        match &report {
            Report::Intent(pi) => {
                let state = pi.state();
                if is_over(payment.status) && holds_money(&state) {
                    // Paid at Stripe after we gave the payment up (a failed payment whose
                    // PaymentIntent could not be cancelled): no order takes this money.
                    give_back(conn, payments, &state, &payment, Some(payment.id)).await?;
                    return Ok(None);
                }
                let after = settle(conn, payments, &payment, &state).await?;
                if after.status == PaymentStatus::Failed && payment.status != after.status {
                    return Ok(Some(after));
                }
            }
            Report::Refunded { total, .. } => {
                if payment.status.is_refundable() && *total > payment.refunded {
                    let more = store::minus((*total).min(payment.captured), payment.refunded);
                    if !more.is_zero() {
                        let after = store::record_refund(
                            conn,
                            &payment,
                            more,
                            Some(REASON_PROVIDER_REFUND),
                            None,
                        )
                        .await?;
                        if after.status == PaymentStatus::Refunded {
                            orders_api::mark_refunded(conn, after.order_id).await?;
                        }
                    }
                }
            }
        }
        Ok(None)
    })
    .await;
    if let Some(failed) = applied? {
        cancel_failed_intent(conn, payments, &failed).await;
    }
    Ok(())
}

/// `failed` or `cancelled`: the payment was given up and will never take money.
fn is_over(status: PaymentStatus) -> bool {
    matches!(status, PaymentStatus::Failed | PaymentStatus::Cancelled)
}

/// `failed` is final, but Stripe keeps a failed PaymentIntent open for another attempt: it
/// is cancelled, after the failure is committed, so that the shopper cannot be charged
/// for it later. The event stays applied whatever happens here: a provider failure is
/// logged, and should the intent be paid after all, its `payment_intent.succeeded` gives
/// the money back; a cancel that finds it paid already gives it back at once.
async fn cancel_failed_intent(conn: &mut AsyncPgConnection, payments: &Payments, failed: &Payment) {
    let Some(provider) = payments.provider(Provider::Stripe) else {
        return;
    };
    let state = match provider.cancel(failed).await {
        Ok(state) => state,
        Err(error) => {
            tracing::warn!(payment_id = failed.id, %error,
                "could not cancel the PaymentIntent of a failed payment; a later capture of it is refunded");
            return;
        }
    };
    if !holds_money(&state) {
        return;
    }
    let returned = transaction_with_retry(conn, async |conn| {
        orders_api::lock_order(conn, failed.order_id, None).await?;
        give_back(conn, payments, &state, failed, Some(failed.id)).await
    })
    .await;
    if let Err(error) = returned {
        tracing::warn!(payment_id = failed.id, %error,
            "could not give back a failed payment's PaymentIntent found paid; its payment_intent.succeeded will");
    }
}

/// A payment row for a PaymentIntent whose row never committed, as the provider calls need
/// it (its id and the PaymentIntent id).
fn stand_in(payments: &Payments, target: &Target, user_id: i64, state: &ProviderState) -> Payment {
    let now = Utc::now();
    Payment {
        id: target.payment_id,
        order_id: target.order_id,
        user_id,
        provider: Provider::Stripe,
        status: state.status,
        amount: state.authorized,
        authorized: state.authorized,
        captured: state.captured,
        refunded: Money::ZERO,
        currency: payments.currency.clone(),
        reference: state.reference.clone(),
        client_secret: None,
        failure_code: None,
        created_at: now,
        updated_at: now,
    }
}

/// Gives back the money of a PaymentIntent no live payment claims: its payment never
/// committed (our create call rolled back after Stripe had it; `kept` is None), or it is
/// `failed`/`cancelled` and was paid at Stripe after all. A capture is refunded in full, an
/// authorization voided (refunded if it turns out captured meanwhile), once per
/// PaymentIntent: a kept marker `orphan:{id}`, written under the order's lock, stops any
/// later event or call about it. Provider idempotency keys come from `payment`'s id; a
/// provider failure fails the caller's transaction, marker included, so it is tried again.
async fn give_back(
    conn: &mut AsyncPgConnection,
    payments: &Payments,
    state: &ProviderState,
    payment: &Payment,
    kept: Option<i64>,
) -> Result<()> {
    if !holds_money(state) {
        return Ok(());
    }
    let (Some(provider), Some(intent)) = (payments.provider(Provider::Stripe), &state.reference)
    else {
        return Ok(());
    };
    let marker = format!("orphan:{intent}");
    if !store::record_event(conn, Provider::Stripe, &marker, "orphan_returned", kept).await? {
        return Ok(());
    }
    let mut now = state.clone();
    if now.status == PaymentStatus::Authorized {
        now = provider.cancel(payment).await?;
    }
    if now.status == PaymentStatus::Captured {
        provider.refund(payment, 1, now.captured).await?;
    }
    tracing::warn!(
        payment_intent = %intent,
        order_id = payment.order_id,
        payment_id = payment.id,
        status = %state.status,
        "money at Stripe that no payment claims was given back"
    );
    Ok(())
}

fn read_report(event: &Event) -> Result<Option<Report>> {
    let bad = |_| PaymentsError::invalid("data.object", "not the object this event type carries");
    match event.kind.as_str() {
        "payment_intent.amount_capturable_updated"
        | "payment_intent.succeeded"
        | "payment_intent.payment_failed"
        | "payment_intent.canceled" => {
            let pi: PaymentIntent =
                serde_json::from_value(event.data.object.clone()).map_err(bad)?;
            Ok(Some(Report::Intent(Box::new(pi))))
        }
        "charge.refunded" => {
            let charge: Charge = serde_json::from_value(event.data.object.clone()).map_err(bad)?;
            let Some(intent) = charge.payment_intent else {
                return Ok(None);
            };
            let total = Money::from_cents(charge.amount_refunded).map_err(|_| {
                PaymentsError::invalid("data.object.amount_refunded", "not an amount")
            })?;
            Ok(Some(Report::Refunded { intent, total }))
        }
        _ => Ok(None),
    }
}

async fn locate(conn: &mut AsyncPgConnection, report: &Report) -> Result<Option<Target>> {
    let (intent_id, metadata) = match report {
        Report::Intent(pi) => (pi.id.as_str(), pi.payment_id().zip(pi.order_id())),
        Report::Refunded { intent, .. } => (intent.as_str(), None),
    };
    if let Some(p) = store::find_by_reference(conn, Provider::Stripe, intent_id).await? {
        return Ok(Some(Target {
            order_id: p.order_id,
            payment_id: p.id,
        }));
    }
    Ok(metadata.map(|(payment_id, order_id)| Target {
        order_id,
        payment_id,
    }))
}
