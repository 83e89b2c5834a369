//! HTTP validation for anonymous catalog reads: an `ETag` derived from the body the client
//! would get, `Cache-Control`, and `304 Not Modified` when `If-None-Match` names the
//! current validator. The validator depends only on what the response shows, so stock and
//! price changes refresh it and nothing else (no global counter for checkouts to bump).

use actix_web::body::BoxBody;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, Responder, ResponseError};
use serde::Serialize;
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
        // Sized for a page of 20 products (about 9 KiB), so that it is written without
        // growing and copying the buffer on the way.
        let mut body = Vec::with_capacity(16 * 1024);
        if let Err(e) = serde_json::to_writer(&mut body, &self.0) {
            return crate::AppError::internal(e).error_response();
        }
        // A validator needs no secrecy, only that two bodies a client sees in turn differ:
        // 128 bits of XXH3 do that at a twentieth of SHA-256's cost (which was the
        // largest single cost of serving a listed page).
        let etag = format!("\"{:032x}\"", xxhash_rust::xxh3::xxh3_128(&body));
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
