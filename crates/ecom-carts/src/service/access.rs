//! Who holds a cart, and the guest tokens that make a holder: finding a cart for its
//! holder (optionally locking it) and touching its lifetime on a write.

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::Timestamptz;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use sha2::{Digest, Sha256};

use super::Result;
use crate::error::CartsError;
use crate::model::{CartRow, CartStatus, Holder};
use crate::schema::carts;

/// A new guest token: 256 random bits, hex; only its hash is stored.
pub(crate) fn new_token() -> String {
    ecom_core::random_hex(32)
}

/// What the database keeps of a guest token: its SHA-256.
pub(crate) fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// `now() + ttl` as SQL: the `expires_at` of a cart written now. The seconds are a number
/// from the settings, written into the text (one text per TTL, so it is prepared once).
pub(crate) fn expiry_sql(ttl: Duration) -> String {
    format!("now() + make_interval(secs => {})", ttl.as_secs())
}

/// [`expiry_sql`] as a diesel expression.
pub(crate) fn expiry_after(ttl: Duration) -> diesel::expression::SqlLiteral<Timestamptz> {
    diesel::dsl::sql::<Timestamptz>(&expiry_sql(ttl))
}

/// Cart `id` if `holder` holds it and it has not expired: a user's cart for its owner, a
/// guest cart for whoever sends its token. Anything else is [`CartsError::CartNotFound`],
/// so a cart's existence is never shown to others. With `lock`, the row is locked until
/// the transaction ends (`FOR UPDATE`), which serializes the cart's writes.
pub(crate) async fn held_cart(
    conn: &mut AsyncPgConnection,
    id: i64,
    holder: Holder<'_>,
    lock: bool,
) -> Result<CartRow> {
    if holder.user_id.is_none() && holder.cart_token.is_none() {
        return Err(CartsError::CartNotFound(id));
    }
    // A NULL on either side matches nothing: a user's cart has no token, a guest cart no user.
    let hash = holder.cart_token.map(token_hash);
    let query = carts::table
        .filter(carts::id.eq(id))
        .filter(carts::expires_at.gt(diesel::dsl::now))
        .filter(
            carts::user_id
                .eq(holder.user_id)
                .or(carts::token_hash.eq(hash)),
        )
        .select(CartRow::as_select());
    let found = if lock {
        query.for_update().first(conn).await
    } else {
        query.first(conn).await
    };
    found.optional()?.ok_or(CartsError::CartNotFound(id))
}

/// [`held_cart`], locked and still `active`: the start of every write to a cart.
pub(crate) async fn writable_cart(
    conn: &mut AsyncPgConnection,
    id: i64,
    holder: Holder<'_>,
) -> Result<CartRow> {
    let cart = held_cart(conn, id, holder, true).await?;
    if cart.status == CartStatus::Converted {
        return Err(CartsError::Converted(id));
    }
    Ok(cart)
}

/// Records a write to the cart: `updated_at` now, `expires_at` a TTL from now; the row
/// as it is afterwards.
pub(crate) async fn touch(conn: &mut AsyncPgConnection, id: i64, ttl: Duration) -> Result<CartRow> {
    Ok(diesel::update(carts::table.find(id))
        .set((
            carts::updated_at.eq(diesel::dsl::now),
            carts::expires_at.eq(expiry_after(ttl)),
        ))
        .returning(CartRow::as_returning())
        .get_result(conn)
        .await?)
}
