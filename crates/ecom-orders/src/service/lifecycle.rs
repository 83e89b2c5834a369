//! The order lifecycle: `pending → paid → shipped → delivered`, `pending | paid →
//! cancelled`, `paid | shipped | delivered → refunded`. Each change locks the order row,
//! is recorded in the status history, and a cancellation asks payments to void or refund
//! first and returns the stock through ecom-catalog, all in the same transaction.
//! `→ paid` and `→ refunded` are made by [`super::settlement`] only.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use ecom_catalog::{ItemRef, StockLine, return_stock};
use ecom_core::audit::{self, AuditEntry};
use ecom_core::db::transaction_with_retry;
use ecom_core::pagination::Paged;
use ecom_core::{Page, PageRequest};

use super::Result;
use super::queries::lines_of;
use super::settlement::PaymentsPort;
use crate::error::OrdersError;
use crate::model::{Actor, Order, OrderRow, OrderStatus, StatusChange, StatusChangeRecord};
use crate::schema::{order_status_history, orders};

/// Audit action written for order status changes made by someone other than the owner.
pub const AUDIT_ACTION: &str = "order.status_change";
/// Audit target type of orders.
pub const AUDIT_TARGET: &str = "order";

/// What a guard decides about a change, checked against the locked row: who the history
/// names as its actor, and whether the change is also written to the audit trail.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Verdict {
    pub actor: Actor,
    pub audited: bool,
}

/// Who may make a change, checked against the locked row.
pub(crate) type Guard<'a> = &'a (dyn Fn(&OrderRow) -> Result<Verdict> + Sync);

/// The one transition routine: lock, check, update, record, return stock on cancel,
/// and audit when the guard asks for it. A serialization failure or deadlock runs the
/// whole transaction again when this call owns it (see [`ecom_core::db::ConflictRetry`]): every step
/// re-reads the locked order, so a second run can neither return stock twice nor move
/// an order that changed meanwhile. In a caller's transaction (ecom-admin's) the conflict
/// goes back to the caller, the owner of the transaction, unretried.
async fn transition(
    conn: &mut AsyncPgConnection,
    order_id: i64,
    to: OrderStatus,
    reason: Option<&str>,
    guard: Guard<'_>,
    payments: &dyn PaymentsPort,
) -> Result<StatusChange> {
    transaction_with_retry(conn, async |conn| {
        transition_once(conn, order_id, to, reason, guard, payments).await
    })
    .await
}

/// One run of [`transition`]'s transaction; the expiry task calls it on its own
/// transaction, the order already locked.
pub(crate) async fn transition_once(
    conn: &mut AsyncPgConnection,
    order_id: i64,
    to: OrderStatus,
    reason: Option<&str>,
    guard: Guard<'_>,
    payments: &dyn PaymentsPort,
) -> Result<StatusChange> {
    let row = lock_row(conn, order_id).await?;
    let verdict = guard(&row)?;
    apply(conn, row, to, reason, verdict, payments).await
}

