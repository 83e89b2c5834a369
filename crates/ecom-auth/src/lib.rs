//! ecom-auth: accounts, credentials, rotating refresh-token families, roles and
//! permissions; the `/auth` and `/users` routes; the principal resolver for core.
//!
//! - [`service::accounts`]: register, profiles, administrators' bootstrap
//! - [`service::sessions`]: login, refresh rotation with reuse detection, logout
//! - [`service::roles`]: ban, role changes, user search, role permission sets (for ecom-admin)
//! - [`service::resolver`]: the [`PrincipalResolver`](ecom_core::principal::PrincipalResolver)

use std::sync::Arc;

use actix_web::web;
use ecom_core::Module;
use ecom_core::db::PgPool;
use ecom_core::principal::SharedResolver;
use utoipa::OpenApi;

pub mod api;
pub mod error;
pub mod model;
pub mod routes;
pub mod schema;
pub mod service;

pub use error::AuthError;
pub use service::throttle::{LoginThrottle, MemoryThrottle, ThrottleLimits};

#[derive(OpenApi)]
#[openapi(
    paths(
        routes::register,
        routes::login,
        routes::refresh,
        routes::revoke,
        routes::get_me,
        routes::update_me,
        routes::get_user
    ),
    components(schemas(
        api::RegisterRequest,
        api::LoginRequest,
        api::LoginForm,
        api::RefreshRequest,
        api::TokenPair,
        api::UserProfile,
        api::PublicProfile,
        api::UpdateProfileRequest
    )),
    tags(
        (name = "auth", description = "Registration, login, token refresh and logout"),
        (name = "users", description = "Profiles")
    )
)]
struct AuthApi;

/// The OpenAPI fragment of /auth and /users.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = AuthApi::openapi();
    // PATCH /users/me is the same operation as PUT.
    if let Some(item) = doc.paths.paths.get_mut("/users/me")
        && let Some(put) = item.put.clone()
    {
        let mut patch = put;
        patch.operation_id = Some("patchCurrentUser".into());
        item.patch = Some(patch);
    }
    doc
}

/// The module with the default in-memory login throttle.
pub fn module() -> Module {
    module_with_throttle(Arc::new(MemoryThrottle::new(ThrottleLimits::default())))
}

/// The module with a given login throttle (a shared store when several replicas run).
pub fn module_with_throttle(throttle: Arc<dyn LoginThrottle>) -> Module {
    let throttle: web::Data<dyn LoginThrottle> = web::Data::from(throttle);
    Module::new(
        "auth",
        move |cfg| {
            cfg.app_data(throttle.clone());
            routes::configure(cfg);
        },
        openapi(),
    )
}

/// The principal resolver backed by the identity tables.
pub fn resolver(pool: PgPool) -> SharedResolver {
    Arc::new(service::resolver::AccountResolver::new(pool))
}
