//! The payments tests' own fixtures: a shop (catalog, orders, payments) on a real socket,
//! with Stripe at localstripe, and Stripe events signed the way Stripe signs them.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::Method;
use chrono::Utc;
use ecom_core::AppContext;
use ecom_core::Money;
use ecom_core::db::{PoolOptions, build_pool};
use ecom_core::settings::SecretString;
use ecom_payments::service::signature;
use ecom_payments::{
    CaptureMethod, IntentRequest, Payment, PaymentProvider, Payments, PaymentsHooks, ProviderError,
    ProviderRefund, ProviderState, StripeConfig, StripeProvider,
};
use ecom_testkit::localstripe::{self, localstripe};
use ecom_testkit::{TEST_SECRET, TestDb, test_settings};
use serde_json::{Value, json};

pub use ecom_testkit::fixtures::{MANAGER, OTHER, SHOPPER, accounts, count, token};

/// The webhook secret of every test shop.
pub const WEBHOOK_SECRET: &str = "whsec_ecom_payments_tests";

/// Stripe at localstripe with `capture_method`.
pub fn localstripe_provider(capture_method: CaptureMethod) -> Arc<dyn PaymentProvider> {
    Arc::new(
        StripeProvider::new(StripeConfig {
            api_base: localstripe().base_url(),
            secret_key: SecretString::new(localstripe::SECRET_KEY),
            capture_method,
        })
        .expect("client"),
    )
}

/// Stripe at a loopback port where nothing listens: every call fails as unreachable.
pub fn unreachable_stripe() -> StripeProvider {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a port")
        .port();
    StripeProvider::new(StripeConfig {
        api_base: format!("http://127.0.0.1:{closed}"),
        secret_key: SecretString::new("sk_test_unreachable"),
        capture_method: CaptureMethod::Automatic,
    })
    .expect("client")
}

/// Payments with `stripe` (or manual only), in US dollars, a 72 h manual window.
pub fn payments_with(stripe: Option<Arc<dyn PaymentProvider>>) -> Arc<Payments> {
    Arc::new(Payments::new(
        stripe,
        "USD",
        72,
        Some(SecretString::new(WEBHOOK_SECRET)),
    ))
}

/// The modules a payment needs, with payments installed in orders' cancellations.
pub fn modules(payments: &Arc<Payments>) -> Vec<ecom_core::Module> {
    let hooks = Arc::new(PaymentsHooks::new(payments.clone()));
    vec![
        ecom_catalog::module(),
        ecom_orders::module_with_payments(hooks),
        ecom_payments::module(payments.clone()),
    ]
}

/// A shop on a real socket: for racing requests.
pub struct Shop {
    pub db: TestDb,
    pub server: ecom_testkit::RunningServer,
    pub payments: Arc<Payments>,
    client: awc::Client,
}

impl Shop {
    /// Moves an order's payment due time a minute into the past.
    pub async fn make_overdue(&self, order_id: i64) {
        diesel_async::RunQueryDsl::execute(
            diesel::sql_query(format!(
                "UPDATE orders SET payment_due_at = now() - interval '1 minute' WHERE id = {order_id}"
            )),
            &mut self.db.connect().await,
        )
        .await
        .expect("past due");
    }

    /// One round of the expiry task with payments' gate and port: the orders it cancelled.
    pub async fn run_expiry(&self) -> usize {
        let hooks = PaymentsHooks::new(self.payments.clone());
        ecom_orders::expire_due_orders(&mut self.db.connect().await, &hooks, &hooks, 10)
            .await
            .expect("expiry runs")
    }

    /// A shop whose Stripe is localstripe with `capture_method`.
    pub async fn stripe(capture_method: CaptureMethod) -> Self {
        Self::open(payments_with(Some(localstripe_provider(capture_method)))).await
    }

    pub async fn open(payments: Arc<Payments>) -> Self {
        Self::open_with_pool(payments, 12).await
    }

    /// [`Shop::open`] with a pool of `max_size` connections (a pool wait is a minute).
    pub async fn open_with_pool(payments: Arc<Payments>, max_size: usize) -> Self {
        let db = TestDb::new().await;
        let options = PoolOptions {
            max_size,
            wait_timeout: Duration::from_secs(60),
            statement_timeout: Duration::from_secs(60),
            application_name: "ecom-payments-test".into(),
        };
        let pool = build_pool(&db.url, &options).expect("pool");
        let ctx = AppContext::new(
            test_settings(&db, &[]),
            pool,
            &SecretString::new(TEST_SECRET),
            modules(&payments),
        )
        .expect("app context builds")
        .with_resolver(accounts());
        Self {
            server: ecom_testkit::spawn_server_with_workers(ctx, 4),
            client: ecom_testkit::http_client(),
            db,
            payments,
        }
    }

