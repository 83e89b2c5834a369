//! The event routes' failures and their problem+json codes.

use ecom_core::{AppError, FieldError};

/// Everything that can go wrong in an event route.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// 422 `validation_failed`, listing each bad field.
    #[error("invalid input: {0:?}")]
    Invalid(Vec<FieldError>),
    /// 400 `invalid_last_event_id`: the header is not an event id.
    #[error("Last-Event-ID is not an event id")]
    BadLastEventId,
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
    #[error(transparent)]
    Core(#[from] AppError),
}

impl From<EventsError> for AppError {
    fn from(e: EventsError) -> Self {
        match e {
            EventsError::Invalid(fields) => AppError::validation(fields),
            EventsError::BadLastEventId => AppError::new(
                actix_web::http::StatusCode::BAD_REQUEST,
                "invalid_last_event_id",
                "Last-Event-ID must be an event id (a non-negative integer)",
            ),
            EventsError::Database(e) => AppError::from(e),
            EventsError::Core(e) => e,
        }
    }
}
