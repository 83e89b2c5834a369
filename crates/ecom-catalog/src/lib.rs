//! ecom-catalog: categories, products, reviews, full-text search and stock;
//! `/categories` and `/products`.
//!
//! - [`module`]: the routes and OpenAPI fragment that `bins/api` mounts
//! - [`service`]: the use cases, including the stock interface ecom-orders calls inside
//!   its own transaction ([`reserve_stock`], [`return_stock`])
//! - [`seed`]: a realistic demo catalog in bulk ([`seed_demo`])
//!
//! Routes are declared once, with their operations (see [`ecom_core::Module`]).
//! Validation lives in `api`: each request type's `validate()` turns the body into the
//! model's checked input (`NewProduct`, `ProductChanges`, …), so services only see valid
//! values.

pub mod api;
pub mod error;
pub mod model;
pub mod routes;
pub mod schema;
pub mod seed;
pub mod service;

use utoipa::OpenApi;

pub use error::CatalogError;
pub use model::{
    ItemRef, ReservedLine, SeedSummary, Shortage, StockLine, StockShortfall, VariantOnSale,
    VariantOptions,
};
pub use seed::seed_demo;
pub use service::{reserve_stock, return_stock, variants_on_sale};

/// The catalog's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    components(schemas(
        api::ProductOut,
        api::VariantOut,
        api::ProductOptionOut,
        api::CreateVariantRequest,
        api::UpdateVariantRequest,
        api::ProductPage,
        api::CategoryBrief,
        api::CategoryOut,
        api::CategoryPage,
        api::ReviewOut,
        api::ReviewPage,
        api::CreateCategoryRequest,
        api::CreateProductRequest,
        api::UpdateProductRequest,
        api::CreateReviewRequest,
        api::ProductSortParam,
    )),
    tags((name = "catalog", description = "Categories, products, search and reviews"))
)]
pub struct CatalogApi;

/// The catalog's routes and OpenAPI fragment, for the app factory; each app (each call)
/// has its own [`service::SearchCache`] and [`service::CategoryNames`], shared by its
/// workers.
pub fn module() -> ecom_core::Module {
    let searches = actix_web::web::Data::new(service::SearchCache::default());
    let category_names = actix_web::web::Data::new(service::CategoryNames::default());
    ecom_core::Module::routes(
        "catalog",
        move |cfg| {
            cfg.app_data(searches.clone());
            cfg.app_data(category_names.clone());
            routes::configure(cfg);
        },
        CatalogApi::openapi(),
    )
}
