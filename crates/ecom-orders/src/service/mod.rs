//! The orders' use cases. Functions take a connection; those that write run in a
//! transaction (a savepoint when the caller already opened one), so ecom-admin can wrap
//! them in its own transaction.
//!
//! - [`checkout`]: `POST /orders`, stock reservation and `Idempotency-Key`
//! - [`queries`]: reading orders (a user's, one, every order for the admin)
//! - [`lifecycle`]: status changes with their history, cancellation returning stock
//! - [`expiry`]: cancelling pending orders past their `payment_due_at`
//! - [`settlement`]: what payments does to orders (lock, paid exactly once, refunded, a
//!   longer window) and [`PaymentsPort`], what orders ask of payments before a cancel
//! - `events`: the order events recorded in the outbox with each change
//! - [`reports`]: the figures of the admin's sales report, over daily rollups (`rollup`)

pub mod checkout;
mod events;
pub mod expiry;
pub mod lifecycle;
pub mod queries;
pub mod reports;
mod rollup;
pub mod settlement;

pub use checkout::{
    IDEMPOTENCY_TTL_HOURS, MAX_LINES, MAX_QUANTITY, place_order, purge_expired_idempotency,
};
pub use expiry::{EXPIRY_BATCH, EveryOrderExpires, ExpiryGate, PAYMENT_TIMEOUT, expire_due_orders};
pub use lifecycle::{
    ADMIN_TARGETS, cancel_order, change_status, change_status_audited, order_history,
    status_history,
};
pub use queries::{get_order, get_order_for, list_orders, list_user_orders};
pub use reports::{
    MAX_REPORT_DAYS, MAX_TOP_PRODUCTS, build_rollups, daily_sales, orders_by_status,
    read_sales_report, sales_report, sales_totals, top_products,
};
pub use settlement::{
    MANUAL_PAYMENT, NoPayments, PAYMENT_CAPTURED, PaidBy, PaidOutcome, PaymentsPort, REFUNDED,
    extend_payment_window, lock_order, mark_paid, mark_refunded,
};

pub(crate) type Result<T> = std::result::Result<T, crate::error::OrdersError>;
