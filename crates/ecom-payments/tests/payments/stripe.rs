//! The Stripe client against localstripe (a stateful Stripe-protocol server), and its wire
//! format against a recording server for what localstripe does not check.

use std::sync::{Arc, Mutex};

use chrono::Utc;
use ecom_core::Money;
use ecom_core::settings::SecretString;
use ecom_payments::service::signature;
use ecom_payments::service::stripe::idempotency_key;
use ecom_payments::{
    CaptureMethod, IntentRequest, Payment, PaymentProvider, PaymentStatus, Provider, ProviderError,
    ProviderState, StripeConfig, StripeProvider,
};
use ecom_testkit::localstripe::{self, localstripe};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn money(s: &str) -> Money {
    s.parse().expect("money")
}

fn stripe_at(api_base: String, secret_key: &str, capture_method: CaptureMethod) -> StripeProvider {
    StripeProvider::new(StripeConfig {
        api_base,
        secret_key: SecretString::new(secret_key),
        capture_method,
    })
    .expect("the HTTP client builds")
}

fn stripe(capture_method: CaptureMethod) -> StripeProvider {
    stripe_at(
        localstripe().base_url(),
        localstripe::SECRET_KEY,
        capture_method,
    )
}

/// Payment ids unique within this test binary's localstripe.
fn next_payment_id() -> i64 {
    use std::sync::atomic::{AtomicI64, Ordering};
    static NEXT: AtomicI64 = AtomicI64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed) + i64::from(std::process::id()) * 1000
}

fn request<'a>(
    payment_id: i64,
    amount: &str,
    payment_method: Option<&'a str>,
) -> IntentRequest<'a> {
    IntentRequest {
        payment_id,
        order_id: payment_id + 100,
        amount: money(amount),
        currency: "usd",
        payment_method,
    }
}

/// The payment row a service would hold after `state` was stored.
fn payment_after(payment_id: i64, amount: &str, state: &ProviderState) -> Payment {
    Payment {
        id: payment_id,
        order_id: 1,
        user_id: 1,
        provider: Provider::Stripe,
        status: state.status,
        amount: money(amount),
        authorized: state.authorized,
        captured: state.captured,
        refunded: Money::ZERO,
        currency: "usd".into(),
        reference: state.reference.clone(),
        client_secret: state.client_secret.clone(),
        failure_code: state.failure_code.clone(),
        created_at: Utc::now(),
        updated_at: Utc::now(),
    }
}

/// localstripe's view of a PaymentIntent.
fn intent_at_localstripe(reference: &str) -> serde_json::Value {
    let (status, body) = localstripe()
        .request("GET", &format!("/v1/payment_intents/{reference}"), "")
        .expect("localstripe answers");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("JSON")
}

#[tokio::test]
async fn automatic_capture_creates_confirms_and_captures_in_one_call() {
    let id = next_payment_id();
    let state = stripe(CaptureMethod::Automatic)
        .create(&request(id, "19.99", Some("pm_card_visa")))
        .await
        .expect("created");
    assert_eq!(state.status, PaymentStatus::Captured);
    assert_eq!(
        (state.authorized, state.captured),
        (money("19.99"), money("19.99"))
    );
    let reference = state.reference.expect("a PaymentIntent id");
    assert!(reference.starts_with("pi_"), "{reference}");
    let intent = intent_at_localstripe(&reference);
    assert_eq!(intent["status"], "succeeded");
    assert_eq!(intent["amount"], 1999);
    assert_eq!(intent["currency"], "usd");
    assert_eq!(intent["metadata"]["payment_id"], id.to_string());
    assert_eq!(intent["metadata"]["order_id"], (id + 100).to_string());
}

#[tokio::test]
async fn without_a_payment_method_the_intent_waits_with_a_client_secret() {
    let id = next_payment_id();
    let stripe = stripe(CaptureMethod::Automatic);
    let state = stripe
        .create(&request(id, "5.00", None))
        .await
        .expect("created");
    assert_eq!(state.status, PaymentStatus::Pending);
    let secret = state.client_secret.clone().expect("a client secret");
    let reference = state.reference.clone().expect("a PaymentIntent id");
    assert!(
        secret.starts_with(&format!("{reference}_secret_")),
        "{secret}"
    );
    assert_eq!(
        intent_at_localstripe(&reference)["status"],
        "requires_payment_method"
    );

    let cancelled = stripe
        .cancel(&payment_after(id, "5.00", &state))
        .await
        .expect("cancelled");
    assert_eq!(cancelled.status, PaymentStatus::Cancelled);
    assert_eq!(intent_at_localstripe(&reference)["status"], "canceled");
}

