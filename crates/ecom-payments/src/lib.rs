//! ecom-payments: money for orders, through Stripe or recorded by hand; signed Stripe
//! webhooks, captures and refunds.
//!
//! - [`module`]: the routes and OpenAPI fragment that `bins/api` mounts, with [`Payments`]
//! - [`PaymentsHooks`]: what ecom-orders asks of payments before a cancel or an expiry
//! - [`model`]: payments, refunds, the statuses and their one-way moves
//! - [`service`]: the use cases, the provider abstraction with Stripe's HTTP API and the
//!   manual provider, Stripe's webhook and its signature check
//!
//! Payments keep their own tables (`payments`, `payments_refunds`,
//! `payments_provider_events`) and move orders only through ecom-orders' service
//! functions, on the payment's own transaction (the order row locked first).

pub mod api;
pub mod error;
pub mod model;
pub mod routes;
pub mod schema;
pub mod service;

use utoipa::OpenApi;

pub use error::PaymentsError;
pub use model::{Payment, PaymentStatus, Provider, Refund, Step};
pub use service::{
    CaptureMethod, IntentRequest, ManualProvider, PaymentProvider, Payments, PaymentsHooks,
    ProviderError, ProviderRefund, ProviderState, StripeConfig, StripeProvider,
};

/// The payments' part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    components(schemas(
        api::PaymentOut,
        api::RefundOut,
        api::PaymentPage,
        api::CreatePaymentRequest,
        api::RefundRequest,
        api::ManualPaymentRequest,
        api::WebhookReceived,
        model::PaymentStatus,
        model::Provider,
    )),
    tags((name = "payments", description = "Payments of orders: Stripe and manual; webhooks, captures, refunds"))
)]
pub struct PaymentsApi;

/// The payments' periodic clean-ups: expired idempotency records.
pub fn chores() -> Vec<ecom_core::housekeeping::Chore> {
    vec![ecom_core::housekeeping::Chore::new(
        "payments_idempotency",
        |conn, batch| {
            Box::pin(async move { Ok(service::purge_expired_idempotency(conn, batch).await?) })
        },
    )]
}

/// The payments' routes and OpenAPI fragment, for the app factory, with `payments` (the
/// providers and settings) in app data.
pub fn module(payments: std::sync::Arc<Payments>) -> ecom_core::Module {
    let payments = actix_web::web::Data::from(payments);
    ecom_core::Module::routes(
        "payments",
        move |cfg| {
            cfg.app_data(payments.clone());
            routes::configure(cfg);
        },
        PaymentsApi::openapi(),
    )
}
