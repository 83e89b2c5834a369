//! The payments' use cases and the providers they call.
//!
//! - [`provider`]: the provider abstraction ([`PaymentProvider`]) and what it reports
//! - [`stripe`]: Stripe's HTTP API; [`manual`]: payments recorded by an administrator
//! - [`signature`]: the `Stripe-Signature` check of webhooks, on the raw body

pub mod manual;
pub mod provider;
pub mod signature;
pub mod stripe;

pub use manual::ManualProvider;
pub use provider::{IntentRequest, PaymentProvider, ProviderError, ProviderRefund, ProviderState};
pub use stripe::{CaptureMethod, PaymentIntent, StripeConfig, StripeProvider};
