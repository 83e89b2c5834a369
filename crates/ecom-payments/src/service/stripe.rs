//! Stripe's HTTP API, spoken directly (form-encoded requests, JSON answers) with reqwest:
//! PaymentIntents created (and confirmed in the same call when a payment method is given),
//! captured, cancelled, refunded. Every call carries an `Idempotency-Key` derived from our
//! payment id and the operation, so a retry after a timeout lands on the same object.

use std::collections::HashMap;
use std::time::Duration;

use ecom_core::Money;
use ecom_core::settings::SecretString;
use serde::Deserialize;

use super::provider::{
    IntentRequest, PaymentProvider, ProviderError, ProviderRefund, ProviderState,
};
use crate::model::{Payment, PaymentStatus, Provider};

/// Stripe's API, unless `STRIPE_API_BASE` says otherwise.
pub const DEFAULT_API_BASE: &str = "https://api.stripe.com";
/// Longest a Stripe call may take; calls are made under row locks, so this bounds them.
pub const TIMEOUT: Duration = Duration::from_secs(10);

ecom_core::string_enum! {
    /// `STRIPE_CAPTURE_METHOD`: capture at once (`automatic`), or authorize now and let an
    /// administrator capture later (`manual`).
    #[serde(rename_all = "lowercase")]
    #[strum(serialize_all = "lowercase")]
    pub enum CaptureMethod {
        Automatic,
        Manual,
    }
}

/// How to reach Stripe.
#[derive(Debug, Clone)]
pub struct StripeConfig {
    /// `https://api.stripe.com`, or a Stripe-protocol server such as localstripe.
    pub api_base: String,
    pub secret_key: SecretString,
    pub capture_method: CaptureMethod,
}

/// A PaymentIntent as Stripe sends it (in API answers and in events' `data.object`);
/// only the fields the store reads.
#[derive(Debug, Clone, Deserialize)]
pub struct PaymentIntent {
    pub id: String,
    pub status: String,
    /// In cents.
    pub amount: i64,
    /// Captured so far, in cents (absent on some Stripe-protocol servers: then `amount`).
    #[serde(default)]
    pub amount_received: Option<i64>,
    /// Authorized and not yet captured, in cents.
    #[serde(default)]
    pub amount_capturable: Option<i64>,
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub last_payment_error: Option<StripeErrorBody>,
    #[serde(default)]
    pub metadata: HashMap<String, String>,
}

impl PaymentIntent {
    /// Our payment id, from `metadata[payment_id]`: how an event finds its payment before
    /// our own create call has stored the PaymentIntent id.
    pub fn payment_id(&self) -> Option<i64> {
        self.metadata.get("payment_id")?.parse().ok()
    }

    /// Our order id, from `metadata[order_id]`.
    pub fn order_id(&self) -> Option<i64> {
        self.metadata.get("order_id")?.parse().ok()
    }

    /// The PaymentIntent in our terms: `requires_capture` → authorized, `succeeded` →
    /// captured, `requires_payment_method` after a failed attempt → failed (with
    /// `last_payment_error.code`), `canceled` → cancelled, anything else (the customer
    /// still has to act, or Stripe is processing) → pending.
    pub fn state(&self) -> ProviderState {
        let cents = |c: i64| Money::from_cents(c).unwrap_or(Money::ZERO);
        let mut state = ProviderState::pending(Some(self.id.clone()));
        match self.status.as_str() {
            "requires_capture" => {
                state.status = PaymentStatus::Authorized;
                state.authorized = cents(self.amount_capturable.unwrap_or(self.amount));
            }
            "succeeded" => {
                state.status = PaymentStatus::Captured;
                state.captured = cents(self.amount_received.unwrap_or(self.amount));
                state.authorized = state.captured;
            }
            "canceled" => state.status = PaymentStatus::Cancelled,
            "requires_payment_method" if self.last_payment_error.is_some() => {
                state.status = PaymentStatus::Failed;
                state.failure_code = self
                    .last_payment_error
                    .as_ref()
                    .and_then(|e| e.code.clone())
                    .or_else(|| Some("payment_failed".to_string()));
            }
            _ => state.client_secret = self.client_secret.clone(),
        }
        state
    }
}