    /// `method path` with a JSON body as `user` (None: anonymous): status and body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        user: Option<i64>,
    ) -> (u16, Value) {
        self.send_with(method, path, body, user, &[]).await
    }

    /// [`Shop::send`] with extra headers.
    pub async fn send_with(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        user: Option<i64>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut req = self.client.request(method, self.server.url(path));
        for &header in headers {
            req = req.insert_header(header);
        }
        if let Some(user) = user {
            req = req.insert_header(("Authorization", format!("Bearer {}", token(user))));
        }
        let mut res = match body {
            Some(b) => req.send_json(&b).await,
            None => req.send().await,
        }
        .expect("the server answers");
        let bytes = res.body().limit(1 << 20).await.expect("a body");
        (
            res.status().as_u16(),
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    pub async fn post(&self, path: &str, body: Value, user: i64) -> (u16, Value) {
        self.send(Method::POST, path, Some(body), Some(user)).await
    }

    pub async fn get(&self, path: &str, user: i64) -> Value {
        let (status, body) = self.send(Method::GET, path, None, Some(user)).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// A product of `price` with plenty of stock, and an order of one of it by `user`.
    pub async fn order(&self, user: i64, price: &str) -> Value {
        let mut conn = self.db.connect().await;
        let product = ecom_testkit::product!(&mut conn, "Lamp", price, 1000).await;
        let (status, order) = self
            .post(
                "/orders",
                json!({"items": [{"product_id": product, "quantity": 1}]}),
                user,
            )
            .await;
        assert_eq!(status, 201, "{order}");
        order
    }

    /// The shopper's order of one `price` item, paid by card at once: the new payment, in
    /// `status` (`captured`, or `authorized` with manual capture), and the order's id.
    pub async fn paid_by_card(&self, price: &str, status: &str) -> (i64, Value) {
        let order = self.order(SHOPPER, price).await;
        let order_id = order["id"].as_i64().expect("id");
        let (code, payment) = self
            .pay(order_id, SHOPPER, "stripe", Some("pm_card_visa"))
            .await;
        assert_eq!(
            (code, &payment["status"]),
            (201, &json!(status)),
            "{payment}"
        );
        (order_id, payment)
    }

    /// A new payment of `order_id` by its owner.
    pub async fn pay(
        &self,
        order_id: i64,
        user: i64,
        provider: &str,
        payment_method: Option<&str>,
    ) -> (u16, Value) {
        let mut body = json!({"provider": provider});
        if let Some(pm) = payment_method {
            body["payment_method"] = json!(pm);
        }
        self.post(&format!("/orders/{order_id}/payments"), body, user)
            .await
    }

    /// Posts `event` to the webhook, signed now with [`WEBHOOK_SECRET`].
    pub async fn post_event(&self, event: &Value) -> (u16, Value) {
        post_signed(
            &self.client,
            &self.server.url("/payments/webhooks/stripe"),
            event,
        )
        .await
    }

    /// `POST /orders/{id}/cancel` as `user`.
    pub async fn cancel(&self, order_id: i64, user: i64) -> (u16, Value) {
        let path = format!("/orders/{order_id}/cancel");
        self.send(Method::POST, &path, None, Some(user)).await
    }

    /// The order's status history, oldest first.
    pub async fn history(&self, order_id: i64) -> Vec<Value> {
        self.get(&format!("/orders/{order_id}/history"), MANAGER)
            .await["items"]
            .as_array()
            .expect("items")
            .clone()
    }

    /// How many times the order became paid.
    pub async fn times_paid(&self, order_id: i64) -> usize {
        self.history(order_id)
            .await
            .iter()
            .filter(|h| h["to_status"] == "paid")
            .count()
    }

    /// The order's payments, oldest first.
    pub async fn payments_of(&self, order_id: i64) -> Vec<Value> {
        self.get(&format!("/orders/{order_id}/payments"), MANAGER)
            .await["items"]
            .as_array()
            .expect("items")
            .clone()
    }
}

/// Posts `event` to `url` signed now with [`WEBHOOK_SECRET`], as Stripe does.
pub async fn post_signed(client: &awc::Client, url: &str, event: &Value) -> (u16, Value) {
    let body = serde_json::to_vec(event).expect("JSON");
    let header = signature::header_for(WEBHOOK_SECRET.as_bytes(), Utc::now().timestamp(), &body);
    let mut res = client
        .post(url)
        .insert_header(("Stripe-Signature", header))
        .insert_header(("Content-Type", "application/json"))
        .send_body(body)
        .await
        .expect("the server answers");
    let bytes = res.body().await.expect("a body");
    (
        res.status().as_u16(),
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A `payment_intent.*` event in Stripe's shape for our payment.
pub fn intent_event(
    event_id: &str,
    event_type: &str,
    intent_id: &str,
    intent_status: &str,
    cents: i64,
    payment_id: i64,
    order_id: i64,
) -> Value {
    let received = if intent_status == "succeeded" {
        cents
    } else {
        0
    };
    let mut intent = json!({
        "id": intent_id, "object": "payment_intent", "status": intent_status,
        "amount": cents, "amount_received": received,
        "metadata": {"payment_id": payment_id.to_string(), "order_id": order_id.to_string()},
    });
    if intent_status == "requires_capture" {
        intent["amount_capturable"] = json!(cents);
    }
    if event_type == "payment_intent.payment_failed" {
        intent["last_payment_error"] = json!({"code": "card_declined", "message": "declined"});
    }
    json!({
        "id": event_id, "object": "event", "type": event_type,
        "created": Utc::now().timestamp(),
        "data": {"object": intent},
    })
}

/// A `charge.refunded` event: `refunded_cents` in all so far.
pub fn refunded_event(event_id: &str, intent_id: &str, cents: i64, refunded_cents: i64) -> Value {
    json!({
        "id": event_id, "object": "event", "type": "charge.refunded",
        "created": Utc::now().timestamp(),
        "data": {"object": {
            "id": "ch_test", "object": "charge", "payment_intent": intent_id,
            "amount": cents, "amount_refunded": refunded_cents, "refunded": refunded_cents == cents,
        }},
    })
}

/// The shopper completes a PaymentIntent at localstripe with `payment_method`, as Stripe.js
/// would, behind the store's back (no webhook reaches the store): the intent as it is now.
pub fn complete_at_localstripe(intent: &str, payment_method: &str) -> Value {
    let stripe = localstripe();
    let path = format!("/v1/payment_intents/{intent}");
    let (status, body) = stripe
        .request("POST", &path, &format!("payment_method={payment_method}"))
        .expect("localstripe answers");
    assert_eq!(status, 200, "{body}");
    let (status, body) = stripe
        .request("POST", &format!("{path}/confirm"), "")
        .expect("localstripe answers");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("JSON")
}

/// localstripe's view of a PaymentIntent's status.
pub fn status_at_localstripe(intent: &str) -> String {
    let (status, body) = localstripe()
        .request("GET", &format!("/v1/payment_intents/{intent}"), "")
        .expect("localstripe answers");
    assert_eq!(status, 200, "{body}");
    let intent: Value = serde_json::from_str(&body).expect("JSON");
    intent["status"].as_str().expect("a status").to_string()
}

/// The amounts (cents) of every refund localstripe holds for a PaymentIntent.
pub fn refunds_at_localstripe(intent: &str) -> Vec<i64> {
    let (status, body) = localstripe()
        .request("GET", &format!("/v1/refunds?payment_intent={intent}"), "")
        .expect("localstripe answers");
    assert_eq!(status, 200, "{body}");
    let refunds: Value = serde_json::from_str(&body).expect("JSON");
    refunds["data"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| r["amount"].as_i64().expect("an amount"))
        .collect()
}

/// What a test changes of a real provider's calls: each method gets the real provider and
/// by default just passes the call on.
#[async_trait::async_trait]
pub trait Interception: Send + Sync {
    async fn create(
        &self,
        real: &dyn PaymentProvider,
        request: &IntentRequest<'_>,
    ) -> Result<ProviderState, ProviderError> {
        real.create(request).await
    }

    async fn cancel(
        &self,
        real: &dyn PaymentProvider,
        payment: &Payment,
    ) -> Result<ProviderState, ProviderError> {
        real.cancel(payment).await
    }
}

/// A real provider (localstripe) whose calls pass through an [`Interception`] first.
pub struct Intercepted<I> {
    pub real: Arc<dyn PaymentProvider>,
    pub interception: I,
}

#[async_trait::async_trait]
impl<I: Interception> PaymentProvider for Intercepted<I> {
    fn name(&self) -> ecom_payments::Provider {
        self.real.name()
    }

    async fn create(&self, request: &IntentRequest<'_>) -> Result<ProviderState, ProviderError> {
        self.interception.create(self.real.as_ref(), request).await
    }

    async fn capture(&self, payment: &Payment) -> Result<ProviderState, ProviderError> {
        self.real.capture(payment).await
    }

    async fn cancel(&self, payment: &Payment) -> Result<ProviderState, ProviderError> {
        self.interception.cancel(self.real.as_ref(), payment).await
    }

    async fn refund(
        &self,
        payment: &Payment,
        sequence: i64,
        amount: Money,
    ) -> Result<ProviderRefund, ProviderError> {
        self.real.refund(payment, sequence, amount).await
    }
}

/// Asserts that an answer is the problem `code` with `status`.
pub fn assert_problem(answer: &(u16, Value), status: u16, code: &str) {
    let (got, body) = answer;
    assert_eq!((*got, &body["code"]), (status, &json!(code)), "{body}");
}
