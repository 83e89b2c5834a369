//! ecom-orders: checkout that never oversells, idempotent order creation, the order
//! lifecycle and the sales figures; `/orders`.
//!
//! - [`module`], [`module_with_payments`]: the routes and OpenAPI fragment that `bins/api`
//!   mounts, with the [`PaymentsPort`] that cancellations go through
//! - [`service::settlement`]: what ecom-payments calls (lock an order, mark it paid or
//!   refunded, lengthen its payment window)
//! - [`expiry_chore`]: the background cancelling of unpaid orders past due, run by
//!   every replica
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
    Actor, ActorKind, AdminOrderFilter, Checkout, DailySales, Order, OrderLine, OrderStatus,
    ReportRange, RequestedLine, SalesReport, SalesTotals, StatusChange, StatusChangeRecord,
    StatusCounts, TopProduct,
};
pub use service::{
    EveryOrderExpires, ExpiryGate, NoPayments, PaidBy, PaidOutcome, PaymentsPort, cancel_order,
    change_status, change_status_audited, daily_sales, expire_due_orders, extend_payment_window,
    get_order, list_orders, lock_order, mark_paid, mark_refunded, order_history, orders_by_status,
    place_order, sales_report, sales_totals, status_history, top_products,
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
        api::OrderHistoryPage,
        model::StatusChangeRecord,
        model::OrderStatus,
        model::ActorKind,
    )),
    tags((name = "orders", description = "Checkout, the caller's orders, their history and cancellation"))
)]
pub struct OrdersApi;

/// The orders' routes and OpenAPI fragment, for the app factory, without payments
/// ([`NoPayments`]): what every test app and a store without payments mount.
pub fn module() -> ecom_core::Module {
    module_with_payments(std::sync::Arc::new(NoPayments))
}

/// The orders' routes with `payments` installed in app data (`web::Data<Arc<dyn
/// PaymentsPort>>`), where every cancelling handler finds it: the orders' cancel endpoint
/// and ecom-admin's status PATCH.
pub fn module_with_payments(payments: std::sync::Arc<dyn PaymentsPort>) -> ecom_core::Module {
    let payments = actix_web::web::Data::new(payments);
    ecom_core::Module::routes(
        "orders",
        move |cfg| {
            cfg.app_data(payments.clone());
            routes::configure(cfg);
        },
        OrdersApi::openapi(),
    )
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

/// How often each replica looks for unpaid orders past due: with ±20 % jitter at most
/// 4.8 s between rounds, so an order is cancelled within 10 s of its `payment_due_at`.
pub const EXPIRY_EVERY: std::time::Duration = std::time::Duration::from_secs(4);

/// The expiry of unpaid orders as a housekeeping chore, run on [`expiry_schedule`];
/// `gate` says whether an order may expire (see [`ExpiryGate`]), `payments` voids its open
/// payments before it is cancelled (see [`PaymentsPort`]).
pub fn expiry_chore(
    gate: std::sync::Arc<dyn ExpiryGate>,
    payments: std::sync::Arc<dyn PaymentsPort>,
) -> ecom_core::housekeeping::Chore {
    ecom_core::housekeeping::Chore::new("order_expiry", move |conn, batch| {
        let (gate, payments) = (gate.clone(), payments.clone());
        Box::pin(async move {
            Ok(service::expire_due_orders(conn, gate.as_ref(), payments.as_ref(), batch).await?)
        })
    })
}

/// Rounds every [`EXPIRY_EVERY`], [`service::EXPIRY_BATCH`] orders per chore call.
pub fn expiry_schedule() -> ecom_core::housekeeping::Schedule {
    ecom_core::housekeeping::Schedule {
        every: EXPIRY_EVERY,
        batch: service::EXPIRY_BATCH,
    }
}
