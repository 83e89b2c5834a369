//! What ecom-orders asks of payments, through the traits it defines (so orders never
//! depends on payments): before a cancellation, void and refund ([`ecom_orders::PaymentsPort`]);
//! before an expiry, whether an authorized payment holds the order ([`ecom_orders::ExpiryGate`]).

use std::sync::Arc;

use diesel_async::AsyncPgConnection;
use ecom_orders::{ExpiryGate, Order, OrdersError, PaymentsPort};

use super::payments::{Payments, may_expire, release_for_cancel};
use crate::error::PaymentsError;

/// Payments' answers to the orders' questions; `bins/api` installs it as both traits.
#[derive(Debug, Clone)]
pub struct PaymentsHooks {
    payments: Arc<Payments>,
}

impl PaymentsHooks {
    pub fn new(payments: Arc<Payments>) -> Self {
        Self { payments }
    }
}

/// A payments failure as the orders' transaction sees it: a provider failure is
/// `PaymentProvider` (502, nothing changed); the message goes to the log only.
fn to_orders(err: PaymentsError) -> OrdersError {
    match err {
        PaymentsError::Orders(e) => e,
        PaymentsError::Database(e) => OrdersError::Database(e),
        PaymentsError::Pool(e) => OrdersError::Pool(e),
        other => OrdersError::PaymentProvider(other.to_string()),
    }
}

#[async_trait::async_trait]
impl PaymentsPort for PaymentsHooks {
    async fn before_cancel(
        &self,
        conn: &mut AsyncPgConnection,
        order: &Order,
    ) -> Result<(), OrdersError> {
        release_for_cancel(conn, &self.payments, order.id)
            .await
            .map_err(to_orders)
    }
}

#[async_trait::async_trait]
impl ExpiryGate for PaymentsHooks {
    async fn may_expire(
        &self,
        conn: &mut AsyncPgConnection,
        order_id: i64,
    ) -> Result<bool, OrdersError> {
        may_expire(conn, order_id).await.map_err(to_orders)
    }
}
