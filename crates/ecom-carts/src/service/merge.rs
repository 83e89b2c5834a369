//! `POST /carts/{id}/merge`: a guest cart's lines join the signed-in owner's cart, and
//! the guest cart is gone.

use std::collections::HashMap;
use std::time::Duration;

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use ecom_core::db::transaction_with_retry;

use super::access::{token_hash, touch, writable_cart};
use super::view::{lines_of, offers_for, render};
use super::{MAX_LINES, MAX_QUANTITY, Result};
use crate::error::CartsError;
use crate::model::{Cart, CartLineRow, CartStatus, Holder};
use crate::schema::{cart_lines, carts};

/// What one variant's line becomes: `None` when the owner's line stays as it is.
fn merged_quantity(own: i32, guest: i32, available: i32) -> Option<i32> {
    let wanted = (i64::from(own) + i64::from(guest))
        .min(MAX_QUANTITY)
        .min(i64::from(available.max(0)));
    let new = i64::from(own).max(wanted);
    // new ≤ 1000 or new = own, so it fits.
    (new > i64::from(own)).then(|| i32::try_from(new).unwrap_or(own))
}

/// Merges the active guest cart named by `guest_token` into `user_id`'s cart `id`: per
/// variant the quantity becomes max(own, min(own + guest, 1000, available)); a line new to
/// the owner's cart keeps the price the guest acknowledged. Then the guest cart is deleted.
///
/// One transaction that locks the owner's cart, then the guest cart: of concurrent merges
/// of one guest cart, the first deletes it and the others, waiting on its lock, find no
/// cart ([`CartsError::GuestCartNotFound`]). Lines beyond [`MAX_LINES`] are
/// [`CartsError::Full`] and nothing is merged.
pub async fn merge_guest_cart(
    conn: &mut AsyncPgConnection,
    id: i64,
    user_id: i64,
    guest_token: &str,
    ttl: Duration,
) -> Result<Cart> {
    let owner = Holder {
        user_id: Some(user_id),
        cart_token: None,
    };
    let hash = token_hash(guest_token);
    transaction_with_retry(conn, async |conn| {
        writable_cart(conn, id, owner).await?;
        let guest_id: i64 = carts::table
            .filter(carts::token_hash.eq(&hash))
            .filter(carts::user_id.is_null())
            .filter(carts::status.eq(CartStatus::Active))
            .filter(carts::expires_at.gt(diesel::dsl::now))
            .select(carts::id)
            .for_update()
            .first(conn)
            .await
            .optional()?
            .ok_or(CartsError::GuestCartNotFound)?;
        let own: HashMap<i64, CartLineRow> = lines_of(conn, id)
            .await?
            .into_iter()
            .map(|l| (l.variant_id, l))
            .collect();
        let guest = lines_of(conn, guest_id).await?;
        let ids: Vec<i64> = guest.iter().map(|l| l.variant_id).collect();
        let offers = offers_for(conn, &ids).await?;
        let mut lines = own.len();
        for line in &guest {
            let available = offers
                .get(&line.variant_id)
                .filter(|o| o.on_sale)
                .map_or(0, |o| o.available);
            let mine = own.get(&line.variant_id);
            let Some(quantity) =
                merged_quantity(mine.map_or(0, |l| l.quantity), line.quantity, available)
            else {
                continue;
            };
            if mine.is_none() {
                lines += 1;
                if lines > MAX_LINES {
                    return Err(CartsError::Full);
                }
            }
            diesel::insert_into(cart_lines::table)
                .values((
                    cart_lines::cart_id.eq(id),
                    cart_lines::variant_id.eq(line.variant_id),
                    cart_lines::product_id.eq(line.product_id),
                    cart_lines::quantity.eq(quantity),
                    cart_lines::acknowledged_price.eq(line.acknowledged_price),
                ))
                .on_conflict((cart_lines::cart_id, cart_lines::variant_id))
                .do_update()
                .set((
                    cart_lines::quantity.eq(quantity),
                    cart_lines::updated_at.eq(diesel::dsl::now),
                ))
                .execute(conn)
                .await?;
        }
        diesel::delete(carts::table.find(guest_id))
            .execute(conn)
            .await?;
        let row = touch(conn, id, ttl).await?;
        render(conn, &row).await
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::merged_quantity;

    #[test]
    fn the_merge_formula_caps_by_stock_and_1000_but_never_lowers_the_own_line() {
        assert_eq!(merged_quantity(0, 3, 10), Some(3));
        assert_eq!(merged_quantity(2, 3, 10), Some(5));
        assert_eq!(merged_quantity(2, 3, 4), Some(4), "capped by available");
        assert_eq!(
            merged_quantity(6, 3, 4),
            None,
            "own line kept above available"
        );
        assert_eq!(
            merged_quantity(900, 300, 5000),
            Some(1000),
            "capped by 1000"
        );
        assert_eq!(
            merged_quantity(0, 3, 0),
            None,
            "nothing on sale, nothing added"
        );
        assert_eq!(merged_quantity(1, 3, -1), None);
    }
}
