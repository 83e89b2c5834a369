//! Identity failures and their stable codes.

use ecom_core::{AppError, FieldError};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("email or password is wrong")]
    InvalidCredentials,
    #[error("this account is banned")]
    AccountBanned,
    #[error("the refresh token is invalid, expired or revoked")]
    InvalidRefreshToken,
    #[error("the refresh token was already used; every token of its login has been revoked")]
    RefreshTokenReused,
    #[error("too many failed logins")]
    Throttled { retry_after_secs: u64 },
    #[error("user {0} does not exist")]
    UserNotFound(i64),
    #[error("role `{0}` does not exist")]
    UnknownRole(String),
    #[error("unknown permission `{0}`")]
    UnknownPermission(String),
    #[error(
        "administrators cannot change their own role, edit the role they hold, or ban themselves"
    )]
    CannotModifySelf,
    #[error("{}", permission_not_held(.0))]
    PermissionNotHeld(Vec<ecom_core::Permission>),
    #[error("the token is unknown, used, replaced by a newer one or expired")]
    InvalidOrExpiredToken,
    #[error("the email address is already verified")]
    EmailAlreadyVerified,
    #[error("the current password is wrong")]
    InvalidCurrentPassword,
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
    #[error(transparent)]
    Pool(#[from] ecom_core::db::PoolError),
    #[error("{0}")]
    Internal(String),
}

fn permission_not_held(missing: &[ecom_core::Permission]) -> String {
    let names: Vec<&str> = missing.iter().map(|p| p.as_str()).collect();
    format!(
        "this needs permissions you do not hold: {}",
        names.join(", ")
    )
}

impl AuthError {
    pub(crate) fn field(field: &str, message: impl Into<String>) -> Self {
        AuthError::Invalid(vec![FieldError::new(field, message)])
    }
}

impl From<AuthError> for AppError {
    fn from(err: AuthError) -> Self {
        let detail = err.to_string();
        match err {
            AuthError::EmailTaken => AppError::conflict("email_taken", detail),
            AuthError::Invalid(fields) => AppError::validation(fields),
            AuthError::InvalidCredentials => AppError::unauthorized("invalid_credentials", detail),
            AuthError::AccountBanned => AppError::forbidden("account_banned", detail),
            AuthError::InvalidRefreshToken => {
                AppError::unauthorized("invalid_refresh_token", detail)
            }
            AuthError::RefreshTokenReused => AppError::unauthorized("refresh_token_reused", detail),
            AuthError::Throttled { retry_after_secs } => {
                AppError::too_many_requests(retry_after_secs)
            }
            AuthError::UserNotFound(_) => AppError::not_found(detail),
            AuthError::UnknownRole(_) => {
                AppError::validation(vec![FieldError::new("role", detail)])
            }
            AuthError::UnknownPermission(_) => {
                AppError::validation(vec![FieldError::new("permissions", detail)])
            }
            AuthError::CannotModifySelf => AppError::conflict("cannot_modify_self", detail),
            AuthError::PermissionNotHeld(_) => AppError::forbidden("permission_not_held", detail),
            AuthError::InvalidOrExpiredToken => {
                AppError::bad_request("invalid_or_expired_token", detail)
            }
            AuthError::EmailAlreadyVerified => AppError::conflict("email_already_verified", detail),
            AuthError::InvalidCurrentPassword => {
                AppError::forbidden("invalid_current_password", detail)
            }
            AuthError::Database(e) => e.into(),
            AuthError::Pool(e) => e.into(),
            AuthError::Internal(e) => AppError::internal(e),
        }
    }
}

pub type AuthResult<T> = Result<T, AuthError>;
