//! Creating, reading and filling carts: `POST /carts`, `GET /carts/{id}`,
//! `PUT`/`DELETE /carts/{id}/items/{variant_id}`.

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use ecom_core::db::transaction_with_retry;

use super::access::{
    expiry_after, expiry_sql, held_cart, new_token, token_hash, touch, writable_cart,
};
use super::view::{offers_for, render};
use super::{MAX_LINES, MAX_QUANTITY, Result};
use crate::error::CartsError;
use crate::model::{Cart, CartRow, CartStatus, Holder, NewGuestCart};
use crate::schema::{cart_lines, carts};

/// What `POST /carts` gave a signed-in user.
#[derive(Debug, Clone)]
pub struct UserCart {
    pub cart: Cart,
    /// True when the cart was made by this call, false when it was the active one.
    pub created: bool,
}

/// A new, empty guest cart and its token (shown this once; only its hash is kept).
pub async fn create_guest_cart(
    conn: &mut AsyncPgConnection,
    ttl: Duration,
) -> Result<NewGuestCart> {
    let token = new_token();
    let row: CartRow = diesel::insert_into(carts::table)
        .values((
            carts::token_hash.eq(token_hash(&token)),
            carts::expires_at.eq(expiry_after(ttl)),
        ))
        .returning(CartRow::as_returning())
        .get_result(conn)
        .await?;
    let cart = render(conn, &row).await?;
    Ok(NewGuestCart { cart, token })
}

/// The user's active cart, made if they have none: one per user, also when requests race
/// (the partial unique index decides; the losers read the winner's cart). An expired
/// active cart is deleted first, so the user gets a fresh one.
pub async fn user_cart(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    ttl: Duration,
) -> Result<UserCart> {
    // A checkout may convert the found cart between the insert and the read: then the next
    // round inserts. A few rounds settle it unless checkouts keep racing.
    for _ in 0..3 {
        diesel::delete(
            carts::table
                .filter(carts::user_id.eq(user_id))
                .filter(carts::status.eq(CartStatus::Active))
                .filter(carts::expires_at.le(diesel::dsl::now)),
        )
        .execute(conn)
        .await?;
        let (row, created) = match insert_user_cart(conn, user_id, ttl).await? {
            Some(row) => (row, true),
            None => match active_cart(conn, user_id).await? {
                Some(row) => (row, false),
                None => continue,
            },
        };
        let cart = render(conn, &row).await?;
        return Ok(UserCart { cart, created });
    }
    Err(CartsError::Contended)
}

/// Inserts the user's active cart unless they have one (waiting for a racing insert to
/// commit or roll back).
async fn insert_user_cart(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    ttl: Duration,
) -> Result<Option<CartRow>> {
    let statement = format!(
        "INSERT INTO carts (user_id, expires_at) VALUES ($1, {}) \
         ON CONFLICT (user_id) WHERE status = 'active' AND user_id IS NOT NULL DO NOTHING \
         RETURNING id, user_id, status, order_id, checkout_key, updated_at, expires_at",
        expiry_sql(ttl)
    );
    Ok(diesel::sql_query(statement)
        .bind::<BigInt, _>(user_id)
        .get_result(conn)
        .await
        .optional()?)
}

/// The user's active cart, if it has not expired.
async fn active_cart(conn: &mut AsyncPgConnection, user_id: i64) -> Result<Option<CartRow>> {
    Ok(carts::table
        .filter(carts::user_id.eq(user_id))
        .filter(carts::status.eq(CartStatus::Active))
        .filter(carts::expires_at.gt(diesel::dsl::now))
        .select(CartRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// The cart, priced now, for its holder.
pub async fn get_cart(conn: &mut AsyncPgConnection, id: i64, holder: Holder<'_>) -> Result<Cart> {
    let row = held_cart(conn, id, holder, false).await?;
    render(conn, &row).await
}

/// Sets the absolute quantity of a variant in the cart (0 removes the line) and
/// acknowledges the variant's current price; the cart lives a TTL from now. A variant the
/// catalog does not offer is [`CartsError::UnknownVariant`] (unless removing); a new line
/// beyond [`MAX_LINES`] is [`CartsError::Full`].
pub async fn set_quantity(
    conn: &mut AsyncPgConnection,
    id: i64,
    holder: Holder<'_>,
    variant_id: i64,
    quantity: i64,
    ttl: Duration,
) -> Result<Cart> {
    if !(0..=MAX_QUANTITY).contains(&quantity) {
        return Err(CartsError::invalid(
            "quantity",
            format!("must be between 0 and {MAX_QUANTITY}"),
        ));
    }
    // In range, so it fits.
    let quantity = i32::try_from(quantity).unwrap_or(i32::MAX);
    transaction_with_retry(conn, async |conn| {
        writable_cart(conn, id, holder).await?;
        if quantity == 0 {
            remove_line(conn, id, variant_id).await?;
        } else {
            put_line(conn, id, variant_id, quantity).await?;
        }
        let row = touch(conn, id, ttl).await?;
        render(conn, &row).await
    })
    .await
}

async fn remove_line(conn: &mut AsyncPgConnection, cart_id: i64, variant_id: i64) -> Result<()> {
    diesel::delete(cart_lines::table.find((cart_id, variant_id)))
        .execute(conn)
        .await?;
    Ok(())
}

/// Writes one line at the variant's current price; the cart row is locked.
async fn put_line(
    conn: &mut AsyncPgConnection,
    cart_id: i64,
    variant_id: i64,
    quantity: i32,
) -> Result<()> {
    let offers = offers_for(conn, &[variant_id]).await?;
    let offer = offers
        .get(&variant_id)
        .filter(|o| o.on_sale)
        .ok_or(CartsError::UnknownVariant(variant_id))?;
    let exists: bool = diesel::select(diesel::dsl::exists(
        cart_lines::table.find((cart_id, variant_id)),
    ))
    .get_result(conn)
    .await?;
    if !exists {
        let lines: i64 = cart_lines::table
            .filter(cart_lines::cart_id.eq(cart_id))
            .count()
            .get_result(conn)
            .await?;
        if lines >= MAX_LINES as i64 {
            return Err(CartsError::Full);
        }
    }
    diesel::insert_into(cart_lines::table)
        .values((
            cart_lines::cart_id.eq(cart_id),
            cart_lines::variant_id.eq(variant_id),
            cart_lines::product_id.eq(offer.product_id),
            cart_lines::quantity.eq(quantity),
            cart_lines::acknowledged_price.eq(offer.unit_price),
        ))
        .on_conflict((cart_lines::cart_id, cart_lines::variant_id))
        .do_update()
        .set((
            cart_lines::product_id.eq(offer.product_id),
            cart_lines::quantity.eq(quantity),
            cart_lines::acknowledged_price.eq(offer.unit_price),
            cart_lines::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await?;
    Ok(())
}
