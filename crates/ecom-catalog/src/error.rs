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
    /// 404 `not_found`: no live variant with this id under this live product.
    #[error("product {product_id} has no variant {variant_id}")]
    VariantNotFound { product_id: i64, variant_id: i64 },
    /// 409 `sku_taken`: another live variant has this SKU.
    #[error("the SKU `{0}` is taken")]
    SkuTaken(String),
    /// 409 `duplicate_variant`: another live variant of the product has the same options.
    #[error("product {0} already has a variant with these options")]
    DuplicateVariant(i64),
    /// 422 `option_mismatch`: the variants of a product must share their option names.
    #[error("the product's variants have the options {expected:?}")]
    OptionMismatch { expected: Vec<String> },
    /// 409 `last_variant`: a product keeps at least one variant.
    #[error("variant {0} is the product's last variant")]
    LastVariant(i64),
    /// 422 `too_many_variants`: at most [`crate::model::MAX_VARIANTS`] live per product.
    #[error("product {0} already has the most variants allowed")]
    TooManyVariants(i64),
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
            CatalogError::VariantNotFound {
                product_id,
                variant_id,
            } => AppError::not_found(format!("product {product_id} has no variant {variant_id}")),
            CatalogError::SkuTaken(sku) => {
                AppError::conflict("sku_taken", format!("the SKU `{sku}` is taken"))
            }
            CatalogError::DuplicateVariant(id) => AppError::conflict(
                "duplicate_variant",
                format!("product {id} already has a variant with these options"),
            ),
            CatalogError::OptionMismatch { expected } => AppError::unprocessable(
                "option_mismatch",
                format!(
                    "every variant of this product has exactly the options [{}]",
                    expected.join(", ")
                ),
            ),
            CatalogError::LastVariant(id) => AppError::conflict(
                "last_variant",
                format!("variant {id} is the product's last variant; delete the product instead"),
            ),
            CatalogError::TooManyVariants(id) => AppError::unprocessable(
                "too_many_variants",
                format!(
                    "product {id} already has {} variants",
                    crate::model::MAX_VARIANTS
                ),
            ),
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
