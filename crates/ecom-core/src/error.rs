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

/// `Retry-After` of a 503: database hiccups and conflicts pass within about a second.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 1;

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
    /// RFC 9457 extension members of one problem kind (a cart's `problems`); an operation
    /// that sends them documents its own body schema.
    #[serde(flatten)]
    #[schema(ignore)]
    pub extensions: serde_json::Map<String, serde_json::Value>,
}

/// A failure on its way to becoming a response.
pub struct AppError {
    status: StatusCode,
    code: Cow<'static, str>,
    detail: Cow<'static, str>,
    errors: Vec<FieldError>,
    retry_after_secs: Option<u64>,
    /// Extension members sent beside the standard ones (boxed: most errors have none,
    /// and every `Result` carrying this type stays small).
    extensions: Option<Box<serde_json::Map<String, serde_json::Value>>>,
    /// For 5xx: the cause, logged once when the response is rendered, never sent.
    cause: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// The constructors of the statuses whose code and detail the caller chooses: one
/// `name => STATUS;` each, so they cannot drift apart.
macro_rules! coded_constructors {
    ($($(#[$doc:meta])* $name:ident => $status:ident;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(
                code: impl Into<Cow<'static, str>>,
                detail: impl Into<Cow<'static, str>>,
            ) -> Self {
                Self::new(StatusCode::$status, code, detail)
            }
        )*
    };
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
            extensions: None,
            cause: None,
        }
    }

    coded_constructors! {
        /// 400: the request cannot be parsed.
        bad_request => BAD_REQUEST;
        /// 401 with `WWW-Authenticate: Bearer`.
        unauthorized => UNAUTHORIZED;
        /// 403: authenticated but not allowed.
        forbidden => FORBIDDEN;
        /// 409: the request conflicts with the current state.
        conflict => CONFLICT;
        /// 422 with a specific code and no field list.
        unprocessable => UNPROCESSABLE_ENTITY;
    }

    /// 404 `not_found`; also used for other users' private objects.
    pub fn not_found(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
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
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests; retry later",
        )
        .with_retry_after(retry_after_secs.max(1))
    }

    /// 503 `service_unavailable` with `Retry-After`: the database is away, overloaded or
    /// timed out, or the request lost a conflict with a concurrent one; safe to retry.
    pub fn unavailable(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "the service is temporarily unavailable; retry later",
        )
        .with_retry_after(UNAVAILABLE_RETRY_AFTER_SECS)
        .with_cause(cause)
    }

    /// 502 with a specific code: a service the store depends on (a payment provider)
    /// failed. The body carries `detail` and the request id; `cause` goes to the log only.
    pub fn bad_gateway(
        code: impl Into<Cow<'static, str>>,
        detail: impl Into<Cow<'static, str>>,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::new(StatusCode::BAD_GATEWAY, code, detail).with_cause(cause)
    }

    /// The same error with another client-facing detail.
    pub fn with_detail(mut self, detail: impl Into<Cow<'static, str>>) -> Self {
        self.detail = detail.into();
        self
    }

    /// 500: a bug or an unexpected failure. The cause is logged, never sent.
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "an internal error occurred",
        )
        .with_cause(cause)
    }

    /// The same error with an extension member `name` in its body (RFC 9457 §3.2), e.g.
    /// the list of what blocks a checkout; a value that does not serialize is left out.
    pub fn with_extension(mut self, name: &str, value: impl Serialize) -> Self {
        if let Ok(value) = serde_json::to_value(value) {
            self.extensions
                .get_or_insert_default()
                .insert(name.to_string(), value);
        }
        self
    }

    fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    /// The failure behind this error, for the log only.
    fn with_cause(mut self, cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        self.cause = Some(cause.into());
        self
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

    /// Seconds a client is told to wait (`Retry-After`), on 429 and 503.
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after_secs
    }

    /// The body this error renders to.
    pub fn problem(&self) -> Problem {
        let mut body = problem(self.status, &self.code, &self.detail, &self.errors);
        body.extensions = self.extensions.as_deref().cloned().unwrap_or_default();
        body
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
        extensions: serde_json::Map::new(),
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
        if let E::NotFound = err {
            return AppError::not_found("the resource does not exist");
        }
        if is_transaction_conflict(&err) {
            // Reached a response: the operation is not retried here, or ran out of attempts.
            return AppError::unavailable(err).with_detail(
                "the request collided with a concurrent one and was undone; retry it",
            );
        }
        if is_lost_database(&err) {
            return AppError::unavailable(err);
        }
        let E::DatabaseError(kind, info) = &err else {
            return AppError::internal(err);
        };
        // PostgreSQL text and jsonb cannot hold NUL; a client sent "\u0000" in a string.
        if parse_sqlstate(info.message())
            .is_some_and(|code| sqlstate::NUL_CHARACTER.contains(&code))
        {
            return AppError::invalid_field("text", "must not contain NUL characters");
        }
        match kind {
            K::UniqueViolation => AppError::conflict("conflict", "the resource already exists"),
            K::ForeignKeyViolation => AppError::conflict(
                "conflict",
                "the resource is referenced by, or refers to, another",
            ),
            K::CheckViolation | K::NotNullViolation => AppError::unprocessable(
                "constraint_violation",
                "the request breaks a rule of the store",
            ),
            _ => AppError::internal(err),
        }
    }
}

