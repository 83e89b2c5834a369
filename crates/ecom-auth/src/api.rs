//! Request and response bodies of /auth and /users.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, IntoResponses, ToSchema};

use crate::model::User;

/// `POST /auth/register`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "ada@example.com", "password": "correct horse battery", "full_name": "Ada Lovelace"}))]
pub struct RegisterRequest {
    /// Trimmed and lower-cased before use.
    #[schema(format = "email", max_length = 254)]
    pub email: String,
    /// 8 to 128 characters, not a common password.
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
    #[schema(max_length = 100)]
    pub full_name: Option<String>,
}

/// `POST /auth/login` as JSON.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// `POST /auth/login` as an OAuth2 password-grant form (Swagger's Authorize button).
#[derive(Deserialize, ToSchema)]
pub struct LoginForm {
    /// The email.
    pub username: String,
    pub password: String,
    /// `password` when sent.
    pub grant_type: Option<String>,
    pub scope: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

/// `POST /auth/refresh` and `POST /auth/revoke`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// `?refresh_token=` of the original service's `POST /auth/token/refresh` and
/// `POST /auth/logout` (its clients send it in the query; a JSON body is accepted too).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LegacyRefreshQuery {
    /// The refresh token; when absent, the JSON body `{refresh_token}` is read.
    pub refresh_token: Option<String>,
}

/// A new access token and refresh token.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMiJ9.c2lnbmF0dXJl",
    "refresh_token": "q8Jm2c0lQk6vX2m9m5tq1o1m3M8aZ2lV0p3s6y9B4cE",
    "token_type": "bearer", "expires_in": 1800
}))]
pub struct TokenPair {
    /// JWT (HS256) to send as `Authorization: Bearer …`.
    pub access_token: String,
    /// Opaque; exchange it at `/auth/refresh`. Each use returns a new one.
    pub refresh_token: String,
    #[schema(example = "bearer")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    #[schema(example = 1800)]
    pub expires_in: i64,
}

/// The caller's own account.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "id": 12, "email": "ada@example.com", "role": "user", "is_active": true,
    "email_verified": false, "full_name": "Ada Lovelace", "bio": null, "created_at": "2026-11-25T18:00:00Z"
}))]
pub struct UserProfile {
    pub id: i64,
    pub email: String,
    #[schema(example = "user")]
    pub role: String,
    pub is_active: bool,
    /// Whether the owner followed a verification (or password reset) link.
    pub email_verified: bool,
    pub full_name: Option<String>,
    pub bio: Option<String>,
    pub created_at: DateTime<Utc>,
}

ecom_core::from_fields!(User => UserProfile {
    id, email, role, is_active, email_verified, full_name, bio, created_at
});

/// What anyone may see of a user: never the email.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicProfile {
    pub id: i64,
    pub full_name: Option<String>,
    pub bio: Option<String>,
    pub created_at: DateTime<Utc>,
}

ecom_core::from_fields!(User => PublicProfile { id, full_name, bio, created_at });

/// `PUT`/`PATCH /users/me`: absent fields stay, `null` clears.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProfileRequest {
    #[serde(default, deserialize_with = "ecom_core::http::present")]
    #[schema(value_type = Option<String>, max_length = 100)]
    pub full_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "ecom_core::http::present")]
    #[schema(value_type = Option<String>, max_length = 1000)]
    pub bio: Option<Option<String>>,
}

// Debug output of these types reaches logs: never a password, a token or an email.
ecom_core::debug_showing!(RegisterRequest {});

ecom_core::debug_showing!(TokenPair {
    token_type,
    expires_in
});

ecom_core::debug_showing!(UserProfile {
    id,
    role,
    is_active
});

/// The errors of a login (`POST /auth/login` and its alias), declared once; core gives
/// each its `Problem` body.
#[derive(IntoResponses)]
pub enum LoginErrors {
    /// `invalid_credentials`
    #[response(status = 401)]
    InvalidCredentials,
    /// `account_banned`
    #[response(status = 403)]
    Banned,
    /// `rate_limited`: too many login attempts for this email or from this client address within `LOGIN_THROTTLE_WINDOW_SECONDS`; see `Retry-After`. Attempts are counted before the password is checked, so concurrent guesses cannot pass the limit
    #[response(status = 429)]
    RateLimited,
}

/// The errors of a refresh (`POST /auth/refresh` and its alias), declared once.
#[derive(IntoResponses)]
pub enum RefreshErrors {
    /// `invalid_refresh_token`, or `refresh_token_reused` (the login is revoked)
    #[response(status = 401)]
    InvalidRefreshToken,
    /// `account_banned`
    #[response(status = 403)]
    Banned,
}

/// `POST /auth/verify-email`: the token of a verification link.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyEmailRequest {
    /// The `token` query parameter of the link in the mail.
    pub token: String,
}

/// `POST /auth/password/forgot`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "ada@example.com"}))]
pub struct ForgotPasswordRequest {
    #[schema(format = "email", max_length = 254)]
    pub email: String,
}

/// `POST /auth/password/reset`: the token of a reset link and the new password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    /// The `token` query parameter of the link in the mail.
    pub token: String,
    /// As at register: 8 to 128 characters, not a common password.
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
}

/// `POST /users/me/password`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    /// As at register: 8 to 128 characters, not a common password.
    #[schema(min_length = 8, max_length = 128)]
    pub new_password: String,
}

/// The answer of a request whose work continues after it (a mail to send).
#[derive(Serialize, ToSchema)]
pub struct Accepted {
    #[schema(example = "accepted")]
    pub status: &'static str,
    /// What happens next; the same text whatever the outcome.
    pub detail: &'static str,
}

ecom_core::debug_showing!(VerifyEmailRequest {});
ecom_core::debug_showing!(ForgotPasswordRequest {});
ecom_core::debug_showing!(ResetPasswordRequest {});
ecom_core::debug_showing!(ChangePasswordRequest {});
