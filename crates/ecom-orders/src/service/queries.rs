//! Reading orders: always the order rows, then one statement for all their lines.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use ecom_core::pagination::Paged;
use ecom_core::{Page, PageRequest};

use super::Result;
use crate::error::OrdersError;
use crate::model::{AdminOrderFilter, Order, OrderLine, OrderRow, OrderStatus};
use crate::schema::{order_lines, orders};
pub(crate) use ecom_core::calendar::{utc_day_end as day_end, utc_day_start as day_start};

/// The lines of the given orders, in product-id order within each order: one statement.
pub(crate) async fn lines_of(
    conn: &mut AsyncPgConnection,
    order_ids: &[i64],
) -> Result<HashMap<i64, Vec<OrderLine>>> {
    let mut by_order: HashMap<i64, Vec<OrderLine>> = HashMap::new();
    if order_ids.is_empty() {
        return Ok(by_order);
    }
    let lines: Vec<OrderLine> = order_lines::table
        .filter(order_lines::order_id.eq_any(order_ids))
        .order((
            order_lines::order_id,
            order_lines::product_id,
            order_lines::variant_id,
        ))
        .select(OrderLine::as_select())
        .load(conn)
        .await?;
    for line in lines {
        by_order.entry(line.order_id).or_default().push(line);
    }
    Ok(by_order)
}

/// Orders with their lines, in the rows' order.
pub(crate) async fn with_lines(
    conn: &mut AsyncPgConnection,
    rows: Vec<OrderRow>,
) -> Result<Vec<Order>> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut lines = lines_of(conn, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let items = lines.remove(&row.id).unwrap_or_default();
            Order::from_row(row, items)
        })
        .collect())
}

/// An order with its lines, whoever owns it (for services and the admin).
pub async fn get_order(conn: &mut AsyncPgConnection, order_id: i64) -> Result<Order> {
    let row = orders::table
        .find(order_id)
        .select(OrderRow::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or(OrdersError::OrderNotFound(order_id))?;
    let mut orders = with_lines(conn, vec![row]).await?;
    orders.pop().ok_or(OrdersError::OrderNotFound(order_id))
}

/// An order as `viewer` may see it: their own, or any with `manage:orders`
/// (`can_manage`). Another user's order is [`OrdersError::OrderNotFound`], so its
/// existence is not revealed.
pub async fn get_order_for(
    conn: &mut AsyncPgConnection,
    order_id: i64,
    viewer: i64,
    can_manage: bool,
) -> Result<Order> {
    let order = get_order(conn, order_id).await?;
    visible_to(order_id, order.user_id, viewer, can_manage)?;
    Ok(order)
}

/// Who may see an order and what it leads to (its history): its `owner`, or a `viewer`
/// with `manage:orders`; anyone else is told it does not exist.
pub(crate) fn visible_to(order_id: i64, owner: i64, viewer: i64, can_manage: bool) -> Result<()> {
    if owner != viewer && !can_manage {
        return Err(OrdersError::OrderNotFound(order_id));
    }
    Ok(())
}

/// A user's orders, newest first, optionally of one status: three statements
/// (count, page, lines) whatever the page size.
pub async fn list_user_orders(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    status: Option<OrderStatus>,
    page: PageRequest,
) -> Result<Page<Order>> {
    let filter = AdminOrderFilter {
        status,
        user_id: Some(user_id),
        ..AdminOrderFilter::default()
    };
    list_orders(conn, &filter, page).await
}

/// Every order matching the filters, newest first (the admin's `GET /admin/orders`):
/// three statements (count, page, lines) whatever the page size.
pub async fn list_orders(
    conn: &mut AsyncPgConnection,
    filter: &AdminOrderFilter,
    page: PageRequest,
) -> Result<Page<Order>> {
    let query = || {
        let mut q = orders::table.into_boxed();
        if let Some(status) = filter.status {
            q = q.filter(orders::status.eq(status));
        }
        if let Some(user_id) = filter.user_id {
            q = q.filter(orders::user_id.eq(user_id));
        }
        if let Some(from) = filter.created_from {
            q = q.filter(orders::created_at.ge(day_start(from)));
        }
        if let Some(to) = filter.created_to {
            q = q.filter(orders::created_at.lt(day_end(to)));
        }
        q
    };
    let total: i64 = query().count().get_result(conn).await?;
    let rows: Vec<OrderRow> = query()
        .order((orders::created_at.desc(), orders::id.desc()))
        .select(OrderRow::as_select())
        .paged(page)
        .load(conn)
        .await?;
    let items = with_lines(conn, rows).await?;
    Ok(Page::new(items, total, page))
}