/// The database is away or refusing work (shut down, restarting, out of connections,
/// timed out, connection lost): a 503, not a bug.
fn is_lost_database(err: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind as K, Error as E};
    match err {
        // No SQLSTATE: the connection was lost before or while the statement ran.
        E::DatabaseError(K::ClosedConnection | K::UnableToSendCommand, _) => true,
        E::DatabaseError(_, info) => {
            parse_sqlstate(info.message()).is_some_and(is_unavailable_sqlstate)
        }
        // A rollback that could not be sent (the connection died) leaves the connection
        // unusable; the pool discards it.
        E::BrokenTransactionManager => true,
        E::RollbackErrorOnCommit { commit_error, .. } => is_lost_database(commit_error),
        _ => false,
    }
}

/// The SQLSTATE codes the store acts on (PostgreSQL, Appendix A), grouped by what the
/// store does about them.
pub mod sqlstate {
    /// Running the whole transaction again can succeed.
    pub const CONFLICTS: [&str; 2] = [
        "40001", // serialization_failure
        "40P01", // deadlock_detected: this transaction was chosen to break a deadlock
    ];
    /// The database's state, not a bug: a 503 with `Retry-After`.
    pub const UNAVAILABLE: [&str; 7] = [
        "55P03", // lock_not_available: `lock_timeout` expired (or `NOWAIT`)
        "57014", // query_canceled: `statement_timeout` expired, or the statement was cancelled
        "57P01", // admin_shutdown: the server is shutting down or terminated the session
        "57P02", // crash_shutdown: another server process crashed; the server is restarting
        "57P03", // cannot_connect_now: the server is starting up or recovering
        "53300", // too_many_connections
        "25P03", // idle_in_transaction_session_timeout: a session idle in a transaction ended
    ];
    /// Class 08, connection exceptions: also the database's state.
    pub const CONNECTION_EXCEPTION_CLASS: &str = "08";
    /// A NUL character the client sent: character_not_in_repertoire (in a text value),
    /// untranslatable_character (`\u0000` in a jsonb value).
    pub const NUL_CHARACTER: [&str; 2] = ["22021", "22P05"];
}

/// The SQLSTATE of a database error, e.g. `"40P01"`; `None` for errors the server did not
/// send (a lost connection, a decoding failure). The vendored diesel-async prefixes every
/// server error's message with its code (`[40P01] deadlock detected`, see
/// `vendor/diesel-async/PATCHED.md`); this reads that prefix.
pub fn sqlstate_of(err: &diesel::result::Error) -> Option<&str> {
    match err {
        diesel::result::Error::DatabaseError(_, info) => parse_sqlstate(info.message()),
        _ => None,
    }
}

/// Reads the `[XXXXX] ` prefix: five digits or upper-case letters, as PostgreSQL makes them.
fn parse_sqlstate(message: &str) -> Option<&str> {
    let (code, rest) = message.strip_prefix('[')?.split_at_checked(5)?;
    let well_formed = code
        .bytes()
        .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase());
    (well_formed && rest.starts_with("] ")).then_some(code)
}

/// Serialization failure or deadlock: running the whole transaction again can succeed.
pub fn is_transaction_conflict(err: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind as K, Error as E};
    matches!(err, E::DatabaseError(K::SerializationFailure, _))
        || sqlstate_of(err).is_some_and(is_conflict_sqlstate)
}

fn is_conflict_sqlstate(code: &str) -> bool {
    sqlstate::CONFLICTS.contains(&code)
}

