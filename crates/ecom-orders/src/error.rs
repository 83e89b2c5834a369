//! The orders' failures and their problem+json codes.

use ecom_catalog::{CatalogError, Shortage};
use ecom_core::db::{PoolError, TransactionConflict};
use ecom_core::{AppError, FieldError};

use crate::model::OrderStatus;

/// Everything that can go wrong in an orders use case.
#[derive(Debug, thiserror::Error)]
pub enum OrdersError {
    /// 422 `validation_failed`, listing each bad field.
    #[error("invalid input: {0:?}")]
    Invalid(Vec<FieldError>),
    /// 422 `unknown_product`: not in the catalog (missing or deleted).
    #[error("unknown products: {0:?}")]
    UnknownProducts(Vec<i64>),
    /// 422 `unknown_variant`: missing or deleted, or its product is.
    #[error("unknown variants: {0:?}")]
    UnknownVariants(Vec<i64>),
    /// 409 `insufficient_stock`, naming each short variant and what is available.
    #[error("insufficient stock: {0:?}")]
    InsufficientStock(Vec<Shortage>),
    /// 404 `not_found`: missing, or another user's order.
    #[error("order {0} does not exist")]
    OrderNotFound(i64),
    /// 409 `invalid_status_transition`: the lifecycle does not allow it (for this caller).
    #[error("order {order_id} cannot go from {from} to {to}")]
    InvalidTransition {
        order_id: i64,
        from: OrderStatus,
        to: OrderStatus,
    },
    /// 409 `order_not_payable`: the order is not `pending`, or its payment window has closed.
    #[error("order {0} cannot be paid")]
    NotPayable(i64),
    /// 502 `payment_provider_error`: the payment provider failed while payments undid an
    /// order's payments before a cancellation; the transaction is rolled back. The message
    /// is for the log only (the payments crate keeps secrets out of it), never sent.
    #[error("payment provider failed: {0}")]
    PaymentProvider(String),
    /// 422 `idempotency_key_reused`: the key was used with a different request.
    #[error("the Idempotency-Key was already used with a different request")]
    IdempotencyKeyReused,
    #[error(transparent)]
    Catalog(CatalogError),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
    #[error(transparent)]
    Pool(#[from] PoolError),
    #[error("stored idempotent response is unreadable: {0}")]
    StoredResponse(#[from] serde_json::Error),
}

impl OrdersError {
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError::new(field, message)])
    }
}

impl From<CatalogError> for OrdersError {
    fn from(err: CatalogError) -> Self {
        match err {
            CatalogError::StockRejected(s) if !s.unknown_products.is_empty() => {
                OrdersError::UnknownProducts(s.unknown_products)
            }
            CatalogError::StockRejected(s) if !s.unknown_variants.is_empty() => {
                OrdersError::UnknownVariants(s.unknown_variants)
            }
            CatalogError::StockRejected(s) => OrdersError::InsufficientStock(s.insufficient),
            CatalogError::Invalid(fields) => OrdersError::Invalid(fields),
            CatalogError::Database(e) => OrdersError::Database(e),
            CatalogError::Pool(e) => OrdersError::Pool(e),
            other => OrdersError::Catalog(other),
        }
    }
}

/// Lets [`ecom_core::db::retry_conflicts`] run a checkout or a cancellation again.
impl TransactionConflict for OrdersError {
    fn is_transaction_conflict(&self) -> bool {
        matches!(self, OrdersError::Database(e) if e.is_transaction_conflict())
    }
}

fn join_ids(ids: &[i64]) -> String {
    ids.iter()
        .map(|id| id.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

impl From<OrdersError> for AppError {
    fn from(err: OrdersError) -> Self {
        match err {
            OrdersError::Invalid(errors) => AppError::validation(errors),
            OrdersError::UnknownProducts(ids) => AppError::unprocessable(
                "unknown_product",
                format!("these products are not in the catalog: {}", join_ids(&ids)),
            ),
            OrdersError::UnknownVariants(ids) => AppError::unprocessable(
                "unknown_variant",
                format!("these variants are not in the catalog: {}", join_ids(&ids)),
            ),
            OrdersError::InsufficientStock(shortages) => {
                let lines: Vec<String> = shortages
                    .iter()
                    .map(|s| {
                        format!(
                            "product {}: {} requested, {} available (variant {})",
                            s.product_id, s.requested, s.available, s.variant_id
                        )
                    })
                    .collect();
                AppError::conflict(
                    "insufficient_stock",
                    format!("not enough stock: {}", lines.join("; ")),
                )
            }
            OrdersError::OrderNotFound(id) => {
                AppError::not_found(format!("order {id} does not exist"))
            }
            OrdersError::InvalidTransition { order_id, from, to } => AppError::conflict(
                "invalid_status_transition",
                format!("order {order_id} is {from} and cannot become {to}"),
            ),
            OrdersError::NotPayable(id) => AppError::conflict(
                "order_not_payable",
                format!(
                    "order {id} cannot be paid: it is not pending, or its payment window has closed"
                ),
            ),
            OrdersError::PaymentProvider(message) => AppError::bad_gateway(
                "payment_provider_error",
                "the payment provider failed; nothing was changed",
                message,
            ),
            OrdersError::IdempotencyKeyReused => AppError::unprocessable(
                "idempotency_key_reused",
                "this Idempotency-Key was already used with a different request body",
            ),
            OrdersError::Catalog(e) => AppError::from(e),
            OrdersError::Database(e) => AppError::from(e),
            OrdersError::Pool(e) => AppError::from(e),
            OrdersError::StoredResponse(e) => AppError::internal(e),
        }
    }
}
