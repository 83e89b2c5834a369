//! The order lifecycle: `pending → paid → shipped → delivered`, `pending | paid →
//! cancelled`. Each change locks the order row, is recorded in the status history, and
//! a cancellation returns the stock through ecom-catalog in the same transaction.

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
) -> Result<StatusChange> {
    transaction_with_retry(conn, async |conn| {
        transition_once(conn, order_id, to, reason, guard).await
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
) -> Result<StatusChange> {
    let row: OrderRow = orders::table
        .find(order_id)
        .select(OrderRow::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?
        .ok_or(OrdersError::OrderNotFound(order_id))?;
    let verdict = guard(&row)?;
    if !row.status.can_become(to) {
        return Err(OrdersError::InvalidTransition {
            order_id,
            from: row.status,
            to,
        });
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
    super::rollup::invalidate(conn, row.created_at).await?;
    diesel::insert_into(order_status_history::table)
        .values((
            order_status_history::order_id.eq(order_id),
            order_status_history::from_status.eq(Some(row.status)),
            order_status_history::to_status.eq(to),
            order_status_history::actor.eq(verdict.actor.kind()),
            order_status_history::actor_id.eq(verdict.actor.user_id()),
            order_status_history::reason.eq(reason),
        ))
        .execute(conn)
        .await?;
    let items = lines_of(conn, &[order_id])
        .await?
        .remove(&order_id)
        .unwrap_or_default();
    if to == OrderStatus::Cancelled {
        let stock: Vec<StockLine> = items
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
    let before = Order::from_row(row, items.clone());
    let after = Order::from_row(updated, items);
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

/// Moves an order along the lifecycle on behalf of `actor_id`, an administrator (history
/// actor `admin`); illegal jumps are [`OrdersError::InvalidTransition`].
/// Locks the order row, records the change in the history and, on cancellation, returns
/// the stock, all in one transaction (a savepoint of the caller's, if open). Returns the
/// order before and after. Writes no audit entry: see [`change_status_audited`].
pub async fn change_status(
    conn: &mut AsyncPgConnection,
    order_id: i64,
    to: OrderStatus,
    actor_id: i64,
) -> Result<StatusChange> {
    let verdict = Verdict {
        actor: Actor::Admin(actor_id),
        audited: false,
    };
    transition(conn, order_id, to, None, &|_| Ok(verdict)).await
}

/// [`change_status`] plus an audit entry (`order.status_change` on `order`, before and
/// after) in the same transaction: what ecom-admin's `PATCH /admin/orders/{id}/status` needs.
pub async fn change_status_audited(
    conn: &mut AsyncPgConnection,
    order_id: i64,
    to: OrderStatus,
    actor_id: i64,
) -> Result<StatusChange> {
    let verdict = Verdict {
        actor: Actor::Admin(actor_id),
        audited: true,
    };
    transition(conn, order_id, to, None, &|_| Ok(verdict)).await
}

/// `POST /orders/{id}/cancel` by `caller`: the owner may cancel while `pending`; a holder
/// of `manage:orders` (`can_manage`) while `pending` or `paid`. Someone else's order is
/// [`OrdersError::OrderNotFound`] without `manage:orders`; when a manager cancels someone
/// else's order, an audit entry is written too. The history names the owner as `user`,
/// a manager as `admin` (also on their own order once it is past `pending`). Stock is returned exactly once: a second cancel (or the expiry
/// task) finds the order cancelled and is refused.
pub async fn cancel_order(
    conn: &mut AsyncPgConnection,
    order_id: i64,
    caller: i64,
    can_manage: bool,
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
    transition(conn, order_id, OrderStatus::Cancelled, None, &guard).await
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