/// Stripe's `error` object (also a PaymentIntent's `last_payment_error`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StripeErrorBody {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    /// On a declined confirmation, the PaymentIntent as it is now.
    #[serde(default)]
    pub payment_intent: Option<Box<PaymentIntent>>,
}

#[derive(Debug, Deserialize)]
struct ErrorEnvelope {
    error: StripeErrorBody,
}

/// A refund as Stripe answers it.
#[derive(Debug, Deserialize)]
struct StripeRefund {
    id: String,
    amount: i64,
    #[serde(default)]
    status: Option<String>,
}

/// What one HTTP exchange gave: the 2xx body, or Stripe's error.
enum Answer {
    Ok(Vec<u8>),
    Error { status: u16, error: StripeErrorBody },
}

/// Stripe over its HTTP API.
#[derive(Debug, Clone)]
pub struct StripeProvider {
    http: reqwest::Client,
    config: StripeConfig,
}

impl StripeProvider {
    pub fn new(config: StripeConfig) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .build()?;
        Ok(Self { http, config })
    }

    pub fn capture_method(&self) -> CaptureMethod {
        self.config.capture_method
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.api_base.trim_end_matches('/'))
    }

    /// One POST with the form `params` under `idempotency_key`.
    async fn post(
        &self,
        operation: &'static str,
        path: &str,
        idempotency_key: &str,
        params: &[(&str, String)],
    ) -> Result<Answer, ProviderError> {
        let response = self
            .http
            .post(self.url(path))
            .bearer_auth(self.config.secret_key.expose())
            .header("Idempotency-Key", idempotency_key)
            .form(params)
            .send()
            .await
            .map_err(|e| unreachable(operation, &e))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| unreachable(operation, &e))?;
        if (200..300).contains(&status) {
            return Ok(Answer::Ok(body.to_vec()));
        }
        let error = serde_json::from_slice::<ErrorEnvelope>(&body)
            .map(|e| e.error)
            .unwrap_or_default();
        Ok(Answer::Error { status, error })
    }

    async fn get_intent(&self, reference: &str) -> Result<PaymentIntent, ProviderError> {
        let operation = "retrieve";
        let response = self
            .http
            .get(self.url(&format!("/v1/payment_intents/{reference}")))
            .bearer_auth(self.config.secret_key.expose())
            .send()
            .await
            .map_err(|e| unreachable(operation, &e))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| unreachable(operation, &e))?;
        if !(200..300).contains(&status) {
            let error = serde_json::from_slice::<ErrorEnvelope>(&body)
                .map(|e| e.error)
                .unwrap_or_default();
            return Err(refused(operation, status, error));
        }
        parse(operation, status, &body)
    }

    /// Capture or cancel. A PaymentIntent already past that point (a retry, a webhook that
    /// got there first, a shopper who paid meanwhile) is refused with a 400 (Stripe's
    /// `payment_intent_unexpected_state`): then its current state is read, and a status in
    /// `answers` is returned as the call's answer for the caller to apply.
    async fn intent_call(
        &self,
        operation: &'static str,
        payment: &Payment,
        answers: &[PaymentStatus],
    ) -> Result<ProviderState, ProviderError> {
        let reference = reference_of(operation, payment)?;
        let key = idempotency_key(payment.id, operation);
        let path = format!("/v1/payment_intents/{reference}/{operation}");
        match self.post(operation, &path, &key, &[]).await? {
            Answer::Ok(body) => Ok(parse::<PaymentIntent>(operation, 200, &body)?.state()),
            Answer::Error { status: 400, error } => {
                let now = self.get_intent(reference).await?.state();
                if answers.contains(&now.status) {
                    Ok(now)
                } else {
                    Err(refused(operation, 400, error))
                }
            }
            Answer::Error { status, error } => Err(refused(operation, status, error)),
        }
    }
}

/// `ecom-payment-{id}-{operation}`: the same payment and operation always send the same key.
pub fn idempotency_key(payment_id: i64, operation: &str) -> String {
    format!("ecom-payment-{payment_id}-{operation}")
}

