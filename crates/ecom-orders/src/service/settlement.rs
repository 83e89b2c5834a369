//! What ecom-payments does to orders, on its own transaction's connection: lock an order
//! (the order row first, then its payments: the store's lock order), mark it paid exactly
//! once, mark it refunded, lengthen its payment window; and [`PaymentsPort`], what the
//! orders ask of payments before any cancellation. Payments depends on orders, never the
//! reverse: `bins/api` installs the port, [`NoPayments`] until then.

use chrono::{DateTime, Utc};
use diesel::pg::expression::extensions::IntervalDsl;
use diesel::prelude::*;
use diesel::sql_types::Timestamptz;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use ecom_core::db::transaction_with_retry;

use super::Result;
use super::checkout::now_plus;
use super::lifecycle::{Verdict, apply, lock_row};
use super::queries::lines_of;
use crate::error::OrdersError;
use crate::model::{Actor, Order, OrderRow, OrderStatus, StatusChange};
use crate::schema::orders;

/// The history's reason when a provider captured the money.
pub const PAYMENT_CAPTURED: &str = "payment_captured";
/// The history's reason when an administrator recorded a payment by hand.
pub const MANUAL_PAYMENT: &str = "manual_payment";
/// The history's reason when refunds reached the captured amount.
pub const REFUNDED: &str = "refunded";

/// The order row locked FOR UPDATE on the caller's transaction (lock order: the order first,
/// then its payments). `owner: Some(user)` → someone else's order is OrdersError::OrderNotFound.
///
/// Call it inside a transaction: outside one the lock ends with the statement.
pub async fn lock_order(
    conn: &mut AsyncPgConnection,
    order_id: i64,
    owner: Option<i64>,
) -> Result<Order> {
    let row = lock_row(conn, order_id).await?;
    if owner.is_some_and(|owner| owner != row.user_id) {
        return Err(OrdersError::OrderNotFound(order_id));
    }
    let items = lines_of(conn, &[order_id])
        .await?
        .remove(&order_id)
        .unwrap_or_default();
    Ok(Order::from_row(row, items))
}

/// How an order became paid (for its history).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaidBy {
    /// A provider captured the money: history actor `system`, reason `payment_captured`.
    Captured,
    /// An administrator recorded a manual payment: actor `admin` (admin_id), reason `manual_payment`, audited.
    Manual { admin_id: i64 },
}

/// What [`mark_paid`] did.
#[derive(Debug, Clone)]
pub enum PaidOutcome {
    /// pending → paid happened now (payment_due_at cleared, one history entry).
    Paid(StatusChange),
    /// The order can no longer take this money (cancelled, expired, already paid, shipped, …):
    /// nothing changed; the caller refunds the capture in full.
    NotPayable { status: OrderStatus },
}

/// The locked order row and the database's clock for this transaction: whether it is
/// past due is judged by the clock the expiry task uses.
async fn lock_row_at(
    conn: &mut AsyncPgConnection,
    order_id: i64,
) -> Result<(OrderRow, DateTime<Utc>)> {
    let row = lock_row(conn, order_id).await?;
    let now: DateTime<Utc> = diesel::select(diesel::dsl::now.into_sql::<Timestamptz>())
        .get_result(conn)
        .await?;
    Ok((row, now))
}

/// pending → paid exactly once, on the caller's transaction (locks the order row itself;
/// a no-op re-lock if the caller already holds it).
///
/// Runs in a transaction of its own when the caller has none (a savepoint otherwise).
/// Concurrent calls queue on the row lock: the first finds the order payable and pays it,
/// the others find it `paid` and get [`PaidOutcome::NotPayable`]. A missing order is
/// [`OrdersError::OrderNotFound`].
pub async fn mark_paid(
    conn: &mut AsyncPgConnection,
    order_id: i64,
    by: PaidBy,
) -> Result<PaidOutcome> {
    let (actor, reason, audited) = match by {
        PaidBy::Captured => (Actor::System, PAYMENT_CAPTURED, false),
        PaidBy::Manual { admin_id } => (Actor::Admin(admin_id), MANUAL_PAYMENT, true),
    };
    let verdict = Verdict { actor, audited };
    transaction_with_retry(conn, async |conn| {
        let (row, now) = lock_row_at(conn, order_id).await?;
        if !row.is_payable(now) {
            return Ok(PaidOutcome::NotPayable { status: row.status });
        }
        let change = apply(
            conn,
            row,
            OrderStatus::Paid,
            Some(reason),
            verdict,
            &NoPayments,
        )
        .await?;
        Ok(PaidOutcome::Paid(change))
    })
    .await
}

