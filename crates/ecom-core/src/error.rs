//! The one error type of the store, rendered as RFC 9457 `application/problem+json`.
//!
//! Domain crates keep their own `thiserror` enums and convert into [`AppError`];
//! only this type implements `ResponseError`, so every failure has the same shape.

use std::borrow::Cow;
use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::telemetry::current_request_id;

/// Content type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One invalid input field.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct FieldError {
    /// The field's name as the client sent it (`price`, `items[0].quantity`).
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// RFC 9457 problem details, as sent to clients.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "urn:ecom:problem:not_found", "title": "Not Found", "status": 404,
    "detail": "product 42 does not exist", "code": "not_found"
}))]
pub struct Problem {
    /// A URI naming the problem kind: `urn:ecom:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable snake_case identifier that SDKs can switch on.
    pub code: String,
    /// Present on validation failures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
    /// Present on server errors: quote it when reporting the problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// A failure on its way to becoming a response.
pub struct AppError {
    status: StatusCode,
    code: Cow<'static, str>,
    detail: Cow<'static, str>,
    errors: Vec<FieldError>,
    retry_after_secs: Option<u64>,
    /// For 5xx: the cause, logged once when the response is rendered, never sent.
    cause: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl AppError {
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        detail: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            code: code.into(),
            detail: detail.into(),
            errors: Vec::new(),
            retry_after_secs: None,
            cause: None,
        }
    }

    /// 400: the request cannot be parsed.
    pub fn bad_request(
        code: impl Into<Cow<'static, str>>,
        detail: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// 401 with `WWW-Authenticate: Bearer`.
    pub fn unauthorized(
        code: impl Into<Cow<'static, str>>,
        detail: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, detail)
    }

    /// 403: authenticated but not allowed.
    pub fn forbidden(
        code: impl Into<Cow<'static, str>>,
        detail: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, detail)
    }

    /// 404 `not_found`; also used for other users' private objects.
    pub fn not_found(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    /// 409: the request conflicts with the current state.
    pub fn conflict(
        code: impl Into<Cow<'static, str>>,
        detail: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    /// 422 with a specific code and no field list.
    pub fn unprocessable(
        code: impl Into<Cow<'static, str>>,
        detail: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
    }

    /// 422 `validation_failed` listing each bad field.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            _ => "the request has invalid fields".to_string(),
        };
        let mut e = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            detail,
        );
        e.errors = errors;
        e
    }

    /// 422 for a single bad field.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError::new(field, message)])
    }

    /// 415 `unsupported_media_type`: the body's content type is not one the endpoint reads.
    pub fn unsupported_media_type(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            detail,
        )
    }

    /// 429 with `Retry-After`.
    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests; retry later",
        );
        e.retry_after_secs = Some(retry_after_secs.max(1));
        e
    }

    /// 503: a dependency (the database) is not answering; safe to retry.
    pub fn unavailable(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "the service is temporarily unavailable; retry later",
        );
        e.cause = Some(cause.into());
        e
    }

    /// 500: a bug or an unexpected failure. The cause is logged, never sent.
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "an internal error occurred",
        );
        e.cause = Some(cause.into());
        e
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn code(&self) -> &str {
        &self.code
    }

    pub fn detail(&self) -> &str {
        &self.detail
    }

    pub fn field_errors(&self) -> &[FieldError] {
        &self.errors
    }

    /// The body this error renders to.
    pub fn problem(&self) -> Problem {
        problem(self.status, &self.code, &self.detail, &self.errors)
    }
}

/// Builds a problem body; server errors get the current request id.
pub fn problem(status: StatusCode, code: &str, detail: &str, errors: &[FieldError]) -> Problem {
    Problem {
        kind: format!("urn:ecom:problem:{code}"),
        title: status.canonical_reason().unwrap_or("Error").to_string(),
        status: status.as_u16(),
        detail: detail.to_string(),
        code: code.to_string(),
        errors: (!errors.is_empty()).then(|| errors.to_vec()),
        request_id: status.is_server_error().then(current_request_id).flatten(),
    }
}

