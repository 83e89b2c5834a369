//! Rows and domain types of carts.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::prelude::*;
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Text;
use ecom_core::Money;
use serde::Serialize;
use utoipa::ToSchema;

use crate::schema::{cart_lines, carts};

ecom_core::string_enum! {
    /// `active` while the shopper fills it; `converted` once checked out into an order.
    #[derive(AsExpression, FromSqlRow)]
    #[serde(rename_all = "lowercase")]
    #[strum(serialize_all = "lowercase")]
    #[diesel(sql_type = Text)]
    pub enum CartStatus {
        Active,
        Converted,
    }
}

impl ToSql<Text, Pg> for CartStatus {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <str as ToSql<Text, Pg>>::to_sql(self.as_str(), out)
    }
}

impl FromSql<Text, Pg> for CartStatus {
    fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<Text, Pg>>::from_sql(bytes)?;
        text.parse()
            .map_err(|_| format!("`{text}` is not a cart status").into())
    }
}

/// A cart row. `token_hash` is set on guest carts only, `user_id` on users' carts only.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = carts, check_for_backend(diesel::pg::Pg))]
pub struct CartRow {
    pub id: i64,
    pub user_id: Option<i64>,
    pub status: CartStatus,
    pub order_id: Option<i64>,
    /// The `Idempotency-Key` of the checkout that converted the cart, for replays.
    pub checkout_key: Option<String>,
    pub updated_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// One line of a cart as stored: what the shopper asked for and the price they saw.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = cart_lines, check_for_backend(diesel::pg::Pg))]
pub struct CartLineRow {
    pub variant_id: i64,
    pub product_id: i64,
    pub quantity: i32,
    /// The unit price at the line's last PUT.
    pub acknowledged_price: Money,
}

/// Who is asking for a cart: the signed-in user, the guest token sent as `X-Cart-Token`,
/// both or neither. Its Debug never shows the token.
#[derive(Clone, Copy, Default)]
pub struct Holder<'a> {
    pub user_id: Option<i64>,
    pub cart_token: Option<&'a str>,
}

impl std::fmt::Debug for Holder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Holder")
            .field("user_id", &self.user_id)
            .field("has_cart_token", &self.cart_token.is_some())
            .finish()
    }
}

ecom_core::string_enum! {
    /// What keeps a line from being checked out as it is.
    #[serde(rename_all = "snake_case")]
    #[strum(serialize_all = "snake_case")]
    #[schema(as = CartProblemCode)]
    pub enum ProblemCode {
        /// The unit price differs from the one acknowledged at the line's last PUT.
        PriceChanged,
        /// The quantity exceeds the units on sale now.
        InsufficientStock,
        /// The variant or its product left the catalog.
        Unavailable,
    }
}

/// One reason the cart cannot be checked out as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = CartProblem)]
pub struct CartProblem {
    pub code: ProblemCode,
    pub variant_id: i64,
    #[schema(example = "the price went from 8.50 to 9.00 since it was added")]
    pub detail: String,
}

/// One line of a cart as sent, priced from the catalog at the time of the read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = CartItemOut)]
pub struct CartItem {
    pub variant_id: i64,
    pub product_id: i64,
    /// The product's name (empty should the variant have vanished from the catalog).
    #[schema(example = "T-shirt")]
    pub name: String,
    pub sku: Option<String>,
    /// The variant's options, e.g. `{"Size": "M"}`.
    pub options: BTreeMap<String, String>,
    /// The current unit price (the acknowledged one when the variant has vanished).
    pub unit_price: Money,
    #[schema(minimum = 1, maximum = 1000, example = 2)]
    pub quantity: i32,
    /// `unit_price × quantity`, exact.
    #[schema(schema_with = ecom_core::money::total_schema)]
    pub line_total: Money,
    /// Units on sale now; 0 once the variant or its product is deleted.
    pub available: i32,
}

/// A cart as sent: its lines priced from the catalog now, with what blocks a checkout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = CartOut, description = "A cart, priced from the catalog at every read (prices are never frozen).")]
#[schema(example = json!({
    "id": 5, "status": "active", "order_id": null,
    "items": [{"variant_id": 11, "product_id": 4, "name": "T-shirt", "sku": "TS-M",
        "options": {"Size": "M"}, "unit_price": "9.00", "quantity": 2, "line_total": "18.00", "available": 1}],
    "subtotal": "18.00", "total": "18.00",
    "problems": [
        {"code": "price_changed", "variant_id": 11, "detail": "the unit price went from 8.50 to 9.00 since the line was last set"},
        {"code": "insufficient_stock", "variant_id": 11, "detail": "2 requested, 1 available"}
    ],
    "expires_at": "2026-12-25T18:00:00Z", "updated_at": "2026-11-25T18:00:00Z"
}))]
pub struct Cart {
    pub id: i64,
    pub status: CartStatus,
    /// The order the checkout placed; `null` while `active`.
    pub order_id: Option<i64>,
    /// In the order the lines were first added.
    pub items: Vec<CartItem>,
    /// Σ `line_total` of the lines not `unavailable`.
    #[schema(schema_with = ecom_core::money::total_schema)]
    pub subtotal: Money,
    /// `subtotal` (no shipping, tax or discounts yet).
    #[schema(schema_with = ecom_core::money::total_schema)]
    pub total: Money,
    /// Empty when the cart can be checked out as it is.
    pub problems: Vec<CartProblem>,
    /// Last write + `CART_TTL_DAYS`; afterwards the cart is gone (404).
    pub expires_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A guest cart just created: the cart and its token, shown this once.
#[derive(Debug, Clone)]
pub struct NewGuestCart {
    pub cart: Cart,
    pub token: String,
}
