//! Request and response bodies of /orders, and their validation.

use chrono::{DateTime, Utc};
use ecom_core::{Money, PageQuery};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, IntoResponses, ToSchema};

use crate::error::OrdersError;
use crate::model::{Order, OrderLine, OrderStatus, RequestedLine};

// ---------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------

/// One line of an order, with the product's name and unit price at purchase.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderItemOut {
    pub product_id: i64,
    #[schema(example = "Wireless Keyboard")]
    pub product_name: String,
    #[schema(example = 2)]
    pub quantity: i32,
    pub unit_price: Money,
    /// `unit_price × quantity`, exact.
    pub line_total: Money,
}

impl From<OrderLine> for OrderItemOut {
    fn from(l: OrderLine) -> Self {
        Self {
            product_id: l.product_id,
            product_name: l.product_name,
            quantity: l.quantity,
            unit_price: l.unit_price,
            line_total: l.line_total,
        }
    }
}

/// An order. `status` follows `pending → paid → shipped → delivered`, or `pending | paid →
/// cancelled`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": 7, "user_id": 12, "status": "pending", "total_price": "109.97",
    "created_at": "2026-11-25T18:00:00Z", "updated_at": "2026-11-25T18:00:00Z",
    "items": [
        {"product_id": 3, "product_name": "USB-C Cable", "quantity": 1, "unit_price": "9.99", "line_total": "9.99"},
        {"product_id": 42, "product_name": "Wireless Keyboard", "quantity": 2, "unit_price": "49.99", "line_total": "99.98"}
    ]
}))]
pub struct OrderOut {
    pub id: i64,
    pub user_id: i64,
    pub status: OrderStatus,
    /// Sum of the line totals, exact.
    pub total_price: Money,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// One line per product (duplicate request lines are merged), in product-id order.
    pub items: Vec<OrderItemOut>,
}

impl From<Order> for OrderOut {
    fn from(o: Order) -> Self {
        Self {
            id: o.id,
            user_id: o.user_id,
            status: o.status,
            total_price: o.total_price,
            created_at: o.created_at,
            updated_at: o.updated_at,
            items: o.items.into_iter().map(OrderItemOut::from).collect(),
        }
    }
}

ecom_core::named_page!(
    OrderPage,
    OrderOut,
    "`{items, total, limit, offset}` of orders."
);

// ---------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------

/// One line of a new order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderItemRequest {
    pub product_id: i64,
    /// 1..=1000; lines for the same product are merged and their sum must stay ≤ 1000.
    #[schema(minimum = 1, maximum = 1000, example = 2)]
    pub quantity: i64,
}

/// A new order: the products and quantities; prices come from the catalog.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"items": [{"product_id": 1, "quantity": 2}]}))]
pub struct CreateOrderRequest {
    /// 1..=100 lines.
    #[schema(min_items = 1, max_items = 100)]
    pub items: Vec<OrderItemRequest>,
}

impl CreateOrderRequest {
    /// The lines as the services take them (quantities are checked there).
    pub fn lines(&self) -> Vec<RequestedLine> {
        self.items
            .iter()
            .map(|i| RequestedLine {
                product_id: i.product_id,
                quantity: i.quantity,
            })
            .collect()
    }
}

/// Filters of `GET /orders`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrderListQuery {
    /// Only orders with this status.
    #[param(value_type = Option<OrderStatus>)]
    pub status: Option<String>,
    #[serde(flatten)]
    #[param(ignore)]
    pub page: PageQuery,
}

impl OrderListQuery {
    /// The status filter, 422 naming `status` when it is not a status.
    pub fn status(&self) -> Result<Option<OrderStatus>, OrdersError> {
        match self.status.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(s) => s
                .parse()
                .map(Some)
                .map_err(|_| OrdersError::invalid("status", crate::model::unknown_status(s))),
        }
    }
}

/// `GET /orders/{id}` and its cancel: the caller's order must exist. Declared once;
/// core gives each error its `Problem` body.
#[derive(IntoResponses)]
pub enum OrderMissing {
    /// `not_found`: no such order, or another user's
    #[response(status = 404)]
    NotFound,
}
