//! What can go wrong starting or running mail delivery.

use ecom_core::AppError;

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// `SMTP_URL` is not one lettre can use (its text is not repeated: it may hold a password).
    #[error("SMTP_URL is not a usable SMTP URL: {0}")]
    SmtpUrl(String),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
    #[error(transparent)]
    Pool(#[from] ecom_core::db::PoolError),
}

impl From<MailError> for AppError {
    fn from(err: MailError) -> Self {
        match err {
            MailError::Database(e) => e.into(),
            MailError::Pool(e) => e.into(),
            other => AppError::internal(other.to_string()),
        }
    }
}
