//! The provider abstraction: what the payment services ask of whoever moves the money.
//! Two real providers implement it: [`super::stripe::StripeProvider`] (Stripe's HTTP API)
//! and [`super::manual::ManualProvider`] (an administrator records a transfer; no HTTP).

use ecom_core::Money;

use crate::model::{Payment, PaymentStatus, Provider};

/// A new payment, as the provider needs it.
#[derive(Debug, Clone, Copy)]
pub struct IntentRequest<'a> {
    /// Our payment's id: the idempotency key and the provider's metadata carry it.
    pub payment_id: i64,
    /// The order paid: with the payment id in the provider's metadata, it lets an event
    /// that overtakes our own create call wait on the order's lock for the payment row.
    pub order_id: i64,
    pub amount: Money,
    /// ISO 4217, lower case.
    pub currency: &'a str,
    /// A Stripe PaymentMethod (`pm_…`): the intent is confirmed in the same call.
    pub payment_method: Option<&'a str>,
}

/// What the provider says a payment is now, after a call or in an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderState {
    /// The provider's id for the payment (Stripe's PaymentIntent id), when it has one.
    pub reference: Option<String>,
    pub status: PaymentStatus,
    pub authorized: Money,
    pub captured: Money,
    /// For Stripe.js, while the customer still has to act.
    pub client_secret: Option<String>,
    /// Why a payment failed (Stripe's `last_payment_error.code`, e.g. `card_declined`).
    pub failure_code: Option<String>,
}

impl ProviderState {
    /// A payment the provider knows nothing more about yet.
    pub fn pending(reference: Option<String>) -> Self {
        Self {
            reference,
            status: PaymentStatus::Pending,
            authorized: Money::ZERO,
            captured: Money::ZERO,
            client_secret: None,
            failure_code: None,
        }
    }
}

/// A refund the provider accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRefund {
    /// Stripe's refund id (`re_…`); none for money returned by hand.
    pub provider_refund_id: Option<String>,
    pub amount: Money,
}

/// Why a provider call failed. Rendered only into the log (once, where handled); the
/// client gets 502 `payment_provider_error` without any of it, and no variant carries
/// the secret key or a raw response body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// Network failure or the 10 s timeout: the call may or may not have happened;
    /// the idempotency key makes a retry safe.
    #[error("{provider} {operation}: the provider did not answer ({reason})")]
    Unreachable {
        provider: Provider,
        operation: &'static str,
        reason: &'static str,
    },
    /// The provider answered with an error (Stripe's `error.type` and `error.code`).
    #[error("{provider} {operation}: refused with HTTP {status} ({kind}/{code}): {message}")]
    Refused {
        provider: Provider,
        operation: &'static str,
        status: u16,
        kind: String,
        code: String,
        message: String,
    },
    /// A 2xx whose body is not what the API documents.
    #[error("{provider} {operation}: unreadable answer (HTTP {status})")]
    Unreadable {
        provider: Provider,
        operation: &'static str,
        status: u16,
    },
    /// The payment has no provider reference to act on (it was never created there).
    #[error("{provider} {operation}: payment {payment_id} has no provider reference")]
    NoReference {
        provider: Provider,
        operation: &'static str,
        payment_id: i64,
    },
    /// The provider does not do this (a manual payment is not captured through an API).
    #[error("{provider} does not support {operation}")]
    Unsupported {
        provider: Provider,
        operation: &'static str,
    },
}

/// Whoever moves the money for a payment. Calls are made while the payment's row (and its
/// order's) is locked, so each operation reaches the provider at most once per attempt;
/// idempotency keys derived from our ids make a retried attempt land on the same object.
#[async_trait::async_trait]
pub trait PaymentProvider: Send + Sync {
    /// Which provider this is.
    fn name(&self) -> Provider;

    /// Opens the payment at the provider (and confirms it when a payment method is given).
    async fn create(&self, request: &IntentRequest<'_>) -> Result<ProviderState, ProviderError>;

    /// Captures everything authorized.
    async fn capture(&self, payment: &Payment) -> Result<ProviderState, ProviderError>;

    /// Voids an open payment. The answer is what the provider says the payment is now:
    /// `cancelled`, or `captured`/`authorized` when the money got there before the void
    /// (then nothing was voided; the caller records it and, where it has no use for the
    /// money, gives it back).
    async fn cancel(&self, payment: &Payment) -> Result<ProviderState, ProviderError>;

    /// Gives back `amount` of the capture; `sequence` numbers the payment's refunds
    /// (1, 2, …) so that a retried refund is recognised as the same one.
    async fn refund(
        &self,
        payment: &Payment,
        sequence: i64,
        amount: Money,
    ) -> Result<ProviderRefund, ProviderError>;
}