#[tokio::test]
async fn manual_capture_authorizes_then_captures() {
    let id = next_payment_id();
    let stripe = stripe(CaptureMethod::Manual);
    let state = stripe
        .create(&request(id, "42.50", Some("pm_card_visa")))
        .await
        .expect("created");
    assert_eq!(state.status, PaymentStatus::Authorized);
    assert_eq!(
        (state.authorized, state.captured),
        (money("42.50"), Money::ZERO)
    );
    let reference = state.reference.clone().expect("a PaymentIntent id");
    assert_eq!(
        intent_at_localstripe(&reference)["status"],
        "requires_capture"
    );

    let captured = stripe
        .capture(&payment_after(id, "42.50", &state))
        .await
        .expect("captured");
    assert_eq!(captured.status, PaymentStatus::Captured);
    assert_eq!(captured.captured, money("42.50"));
    assert_eq!(intent_at_localstripe(&reference)["status"], "succeeded");
}

#[tokio::test]
async fn an_authorized_intent_can_be_cancelled() {
    let id = next_payment_id();
    let stripe = stripe(CaptureMethod::Manual);
    let state = stripe
        .create(&request(id, "8.00", Some("pm_card_visa")))
        .await
        .expect("created");
    assert_eq!(state.status, PaymentStatus::Authorized);
    let cancelled = stripe
        .cancel(&payment_after(id, "8.00", &state))
        .await
        .expect("cancelled");
    assert_eq!(cancelled.status, PaymentStatus::Cancelled);
    let reference = state.reference.expect("a PaymentIntent id");
    assert_eq!(intent_at_localstripe(&reference)["status"], "canceled");
}

#[tokio::test]
async fn a_repeated_capture_succeeds_once_and_a_captured_intent_is_not_cancelled() {
    let id = next_payment_id();
    let stripe = stripe(CaptureMethod::Manual);
    let state = stripe
        .create(&request(id, "3.00", Some("pm_card_visa")))
        .await
        .expect("created");
    let payment = payment_after(id, "3.00", &state);
    let first = stripe.capture(&payment).await.expect("captured");
    // A retried capture finds the intent captured: success, and no second capture.
    let again = stripe.capture(&payment).await.expect("already captured");
    assert_eq!(again.status, PaymentStatus::Captured);
    assert_eq!(again.captured, first.captured);
    // Cancelling a captured intent voids nothing: the answer is the capture, for the
    // caller to record (and give back where no order takes it).
    let found = stripe.cancel(&payment).await.expect("the capture reported");
    assert_eq!(
        (found.status, found.captured),
        (PaymentStatus::Captured, money("3.00"))
    );
    let reference = payment.reference.expect("a PaymentIntent id");
    assert_eq!(intent_at_localstripe(&reference)["status"], "succeeded");
}

#[tokio::test]
async fn refunds_partially_then_fully() {
    let id = next_payment_id();
    let stripe = stripe(CaptureMethod::Automatic);
    let state = stripe
        .create(&request(id, "30.00", Some("pm_card_visa")))
        .await
        .expect("created");
    assert_eq!(state.status, PaymentStatus::Captured);
    let payment = payment_after(id, "30.00", &state);

    let first = stripe
        .refund(&payment, 1, money("10.00"))
        .await
        .expect("refunded in part");
    let second = stripe
        .refund(&payment, 2, money("20.00"))
        .await
        .expect("refunded the rest");
    assert_eq!(first.amount, money("10.00"));
    assert_eq!(second.amount, money("20.00"));
    let (a, b) = (
        first.provider_refund_id.expect("a refund id"),
        second.provider_refund_id.expect("a refund id"),
    );
    assert!(
        a.starts_with("re_") && b.starts_with("re_") && a != b,
        "{a} {b}"
    );

    let reference = payment.reference.expect("a PaymentIntent id");
    let (status, body) = localstripe()
        .request(
            "GET",
            &format!("/v1/refunds?payment_intent={reference}"),
            "",
        )
        .expect("localstripe answers");
    assert_eq!(status, 200, "{body}");
    let listed: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let mut amounts: Vec<i64> = listed["data"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| r["amount"].as_i64().expect("an amount"))
        .collect();
    amounts.sort();
    assert_eq!(amounts, [1000, 2000]);
}

