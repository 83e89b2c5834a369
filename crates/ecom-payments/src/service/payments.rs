//! The payment use cases. Each runs in one transaction that locks the order first (through
//! ecom-orders), then its payment rows, and calls the provider while holding both: so a
//! capture reaches the provider at most once, refunds of a payment are serialized, and a
//! provider failure rolls everything back (502, nothing changed).

use std::sync::Arc;

use chrono::Utc;
use diesel_async::AsyncPgConnection;
use ecom_core::audit::{self, AuditEntry};
use ecom_core::db::transaction_with_retry;
use ecom_core::settings::SecretString;
use ecom_core::{Money, Page, PageRequest};
use ecom_orders::{Order, OrderStatus};

use super::Result;
use super::idempotency::{self, Answered, Idempotent};
use super::orders_api::{self, PaidBy, PaidOutcome};
use super::provider::{IntentRequest, PaymentProvider, ProviderError, ProviderState};
use super::store::{self, minus};
use crate::api::PaymentOut;
use crate::error::PaymentsError;
use crate::model::{NewPayment, Payment, PaymentStatus, Provider};

/// Audit actions and target type of the administrators' payment operations.
pub const AUDIT_CAPTURE: &str = "payment.capture";
pub const AUDIT_REFUND: &str = "payment.refund";
pub const AUDIT_MANUAL: &str = "payment.manual";
pub const AUDIT_TARGET: &str = "payment";
/// Refund reasons the store writes itself.
pub const REASON_ORDER_CANCELLED: &str = "order_cancelled";
pub const REASON_NOT_PAYABLE: &str = "capture_not_payable";

/// The providers this store offers and the settings payments need; one per app, in app
/// data. Without a Stripe key only `manual` is offered.
pub struct Payments {
    stripe: Option<Arc<dyn PaymentProvider>>,
    manual: Arc<dyn PaymentProvider>,
    /// ISO 4217, lower case (Stripe's spelling).
    pub(crate) currency: String,
    manual_window_hours: i64,
    webhook_secret: Option<SecretString>,
}

impl std::fmt::Debug for Payments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Payments")
            .field("stripe", &self.stripe.is_some())
            .field("currency", &self.currency)
            .field("manual_window_hours", &self.manual_window_hours)
            .finish_non_exhaustive()
    }
}

impl Payments {
    pub fn new(
        stripe: Option<Arc<dyn PaymentProvider>>,
        currency: &str,
        manual_window_hours: i64,
        webhook_secret: Option<SecretString>,
    ) -> Self {
        Self {
            stripe,
            manual: Arc::new(super::ManualProvider),
            currency: currency.to_ascii_lowercase(),
            manual_window_hours,
            webhook_secret,
        }
    }

    /// The provider of that name, when this store offers it.
    pub fn provider(&self, name: Provider) -> Option<&dyn PaymentProvider> {
        match name {
            Provider::Stripe => self.stripe.as_deref(),
            Provider::Manual => Some(self.manual.as_ref()),
        }
    }

    fn provider_of(&self, payment: &Payment) -> Result<&dyn PaymentProvider> {
        self.provider(payment.provider)
            .ok_or_else(|| PaymentsError::UnsupportedProvider(payment.provider.to_string()))
    }

    pub fn webhook_secret(&self) -> Option<&SecretString> {
        self.webhook_secret.as_ref()
    }

    /// The providers offered, for the documentation of errors and for clients.
    pub fn offered(&self) -> Vec<Provider> {
        Provider::ALL
            .iter()
            .copied()
            .filter(|p| self.provider(*p).is_some())
            .collect()
    }
}

/// A payment with its refunds, as `viewer_is_owner` may see it.
pub(crate) async fn view(
    conn: &mut AsyncPgConnection,
    payment: Payment,
    viewer_is_owner: bool,
) -> Result<PaymentOut> {
    let refunds = store::refunds_of(conn, &[payment.id]).await?;
    Ok(PaymentOut::new(payment, refunds, viewer_is_owner))
}

