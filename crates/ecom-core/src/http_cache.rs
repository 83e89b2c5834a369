//! HTTP validation for anonymous catalog reads: an `ETag` derived from the body the client
//! would get, `Cache-Control`, and `304 Not Modified` when `If-None-Match` names the
//! current validator. The validator depends only on what the response shows, so stock and
//! price changes refresh it and nothing else (no global counter for checkouts to bump).

use actix_web::body::BoxBody;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, Responder, ResponseError};
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::IntoResponses;

/// A JSON body served with an `ETag`, or `304` when the client's copy is current.
pub struct Cached<T>(pub T);

/// `304`: the copy named by `If-None-Match` is current (documented once, listed per read).
#[derive(IntoResponses)]
#[response(
    status = 304,
    description = "Not modified: `If-None-Match` names the current `ETag` of this response"
)]
pub struct NotModified;

/// Shared caches may keep catalog reads, but must revalidate each time: a page shows stock.
const PUBLIC: &str = "public, no-cache";
/// With credentials the same bytes stay in the caller's own cache.
const PRIVATE: &str = "private, no-cache";

impl<T: Serialize> Responder for Cached<T> {
    type Body = BoxBody;

    fn respond_to(self, req: &HttpRequest) -> HttpResponse<Self::Body> {
        let body = match serde_json::to_vec(&self.0) {
            Ok(body) => body,
            Err(e) => return crate::AppError::internal(e).error_response(),
        };
        let digest = Sha256::digest(&body);
        let etag = format!("\"{}\"", hex::encode(&digest[..16]));
        let cache_control = if req.headers().contains_key(header::AUTHORIZATION) {
            PRIVATE
        } else {
            PUBLIC
        };
        let mut response = if names_current(req, &etag) {
            HttpResponse::NotModified().finish()
        } else {
            HttpResponse::Ok()
                .content_type(header::ContentType::json())
                .body(body)
        };
        let headers = response.headers_mut();
        if let Ok(value) = HeaderValue::from_str(&etag) {
            headers.insert(header::ETAG, value);
        }
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(cache_control),
        );
        response
    }
}

/// Whether `If-None-Match` lists `etag` (weak comparison, as RFC 9110 asks) or is `*`.
fn names_current(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
}