#[tokio::test]
async fn a_declined_card_fails_with_its_code() {
    let id = next_payment_id();
    // localstripe's card that is declined when charged (4000000000000341).
    let state = stripe(CaptureMethod::Automatic)
        .create(&request(id, "12.00", Some("pm_card_chargeCustomerFail")))
        .await
        .expect("a decline is an answer, not a provider failure");
    assert_eq!(state.status, PaymentStatus::Failed);
    assert_eq!(state.failure_code.as_deref(), Some("card_declined"));
    assert_eq!(state.captured, Money::ZERO);
    assert_eq!(state.client_secret, None);
}

#[tokio::test]
async fn refusals_and_outages_are_provider_errors_without_the_key() {
    let id = next_payment_id();
    // localstripe refuses a key that is not `sk_…`.
    let bad_key = "not-a-stripe-key-0123456789";
    let err = stripe_at(localstripe().base_url(), bad_key, CaptureMethod::Automatic)
        .create(&request(id, "1.00", Some("pm_card_visa")))
        .await
        .expect_err("refused");
    assert!(
        matches!(err, ProviderError::Refused { status: 401, .. }),
        "{err:?}"
    );
    assert!(!err.to_string().contains(bad_key), "{err}");
    assert!(!format!("{err:?}").contains(bad_key), "{err:?}");

    // An unknown payment method: Stripe's 404 is a refusal of the call.
    let err = stripe(CaptureMethod::Automatic)
        .create(&request(
            next_payment_id(),
            "1.00",
            Some("pm_does_not_exist"),
        ))
        .await
        .expect_err("refused");
    assert!(
        matches!(err, ProviderError::Refused { status: 404, .. }),
        "{err:?}"
    );

    // Nothing listens there.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let err = stripe_at(
        format!("http://127.0.0.1:{closed}"),
        localstripe::SECRET_KEY,
        CaptureMethod::Automatic,
    )
    .create(&request(id, "1.00", None))
    .await
    .expect_err("unreachable");
    assert!(matches!(err, ProviderError::Unreachable { .. }), "{err:?}");
}

/// One request as a recording server saw it.
#[derive(Debug, Clone)]
struct Recorded {
    line: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Recorded {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one HTTP/1.1 request (headers and a Content-Length body).
async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<Recorded> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let line = lines.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(Recorded {
        line,
        headers,
        body: String::from_utf8_lossy(&buf[head_end..]).to_string(),
    })
}

/// A server that records every request and answers like Stripe would for a captured
/// PaymentIntent (or a refund).
async fn recording_stripe() -> (String, Arc<Mutex<Vec<Recorded>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                while let Some(req) = read_request(&mut stream).await {
                    let body = if req.line.contains("/v1/refunds") {
                        r#"{"id":"re_rec","object":"refund","amount":500,"status":"succeeded"}"#
                    } else {
                        r#"{"id":"pi_rec","object":"payment_intent","status":"succeeded","amount":1999,"amount_received":1999,"metadata":{"payment_id":"7"}}"#
                    };
                    log.lock().expect("log").push(req);
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if stream.write_all(answer.as_bytes()).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (base, seen)
}

fn form(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.replace("%5B", "[").replace("%5D", "]"), v.to_string()))
        .collect()
}

