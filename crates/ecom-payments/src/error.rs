//! The payments' failures and their problem+json codes.

use ecom_core::db::{PoolError, TransactionConflict};
use ecom_core::{AppError, FieldError};
use ecom_orders::OrdersError;

use crate::model::PaymentStatus;
use crate::service::signature::SignatureError;
use crate::service::{ProviderError, ProviderState};

/// Everything that can go wrong in a payments use case.
#[derive(Debug, thiserror::Error)]
pub enum PaymentsError {
    /// 422 `validation_failed`, listing each bad field.
    #[error("invalid input: {0:?}")]
    Invalid(Vec<FieldError>),
    /// 404 `not_found`: missing, or another user's payment.
    #[error("payment {0} does not exist")]
    PaymentNotFound(i64),
    /// 422 `unsupported_provider`: unknown, or not configured on this store.
    #[error("payment provider `{0}` is not offered")]
    UnsupportedProvider(String),
    /// 409 `order_not_payable`: not `pending`, or past its payment window.
    #[error("order {0} cannot be paid now")]
    NotPayable(i64),
    /// 409 `payment_in_progress`: the order has an authorized payment.
    #[error("order {0} has an authorized payment")]
    PaymentInProgress(i64),
    /// 409 `invalid_payment_state`: the payment's status does not allow the operation.
    #[error("payment {payment_id} is {status}")]
    InvalidState {
        payment_id: i64,
        status: PaymentStatus,
    },
    /// An open payment an operation meant to void turned out captured or authorized at the
    /// provider (its event still on the way). The operation rolls back on it, then records
    /// what the provider said as the webhook would and answers 409; rendered as that 409
    /// should it ever get further.
    #[error("payment {payment_id} of order {order_id} is already {} at the provider", state.status)]
    TakenAtProvider {
        order_id: i64,
        payment_id: i64,
        state: Box<ProviderState>,
    },
    /// 422 `refund_exceeds_captured`: the refunds would total more than was captured.
    #[error("payment {0}: refunds would exceed the captured amount")]
    RefundExceedsCaptured(i64),
    /// 422 `amount_mismatch`: a manual payment must be the order's exact total.
    #[error("the amount is not the order's total")]
    AmountMismatch,
    /// 422 `idempotency_key_reused`: the key was used with a different request.
    #[error("the Idempotency-Key was already used with a different request")]
    IdempotencyKeyReused,
    /// A stored idempotent answer that no longer reads as a payment (a bug; 500).
    #[error("stored idempotent response is unreadable: {0}")]
    StoredResponse(String),
    /// 400 `invalid_signature`: the webhook is not signed by Stripe with our secret.
    #[error("webhook signature: {0}")]
    InvalidSignature(#[from] SignatureError),
    /// 502 `payment_provider_error`: the provider failed; nothing changed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Orders(#[from] OrdersError),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
    #[error(transparent)]
    Pool(#[from] PoolError),
}

impl PaymentsError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError::new(field, message)])
    }
}

/// Lets a payment transaction run again after a deadlock or a serialization failure.
impl TransactionConflict for PaymentsError {
    fn is_transaction_conflict(&self) -> bool {
        match self {
            PaymentsError::Database(e) => e.is_transaction_conflict(),
            PaymentsError::Orders(e) => e.is_transaction_conflict(),
            _ => false,
        }
    }
}

/// What every client sees of a provider failure: no provider detail, no body.
pub const PROVIDER_FAILED: &str = "the payment provider failed; nothing changed";

impl From<PaymentsError> for AppError {
    fn from(err: PaymentsError) -> Self {
        match err {
            PaymentsError::Invalid(errors) => AppError::validation(errors),
            PaymentsError::PaymentNotFound(id) => {
                AppError::not_found(format!("payment {id} does not exist"))
            }
            PaymentsError::UnsupportedProvider(name) => AppError::unprocessable(
                "unsupported_provider",
                format!("payment provider `{name}` is not offered by this store"),
            ),
            PaymentsError::NotPayable(order_id) => AppError::conflict(
                "order_not_payable",
                format!("order {order_id} is not pending or its payment window has closed"),
            ),
            PaymentsError::PaymentInProgress(order_id) => AppError::conflict(
                "payment_in_progress",
                format!("order {order_id} has an authorized payment awaiting capture"),
            ),
            PaymentsError::TakenAtProvider {
                order_id, state, ..
            } if state.status == PaymentStatus::Authorized => {
                AppError::from(PaymentsError::PaymentInProgress(order_id))
            }
            PaymentsError::TakenAtProvider { order_id, .. } => {
                AppError::from(PaymentsError::NotPayable(order_id))
            }
            PaymentsError::InvalidState { payment_id, status } => AppError::conflict(
                "invalid_payment_state",
                format!("payment {payment_id} is {status}"),
            ),
            PaymentsError::RefundExceedsCaptured(id) => AppError::unprocessable(
                "refund_exceeds_captured",
                format!("refunds of payment {id} would exceed the captured amount"),
            ),
            PaymentsError::AmountMismatch => AppError::unprocessable(
                "amount_mismatch",
                "a manual payment must be the order's exact total",
            ),
            PaymentsError::IdempotencyKeyReused => AppError::unprocessable(
                "idempotency_key_reused",
                "this Idempotency-Key was already used with a different request",
            ),
            PaymentsError::StoredResponse(e) => AppError::internal(e),
            PaymentsError::InvalidSignature(_) => AppError::bad_request(
                "invalid_signature",
                "the Stripe-Signature header is missing, malformed, stale or does not match",
            ),
            PaymentsError::Provider(e) => {
                tracing::error!(error = %e, "payment provider call failed");
                AppError::new(
                    actix_web::http::StatusCode::BAD_GATEWAY,
                    "payment_provider_error",
                    PROVIDER_FAILED,
                )
            }
            PaymentsError::Orders(e) => AppError::from(e),
            PaymentsError::Database(e) => AppError::from(e),
            PaymentsError::Pool(e) => AppError::from(e),
        }
    }
}