/// The order row, locked `FOR UPDATE` until the caller's transaction ends.
pub(crate) async fn lock_row(conn: &mut AsyncPgConnection, order_id: i64) -> Result<OrderRow> {
    orders::table
        .find(order_id)
        .select(OrderRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?
        .ok_or(OrdersError::OrderNotFound(order_id))
}

/// Moves the locked order `row` to `to`: checks the lifecycle, lets payments void or
/// refund first when it is a cancellation (a provider failure ends it here, before
/// anything changed), then updates, records, returns stock on cancel and audits.
pub(crate) async fn apply(
    conn: &mut AsyncPgConnection,
    row: OrderRow,
    to: OrderStatus,
    reason: Option<&str>,
    verdict: Verdict,
    payments: &dyn PaymentsPort,
) -> Result<StatusChange> {
    let order_id = row.id;
    if !row.status.can_become(to) {
        return Err(OrdersError::InvalidTransition {
            order_id,
            from: row.status,
            to,
        });
    }
    let items = lines_of(conn, &[order_id])
        .await?
        .remove(&order_id)
        .unwrap_or_default();
    let before = Order::from_row(row, items);
    if to == OrderStatus::Cancelled {
        payments.before_cancel(conn, &before).await?;
    }
    // No transition leads into `pending`, so every one ends the payment window.
    let updated: OrderRow = diesel::update(orders::table.find(order_id))
        .set((
            orders::status.eq(to),
            orders::payment_due_at.eq(None::<DateTime<Utc>>),
            orders::updated_at.eq(diesel::dsl::now),
        ))
        .returning(OrderRow::as_returning())
        .get_result(conn)
        .await?;
    // The day's sales figures change: drop its rollup (rebuilt by the next report).
    super::rollup::invalidate(conn, before.created_at).await?;
    diesel::insert_into(order_status_history::table)
        .values((
            order_status_history::order_id.eq(order_id),
            order_status_history::from_status.eq(Some(before.status)),
            order_status_history::to_status.eq(to),
            order_status_history::actor.eq(verdict.actor.kind()),
            order_status_history::actor_id.eq(verdict.actor.user_id()),
            order_status_history::reason.eq(reason),
        ))
        .execute(conn)
        .await?;
    if to == OrderStatus::Cancelled {
        let stock: Vec<StockLine> = before
            .items
            .iter()
            .map(|l| StockLine {
                item: ItemRef::Variant(l.variant_id),
                quantity: l.quantity,
            })
            .collect();
        if !stock.is_empty() {
            return_stock(conn, &stock).await?;
        }
    }
    let after = Order::from_row(updated, before.items.clone());
    if verdict.audited
        && let Some(actor_id) = verdict.actor.user_id()
    {
        audit::record(
            conn,
            AuditEntry {
                actor_id,
                action: AUDIT_ACTION,
                target_type: AUDIT_TARGET,
                target_id: order_id.to_string(),
                before: Some(audit_view(&before)),
                after: Some(audit_view(&after)),
            },
        )
        .await?;
    }
    super::events::record(conn, &after, Some(before.status), verdict.actor, reason).await?;
    Ok(StatusChange { before, after })
}

/// What the audit trail keeps of an order: enough to see what changed.
fn audit_view(order: &Order) -> serde_json::Value {
    serde_json::json!({
        "id": order.id,
        "user_id": order.user_id,
        "status": order.status,
        "total_price": order.total_price,
        "updated_at": order.updated_at,
    })
}

/// The statuses an administrator may set directly: `paid` and `refunded` come only from
/// payments (see [`crate::service::settlement`]), `pending` from nothing.
pub const ADMIN_TARGETS: [OrderStatus; 3] = [
    OrderStatus::Shipped,
    OrderStatus::Delivered,
    OrderStatus::Cancelled,
];

/// The guard of an administrator's status change to `to`: any order, named `admin` in
/// the history; a target outside [`ADMIN_TARGETS`] is refused as an illegal transition.
fn admin_guard(
    actor_id: i64,
    to: OrderStatus,
    audited: bool,
) -> impl Fn(&OrderRow) -> Result<Verdict> + Sync {
    move |row: &OrderRow| {
        if !ADMIN_TARGETS.contains(&to) {
            return Err(OrdersError::InvalidTransition {
                order_id: row.id,
                from: row.status,
                to,
            });
        }
        Ok(Verdict {
            actor: Actor::Admin(actor_id),
            audited,
        })
    }
}

/// Moves an order along the lifecycle on behalf of `actor_id`, an administrator (history
/// actor `admin`): to `shipped`, `delivered` or `cancelled` ([`ADMIN_TARGETS`]); other
/// targets and illegal jumps are [`OrdersError::InvalidTransition`]. A cancellation asks
/// `payments` to void or refund first, with the order locked ([`PaymentsPort`]).
/// Locks the order row, records the change in the history and, on cancellation, returns
/// the stock, all in one transaction (a savepoint of the caller's, if open). Returns the
/// order before and after. Writes no audit entry: see [`change_status_audited`].
pub async fn change_status(
    conn: &mut AsyncPgConnection,
    order_id: i64,
    to: OrderStatus,
    actor_id: i64,
    payments: &dyn PaymentsPort,
) -> Result<StatusChange> {
    let guard = admin_guard(actor_id, to, false);
    transition(conn, order_id, to, None, &guard, payments).await
}

/// [`change_status`] plus an audit entry (`order.status_change` on `order`, before and
/// after) in the same transaction: what ecom-admin's `PATCH /admin/orders/{id}/status` needs.
pub async fn change_status_audited(
    conn: &mut AsyncPgConnection,
    order_id: i64,
    to: OrderStatus,
    actor_id: i64,
    payments: &dyn PaymentsPort,
) -> Result<StatusChange> {
    let guard = admin_guard(actor_id, to, true);
    transition(conn, order_id, to, None, &guard, payments).await
}

/// `POST /orders/{id}/cancel` by `caller`: the owner may cancel while `pending`; a holder
/// of `manage:orders` (`can_manage`) while `pending` or `paid`. Someone else's order is
/// [`OrdersError::OrderNotFound`] without `manage:orders`; when a manager cancels someone
/// else's order, an audit entry is written too. The history names the owner as `user`,
/// a manager as `admin` (also on their own order once it is past `pending`). `payments`
/// voids or refunds first, with the order locked; its failure changes nothing. Stock is
/// returned exactly once: a second cancel (or the expiry task) finds the order cancelled
/// and is refused.
pub async fn cancel_order(
    conn: &mut AsyncPgConnection,
    order_id: i64,
    caller: i64,
    can_manage: bool,
    payments: &dyn PaymentsPort,
) -> Result<StatusChange> {
    let guard = move |row: &OrderRow| {
        if row.user_id != caller && !can_manage {
            return Err(OrdersError::OrderNotFound(order_id));
        }
        if !can_manage && row.status != OrderStatus::Pending {
            return Err(OrdersError::InvalidTransition {
                order_id,
                from: row.status,
                to: OrderStatus::Cancelled,
            });
        }
        // The owner acts as a user while the order is theirs to cancel (pending); beyond
        // that only `manage:orders` allows it. A manager acting on another user's order
        // leaves an audit entry.
        let own = row.user_id == caller;
        let actor = if own && row.status == OrderStatus::Pending {
            Actor::User(caller)
        } else {
            Actor::Admin(caller)
        };
        Ok(Verdict {
            actor,
            audited: !own,
        })
    };
    transition(
        conn,
        order_id,
        OrderStatus::Cancelled,
        None,
        &guard,
        payments,
    )
    .await
}

/// Every status change of an order, oldest first (the placing of the order included).
pub async fn status_history(
    conn: &mut AsyncPgConnection,
    order_id: i64,
) -> Result<Vec<StatusChangeRecord>> {
    Ok(order_status_history::table
        .filter(order_status_history::order_id.eq(order_id))
        .order(order_status_history::id)
        .select(StatusChangeRecord::as_select())
        .load(conn)
        .await?)
}

/// An order's status history as `viewer` may see it, oldest first, one page: their own
/// order, or any with `manage:orders` (`can_manage`). Another user's order is
/// [`OrdersError::OrderNotFound`], as for the order itself. Three statements.
pub async fn order_history(
    conn: &mut AsyncPgConnection,
    order_id: i64,
    viewer: i64,
    can_manage: bool,
    page: PageRequest,
) -> Result<Page<StatusChangeRecord>> {
    let owner: i64 = orders::table
        .find(order_id)
        .select(orders::user_id)
        .first(conn)
        .await
        .optional()?
        .ok_or(OrdersError::OrderNotFound(order_id))?;
    super::queries::visible_to(order_id, owner, viewer, can_manage)?;
    let of_order =
        || order_status_history::table.filter(order_status_history::order_id.eq(order_id));
    let total: i64 = of_order().count().get_result(conn).await?;
    let items = of_order()
        .order(order_status_history::id)
        .select(StatusChangeRecord::as_select())
        .paged(page)
        .load(conn)
        .await?;
    Ok(Page::new(items, total, page))
}