/// Applies a provider report to a locked payment (its order locked before it) and settles
/// the order: a payment that became `captured` now makes the order `paid` exactly once, or
/// — when the order can no longer take the money — is refunded in full at once.
pub(crate) async fn settle(
    conn: &mut AsyncPgConnection,
    payments: &Payments,
    payment: &Payment,
    state: &ProviderState,
) -> Result<Payment> {
    let updated = store::apply_state(conn, payment, state).await?;
    let captured_now =
        updated.status == PaymentStatus::Captured && payment.status != PaymentStatus::Captured;
    if !captured_now {
        return Ok(updated);
    }
    match orders_api::mark_paid(conn, updated.order_id, PaidBy::Captured).await? {
        PaidOutcome::Paid(_) => Ok(updated),
        PaidOutcome::NotPayable { status } => {
            tracing::warn!(payment_id = updated.id, order_id = updated.order_id, order_status = %status,
                "a capture arrived for an order that cannot take it; refunding it in full");
            refund_rest(conn, payments, &updated, REASON_NOT_PAYABLE).await
        }
    }
}

/// Refunds everything captured and not yet refunded, at the provider first.
async fn refund_rest(
    conn: &mut AsyncPgConnection,
    payments: &Payments,
    payment: &Payment,
    reason: &str,
) -> Result<Payment> {
    let rest = minus(payment.captured, payment.refunded);
    if rest.is_zero() {
        return Ok(payment.clone());
    }
    refund_locked(conn, payments, payment, rest, Some(reason)).await
}

/// One refund of a locked payment: the provider accepts it, then it is recorded.
async fn refund_locked(
    conn: &mut AsyncPgConnection,
    payments: &Payments,
    payment: &Payment,
    amount: Money,
    reason: Option<&str>,
) -> Result<Payment> {
    let sequence = store::refund_count(conn, payment.id).await? + 1;
    let accepted = payments
        .provider_of(payment)?
        .refund(payment, sequence, amount)
        .await?;
    store::record_refund(
        conn,
        payment,
        amount,
        reason,
        accepted.provider_refund_id.as_deref(),
    )
    .await
}

/// Whether an order may be paid now: `pending` and not past its due time.
fn payable(order: &Order) -> bool {
    order.is_payable(Utc::now())
}

/// Whether the provider holds money for the payment: captured, or authorized.
pub(crate) fn holds_money(state: &ProviderState) -> bool {
    matches!(
        state.status,
        PaymentStatus::Captured | PaymentStatus::Authorized
    )
}

/// Voids an open payment at its provider before another takes its place, and records the
/// void. When the provider says the money is already there (its event still on the way),
/// nothing is voided: [`PaymentsError::TakenAtProvider`] rolls the operation back, and
/// [`after_taken`] records what the provider said.
async fn void_open(
    conn: &mut AsyncPgConnection,
    payments: &Payments,
    payment: &Payment,
) -> Result<()> {
    let state = payments.provider_of(payment)?.cancel(payment).await?;
    if holds_money(&state) {
        return Err(PaymentsError::TakenAtProvider {
            order_id: payment.order_id,
            payment_id: payment.id,
            state: Box::new(state),
        });
    }
    store::apply_state(conn, payment, &state).await?;
    Ok(())
}

/// Finishes an operation that found an open payment already paid at the provider: on a
/// transaction of its own, the provider's report is settled as the webhook settles it (the
/// order paid exactly once, or the money returned when the order can no longer take it);
/// the answer is the contract's 409: `payment_in_progress` for an authorization, else
/// `order_not_payable`. Any other result passes through.
async fn after_taken(
    conn: &mut AsyncPgConnection,
    payments: &Payments,
    result: Result<Answered>,
) -> Result<Answered> {
    let Err(PaymentsError::TakenAtProvider {
        order_id,
        payment_id,
        state,
    }) = result
    else {
        return result;
    };
    transaction_with_retry(conn, async |conn| {
        let payment = lock_with_order(conn, payment_id).await?;
        settle(conn, payments, &payment, &state).await
    })
    .await?;
    Err(match state.status {
        PaymentStatus::Authorized => PaymentsError::PaymentInProgress(order_id),
        _ => PaymentsError::NotPayable(order_id),
    })
}