/// Renders a problem body with the headers its status calls for.
pub fn problem_response(
    status: StatusCode,
    body: &Problem,
    retry_after_secs: Option<u64>,
) -> HttpResponse {
    let mut res = HttpResponse::build(status);
    res.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)));
    if status == StatusCode::UNAUTHORIZED {
        res.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
    }
    if let Some(secs) = retry_after_secs {
        res.insert_header((header::RETRY_AFTER, secs.to_string()));
    }
    res.body(serde_json::to_vec(body).unwrap_or_default())
}

impl fmt::Debug for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppError")
            .field("status", &self.status.as_u16())
            .field("code", &self.code)
            .field("detail", &self.detail)
            .field("cause", &self.cause.as_ref().map(|c| c.to_string()))
            .finish()
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

impl std::error::Error for AppError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_deref()
            .map(|c| c as &(dyn std::error::Error + 'static))
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        if self.status.is_server_error() {
            let chain = cause_chain(self.cause.as_deref());
            tracing::error!(status = self.status.as_u16(), code = %self.code, cause = %chain, "request failed");
        }
        problem_response(self.status, &self.problem(), self.retry_after_secs)
    }
}

fn cause_chain(cause: Option<&(dyn std::error::Error + Send + Sync)>) -> String {
    let mut parts = Vec::new();
    let mut next: Option<&dyn std::error::Error> = cause.map(|c| c as &dyn std::error::Error);
    while let Some(err) = next {
        parts.push(err.to_string());
        next = err.source();
    }
    if parts.is_empty() {
        "unknown".into()
    } else {
        parts.join(": ")
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(err: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind as K, Error as E};
        match &err {
            E::NotFound => AppError::not_found("the resource does not exist"),
            E::DatabaseError(K::UniqueViolation, _) => {
                AppError::conflict("conflict", "the resource already exists")
            }
            E::DatabaseError(K::ForeignKeyViolation, _) => AppError::conflict(
                "conflict",
                "the resource is referenced by, or refers to, another",
            ),
            E::DatabaseError(K::CheckViolation, _) | E::DatabaseError(K::NotNullViolation, _) => {
                AppError::unprocessable(
                    "constraint_violation",
                    "the request breaks a rule of the store",
                )
            }
            E::DatabaseError(K::SerializationFailure, _)
            | E::DatabaseError(K::ClosedConnection, _)
            | E::DatabaseError(K::UnableToSendCommand, _) => AppError::unavailable(err),
            // PostgreSQL text cannot hold NUL; a client sent "\u0000" in a string.
            E::DatabaseError(K::Unknown, info)
                if info.message().contains("invalid byte sequence") =>
            {
                AppError::invalid_field("text", "must not contain NUL characters")
            }
            E::DatabaseError(K::Unknown, info) if is_unavailable_sqlstate(info.message()) => {
                AppError::unavailable(err)
            }
            _ => AppError::internal(err),
        }
    }
}

/// Statement timeouts and shutdowns are load problems, not bugs: answer 503.
fn is_unavailable_sqlstate(message: &str) -> bool {
    message.contains("canceling statement due to statement timeout")
        || message.contains("terminating connection")
        || message.contains("the database system is")
}

impl From<crate::db::PoolError> for AppError {
    fn from(err: crate::db::PoolError) -> Self {
        AppError::unavailable(err)
    }
}

/// Result of a handler or service.
pub type AppResult<T> = Result<T, AppError>;

#[cfg(test)]
mod tests {
    use diesel::result::{DatabaseErrorKind as K, Error as E};

    use super::*;

    fn db(kind: K, message: &str) -> AppError {
        E::DatabaseError(kind, Box::new(message.to_string())).into()
    }

    #[test]
    fn database_errors_map_to_statuses() {
        assert_eq!(db(K::UniqueViolation, "dup").status(), StatusCode::CONFLICT);
        assert_eq!(
            db(K::CheckViolation, "check").status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        // A lost connection or a timeout is the database's state, not a bug: retryable 503.
        assert_eq!(
            db(K::UnableToSendCommand, "connection closed").status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            db(K::SerializationFailure, "retry").status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            db(K::Unknown, "canceling statement due to statement timeout").status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            db(K::Unknown, "syntax error").status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(AppError::from(E::NotFound).status(), StatusCode::NOT_FOUND);
        let nul = db(
            K::Unknown,
            "invalid byte sequence for encoding \"UTF8\": 0x00",
        );
        assert_eq!(
            (nul.status(), nul.code()),
            (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
        );
    }
}
