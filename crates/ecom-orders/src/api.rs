//! Request and response bodies of /orders, and their validation.

use ecom_core::PageQuery;
use serde::Deserialize;
use utoipa::{IntoParams, IntoResponses, ToSchema};

use crate::error::OrdersError;
use crate::model::{ItemRef, Order, OrderLine, OrderStatus, RequestedLine};

// ---------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------

/// One line of an order as sent: the stored line (its order id is not sent).
pub type OrderItemOut = OrderLine;

/// An order as sent: the stored order with its lines.
pub type OrderOut = Order;

ecom_core::named_page!(
    OrderHistoryPage,
    crate::model::StatusChangeRecord,
    "`{items, total, limit, offset}` of an order's status changes, oldest first."
);

ecom_core::named_page!(
    OrderPage,
    OrderOut,
    "`{items, total, limit, offset}` of orders."
);

// ---------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------

/// One line of a new order: a variant, or a product (meaning its default variant); not both.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderItemRequest {
    /// The product, when the line is for its default variant.
    pub product_id: Option<i64>,
    /// The variant; instead of `product_id`.
    pub variant_id: Option<i64>,
    /// 1..=1000; lines for the same variant are merged and their sum must stay ≤ 1000.
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
    /// The lines as the services take them (quantities are checked there); a line naming
    /// both or neither of a product and a variant is a 422.
    pub fn lines(&self) -> Result<Vec<RequestedLine>, OrdersError> {
        let mut errors = Vec::new();
        let mut lines = Vec::with_capacity(self.items.len());
        for (i, line) in self.items.iter().enumerate() {
            let item = match (line.product_id, line.variant_id) {
                (Some(id), None) => ItemRef::Product(id),
                (None, Some(id)) => ItemRef::Variant(id),
                _ => {
                    errors.push(ecom_core::FieldError::new(
                        format!("items[{i}]"),
                        "must name exactly one of product_id and variant_id",
                    ));
                    continue;
                }
            };
            lines.push(RequestedLine {
                item,
                quantity: line.quantity,
            });
        }
        if errors.is_empty() {
            Ok(lines)
        } else {
            Err(OrdersError::Invalid(errors))
        }
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
    /// The status filter, 422 naming `status` when it is not a status (an empty one
    /// included: the document lists the statuses, and schemathesis holds us to it).
    pub fn status(&self) -> Result<Option<OrderStatus>, OrdersError> {
        match self.status.as_deref().map(str::trim) {
            None => Ok(None),
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
