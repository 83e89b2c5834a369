//! The order events of the outbox (API.md, Events): `order.created` when an order is
//! placed, and one event per status change, named by where it leads: `order.paid`,
//! `order.cancelled`, `order.refunded`, else `order.status_changed`. Each is recorded in
//! the change's transaction, as its last write (the outbox lock is held until commit).

use diesel_async::AsyncPgConnection;
use ecom_core::events::{self, NewEvent};
use serde_json::json;

use super::Result;
use crate::model::{Actor, Order, OrderStatus};

/// The event type of a change into `to`.
fn event_type(to: OrderStatus) -> &'static str {
    match to {
        OrderStatus::Paid => "order.paid",
        OrderStatus::Cancelled => "order.cancelled",
        OrderStatus::Refunded => "order.refunded",
        _ => "order.status_changed",
    }
}

/// Records the event of `order` having come `from` its previous status (`None`: placed)
/// by `actor`, with the history's `reason`.
pub(crate) async fn record(
    conn: &mut AsyncPgConnection,
    order: &Order,
    from: Option<OrderStatus>,
    actor: Actor,
    reason: Option<&str>,
) -> Result<()> {
    let event_type = match from {
        None => "order.created",
        Some(_) => event_type(order.status),
    };
    events::record(
        conn,
        NewEvent {
            event_type,
            aggregate_type: "order",
            aggregate_id: order.id,
            owner_id: Some(order.user_id),
            data: json!({
                "order": order,
                "from_status": from,
                "to_status": order.status,
                "actor": {"type": actor.kind(), "id": actor.user_id()},
                "reason": reason,
            }),
        },
    )
    .await?;
    Ok(())
}
