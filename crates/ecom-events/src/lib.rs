//! ecom-events: the outbox's events delivered to clients and other systems.
//!
//! - [`module`]: `GET /users/me/events` (the caller's order and payment events) and
//!   `GET /admin/events` (every event), as Server-Sent Events or as a plain list
//! - [`nats`]: the bridge publishing every event to NATS JetStream (`NATS_URL`)
//!
//! The events themselves, their table and the cursor consumers are ecom-core's
//! ([`ecom_core::events`]): every domain records its events there, in its own
//! transactions. This crate owns no table, so it has no `schema.rs` or `model.rs`.

pub mod api;
pub mod error;
pub mod nats;
pub mod routes;
pub mod service;

use ecom_core::events::Wakeups;
use utoipa::OpenApi;

pub use error::EventsError;

/// The events' part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    components(schemas(ecom_core::events::Event)),
    tags((name = "events", description = "The store's events: live streams (Server-Sent Events) and lists"))
)]
pub struct EventsApi;

/// The streams' routes and OpenAPI fragment; `wakeups` wakes open streams at each commit
/// that recorded events.
pub fn module(wakeups: Wakeups) -> ecom_core::Module {
    ecom_core::Module::routes(
        "events",
        move |cfg| routes::configure(cfg, wakeups.clone()),
        EventsApi::openapi(),
    )
}

/// Retention of the outbox (`EVENT_RETENTION_DAYS`): each aggregate's newest event stays.
pub fn chores(retention_days: u64) -> Vec<ecom_core::housekeeping::Chore> {
    vec![ecom_core::housekeeping::Chore::new(
        "expired_events",
        move |conn, batch| {
            Box::pin(async move {
                Ok(ecom_core::events::delete_expired(conn, retention_days, batch).await?)
            })
        },
    )]
}
