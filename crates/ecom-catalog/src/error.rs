//! The catalog's failures and their problem+json codes.

use ecom_core::db::PoolError;
use ecom_core::{AppError, FieldError};

use crate::model::StockShortfall;

/// Everything that can go wrong in a catalog use case.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// 422 `validation_failed`, listing each bad field.
    #[error("invalid input: {0:?}")]
    Invalid(Vec<FieldError>),
    /// 404 `not_found`: missing or soft-deleted.
    #[error("product {0} does not exist")]
    ProductNotFound(i64),
    /// 422 `unknown_category`: a product names a category that does not exist.
    #[error("category {0} does not exist")]
    UnknownCategory(i64),
    /// 409 `category_exists`.
    #[error("a category named `{0}` already exists")]
    CategoryExists(String),
    /// 409 `already_reviewed`: one review per user and product.
    #[error("user {user_id} has already reviewed product {product_id}")]
    AlreadyReviewed { product_id: i64, user_id: i64 },
    /// 422 `unknown_product` when a product is unknown, else 409 `insufficient_stock`.
    #[error("stock reservation refused: {0}")]
    StockRejected(StockShortfall),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
    #[error(transparent)]
    Pool(#[from] PoolError),
}

impl CatalogError {
    pub(crate) fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError::new(field, message)])
    }
}

impl From<CatalogError> for AppError {
    fn from(err: CatalogError) -> Self {
        match err {
            CatalogError::Invalid(errors) => AppError::validation(errors),
            CatalogError::ProductNotFound(id) => {
                AppError::not_found(format!("product {id} does not exist"))
            }
            CatalogError::UnknownCategory(id) => {
                AppError::unprocessable("unknown_category", format!("category {id} does not exist"))
            }
            CatalogError::CategoryExists(name) => AppError::conflict(
                "category_exists",
                format!("a category named `{name}` already exists"),
            ),
            CatalogError::AlreadyReviewed { product_id, .. } => AppError::conflict(
                "already_reviewed",
                format!("you have already reviewed product {product_id}"),
            ),
            CatalogError::StockRejected(shortfall) if !shortfall.unknown_products.is_empty() => {
                AppError::unprocessable("unknown_product", shortfall.to_string())
            }
            CatalogError::StockRejected(shortfall) if !shortfall.unknown_variants.is_empty() => {
                AppError::unprocessable("unknown_variant", shortfall.to_string())
            }
            CatalogError::StockRejected(shortfall) => {
                AppError::conflict("insufficient_stock", shortfall.to_string())
            }
            CatalogError::Database(e) => AppError::from(e),
            CatalogError::Pool(e) => AppError::from(e),
        }
    }
}