#[tokio::test]
async fn requests_are_form_encoded_bearer_authenticated_and_idempotent_per_operation() {
    let (base, seen) = recording_stripe().await;
    let stripe = stripe_at(base, "sk_test_recorded_key", CaptureMethod::Manual);
    let create = request(7, "19.99", Some("pm_card_visa"));
    let first = stripe.create(&create).await.expect("created");
    // The same payment created again (a retry after a timeout) sends the same key, which
    // Stripe answers with the PaymentIntent of the first call (localstripe ignores keys).
    stripe.create(&create).await.expect("created again");
    let payment = payment_after(7, "19.99", &first);
    stripe.capture(&payment).await.expect("captured");
    stripe.cancel(&payment).await.expect("cancelled");
    stripe
        .refund(&payment, 1, money("5.00"))
        .await
        .expect("refund 1");
    stripe
        .refund(&payment, 2, money("5.00"))
        .await
        .expect("refund 2");

    let seen = seen.lock().expect("log").clone();
    let lines: Vec<&str> = seen.iter().map(|r| r.line.as_str()).collect();
    assert_eq!(
        lines,
        [
            "POST /v1/payment_intents HTTP/1.1",
            "POST /v1/payment_intents HTTP/1.1",
            "POST /v1/payment_intents/pi_rec/capture HTTP/1.1",
            "POST /v1/payment_intents/pi_rec/cancel HTTP/1.1",
            "POST /v1/refunds HTTP/1.1",
            "POST /v1/refunds HTTP/1.1",
        ]
    );
    for r in &seen {
        assert_eq!(
            r.header("authorization"),
            Some("Bearer sk_test_recorded_key")
        );
        assert_eq!(
            r.header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
    }
    let keys: Vec<&str> = seen
        .iter()
        .map(|r| r.header("idempotency-key").expect("an Idempotency-Key"))
        .collect();
    assert_eq!(keys[0], idempotency_key(7, "create"));
    assert_eq!(keys[0], keys[1], "a repeated create sends the same key");
    let mut distinct = keys[1..].to_vec();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        5,
        "each operation and refund has its own key: {keys:?}"
    );

    let created = form(&seen[0].body);
    for (name, value) in [
        ("amount", "1999"),
        ("currency", "usd"),
        ("capture_method", "manual"),
        ("metadata[payment_id]", "7"),
        ("metadata[order_id]", "107"),
        ("payment_method", "pm_card_visa"),
        ("confirm", "true"),
    ] {
        assert!(
            created.iter().any(|(k, v)| k == name && v == value),
            "{name}={value} in {created:?}"
        );
    }
    let refund = form(&seen[4].body);
    assert!(
        refund.contains(&("payment_intent".into(), "pi_rec".into())),
        "{refund:?}"
    );
    assert!(
        refund.contains(&("amount".into(), "500".into())),
        "{refund:?}"
    );
}

#[tokio::test]
async fn localstripe_webhooks_verify_with_our_signature_check() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("address"));
    let secret = format!("whsec_{}", next_payment_id());
    localstripe().register_webhook(&format!("verify-{}", next_payment_id()), &url, &secret);

    let id = next_payment_id();
    let state = stripe(CaptureMethod::Automatic)
        .create(&request(id, "2.00", Some("pm_card_visa")))
        .await
        .expect("created");
    let reference = state.reference.expect("a PaymentIntent id");

    // localstripe posts every event to every registered hook: wait for this intent's.
    let received = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            let (mut stream, _) = listener.accept().await.expect("a webhook");
            let Some(req) = read_request(&mut stream).await else {
                continue;
            };
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .await;
            if req.body.contains(&reference) {
                return req;
            }
        }
    })
    .await
    .expect("localstripe sends payment_intent.succeeded");

    let header = received.header("stripe-signature").map(str::to_string);
    let now = Utc::now().timestamp();
    let body = received.body.as_bytes();
    assert_eq!(
        signature::verify(header.as_deref(), body, secret.as_bytes(), now),
        Ok(())
    );
    assert!(
        signature::verify(header.as_deref(), body, b"whsec_wrong", now).is_err(),
        "another secret does not verify"
    );
    let event: serde_json::Value = serde_json::from_slice(body).expect("JSON");
    assert_eq!(event["type"], "payment_intent.succeeded");
    let intent: ecom_payments::service::PaymentIntent =
        serde_json::from_value(event["data"]["object"].clone()).expect("a PaymentIntent");
    assert_eq!(intent.payment_id(), Some(id));
    assert_eq!(intent.state().status, PaymentStatus::Captured);
}