fn reference_of<'p>(
    operation: &'static str,
    payment: &'p Payment,
) -> Result<&'p str, ProviderError> {
    payment
        .reference
        .as_deref()
        .ok_or(ProviderError::NoReference {
            provider: Provider::Stripe,
            operation,
            payment_id: payment.id,
        })
}

fn unreachable(operation: &'static str, err: &reqwest::Error) -> ProviderError {
    let reason = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "connection failed"
    } else {
        "transport error"
    };
    ProviderError::Unreachable {
        provider: Provider::Stripe,
        operation,
        reason,
    }
}

fn refused(operation: &'static str, status: u16, error: StripeErrorBody) -> ProviderError {
    ProviderError::Refused {
        provider: Provider::Stripe,
        operation,
        status,
        kind: error.kind.unwrap_or_else(|| "unknown".into()),
        code: error.code.unwrap_or_else(|| "none".into()),
        message: error.message.unwrap_or_default(),
    }
}

fn parse<T: for<'de> Deserialize<'de>>(
    operation: &'static str,
    status: u16,
    body: &[u8],
) -> Result<T, ProviderError> {
    serde_json::from_slice(body).map_err(|_| ProviderError::Unreadable {
        provider: Provider::Stripe,
        operation,
        status,
    })
}

#[async_trait::async_trait]
impl PaymentProvider for StripeProvider {
    fn name(&self) -> Provider {
        Provider::Stripe
    }

    async fn create(&self, request: &IntentRequest<'_>) -> Result<ProviderState, ProviderError> {
        let operation = "create";
        let mut params = vec![
            ("amount", request.amount.cents().to_string()),
            ("currency", request.currency.to_string()),
            ("capture_method", self.config.capture_method.to_string()),
            ("metadata[payment_id]", request.payment_id.to_string()),
            ("metadata[order_id]", request.order_id.to_string()),
        ];
        if let Some(method) = request.payment_method {
            params.push(("payment_method", method.to_string()));
            params.push(("confirm", "true".to_string()));
        }
        let key = idempotency_key(request.payment_id, operation);
        match self
            .post(operation, "/v1/payment_intents", &key, &params)
            .await?
        {
            Answer::Ok(body) => Ok(parse::<PaymentIntent>(operation, 200, &body)?.state()),
            // A declined confirmation: the payment failed (final), not the call.
            Answer::Error { status: 402, error } => {
                let mut state = match &error.payment_intent {
                    Some(intent) => intent.state(),
                    None => ProviderState::pending(None),
                };
                state.status = PaymentStatus::Failed;
                state.client_secret = None;
                state.failure_code = error
                    .code
                    .clone()
                    .or(state.failure_code)
                    .or_else(|| Some("payment_failed".into()));
                if let Some(reference) = state.reference.clone() {
                    self.void_failed(request.payment_id, &reference).await;
                }
                Ok(state)
            }
            Answer::Error { status, error } => Err(refused(operation, status, error)),
        }
    }

    async fn capture(&self, payment: &Payment) -> Result<ProviderState, ProviderError> {
        self.intent_call("capture", payment, &[PaymentStatus::Captured])
            .await
    }

    /// A PaymentIntent that was paid before the cancel reached it is not an error: its
    /// capture or authorization comes back, for the caller to record (and give back).
    async fn cancel(&self, payment: &Payment) -> Result<ProviderState, ProviderError> {
        use PaymentStatus::{Authorized, Cancelled, Captured};
        self.intent_call("cancel", payment, &[Cancelled, Captured, Authorized])
            .await
    }

    async fn refund(
        &self,
        payment: &Payment,
        sequence: i64,
        amount: Money,
    ) -> Result<ProviderRefund, ProviderError> {
        let operation = "refund";
        let reference = reference_of(operation, payment)?;
        let params = [
            ("payment_intent", reference.to_string()),
            ("amount", amount.cents().to_string()),
            ("metadata[payment_id]", payment.id.to_string()),
        ];
        let key = idempotency_key(payment.id, &format!("refund-{sequence}"));
        match self.post(operation, "/v1/refunds", &key, &params).await? {
            Answer::Ok(body) => {
                let refund: StripeRefund = parse(operation, 200, &body)?;
                if matches!(refund.status.as_deref(), Some("failed" | "canceled")) {
                    return Err(ProviderError::Refused {
                        provider: Provider::Stripe,
                        operation,
                        status: 200,
                        kind: "refund".into(),
                        code: refund.status.unwrap_or_default(),
                        message: String::new(),
                    });
                }
                Ok(ProviderRefund {
                    provider_refund_id: Some(refund.id),
                    amount: Money::from_cents(refund.amount).unwrap_or(amount),
                })
            }
            Answer::Error { status, error } => Err(refused(operation, status, error)),
        }
    }
}

