//! The payments' use cases and the providers they call.
//!
//! - [`payments`]: creating, listing, capturing, refunding, manual payments, and what a
//!   cancellation or the expiry task asks of payments
//! - [`webhook`]: Stripe's signed events
//! - [`provider`]: the provider abstraction ([`PaymentProvider`]) and what it reports
//! - [`stripe`]: Stripe's HTTP API; [`manual`]: payments recorded by an administrator
//! - [`signature`]: the `Stripe-Signature` check of webhooks, on the raw body
//! - `store`: the payment rows (locks, the one-way update, refunds, events)

pub mod idempotency;
pub mod manual;
pub mod payments;
pub mod ports;
pub mod provider;
pub mod signature;
mod store;
pub mod stripe;
pub mod webhook;

use ecom_orders as orders_api;

pub use idempotency::{Answered, purge_expired_idempotency};
pub use manual::ManualProvider;
pub use payments::{
    Payments, capture_payment, create_payment, list_payments, may_expire, record_manual_payment,
    refund_payment, release_for_cancel,
};
pub use ports::PaymentsHooks;
pub use provider::{IntentRequest, PaymentProvider, ProviderError, ProviderRefund, ProviderState};
pub use stripe::{CaptureMethod, PaymentIntent, StripeConfig, StripeProvider};
pub use webhook::{VerifiedEvent, apply_stripe_event, verify_stripe_event};

pub(crate) type Result<T> = std::result::Result<T, crate::error::PaymentsError>;
