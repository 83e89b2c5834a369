//! ecom-auth: accounts, credentials, rotating refresh-token families, roles and
//! permissions; the `/auth` and `/users` routes; the principal resolver for core.
//!
//! - [`service::accounts`]: register, profiles, administrators' bootstrap
//! - [`service::sessions`]: login, refresh rotation with reuse detection, logout
//! - [`service::email_tokens`], [`service::mails`]: single-use mailed tokens and their mails
//! - [`service::verification`], [`service::recovery`]: verify an email; forgotten, reset
//!   and changed passwords
//! - [`service::roles`]: ban, role changes, user search, role permission sets (for ecom-admin)
//! - [`service::resolver`]: the [`PrincipalResolver`](ecom_core::principal::PrincipalResolver)
//!
//! Routes are declared once, with their operations (see [`ecom_core::Module`]).
//! Validation lives in the services (`service::accounts`, `service::roles`,
//! `service::password`); `api` types only parse JSON into Rust.

use std::sync::Arc;

use ecom_core::Module;
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

#[derive(OpenApi)]
#[openapi(
    components(schemas(
        api::RegisterRequest,
        api::LoginRequest,
        api::LoginForm,
        api::RefreshRequest,
        api::TokenPair,
        api::UserProfile,
        api::PublicProfile,
        api::UpdateProfileRequest,
        api::VerifyEmailRequest,
        api::ForgotPasswordRequest,
        api::ResetPasswordRequest,
        api::ChangePasswordRequest,
        api::Accepted
    )),
    tags(
        (name = "auth", description = "Registration, login, token refresh and logout"),
        (name = "users", description = "Profiles")
    )
)]
struct AuthApi;

/// The routes of /auth and /users with their OpenAPI fragment (schemas and tags; the
/// operations are collected from the handlers as they are registered).
pub fn module() -> Module {
    Module::routes("auth", routes::configure, AuthApi::openapi())
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
        Chore::new("email_tokens", |conn, batch| {
            Box::pin(async move { Ok(service::email_tokens::purge_expired(conn, batch).await?) })
        }),
    ]
}

/// The principal resolver backed by the identity tables (it reads on the request's
/// connection).
pub fn resolver() -> SharedResolver {
    Arc::new(service::resolver::AccountResolver)
}
