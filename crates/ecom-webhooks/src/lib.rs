//! ecom-webhooks: outgoing webhooks. Administrators register endpoints with subscription
//! patterns; the `webhooks` outbox consumer turns each event into one delivery per
//! matching endpoint; delivery workers in every replica send them signed (Standard
//! Webhooks), retry with backoff, and disable endpoints that keep failing; `/admin/webhooks`.
//!
//! - [`module`]: the routes and OpenAPI fragment that `bins/api` mounts
//! - [`spawn`]: the fan-out consumer and the delivery worker of one replica
//! - [`chores`]: the retention of deliveries
//! - [`service`]: the use cases, the destination checks and the signatures
//!
//! Webhooks keep their own tables (`webhook_endpoints`, `webhook_deliveries`) and read
//! events only through ecom-core's outbox.

pub mod api;
pub mod error;
pub mod model;
pub mod routes;
pub mod schema;
pub mod service;

use ecom_core::db::PgPool;
use ecom_core::events::Wakeups;
use ecom_core::settings::Settings;
use utoipa::OpenApi;

pub use error::WebhooksError;
pub use model::{Delivery, DeliveryStatus, Endpoint};
pub use service::{DeliveryConfig, Dispatcher};

/// The webhooks' part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    components(schemas(
        api::WebhookOut,
        api::WebhookCreated,
        api::DeliveryOut,
        api::TestQueued,
        api::WebhookPage,
        api::DeliveryPage,
        api::CreateWebhookRequest,
        api::UpdateWebhookRequest,
        model::DeliveryStatus,
    )),
    tags((name = "webhooks", description = "Outgoing webhooks: endpoints, signed deliveries with retries, the delivery log"))
)]
pub struct WebhooksApi;

/// The webhooks' routes and OpenAPI fragment, for the app factory.
pub fn module() -> ecom_core::Module {
    ecom_core::Module::routes("webhooks", routes::configure, WebhooksApi::openapi())
}

/// The webhooks' periodic clean-up: deliveries older than `EVENT_RETENTION_DAYS`.
pub fn chores(settings: &Settings) -> Vec<ecom_core::housekeeping::Chore> {
    let days = settings.event_retention_days;
    vec![ecom_core::housekeeping::Chore::new(
        "webhook_deliveries",
        move |conn, batch| {
            Box::pin(async move { Ok(service::purge_expired_deliveries(conn, days, batch).await?) })
        },
    )]
}

/// The background work of one replica: the fan-out consumer and a delivery worker.
#[derive(Debug)]
pub struct Background {
    handles: Vec<tokio::task::JoinHandle<()>>,
}

impl Background {
    /// Stops both loops (deliveries in flight are leased: another replica, or this one at
    /// its next start, takes them when the lease expires).
    pub fn abort(&self) {
        for handle in &self.handles {
            handle.abort();
        }
    }
}

/// Starts the fan-out consumer and the delivery worker on `pool`, woken by `wakeups`.
pub fn spawn(
    pool: PgPool,
    wakeups: Wakeups,
    settings: &Settings,
) -> Result<Background, reqwest::Error> {
    let dispatcher = Dispatcher::new(pool.clone(), DeliveryConfig::from_settings(settings))?;
    Ok(Background {
        handles: vec![
            service::fanout::consumer().spawn(pool, wakeups.clone()),
            dispatcher.spawn(wakeups),
        ],
    })
}
