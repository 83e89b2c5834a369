//! ecom-auth: accounts, credentials, rotating refresh-token families, roles and
//! permissions; the `/auth` and `/users` routes; the principal resolver for core.
//!
//! - [`service::accounts`]: register, profiles, administrators' bootstrap
//! - [`service::sessions`]: login, refresh rotation with reuse detection, logout
//! - [`service::roles`]: ban, role changes, user search, role permission sets (for ecom-admin)
//! - [`service::resolver`]: the [`PrincipalResolver`](ecom_core::principal::PrincipalResolver)

use std::sync::Arc;

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
pub use service::throttle::ThrottleLimits;

#[allow(deprecated)] // the legacy aliases are documented as deprecated
#[derive(OpenApi)]
#[openapi(
    paths(
        routes::register,
        routes::login,
        routes::refresh,
        routes::revoke,
        routes::legacy_refresh,
        routes::legacy_logout,
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
    // POST /auth/token is the original service's name of the login (the OAuth2 form).
    if let Some(mut login) = doc.paths.paths.get("/auth/login").cloned()
        && let Some(post) = login.post.as_mut()
    {
        post.operation_id = Some("loginLegacy".into());
        post.deprecated = Some(utoipa::openapi::Deprecated::True);
        post.description = Some("The original service's path: use `POST /auth/login`.".into());
        doc.paths.paths.insert("/auth/token".into(), login);
    }
    doc
}

/// The routes of /auth and /users with their OpenAPI fragment.
pub fn module() -> Module {
    Module::new("auth", routes::configure, openapi())
}

/// The clean-ups of the identity tables, for the server's periodic housekeeping.
pub fn chores() -> Vec<ecom_core::housekeeping::Chore> {
    use ecom_core::housekeeping::Chore;
    vec![
        Chore::new("login_throttle", |conn, batch| {
            Box::pin(async move { Ok(service::throttle::purge_expired(conn, batch).await?) })
        }),
        Chore::new("refresh_tokens", |conn, batch| {
            Box::pin(async move { Ok(service::sessions::purge_expired(conn, batch).await?) })
        }),
    ]
}

/// The principal resolver backed by the identity tables.
pub fn resolver(pool: PgPool) -> SharedResolver {
    Arc::new(service::resolver::AccountResolver::new(pool))
}
