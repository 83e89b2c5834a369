//! The payments' rows: locking, the one-way update, refunds and provider events. Every
//! function runs on the caller's transaction; callers hold the order's row lock first.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use ecom_core::Money;

use super::Result;
use super::provider::ProviderState;
use crate::api::PaymentOut;
use crate::model::{NewPayment, Payment, PaymentStatus, Provider, Refund, Step};
use crate::schema::{payments, payments_provider_events, payments_refunds};

/// `a − b` for amounts with `b ≤ a` (the CHECK constraints keep it so).
pub(crate) fn minus(a: Money, b: Money) -> Money {
    Money::from_db(a.as_decimal() - b.as_decimal())
}

/// The payment without a lock (to learn its order before locking the order first).
pub(crate) async fn find(conn: &mut AsyncPgConnection, payment_id: i64) -> Result<Option<Payment>> {
    Ok(payments::table
        .find(payment_id)
        .select(Payment::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// The payment locked FOR UPDATE; call with its order already locked.
pub(crate) async fn lock(conn: &mut AsyncPgConnection, payment_id: i64) -> Result<Option<Payment>> {
    Ok(payments::table
        .find(payment_id)
        .select(Payment::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?)
}

/// Every payment of an order, locked, oldest first; call with the order locked.
pub(crate) async fn lock_all_of_order(
    conn: &mut AsyncPgConnection,
    order_id: i64,
) -> Result<Vec<Payment>> {
    Ok(payments::table
        .filter(payments::order_id.eq(order_id))
        .order(payments::id)
        .select(Payment::as_select())
        .for_update()
        .load(conn)
        .await?)
}

/// The Stripe payment holding a PaymentIntent id, without a lock.
pub(crate) async fn find_by_reference(
    conn: &mut AsyncPgConnection,
    provider: Provider,
    reference: &str,
) -> Result<Option<Payment>> {
    Ok(payments::table
        .filter(payments::provider.eq(provider))
        .filter(payments::reference.eq(reference))
        .select(Payment::as_select())
        .first(conn)
        .await
        .optional()?)
}

pub(crate) async fn insert(conn: &mut AsyncPgConnection, new: NewPayment<'_>) -> Result<Payment> {
    let payment = diesel::insert_into(payments::table)
        .values(new)
        .returning(Payment::as_returning())
        .get_result(conn)
        .await?;
    record_update(conn, &payment, None).await?;
    Ok(payment)
}

/// Records `payment.updated` in the outbox, on the change's transaction: the payment as
/// anyone may see it (never the client secret) and the status it had before (`None`
/// for a new payment). Every write of a payment row below calls it; a no-op writes none.
async fn record_update(
    conn: &mut AsyncPgConnection,
    payment: &Payment,
    previous_status: Option<PaymentStatus>,
) -> Result<()> {
    let refunds = refunds_of(conn, &[payment.id]).await?;
    let view = PaymentOut::new(payment.clone(), refunds, false);
    ecom_core::events::record(
        conn,
        ecom_core::events::NewEvent {
            event_type: "payment.updated",
            aggregate_type: "payment",
            aggregate_id: payment.id,
            owner_id: Some(payment.user_id),
            data: serde_json::json!({"payment": view, "previous_status": previous_status}),
        },
    )
    .await?;
    Ok(())
}

/// Whether the order has an `authorized` payment (what holds off its expiry).
pub(crate) async fn has_authorized(conn: &mut AsyncPgConnection, order_id: i64) -> Result<bool> {
    Ok(diesel::select(diesel::dsl::exists(
        payments::table
            .filter(payments::order_id.eq(order_id))
            .filter(payments::status.eq(PaymentStatus::Authorized)),
    ))
    .get_result(conn)
    .await?)
}

/// Applies what the provider reports to a locked payment, one way only: a status that
/// would move it back is ignored, amounts only grow, a stored reference is kept. Writes
/// nothing (and keeps `updated_at`) when nothing changes. Returns the payment as it is now.
pub(crate) async fn apply_state(
    conn: &mut AsyncPgConnection,
    payment: &Payment,
    state: &ProviderState,
) -> Result<Payment> {
    let step = payment.status.step_to(state.status);
    if step == Step::Ignore {
        return Ok(payment.clone());
    }
    let mut next = payment.clone();
    next.status = state.status;
    // Never beyond the amount (the CHECK would refuse it); a provider reports cents of it.
    next.captured = state.captured.max(payment.captured).min(payment.amount);
    next.authorized = state
        .authorized
        .max(payment.authorized)
        .max(next.captured)
        .min(payment.amount);
    if next.reference.is_none() {
        next.reference = state.reference.clone();
    }
    next.client_secret = match next.status {
        PaymentStatus::Pending => state
            .client_secret
            .clone()
            .or_else(|| payment.client_secret.clone()),
        _ => None,
    };
    if next.status == PaymentStatus::Failed {
        next.failure_code = state
            .failure_code
            .clone()
            .or_else(|| payment.failure_code.clone());
    }
    if next == *payment {
        return Ok(next);
    }
    let updated = diesel::update(payments::table.find(payment.id))
        .set((
            payments::status.eq(next.status),
            payments::authorized.eq(next.authorized),
            payments::captured.eq(next.captured),
            payments::reference.eq(&next.reference),
            payments::client_secret.eq(&next.client_secret),
            payments::failure_code.eq(&next.failure_code),
            payments::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Payment::as_returning())
        .get_result(conn)
        .await?;
    record_update(conn, &updated, Some(payment.status)).await?;
    Ok(updated)
}

/// A manual payment completed: the whole amount captured at once, with its reference.
pub(crate) async fn mark_captured_by_hand(
    conn: &mut AsyncPgConnection,
    payment_id: i64,
    amount: Money,
    reference: &str,
) -> Result<Payment> {
    let previous = payments::table
        .find(payment_id)
        .select(payments::status)
        .get_result::<PaymentStatus>(conn)
        .await?;
    let updated = diesel::update(payments::table.find(payment_id))
        .set((
            payments::status.eq(PaymentStatus::Captured),
            payments::authorized.eq(amount),
            payments::captured.eq(amount),
            payments::reference.eq(reference),
            payments::client_secret.eq(None::<String>),
            payments::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Payment::as_returning())
        .get_result(conn)
        .await?;
    record_update(conn, &updated, Some(previous)).await?;
    Ok(updated)
}

/// How many refunds the payment has: the next one's sequence number is this + 1.
pub(crate) async fn refund_count(conn: &mut AsyncPgConnection, payment_id: i64) -> Result<i64> {
    Ok(payments_refunds::table
        .filter(payments_refunds::payment_id.eq(payment_id))
        .count()
        .get_result(conn)
        .await?)
}

/// Records a refund of a locked payment and moves its `refunded` amount and status.
pub(crate) async fn record_refund(
    conn: &mut AsyncPgConnection,
    payment: &Payment,
    amount: Money,
    reason: Option<&str>,
    provider_refund_id: Option<&str>,
) -> Result<Payment> {
    diesel::insert_into(payments_refunds::table)
        .values((
            payments_refunds::payment_id.eq(payment.id),
            payments_refunds::amount.eq(amount),
            payments_refunds::reason.eq(reason),
            payments_refunds::provider_refund_id.eq(provider_refund_id),
        ))
        .execute(conn)
        .await?;
    let refunded = payment.refunded.plus(amount).unwrap_or(payment.captured);
    let status = PaymentStatus::after_refunds(refunded, payment.captured);
    let updated = diesel::update(payments::table.find(payment.id))
        .set((
            payments::refunded.eq(refunded),
            payments::status.eq(status),
            payments::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Payment::as_returning())
        .get_result(conn)
        .await?;
    record_update(conn, &updated, Some(payment.status)).await?;
    Ok(updated)
}

/// Keeps a provider event's id; false when it was kept before (then nothing is applied).
pub(crate) async fn record_event(
    conn: &mut AsyncPgConnection,
    provider: Provider,
    event_id: &str,
    event_type: &str,
    payment_id: Option<i64>,
) -> Result<bool> {
    let inserted = diesel::insert_into(payments_provider_events::table)
        .values((
            payments_provider_events::event_id.eq(event_id),
            payments_provider_events::provider.eq(provider),
            payments_provider_events::event_type.eq(event_type),
            payments_provider_events::payment_id.eq(payment_id),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(inserted == 1)
}

/// The refunds of these payments, oldest first, in one query.
pub(crate) async fn refunds_of(
    conn: &mut AsyncPgConnection,
    payment_ids: &[i64],
) -> Result<Vec<Refund>> {
    Ok(payments_refunds::table
        .filter(payments_refunds::payment_id.eq_any(payment_ids))
        .order(payments_refunds::id)
        .select(Refund::as_select())
        .load(conn)
        .await?)
}

/// An order's payments, oldest first, one page, with the total.
pub(crate) async fn of_order(
    conn: &mut AsyncPgConnection,
    order_id: i64,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Payment>, i64)> {
    let total = payments::table
        .filter(payments::order_id.eq(order_id))
        .count()
        .get_result(conn)
        .await?;
    let rows = payments::table
        .filter(payments::order_id.eq(order_id))
        .order(payments::id)
        .limit(limit)
        .offset(offset)
        .select(Payment::as_select())
        .load(conn)
        .await?;
    Ok((rows, total))
}
