//! The catalog's use cases. Each function takes a connection; the ones that write more
//! than one row run in a transaction (a savepoint when the caller already opened one).
//!
//! - [`search`]: listing and full-text search, one product by id; [`search_cache`]: a
//!   search's text matches reused for a few seconds
//! - [`products`]: product writes, and their audited forms that the routes call
//! - [`categories`] (and the names listings show), [`reviews`]
//! - [`variants`]: add, change and remove a product's variants, and their audited forms
//! - [`stock`]: reserve and return variants' stock inside ecom-orders' transaction, and
//!   variants as carts show them

pub mod categories;
pub mod products;
pub mod reviews;
pub mod search;
pub mod search_cache;
pub mod stock;
pub mod variants;

pub use categories::{CategoryNames, create_category, list_categories};
pub use products::{
    create_product, create_product_audited, delete_product, delete_product_audited, update_product,
    update_product_audited,
};
pub use reviews::{create_review, list_reviews};
pub use search::{
    MatchSource, get_product, list_products, list_products_after, list_products_reusing,
};
pub use search_cache::SearchCache;
pub use stock::{reserve_stock, return_stock, variants_on_sale};
pub use variants::{
    create_variant, create_variant_audited, delete_variant, delete_variant_audited, update_variant,
    update_variant_audited,
};

type Result<T> = std::result::Result<T, crate::error::CatalogError>;
