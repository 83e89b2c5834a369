//! Request and response bodies of the payments' endpoints.

use chrono::{DateTime, Utc};
use ecom_core::Money;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::model::{Payment, PaymentStatus, Provider, Refund};

/// One refund of a payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = PaymentRefundOut)]
pub struct RefundOut {
    pub id: i64,
    pub amount: Money,
    /// Why the money went back (`order_cancelled`, `capture_not_payable`, or the
    /// administrator's words).
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<Refund> for RefundOut {
    fn from(r: Refund) -> Self {
        Self {
            id: r.id,
            amount: r.amount,
            reason: r.reason,
            created_at: r.created_at,
        }
    }
}

/// A payment of an order. Always `refunded ≤ captured ≤ authorized ≤ amount`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = PaymentOut)]
pub struct PaymentOut {
    pub id: i64,
    pub order_id: i64,
    pub provider: Provider,
    pub status: PaymentStatus,
    /// The order's total.
    pub amount: Money,
    /// ISO 4217, lower case.
    #[schema(example = "usd")]
    pub currency: String,
    pub authorized: Money,
    pub captured: Money,
    pub refunded: Money,
    /// Stripe's PaymentIntent id, or the manual payment's reference.
    pub reference: Option<String>,
    /// For Stripe.js: sent to the order's owner only, and only while `pending`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// Why the payment failed (e.g. `card_declined`).
    pub failure_code: Option<String>,
    /// Oldest first.
    pub refunds: Vec<RefundOut>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl PaymentOut {
    /// The payment as `viewer_is_owner` may see it: the client secret only to the owner
    /// while the payment is pending.
    pub fn new(payment: Payment, refunds: Vec<Refund>, viewer_is_owner: bool) -> Self {
        let client_secret = if viewer_is_owner && payment.status == PaymentStatus::Pending {
            payment.client_secret
        } else {
            None
        };
        Self {
            id: payment.id,
            order_id: payment.order_id,
            provider: payment.provider,
            status: payment.status,
            amount: payment.amount,
            currency: payment.currency,
            authorized: payment.authorized,
            captured: payment.captured,
            refunded: payment.refunded,
            reference: payment.reference,
            client_secret,
            failure_code: payment.failure_code,
            refunds: refunds.into_iter().map(RefundOut::from).collect(),
            created_at: payment.created_at,
            updated_at: payment.updated_at,
        }
    }
}

ecom_core::named_page!(
    PaymentPage,
    PaymentOut,
    "`{items, total, limit, offset}` of an order's payments, oldest first."
);

/// A new payment of an order's total.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"provider": "stripe", "payment_method": "pm_card_visa"}))]
pub struct CreatePaymentRequest {
    /// `stripe` or `manual` (a bank transfer or cash, recorded later by an administrator);
    /// `stripe` only when the store has a Stripe key.
    pub provider: String,
    /// A Stripe PaymentMethod (`pm_…`): the PaymentIntent is confirmed at once. Without
    /// it the payment stays `pending` with a `client_secret` for Stripe.js.
    #[schema(max_length = 255, pattern = "^pm_[A-Za-z0-9_]+$")]
    pub payment_method: Option<String>,
}

/// A refund; with no `amount`, everything captured and not yet refunded.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"amount": "10.00", "reason": "damaged in transit"}))]
pub struct RefundRequest {
    pub amount: Option<Money>,
    /// Kept with the refund (at most 500 characters).
    #[schema(max_length = 500)]
    pub reason: Option<String>,
}

/// A bank transfer or cash payment received for an order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"amount": "109.97", "reference": "bank transfer 2026-11-25 #4411"}))]
pub struct ManualPaymentRequest {
    /// The order's exact total.
    pub amount: Money,
    /// How the money can be found again (1..=255 characters).
    #[schema(min_length = 1, max_length = 255)]
    pub reference: String,
}

/// The webhook's answer.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"received": true}))]
pub struct WebhookReceived {
    pub received: bool,
}

/// The order of `/orders/{id}/payments` must exist and be the caller's.
#[derive(utoipa::IntoResponses)]
pub enum OrderMissing {
    /// `not_found`: no such order, or another user's
    #[response(status = 404)]
    NotFound,
}
