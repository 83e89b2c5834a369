//! `POST /carts/{id}/checkout`: the cart becomes an order, placed through ecom-orders on
//! the cart's own transaction, under the cart's lock.

use std::time::Duration;

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use ecom_catalog::ItemRef;
use ecom_core::db::transaction_with_retry;
use ecom_orders::{Checkout, Order, RequestedLine};

use super::Result;
use super::access::{expiry_after, held_cart};
use super::view::{lines_of, offers_for, price_changed, priced};
use crate::error::CartsError;
use crate::model::{CartLineRow, CartProblem, CartRow, CartStatus, Holder};
use crate::schema::carts;

/// Checks an `Idempotency-Key` by the rule of `POST /orders`: 1..=255 visible ASCII
/// characters.
fn check_key(key: &str) -> Result<()> {
    use ecom_orders::service::checkout::{MAX_KEY_LEN, is_valid_key};
    if is_valid_key(key) {
        return Ok(());
    }
    let rule = format!("must be 1 to {MAX_KEY_LEN} visible ASCII characters");
    Err(CartsError::invalid("Idempotency-Key", rule))
}

/// Checks out cart `id` for the signed-in `holder`: one transaction holding the cart's
/// lock (`FOR UPDATE`), so concurrent checkouts of one cart place exactly one order. A
/// cart without lines is [`CartsError::Empty`]; one with problems (as a read shows them,
/// or a price that changed before the order locked its rows) is
/// [`CartsError::HasProblems`]; otherwise the order is placed as by `POST /orders` (stock
/// taken, prices of this moment, `pending`, the caller's), under the same `Idempotency-Key`
/// record as `POST /orders` (one key, one request, whichever endpoint it came through), and
/// the cart becomes `converted` with its `order_id`. The same `key` from the same caller
/// afterwards replays that order (`replayed: true`); another key is
/// [`CartsError::Converted`].
pub async fn checkout_cart(
    conn: &mut AsyncPgConnection,
    id: i64,
    holder: Holder<'_>,
    key: &str,
    payment_window: Duration,
    ttl: Duration,
) -> Result<Checkout> {
    check_key(key)?;
    let user_id = holder.user_id.ok_or(CartsError::CartNotFound(id))?;
    transaction_with_retry(conn, async |conn| {
        let row = held_cart(conn, id, holder, true).await?;
        if row.status == CartStatus::Converted {
            return replay(conn, &row, user_id, key).await;
        }
        let lines = lines_of(conn, id).await?;
        if lines.is_empty() {
            return Err(CartsError::Empty(id));
        }
        let ids: Vec<i64> = lines.iter().map(|l| l.variant_id).collect();
        let offers = offers_for(conn, &ids).await?;
        let cart = priced(&row, &lines, &offers);
        if !cart.problems.is_empty() {
            return Err(CartsError::HasProblems(cart.problems));
        }
        let requested: Vec<_> = lines
            .iter()
            .map(|l| RequestedLine {
                item: ItemRef::Variant(l.variant_id),
                quantity: i64::from(l.quantity),
            })
            .collect();
        let placed =
            ecom_orders::place_order(conn, user_id, &requested, Some(key), payment_window).await?;
        let repriced = repriced_lines(&lines, &placed.order);
        if !repriced.is_empty() {
            return Err(CartsError::HasProblems(repriced));
        }
        diesel::update(carts::table.find(id))
            .set((
                carts::status.eq(CartStatus::Converted),
                carts::order_id.eq(placed.order.id),
                carts::checkout_key.eq(key),
                carts::updated_at.eq(diesel::dsl::now),
                carts::expires_at.eq(expiry_after(ttl)),
            ))
            .execute(conn)
            .await?;
        Ok(placed)
    })
    .await
}

/// A converted cart: the order again for the caller and key that placed it.
async fn replay(
    conn: &mut AsyncPgConnection,
    row: &CartRow,
    user_id: i64,
    key: &str,
) -> Result<Checkout> {
    let converted = CartsError::Converted(row.id);
    let (Some(order_id), Some(placed_with)) = (row.order_id, row.checkout_key.as_deref()) else {
        return Err(converted);
    };
    if placed_with != key {
        return Err(converted);
    }
    let order = ecom_orders::get_order(conn, order_id).await?;
    if order.user_id != user_id {
        return Err(converted);
    }
    Ok(Checkout {
        order,
        replayed: true,
    })
}

/// Lines the order priced differently from what the shopper acknowledged: the price
/// changed between the cart's read and the order's lock on the catalog rows.
fn repriced_lines(lines: &[CartLineRow], order: &Order) -> Vec<CartProblem> {
    order
        .items
        .iter()
        .filter_map(|item| {
            let line = lines.iter().find(|l| l.variant_id == item.variant_id)?;
            (line.acknowledged_price != item.unit_price)
                .then(|| price_changed(line, item.unit_price))
        })
        .collect()
}
