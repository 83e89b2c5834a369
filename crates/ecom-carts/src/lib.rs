//! ecom-carts: carts for guests and signed-in shoppers, priced from the catalog at every
//! read, merged on sign-in and checked out into an order; `/carts`.
//!
//! - [`module`]: the routes and OpenAPI fragment that `bins/api` mounts
//! - [`chores`]: the clean-up of expired carts, run by every replica's housekeeping
//! - [`service`]: the use cases
//!
//! Carts keep only what the shopper chose (variant, quantity, the price they saw) and read
//! everything else from ecom-catalog on each read; a checkout places its order through
//! ecom-orders on the cart's own transaction, so the order and the cart's conversion
//! commit or roll back together. A guest cart is held by a random token of which only
//! the SHA-256 is stored.

pub mod api;
pub mod error;
pub mod model;
pub mod routes;
pub mod schema;
pub mod service;

use utoipa::OpenApi;

pub use error::CartsError;
pub use model::{Cart, CartItem, CartProblem, CartStatus, Holder, NewGuestCart, ProblemCode};
pub use service::{
    UserCart, checkout_cart, create_guest_cart, get_cart, merge_guest_cart, purge_expired_carts,
    set_quantity, user_cart,
};

/// The carts' part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    components(schemas(
        api::NewCartOut,
        api::CartHasProblems,
        api::SetQuantityRequest,
        api::MergeRequest,
        model::Cart,
        model::CartItem,
        model::CartProblem,
        model::CartStatus,
        model::ProblemCode,
    )),
    tags((name = "carts", description = "Guest and user carts, priced live; merge on sign-in; checkout into an order"))
)]
pub struct CartsApi;

/// The carts' routes and OpenAPI fragment, for the app factory.
pub fn module() -> ecom_core::Module {
    ecom_core::Module::routes("carts", routes::configure, CartsApi::openapi())
}

/// The carts' periodic clean-up: expired carts, a batch at a time.
pub fn chores() -> Vec<ecom_core::housekeeping::Chore> {
    vec![ecom_core::housekeeping::Chore::new(
        "expired_carts",
        |conn, batch| Box::pin(async move { Ok(service::purge_expired_carts(conn, batch).await?) }),
    )]
}