/// Lock and statement timeouts, shutdowns, lost connections and a full server are the
/// database's state, not bugs: answer 503 with `Retry-After`.
fn is_unavailable_sqlstate(code: &str) -> bool {
    sqlstate::UNAVAILABLE.contains(&code) || code.starts_with(sqlstate::CONNECTION_EXCEPTION_CLASS)
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

    /// A database error as the patched diesel-async makes it: the message carries the code.
    fn server_error(kind: K, code: &str, message: &str) -> E {
        E::DatabaseError(kind, Box::new(format!("[{code}] {message}")))
    }

    /// A database error whose message carries no code (the server sent none, or an
    /// old message the store must not read meaning into).
    fn uncoded_error(kind: K, message: &str) -> E {
        E::DatabaseError(kind, Box::new(message.to_string()))
    }

    fn response(kind: K, code: &str) -> AppError {
        server_error(kind, code, "whatever the server says").into()
    }

    /// A connection that died under a rollback leaves diesel's transaction manager broken:
    /// the database went away, which is a 503, not a bug.
    #[test]
    fn a_broken_transaction_manager_is_unavailable() {
        assert_eq!(
            AppError::from(E::BrokenTransactionManager).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        let lost_commit = E::RollbackErrorOnCommit {
            rollback_error: Box::new(E::BrokenTransactionManager),
            commit_error: Box::new(uncoded_error(K::ClosedConnection, "connection closed")),
        };
        assert_eq!(
            AppError::from(lost_commit).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            AppError::from(E::NotInTransaction).status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn extension_members_go_beside_the_standard_ones() {
        let with = AppError::conflict("cart_has_problems", "settle them")
            .with_extension("problems", vec!["price_changed"]);
        let body = serde_json::to_value(with.problem()).expect("serializes");
        assert_eq!(body["code"], "cart_has_problems");
        assert_eq!(body["problems"], serde_json::json!(["price_changed"]));
        let plain = serde_json::to_value(AppError::conflict("conflict", "x").problem())
            .expect("serializes");
        assert!(plain.get("problems").is_none(), "{plain}");
    }

    #[test]
    fn the_sqlstate_is_read_from_the_prefix_only() {
        let deadlock = server_error(K::Unknown, "40P01", "deadlock detected");
        assert_eq!(sqlstate_of(&deadlock), Some("40P01"));
        let plain = uncoded_error(K::Unknown, "deadlock detected");
        assert_eq!(sqlstate_of(&plain), None);
        for malformed in [
            "[40p01] x",
            "[40P0] x",
            "[40P01]x",
            "[40P01",
            "[",
            "",
            "[4ü0P1] x",
        ] {
            assert_eq!(parse_sqlstate(malformed), None, "{malformed:?}");
        }
        assert_eq!(sqlstate_of(&E::NotFound), None);
    }

    #[test]
    fn conflicts_are_serialization_failures_and_deadlocks() {
        assert!(is_transaction_conflict(&server_error(
            K::SerializationFailure,
            "40001",
            "could not serialize access"
        )));
        assert!(is_transaction_conflict(&server_error(
            K::Unknown,
            "40P01",
            "deadlock detected"
        )));
        for code in ["55P03", "57014", "23505", "40002", "08006"] {
            assert!(
                !is_transaction_conflict(&server_error(K::Unknown, code, "x")),
                "{code}"
            );
        }
        // The message text alone decides nothing.
        let text_only = uncoded_error(K::Unknown, "deadlock detected");
        assert!(!is_transaction_conflict(&text_only));
    }

    #[test]
    fn unavailable_sqlstates_answer_503_with_retry_after() {
        let unavailable = [
            (K::SerializationFailure, "40001"),
            (K::Unknown, "40P01"),
            (K::Unknown, "55P03"),
            (K::Unknown, "57014"),
            (K::Unknown, "57P01"),
            (K::Unknown, "57P02"),
            (K::Unknown, "57P03"),
            (K::Unknown, "08006"),
            (K::Unknown, "08001"),
            (K::Unknown, "53300"),
            (K::Unknown, "25P03"),
        ];
        for (kind, code) in unavailable {
            let e = response(kind, code);
            assert_eq!(
                (e.status(), e.code(), e.retry_after_secs()),
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "service_unavailable",
                    Some(UNAVAILABLE_RETRY_AFTER_SECS)
                ),
                "{code}"
            );
        }
        let rendered = response(K::Unknown, "55P03").error_response();
        assert_eq!(rendered.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            rendered
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()),
            Some("1")
        );
    }

    #[test]
    fn nul_characters_are_a_422() {
        for code in ["22021", "22P05"] {
            let e = response(K::Unknown, code);
            assert_eq!(
                (e.status(), e.code()),
                (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
                "{code}"
            );
        }
        // The English text that used to be matched no longer decides anything.
        let text_only: AppError = uncoded_error(
            K::Unknown,
            "invalid byte sequence for encoding \"UTF8\": 0x00",
        )
        .into();
        assert_eq!(text_only.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn constraint_and_other_errors_keep_their_statuses() {
        let statuses = [
            (K::UniqueViolation, "23505", StatusCode::CONFLICT),
            (K::ForeignKeyViolation, "23503", StatusCode::CONFLICT),
            (K::CheckViolation, "23514", StatusCode::UNPROCESSABLE_ENTITY),
            (
                K::NotNullViolation,
                "23502",
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (K::Unknown, "42601", StatusCode::INTERNAL_SERVER_ERROR),
        ];
        for (kind, code, status) in statuses {
            assert_eq!(response(kind, code).status(), status, "{code}");
        }
        assert_eq!(
            response(K::Unknown, "42601").retry_after_secs(),
            None,
            "a bug is not retryable"
        );
        // Lost connections carry no SQLSTATE and are still the database's state.
        let lost: AppError = uncoded_error(K::UnableToSendCommand, "connection closed").into();
        assert_eq!(lost.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(AppError::from(E::NotFound).status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn a_bad_gateway_keeps_its_cause_out_of_the_body() {
        let e = AppError::bad_gateway(
            "payment_provider_error",
            "the payment provider failed; nothing was changed",
            "provider said: sk_test_secret refused",
        );
        assert_eq!(
            (e.status(), e.code()),
            (StatusCode::BAD_GATEWAY, "payment_provider_error")
        );
        let body = serde_json::to_string(&e.problem()).expect("problem serializes");
        assert!(!body.contains("sk_test_secret"), "{body}");
        assert!(std::error::Error::source(&e).is_some_and(|c| c.to_string().contains("refused")));
    }
}
