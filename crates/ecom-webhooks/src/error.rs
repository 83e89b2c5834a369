//! The webhooks' failures and their problem+json codes.

use ecom_core::db::PoolError;
use ecom_core::{AppError, FieldError};

/// Everything that can go wrong in a webhooks use case.
#[derive(Debug, thiserror::Error)]
pub enum WebhooksError {
    /// 422 `validation_failed`, listing each bad field.
    #[error("invalid input: {0:?}")]
    Invalid(Vec<FieldError>),
    /// 422 `url_not_allowed`: the URL's host is (or resolves to) a private, loopback,
    /// link-local, unspecified or multicast address and `WEBHOOK_ALLOW_PRIVATE` is off.
    #[error("the webhook URL points at a destination that is not allowed")]
    UrlNotAllowed,
    /// 404 `not_found`.
    #[error("webhook {0} does not exist")]
    NotFound(i64),
    /// 404 `not_found`: no such delivery of this endpoint.
    #[error("delivery {0} does not exist")]
    DeliveryNotFound(i64),
    /// 409 `already_delivered`: a succeeded delivery is not sent again.
    #[error("delivery {0} already succeeded")]
    AlreadyDelivered(i64),
    /// 409 `webhook_disabled`: re-enable the endpoint first.
    #[error("webhook {0} is disabled")]
    Disabled(i64),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
    #[error(transparent)]
    Pool(#[from] PoolError),
}

impl WebhooksError {
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldError::new(field, message)])
    }
}

impl From<WebhooksError> for AppError {
    fn from(err: WebhooksError) -> Self {
        match err {
            WebhooksError::Invalid(errors) => AppError::validation(errors),
            WebhooksError::UrlNotAllowed => AppError::unprocessable(
                "url_not_allowed",
                "the URL's host is a private, loopback, link-local or multicast destination",
            ),
            WebhooksError::NotFound(id) => {
                AppError::not_found(format!("webhook {id} does not exist"))
            }
            WebhooksError::DeliveryNotFound(id) => {
                AppError::not_found(format!("delivery {id} does not exist"))
            }
            WebhooksError::AlreadyDelivered(id) => AppError::conflict(
                "already_delivered",
                format!("delivery {id} already succeeded"),
            ),
            WebhooksError::Disabled(id) => AppError::conflict(
                "webhook_disabled",
                format!("webhook {id} is disabled; re-enable it with is_active: true"),
            ),
            WebhooksError::Database(e) => AppError::from(e),
            WebhooksError::Pool(e) => AppError::from(e),
        }
    }
}