/// `POST /orders/{id}/payments` by the order's owner: a new payment of the order's total.
/// An open `pending` payment is voided first (at the provider too); an `authorized` one is
/// [`PaymentsError::PaymentInProgress`]. `manual` extends the order's payment window;
/// `stripe` creates (and with a payment method confirms) a PaymentIntent.
pub async fn create_payment(
    conn: &mut AsyncPgConnection,
    payments: &Payments,
    owner: i64,
    order_id: i64,
    provider_name: &str,
    payment_method: Option<&str>,
    idempotency_key: Option<&str>,
) -> Result<Answered> {
    let provider_kind: Provider = provider_name
        .parse()
        .map_err(|_| PaymentsError::UnsupportedProvider(provider_name.to_string()))?;
    if payments.provider(provider_kind).is_none() {
        return Err(PaymentsError::UnsupportedProvider(
            provider_name.to_string(),
        ));
    }
    if let Some(method) = payment_method {
        if provider_kind != Provider::Stripe {
            return Err(PaymentsError::invalid(
                "payment_method",
                "only the `stripe` provider takes a payment method",
            ));
        }
        if !method.starts_with("pm_")
            || method.len() > 255
            || !method
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(PaymentsError::invalid(
                "payment_method",
                "must be a Stripe PaymentMethod id (`pm_…`)",
            ));
        }
    }
    let order_text = order_id.to_string();
    let request = idempotency_key.map(|key| {
        Idempotent::new(
            owner,
            "create_payment",
            key,
            &[
                &order_text,
                provider_kind.as_str(),
                payment_method.unwrap_or(""),
            ],
        )
    });
    let result = transaction_with_retry(conn, async |conn| {
        idempotency::once(conn, request.as_ref(), async |conn| {
            create_locked(
                conn,
                payments,
                owner,
                order_id,
                provider_kind,
                payment_method,
            )
            .await
        })
        .await
    })
    .await;
    after_taken(conn, payments, result).await
}

/// [`create_payment`]'s transaction, after the key is claimed.
async fn create_locked(
    conn: &mut AsyncPgConnection,
    payments: &Payments,
    owner: i64,
    order_id: i64,
    provider_kind: Provider,
    payment_method: Option<&str>,
) -> Result<PaymentOut> {
    let provider = payments
        .provider(provider_kind)
        .ok_or_else(|| PaymentsError::UnsupportedProvider(provider_kind.to_string()))?;
    let order = orders_api::lock_order(conn, order_id, Some(owner)).await?;
    if !payable(&order) {
        return Err(PaymentsError::NotPayable(order_id));
    }
    for open in store::lock_all_of_order(conn, order_id).await? {
        match open.status {
            PaymentStatus::Authorized => {
                return Err(PaymentsError::PaymentInProgress(order_id));
            }
            PaymentStatus::Pending => void_open(conn, payments, &open).await?,
            _ => {}
        }
    }
    let payment = store::insert(
        conn,
        NewPayment {
            order_id,
            user_id: order.user_id,
            provider: provider_kind,
            amount: order.total_price,
            currency: &payments.currency,
        },
    )
    .await?;
    if provider_kind == Provider::Manual {
        orders_api::extend_payment_window(conn, order_id, payments.manual_window_hours).await?;
    }
    let state = provider
        .create(&IntentRequest {
            payment_id: payment.id,
            order_id,
            amount: payment.amount,
            currency: &payment.currency,
            payment_method,
        })
        .await?;
    let payment = settle(conn, payments, &payment, &state).await?;
    view(conn, payment, true).await
}

/// `GET /orders/{id}/payments`: the owner's (or, with `manage:orders`, any) order's
/// payments, oldest first.
pub async fn list_payments(
    conn: &mut AsyncPgConnection,
    viewer: i64,
    can_manage: bool,
    order_id: i64,
    page: PageRequest,
) -> Result<Page<PaymentOut>> {
    let order = ecom_orders::get_order(conn, order_id).await?;
    if order.user_id != viewer && !can_manage {
        return Err(PaymentsError::Orders(
            ecom_orders::OrdersError::OrderNotFound(order_id),
        ));
    }
    let (rows, total) = store::of_order(conn, order_id, page.limit, page.offset).await?;
    let ids: Vec<i64> = rows.iter().map(|p| p.id).collect();
    let mut refunds = store::refunds_of(conn, &ids).await?;
    let is_owner = order.user_id == viewer;
    let items = rows
        .into_iter()
        .map(|p| {
            let mine: Vec<_> = refunds.extract_if(.., |r| r.payment_id == p.id).collect();
            PaymentOut::new(p, mine, is_owner)
        })
        .collect();
    Ok(Page::new(items, total, page))
}

