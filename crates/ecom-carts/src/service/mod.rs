//! The carts' use cases. Functions take a connection; those that write run in one
//! transaction holding the cart's row lock.
//!
//! - [`carts`]: creating a cart, reading it, setting a line's quantity
//! - [`merge`]: a guest cart into the signed-in owner's
//! - [`checkout`]: a cart into an order, through ecom-orders
//! - [`cleanup`]: deleting expired carts
//! - `access`: who holds a cart and the guest tokens; `view`: pricing a cart for a read
//!   from ecom-catalog's `variants_on_sale`

mod access;
pub mod carts;
pub mod checkout;
pub mod cleanup;
pub mod merge;
mod view;

pub use carts::{UserCart, create_guest_cart, get_cart, set_quantity, user_cart};
pub use checkout::checkout_cart;
pub use cleanup::purge_expired_carts;
pub use merge::merge_guest_cart;

/// Most lines one cart holds.
pub const MAX_LINES: usize = 100;
/// Largest quantity of one line.
pub const MAX_QUANTITY: i64 = 1000;

pub(crate) type Result<T> = std::result::Result<T, crate::error::CartsError>;
