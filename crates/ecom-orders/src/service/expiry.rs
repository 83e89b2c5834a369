//! Unpaid orders expire: a `pending` order past its `payment_due_at` is cancelled by the
//! store (history actor `system`, reason `payment_timeout`) through the same transition
//! as `POST /orders/{id}/cancel`, so its stock comes back exactly once.
//!
//! Before the status changes, payments voids the order's open payments
//! ([`PaymentsPort::before_cancel`], with the order locked); a provider failure leaves the
//! order pending for the next round and is logged.
//!
//! Every replica runs [`expire_due_orders`] every few seconds. Each order is claimed and
//! cancelled in a transaction of its own: the claim takes the longest-overdue pending
//! order that no other transaction holds (`FOR UPDATE SKIP LOCKED`), so replicas share a
//! backlog without waiting on or doubling each other, a cancel by the owner racing the
//! task happens once, and a replica stopped mid-batch leaves every order either cancelled
//! or untouched. One order per transaction also keeps the product rows whose stock comes
//! back locked only for that order, in product-id order like a checkout, so the task never
//! deadlocks with checkouts or with another replica.

use std::sync::atomic::{AtomicI64, Ordering};

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use ecom_core::db::transaction_with_retry;

use super::Result;
use super::lifecycle::{Verdict, transition_once};
use super::settlement::PaymentsPort;
use crate::error::OrdersError;
use crate::model::{Actor, OrderStatus};
use crate::schema::orders;

/// Most orders one call of [`expire_due_orders`] cancels.
pub const EXPIRY_BATCH: i64 = 100;
/// The history's reason for an order cancelled because its payment window closed.
pub const PAYMENT_TIMEOUT: &str = "payment_timeout";

/// Whether a pending order past its due time may be cancelled now, asked with the order
/// locked, in the transaction that would cancel it. ecom-payments will answer "not while
/// it has an authorized payment" (installed by `bins/api`, so orders need not depend on
/// payments); [`EveryOrderExpires`] lets every order go.
#[async_trait::async_trait]
pub trait ExpiryGate: Send + Sync {
    async fn may_expire(&self, conn: &mut AsyncPgConnection, order_id: i64) -> Result<bool>;
}

/// The gate while nothing can hold an order open past its due time.
#[derive(Debug, Clone, Copy, Default)]
pub struct EveryOrderExpires;

#[async_trait::async_trait]
impl ExpiryGate for EveryOrderExpires {
    async fn may_expire(&self, _conn: &mut AsyncPgConnection, _order_id: i64) -> Result<bool> {
        Ok(true)
    }
}

/// What one claim found.
enum Claim {
    /// No pending order is past due (or every one is held by another transaction).
    Nothing,
    /// This order was cancelled.
    Cancelled,
    /// The gate kept this order pending.
    Kept(i64),
}

/// Cancels up to `batch` pending orders past their `payment_due_at`, longest overdue
/// first, one transaction each; returns how many it cancelled. Orders the gate keeps
/// pending are not asked about again in this call. An order whose cancellation fails (the
/// payment provider failing included) is logged and left for the next call, so one bad
/// order cannot hold up the others; a failure to claim (the database is gone) ends the
/// call with the error.
pub async fn expire_due_orders(
    conn: &mut AsyncPgConnection,
    gate: &dyn ExpiryGate,
    payments: &dyn PaymentsPort,
    batch: i64,
) -> Result<usize> {
    let mut passed_over: Vec<i64> = Vec::new();
    let mut cancelled = 0;
    for _ in 0..batch.max(0) {
        // The order a failed run had claimed (0: none), to pass over in this call.
        let claimed = AtomicI64::new(0);
        let outcome = transaction_with_retry(conn, async |conn| {
            claimed.store(0, Ordering::Relaxed);
            expire_next(conn, gate, payments, &passed_over, &claimed).await
        })
        .await;
        match outcome {
            Ok(Claim::Nothing) => break,
            Ok(Claim::Cancelled) => cancelled += 1,
            Ok(Claim::Kept(order_id)) => passed_over.push(order_id),
            Err(e) => match claimed.into_inner() {
                0 => return Err(e),
                // The message is the payments crate's, written for the log (no secrets).
                order_id if matches!(e, OrdersError::PaymentProvider(_)) => {
                    tracing::warn!(order_id, error = %e, "the payment provider failed while expiring an unpaid order; retried next round");
                    passed_over.push(order_id);
                }
                order_id => {
                    tracing::warn!(order_id, error = %e, "could not expire an unpaid order; retried next round");
                    passed_over.push(order_id);
                }
            },
        }
    }
    if cancelled > 0 {
        tracing::info!(
            cancelled,
            "cancelled unpaid orders past their payment window"
        );
    }
    Ok(cancelled)
}

/// One transaction of [`expire_due_orders`]: claim the next order past due, ask the gate,
/// cancel it as the system (payments voiding first).
async fn expire_next(
    conn: &mut AsyncPgConnection,
    gate: &dyn ExpiryGate,
    payments: &dyn PaymentsPort,
    passed_over: &[i64],
    claimed: &AtomicI64,
) -> Result<Claim> {
    let Some(order_id) = claim_due_order(conn, passed_over).await? else {
        return Ok(Claim::Nothing);
    };
    claimed.store(order_id, Ordering::Relaxed);
    if !gate.may_expire(conn, order_id).await? {
        return Ok(Claim::Kept(order_id));
    }
    let verdict = Verdict {
        actor: Actor::System,
        audited: false,
    };
    transition_once(
        conn,
        order_id,
        OrderStatus::Cancelled,
        Some(PAYMENT_TIMEOUT),
        &|_| Ok(verdict),
        payments,
    )
    .await?;
    Ok(Claim::Cancelled)
}

/// Locks the longest-overdue pending order that no other transaction holds, leaving out
/// `passed_over`; `None` when there is none.
async fn claim_due_order(conn: &mut AsyncPgConnection, passed_over: &[i64]) -> Result<Option<i64>> {
    Ok(orders::table
        .filter(orders::status.eq(OrderStatus::Pending))
        .filter(orders::payment_due_at.le(diesel::dsl::now))
        .filter(orders::id.ne_all(passed_over))
        .order((orders::payment_due_at, orders::id))
        .select(orders::id)
        .limit(1)
        .for_update()
        .skip_locked()
        .first(conn)
        .await
        .optional()?)
}
