//! The carts' failures and their problem+json codes.

use ecom_catalog::CatalogError;
use ecom_core::db::{PoolError, TransactionConflict};
use ecom_core::{AppError, FieldError};
use ecom_orders::OrdersError;

use crate::model::CartProblem;

/// Everything that can go wrong in a carts use case.
#[derive(Debug, thiserror::Error)]
pub enum CartsError {
    /// 422 `validation_failed`, listing each bad field.
    #[error("invalid input: {0:?}")]
    Invalid(Vec<FieldError>),
    /// 404 `not_found`: missing, expired, merged, or not the caller's.
    #[error("cart {0} does not exist")]
    CartNotFound(i64),
    /// 404 `not_found`: the merge's `cart_token` names no active guest cart.
    #[error("no active guest cart has this token")]
    GuestCartNotFound,
    /// 409 `cart_converted`: the cart was checked out; it takes no more writes.
    #[error("cart {0} was checked out")]
    Converted(i64),
    /// 422 `unknown_variant`: not in the catalog (missing or deleted).
    #[error("variant {0} is not in the catalog")]
    UnknownVariant(i64),
    /// 422 `cart_full`: a cart holds at most [`crate::service::MAX_LINES`] lines.
    #[error("the cart has no room for another line")]
    Full,
    /// 422 `cart_empty`: nothing to check out.
    #[error("cart {0} has no lines")]
    Empty(i64),
    /// 409 `cart_has_problems`: the body lists them as `problems`.
    #[error("the cart has problems: {0:?}")]
    HasProblems(Vec<CartProblem>),
    /// 503 `service_unavailable`: concurrent checkouts kept taking the user's cart away
    /// while a new one was being made; retrying succeeds.
    #[error("the user's cart kept changing under concurrent requests")]
    Contended,
    /// 400 `idempotency_key_required`: checkout needs an `Idempotency-Key`.
    #[error("checkout needs an Idempotency-Key")]
    IdempotencyKeyRequired,
    #[error(transparent)]
    Orders(#[from] OrdersError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
    #[error(transparent)]
    Pool(#[from] PoolError),
}

impl CartsError {
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError::new(field, message)])
    }
}

/// Lets a cart transaction run again after a deadlock or a serialization failure,
/// whichever domain's statement met it.
impl TransactionConflict for CartsError {
    fn is_transaction_conflict(&self) -> bool {
        match self {
            CartsError::Database(e) => e.is_transaction_conflict(),
            CartsError::Orders(e) => e.is_transaction_conflict(),
            CartsError::Catalog(e) => e.is_transaction_conflict(),
            _ => false,
        }
    }
}

impl From<CartsError> for AppError {
    fn from(err: CartsError) -> Self {
        match err {
            CartsError::Invalid(errors) => AppError::validation(errors),
            CartsError::CartNotFound(id) => {
                AppError::not_found(format!("cart {id} does not exist"))
            }
            CartsError::GuestCartNotFound => {
                AppError::not_found("no active guest cart has this cart_token")
            }
            CartsError::Converted(id) => AppError::conflict(
                "cart_converted",
                format!("cart {id} was checked out and takes no more changes"),
            ),
            CartsError::UnknownVariant(id) => AppError::unprocessable(
                "unknown_variant",
                format!("variant {id} is not in the catalog"),
            ),
            CartsError::Full => AppError::unprocessable(
                "cart_full",
                format!("a cart holds at most {} lines", crate::service::MAX_LINES),
            ),
            CartsError::Empty(id) => {
                AppError::unprocessable("cart_empty", format!("cart {id} has no lines"))
            }
            CartsError::HasProblems(problems) => AppError::conflict(
                "cart_has_problems",
                "the cart has problems to settle before checkout; see `problems`",
            )
            .with_extension("problems", problems),
            CartsError::IdempotencyKeyRequired => AppError::bad_request(
                "idempotency_key_required",
                "checkout needs an Idempotency-Key header",
            ),
            CartsError::Contended => {
                AppError::unavailable("a user cart kept changing under concurrent checkouts")
            }
            CartsError::Orders(e) => AppError::from(e),
            CartsError::Catalog(e) => AppError::from(e),
            CartsError::Database(e) => AppError::from(e),
            CartsError::Pool(e) => AppError::from(e),
        }
    }
}
