//! ecom-orders: checkout that never oversells, idempotent order creation, the order
//! lifecycle and the sales figures; `/orders`.
//!
//! - [`module`]: the routes and OpenAPI fragment that `bins/api` mounts
//! - [`service`]: the use cases, including what ecom-admin calls: the lifecycle
//!   ([`change_status`], [`change_status_audited`]), the listing of every order
//!   ([`list_orders`]) and the report queries ([`service::reports`])
//!
//! Stock is reserved and returned through ecom-catalog's stock interface on the order's
//! own transaction; order lines copy the product's name and price, so orders never read
//! the catalog's tables.
//!
//! Routes are declared once, with their operations (see [`ecom_core::Module`]).
//! Validation lives in the services (`service::checkout` checks lines, quantities and
//! keys; `ReportRange::new` owns the report limits); `api` types only parse.

pub mod api;
pub mod error;
pub mod model;
pub mod routes;
pub mod schema;
pub mod service;

use utoipa::OpenApi;

pub use error::OrdersError;
pub use model::{
    AdminOrderFilter, Checkout, DailySales, Order, OrderLine, OrderStatus, ReportRange,
    RequestedLine, SalesReport, SalesTotals, StatusChange, StatusChangeRecord, StatusCounts,
    TopProduct,
};
pub use service::{
    cancel_order, change_status, change_status_audited, daily_sales, get_order, list_orders,
    orders_by_status, place_order, sales_report, sales_totals, status_history, top_products,
};

/// The orders' part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    components(schemas(
        api::OrderOut,
        api::OrderItemOut,
        api::OrderPage,
        api::CreateOrderRequest,
        api::OrderItemRequest,
        model::OrderStatus,
    )),
    tags((name = "orders", description = "Checkout, the caller's orders and cancellation"))
)]
pub struct OrdersApi;

/// The orders' routes and OpenAPI fragment, for the app factory.
pub fn module() -> ecom_core::Module {
    ecom_core::Module::routes("orders", routes::configure, OrdersApi::openapi())
}

/// The orders' periodic clean-ups: expired idempotency records.
pub fn chores() -> Vec<ecom_core::housekeeping::Chore> {
    vec![ecom_core::housekeeping::Chore::new(
        "order_idempotency",
        |conn, batch| {
            Box::pin(
                async move { Ok(service::checkout::purge_expired_idempotency(conn, batch).await?) },
            )
        },
    )]
}
