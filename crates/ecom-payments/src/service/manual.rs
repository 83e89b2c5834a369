//! The `manual` provider: a bank transfer or cash, recorded by an administrator. Nothing
//! to call: the payment waits `pending` until the manual endpoint completes it, and a
//! refund is money handed back by the shop itself.

use ecom_core::Money;

use super::provider::{
    IntentRequest, PaymentProvider, ProviderError, ProviderRefund, ProviderState,
};
use crate::model::{Payment, PaymentStatus, Provider};

/// Money moved outside the store, recorded by hand.
#[derive(Debug, Clone, Copy, Default)]
pub struct ManualProvider;

#[async_trait::async_trait]
impl PaymentProvider for ManualProvider {
    fn name(&self) -> Provider {
        Provider::Manual
    }

    async fn create(&self, _request: &IntentRequest<'_>) -> Result<ProviderState, ProviderError> {
        Ok(ProviderState::pending(None))
    }

    /// Manual money is recorded as captured by the manual-payment endpoint, never captured
    /// through a provider call.
    async fn capture(&self, _payment: &Payment) -> Result<ProviderState, ProviderError> {
        Err(ProviderError::Unsupported {
            provider: Provider::Manual,
            operation: "capture",
        })
    }

    async fn cancel(&self, payment: &Payment) -> Result<ProviderState, ProviderError> {
        Ok(ProviderState {
            reference: payment.reference.clone(),
            status: PaymentStatus::Cancelled,
            authorized: payment.authorized,
            captured: payment.captured,
            client_secret: None,
            failure_code: None,
        })
    }

    async fn refund(
        &self,
        _payment: &Payment,
        _sequence: i64,
        amount: Money,
    ) -> Result<ProviderRefund, ProviderError> {
        Ok(ProviderRefund {
            provider_refund_id: None,
            amount,
        })
    }
}
