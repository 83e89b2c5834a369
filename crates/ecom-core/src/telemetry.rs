//! Logging set-up and the per-request context: request id, client address, tracing
//! span, access log.
//!
//! The request-id middleware is ours rather than a crate's because the id must
//! also reach problem bodies of 5xx responses rendered deep inside actix; a
//! task-local carries it there.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

use crate::settings::LogFormat;

/// Header carrying the request id in both directions.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served on this task, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// The request id, also available to handlers as request extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// Installs the global subscriber; `RUST_LOG` refines the default `info` level.
pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: a log file or the journal would keep the escape codes.
    let colours = std::io::IsTerminal::is_terminal(&std::io::stdout())
        && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(colours);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    drop(result);
}

/// A client's id is echoed when it is short printable ASCII; otherwise a fresh one is made.
fn accepted_client_id(value: Option<&HeaderValue>) -> Option<String> {
    let v = value?.to_str().ok()?.trim();
    let ok = !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic());
    ok.then(|| v.to_string())
}

/// Outermost middleware: assigns the request id, opens the request span, logs one
/// access line, and turns errors into responses while the id is still in scope.
pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let id = accepted_client_id(req.headers().get(REQUEST_ID_HEADER))
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let trusted = req.app_data::<actix_web::web::Data<crate::client_address::TrustedProxies>>();
    let client = crate::client_address::resolve(
        req.peer_addr().map(|a| a.ip()),
        req.headers(),
        trusted.map_or(&[][..], |t| t.0.as_slice()),
    );
    req.extensions_mut()
        .insert(crate::client_address::ClientAddress(client));
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        client = %crate::client_address::ClientAddress(client).to_key(),
        method = %req.method(),
        route = tracing::field::Empty,
        status = tracing::field::Empty,
        latency_ms = tracing::field::Empty,
    );
    let started = Instant::now();
    let scoped_id = id.clone();
    // Errors that escape the inner services are rendered here, while the id is in scope.
    let outcome = REQUEST_ID
        .scope(scoped_id, async move {
            next.call(req)
                .await
                .map(ServiceResponse::map_into_boxed_body)
                .map_err(|err| {
                    let response = err.error_response();
                    (err, response)
                })
        })
        .instrument(span.clone())
        .await;
    let header_value = HeaderValue::from_str(&id).ok();
    let (status, route) = match &outcome {
        Ok(res) => (
            res.status().as_u16(),
            res.request()
                .match_pattern()
                .unwrap_or_else(|| "unmatched".into()),
        ),
        Err((_, response)) => (response.status().as_u16(), "unmatched".into()),
    };
    span.record("route", route.as_str());
    span.record("status", status);
    span.record("latency_ms", started.elapsed().as_secs_f64() * 1000.0);
    span.in_scope(|| tracing::info!("request finished"));
    match outcome {
        Ok(mut res) => {
            if let Some(v) = header_value {
                res.headers_mut()
                    .insert(HeaderName::from_static(REQUEST_ID_HEADER), v);
            }
            Ok(res)
        }
        Err((err, mut response)) => {
            if let Some(v) = header_value {
                response
                    .headers_mut()
                    .insert(HeaderName::from_static(REQUEST_ID_HEADER), v);
            }
            Err(actix_web::error::InternalError::from_response(err.to_string(), response).into())
        }
    }
}