impl StripeProvider {
    /// `failed` is final for us: the PaymentIntent is cancelled so that it cannot succeed
    /// later behind our back. Best effort; a failure is logged and the payment stays failed.
    async fn void_failed(&self, payment_id: i64, reference: &str) {
        let operation = "cancel";
        let key = idempotency_key(payment_id, operation);
        let path = format!("/v1/payment_intents/{reference}/cancel");
        match self.post(operation, &path, &key, &[]).await {
            Ok(Answer::Ok(_)) => {}
            Ok(Answer::Error { status, error }) => {
                tracing::warn!(payment_id, error = %refused(operation, status, error), "could not cancel a failed PaymentIntent");
            }
            Err(error) => {
                tracing::warn!(payment_id, %error, "could not cancel a failed PaymentIntent");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intent(json: serde_json::Value) -> PaymentIntent {
        serde_json::from_value(json).expect("a PaymentIntent")
    }

    fn money(s: &str) -> Money {
        s.parse().expect("money")
    }

    #[test]
    fn stripe_statuses_map_to_ours() {
        let base = |status: &str| {
            serde_json::json!({"id": "pi_1", "status": status, "amount": 1999,
                               "client_secret": "pi_1_secret_x", "metadata": {"payment_id": "7"}})
        };
        let authorized = intent(base("requires_capture")).state();
        assert_eq!(authorized.status, PaymentStatus::Authorized);
        assert_eq!(authorized.authorized, money("19.99"));
        assert_eq!(authorized.captured, Money::ZERO);

        let captured = intent(base("succeeded")).state();
        assert_eq!(captured.status, PaymentStatus::Captured);
        assert_eq!(
            (captured.authorized, captured.captured),
            (money("19.99"), money("19.99"))
        );

        let cancelled = intent(base("canceled")).state();
        assert_eq!(cancelled.status, PaymentStatus::Cancelled);

        for waiting in [
            "requires_action",
            "requires_confirmation",
            "processing",
            "requires_payment_method",
        ] {
            let state = intent(base(waiting)).state();
            assert_eq!(state.status, PaymentStatus::Pending, "{waiting}");
            assert_eq!(state.client_secret.as_deref(), Some("pi_1_secret_x"));
        }
        assert_eq!(intent(base("succeeded")).payment_id(), Some(7));
    }

    #[test]
    fn a_failed_attempt_is_failed_with_its_code() {
        let state = intent(serde_json::json!({
            "id": "pi_2", "status": "requires_payment_method", "amount": 500,
            "last_payment_error": {"code": "card_declined", "message": "Your card was declined."}
        }))
        .state();
        assert_eq!(state.status, PaymentStatus::Failed);
        assert_eq!(state.failure_code.as_deref(), Some("card_declined"));
        assert_eq!(state.client_secret, None);
    }

    #[test]
    fn received_and_capturable_amounts_win_over_the_amount() {
        let state = intent(serde_json::json!({
            "id": "pi_3", "status": "succeeded", "amount": 1000, "amount_received": 800
        }))
        .state();
        assert_eq!(state.captured, money("8.00"));
        let state = intent(serde_json::json!({
            "id": "pi_3", "status": "requires_capture", "amount": 1000, "amount_capturable": 900
        }))
        .state();
        assert_eq!(state.authorized, money("9.00"));
    }

    #[test]
    fn idempotency_keys_name_the_payment_and_the_operation() {
        assert_eq!(idempotency_key(42, "create"), "ecom-payment-42-create");
        assert_ne!(idempotency_key(42, "create"), idempotency_key(43, "create"));
        assert_ne!(
            idempotency_key(42, "refund-1"),
            idempotency_key(42, "refund-2")
        );
    }
}