/// Refunds reached the captured amount: `paid`/`shipped`/`delivered` → `refunded`
/// (actor `system`, reason `refunded`); any other status (e.g. `cancelled`) is left
/// alone and gives Ok(None). Stock is never returned by a refund.
pub async fn mark_refunded(
    conn: &mut AsyncPgConnection,
    order_id: i64,
) -> Result<Option<StatusChange>> {
    let verdict = Verdict {
        actor: Actor::System,
        audited: false,
    };
    transaction_with_retry(conn, async |conn| {
        let row = lock_row(conn, order_id).await?;
        if !row.status.can_become(OrderStatus::Refunded) {
            return Ok(None);
        }
        let change = apply(
            conn,
            row,
            OrderStatus::Refunded,
            Some(REFUNDED),
            verdict,
            &NoPayments,
        )
        .await?;
        Ok(Some(change))
    })
    .await
}

/// The `manual` provider was chosen: a pending order's payment_due_at becomes
/// now() + `hours` (MANUAL_PAYMENT_WINDOW_HOURS, default 72, a setting read by bins/api).
///
/// An order that can no longer be paid (not pending, or already past due: the expiry
/// task is about to cancel it) is [`OrdersError::NotPayable`] and is left as it is;
/// `hours` below 1 is a 422 naming `hours`.
pub async fn extend_payment_window(
    conn: &mut AsyncPgConnection,
    order_id: i64,
    hours: i64,
) -> Result<()> {
    if hours < 1 {
        return Err(OrdersError::invalid("hours", "must be at least 1"));
    }
    transaction_with_retry(conn, async |conn| {
        let (row, now) = lock_row_at(conn, order_id).await?;
        if !row.is_payable(now) {
            return Err(OrdersError::NotPayable(order_id));
        }
        diesel::update(orders::table.find(order_id))
            .set((
                orders::payment_due_at.eq(now_plus(hours.hours()).nullable()),
                orders::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)
            .await?;
        Ok(())
    })
    .await
}

/// What ecom-orders asks of payments before any cancellation. Implemented by ecom-payments,
/// installed by bins/api in app data as `web::Data<Arc<dyn PaymentsPort>>` (like ExpiryGate
/// and the principal resolver); the default, `NoPayments`, answers Ok(()).
#[async_trait::async_trait]
pub trait PaymentsPort: Send + Sync {
    /// Called by every cancellation path (owner/admin cancel endpoint, admin PATCH to
    /// `cancelled`, and the expiry task), inside the cancelling transaction, with the order
    /// row already locked, BEFORE the status changes: void open payments and refund captured
    /// ones in full at the provider (reason `order_cancelled`), recording it in payments'
    /// tables on this same connection. A refund made here leaves the order `cancelled`
    /// (mark_refunded is not called). Err(OrdersError::PaymentProvider(msg)) when the provider
    /// fails: the caller rolls back, nothing changes, the API answers 502 `payment_provider_error`.
    async fn before_cancel(&self, conn: &mut AsyncPgConnection, order: &Order) -> Result<()>;
}

/// The port while no payments module is installed: nothing was paid through a provider,
/// so there is nothing to void or refund.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPayments;

#[async_trait::async_trait]
impl PaymentsPort for NoPayments {
    async fn before_cancel(&self, _conn: &mut AsyncPgConnection, _order: &Order) -> Result<()> {
        Ok(())
    }
}