/// Locks the payment's order, then the payment (the lock order everywhere).
async fn lock_with_order(conn: &mut AsyncPgConnection, payment_id: i64) -> Result<Payment> {
    let found = store::find(conn, payment_id)
        .await?
        .ok_or(PaymentsError::PaymentNotFound(payment_id))?;
    orders_api::lock_order(conn, found.order_id, None).await?;
    store::lock(conn, payment_id)
        .await?
        .ok_or(PaymentsError::PaymentNotFound(payment_id))
}

fn audit_json(payment: &Payment) -> serde_json::Value {
    serde_json::json!({
        "status": payment.status,
        "authorized": payment.authorized,
        "captured": payment.captured,
        "refunded": payment.refunded,
        "reference": payment.reference,
    })
}

async fn audit_change(
    conn: &mut AsyncPgConnection,
    admin_id: i64,
    action: &str,
    before: Option<&Payment>,
    after: &Payment,
) -> Result<()> {
    audit::record(
        conn,
        AuditEntry {
            actor_id: admin_id,
            action,
            target_type: AUDIT_TARGET,
            target_id: after.id.to_string(),
            before: before.map(audit_json),
            after: Some(audit_json(after)),
        },
    )
    .await?;
    Ok(())
}

/// `POST /admin/payments/{id}/capture`: captures all of an `authorized` payment, once.
/// Concurrent captures queue on the order's lock; the later ones find it captured (409).
pub async fn capture_payment(
    conn: &mut AsyncPgConnection,
    payments: &Payments,
    admin_id: i64,
    payment_id: i64,
) -> Result<PaymentOut> {
    transaction_with_retry(conn, async |conn| {
        let payment = lock_with_order(conn, payment_id).await?;
        if payment.status != PaymentStatus::Authorized {
            return Err(PaymentsError::InvalidState {
                payment_id,
                status: payment.status,
            });
        }
        let state = payments.provider_of(&payment)?.capture(&payment).await?;
        let after = settle(conn, payments, &payment, &state).await?;
        audit_change(conn, admin_id, AUDIT_CAPTURE, Some(&payment), &after).await?;
        view(conn, after, false).await
    })
    .await
}

/// `POST /admin/payments/{id}/refund`: `amount` (default: all that is left) back from a
/// `captured` or `partially_refunded` payment. Refunds reaching the captured amount make
/// the payment `refunded` and a paid, shipped or delivered order `refunded`.
pub async fn refund_payment(
    conn: &mut AsyncPgConnection,
    payments: &Payments,
    admin_id: i64,
    payment_id: i64,
    amount: Option<Money>,
    reason: Option<&str>,
    idempotency_key: Option<&str>,
) -> Result<Answered> {
    if amount.is_some_and(|a| a.is_zero()) {
        return Err(PaymentsError::invalid("amount", "must be greater than 0"));
    }
    let (id_text, amount_text) = (payment_id.to_string(), amount.map(|a| a.to_string()));
    let request = idempotency_key.map(|key| {
        Idempotent::new(
            admin_id,
            "refund",
            key,
            &[
                &id_text,
                amount_text.as_deref().unwrap_or(""),
                reason.unwrap_or(""),
            ],
        )
    });
    transaction_with_retry(conn, async |conn| {
        idempotency::once(conn, request.as_ref(), async |conn| {
            refund_in_transaction(conn, payments, admin_id, payment_id, amount, reason).await
        })
        .await
    })
    .await
}

/// [`refund_payment`]'s transaction, after the key is claimed.
async fn refund_in_transaction(
    conn: &mut AsyncPgConnection,
    payments: &Payments,
    admin_id: i64,
    payment_id: i64,
    amount: Option<Money>,
    reason: Option<&str>,
) -> Result<PaymentOut> {
    let payment = lock_with_order(conn, payment_id).await?;
    if !payment.status.is_refundable() {
        return Err(PaymentsError::InvalidState {
            payment_id,
            status: payment.status,
        });
    }
    let rest = minus(payment.captured, payment.refunded);
    let amount = amount.unwrap_or(rest);
    if amount > rest {
        return Err(PaymentsError::RefundExceedsCaptured(payment_id));
    }
    let after = refund_locked(conn, payments, &payment, amount, reason).await?;
    if after.status == PaymentStatus::Refunded {
        orders_api::mark_refunded(conn, after.order_id).await?;
    }
    audit_change(conn, admin_id, AUDIT_REFUND, Some(&payment), &after).await?;
    view(conn, after, false).await
}

