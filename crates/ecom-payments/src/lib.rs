//! ecom-payments: money for orders, through Stripe or recorded by hand; signed Stripe
//! webhooks, captures and refunds.
//!
//! - [`model`]: payments, refunds, the statuses and their one-way moves
//! - [`service`]: the provider abstraction with Stripe's HTTP API and the manual provider,
//!   and the webhook signature check
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
    CaptureMethod, IntentRequest, ManualProvider, PaymentProvider, ProviderError, ProviderState,
    StripeConfig, StripeProvider,
};

/// The payments' part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    components(schemas(api::PaymentOut, api::RefundOut, model::PaymentStatus, model::Provider)),
    tags((name = "payments", description = "Payments of orders: Stripe and manual; webhooks, captures, refunds"))
)]
pub struct PaymentsApi;

/// The payments' routes and OpenAPI fragment, for the app factory.
pub fn module() -> ecom_core::Module {
    ecom_core::Module::routes("payments", routes::configure, PaymentsApi::openapi())
}
