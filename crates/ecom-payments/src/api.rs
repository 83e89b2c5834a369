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