/// `POST /admin/orders/{id}/payments/manual`: an administrator records a transfer or cash
/// for the order's exact total; the payment is `captured` and the order `paid` (history
/// `admin`, `manual_payment`). A `manual` payment the shopper opened is completed; any
/// other open payment is voided first (an `authorized` one is in progress: 409).
pub async fn record_manual_payment(
    conn: &mut AsyncPgConnection,
    payments: &Payments,
    admin_id: i64,
    order_id: i64,
    amount: Money,
    reference: &str,
    idempotency_key: Option<&str>,
) -> Result<Answered> {
    let (id_text, amount_text) = (order_id.to_string(), amount.to_string());
    let request = idempotency_key.map(|key| {
        Idempotent::new(
            admin_id,
            "manual_payment",
            key,
            &[&id_text, &amount_text, reference],
        )
    });
    let result = transaction_with_retry(conn, async |conn| {
        idempotency::once(conn, request.as_ref(), async |conn| {
            manual_in_transaction(conn, payments, admin_id, order_id, amount, reference).await
        })
        .await
    })
    .await;
    after_taken(conn, payments, result).await
}

/// [`record_manual_payment`]'s transaction, after the key is claimed.
async fn manual_in_transaction(
    conn: &mut AsyncPgConnection,
    payments: &Payments,
    admin_id: i64,
    order_id: i64,
    amount: Money,
    reference: &str,
) -> Result<PaymentOut> {
    let order = orders_api::lock_order(conn, order_id, None).await?;
    if order.status != OrderStatus::Pending {
        return Err(PaymentsError::NotPayable(order_id));
    }
    if amount != order.total_price {
        return Err(PaymentsError::AmountMismatch);
    }
    let mut manual_open = None;
    for open in store::lock_all_of_order(conn, order_id).await? {
        match (open.status, open.provider) {
            (PaymentStatus::Authorized, _) => {
                return Err(PaymentsError::PaymentInProgress(order_id));
            }
            (PaymentStatus::Pending, Provider::Manual) => manual_open = Some(open),
            (PaymentStatus::Pending, Provider::Stripe) => void_open(conn, payments, &open).await?,
            _ => {}
        }
    }
    let pending = match manual_open {
        Some(open) => open,
        None => {
            store::insert(
                conn,
                NewPayment {
                    order_id,
                    user_id: order.user_id,
                    provider: Provider::Manual,
                    amount: order.total_price,
                    currency: &payments.currency,
                },
            )
            .await?
        }
    };
    let after = store::mark_captured_by_hand(conn, pending.id, amount, reference).await?;
    match orders_api::mark_paid(conn, order_id, PaidBy::Manual { admin_id }).await? {
        PaidOutcome::Paid(_) => {}
        PaidOutcome::NotPayable { .. } => return Err(PaymentsError::NotPayable(order_id)),
    }
    audit_change(conn, admin_id, AUDIT_MANUAL, Some(&pending), &after).await?;
    view(conn, after, false).await
}

/// What a cancellation needs of payments (see ecom-orders' `PaymentsPort`): with the order
/// locked, void its open payments and refund its captured ones in full (reason
/// `order_cancelled`), provider first. The order is left to its cancellation.
pub async fn release_for_cancel(
    conn: &mut AsyncPgConnection,
    payments: &Payments,
    order_id: i64,
) -> Result<()> {
    for payment in store::lock_all_of_order(conn, order_id).await? {
        let mut payment = payment;
        if payment.status.is_open() {
            let state = payments.provider_of(&payment)?.cancel(&payment).await?;
            // Not `settle`: the order is being cancelled, so a capture found here is refunded
            // below rather than marking the order paid.
            payment = store::apply_state(conn, &payment, &state).await?;
            if payment.status.is_open() {
                // The provider neither voided it nor took it: cancelling would leave money
                // held for a cancelled order.
                return Err(ProviderError::Refused {
                    provider: payment.provider,
                    operation: "cancel",
                    status: 200,
                    kind: "unexpected_state".into(),
                    code: payment.status.to_string(),
                    message: String::new(),
                }
                .into());
            }
        }
        if payment.status.is_refundable() {
            refund_rest(conn, payments, &payment, REASON_ORDER_CANCELLED).await?;
        }
    }
    Ok(())
}

/// Whether the order may expire: not while it has an `authorized` payment.
pub async fn may_expire(conn: &mut AsyncPgConnection, order_id: i64) -> Result<bool> {
    Ok(!store::has_authorized(conn, order_id).await?)
}
