//! Handlers of the payments' endpoints: parse, authorize, call a service, render.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, get, post, web};
use ecom_core::authorized::{Authorized, ManageOrders, NeedsManageOrders};
use ecom_core::request_db::Db;
use ecom_core::{AppError, AppResult, JsonObject, Page, PageQuery, Permission, Principal};
use ecom_orders::routes::{IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::{
    CreatePaymentRequest, ManualPaymentRequest, OrderMissing, PaymentOut, PaymentPage,
    RefundRequest, WebhookReceived,
};
use crate::error::PaymentsError;
use crate::service::{self, Answered, Payments};

/// The header Stripe signs its webhooks with.
pub const STRIPE_SIGNATURE: &str = "Stripe-Signature";

/// Registers the payments' handlers; each carries its route and its operation.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_payment)
        .service(list_payments)
        .service(stripe_webhook)
        .service(capture_payment)
        .service(refund_payment)
        .service(manual_payment);
}

/// The request's `Idempotency-Key`, held to the orders' rule (1..=255 visible ASCII
/// characters), else 422.
fn idempotency_key(req: &HttpRequest) -> AppResult<Option<&str>> {
    let Some(value) = req.headers().get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(key) if ecom_orders::service::checkout::is_valid_key(key) => Ok(Some(key)),
        _ => Err(AppError::invalid_field(
            IDEMPOTENCY_KEY,
            "must be 1..=255 visible ASCII characters",
        )),
    }
}

/// The answer of a payment POST: `status`, with `Idempotent-Replayed: true` on a replay.
fn answer(mut res: HttpResponseBuilder, answered: Answered, location: bool) -> HttpResponse {
    if location {
        res.insert_header((
            header::LOCATION,
            format!("/orders/{}/payments", answered.payment.order_id),
        ));
    }
    if answered.replayed {
        res.insert_header((IDEMPOTENT_REPLAYED, "true"));
    }
    res.json(answered.payment)
}

/// Pays an order: a new payment of its total with `stripe` (a PaymentIntent at Stripe,
/// confirmed at once with `payment_method`) or `manual` (the payment window becomes
/// `MANUAL_PAYMENT_WINDOW_HOURS`; an administrator records the money). An open `pending`
/// payment of the order is cancelled first, at the provider too.
#[utoipa::path(tag = "payments", operation_id = "createPayment",
    params(
        ("id" = i64, Path, description = "Order id"),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$",
            description = "Client-chosen key (1..=255 visible ASCII characters). The same key and request from the same caller within 24 h replay the first answer (header `Idempotent-Replayed: true`); the same key with another request is 422 `idempotency_key_reused`."),
    ),
    request_body = CreatePaymentRequest,
    responses(
        (status = 201, description = "The payment: `captured` or `authorized` when Stripe accepted the payment method, `failed` with a `failure_code` when it was declined, else `pending` (with a `client_secret` for Stripe.js)", body = PaymentOut,
            headers(
                ("Location" = String, description = "/orders/{id}/payments"),
                ("Idempotent-Replayed" = bool, description = "`true` when this is a replay"),
            )),
        (status = 400, description = "`invalid_path`: the id is not an integer"),
        OrderMissing,
        (status = 409, description = "`order_not_payable`: the order is not `pending` or its payment window has closed; `payment_in_progress`: the order has an `authorized` payment"),
        (status = 422, description = "`unsupported_provider`: unknown, or not configured on this store; `validation_failed`: a bad `payment_method` or Idempotency-Key, or an unknown field; `idempotency_key_reused`"),
        (status = 502, description = "`payment_provider_error`: the payment provider failed; nothing changed"),
    ),
    security(("bearer" = [])))]
#[post("/orders/{id}/payments")]
pub async fn create_payment(
    req: HttpRequest,
    principal: Principal,
    db: Db,
    payments: web::Data<Payments>,
    id: web::Path<i64>,
    body: JsonObject<CreatePaymentRequest>,
) -> AppResult<HttpResponse> {
    let mut conn = db.conn().await?;
    let payment = service::create_payment(
        &mut conn,
        &payments,
        principal.user_id,
        id.into_inner(),
        body.provider.trim(),
        body.payment_method.as_deref(),
        idempotency_key(&req)?,
    )
    .await?;
    Ok(answer(HttpResponse::Created(), payment, true))
}

/// An order's payments, oldest first: the owner's order, or any with `manage:orders`.
#[utoipa::path(tag = "payments", operation_id = "listOrderPayments",
    params(("id" = i64, Path, description = "Order id"), PageQuery),
    responses(
        (status = 200, description = "A page of the order's payments", body = PaymentPage),
        (status = 400, description = "`invalid_path`: the id is not an integer; `invalid_query`: malformed query"),
        OrderMissing,
        (status = 422, description = "`validation_failed`: limit/offset out of range"),
    ),
    security(("bearer" = [])))]
#[get("/orders/{id}/payments")]
pub async fn list_payments(
    principal: Principal,
    db: Db,
    id: web::Path<i64>,
    query: web::Query<PageQuery>,
) -> AppResult<web::Json<Page<PaymentOut>>> {
    let page = query.validate()?;
    let mut conn = db.conn().await?;
    let list = service::list_payments(
        &mut conn,
        principal.user_id,
        principal.has(Permission::ManageOrders),
        id.into_inner(),
        page,
    )
    .await?;
    Ok(web::Json(list))
}

/// Stripe's events (`payment_intent.*`, `charge.refunded`), signed with
/// `STRIPE_WEBHOOK_SECRET`: the signature is checked on the raw body before it is read.
/// Each event id is applied once; other types and unknown PaymentIntents are accepted and
/// ignored.
#[utoipa::path(tag = "payments", operation_id = "stripeWebhook",
    params(("Stripe-Signature" = Option<String>, Header, description = "`t=<unix seconds>,v1=<hex HMAC-SHA256 of \"{t}.{body}\">`, within 300 s of now")),
    request_body(content = Object, description = "A Stripe event, exactly as Stripe sent it", content_type = "application/json"),
    responses(
        (status = 200, description = "Received (applied, or ignored when seen before or not about a payment of this store)", body = WebhookReceived),
        (status = 400, description = "`invalid_signature`: missing, malformed, stale or not matching (or no `STRIPE_WEBHOOK_SECRET` is set); nothing applied"),
        (status = 422, description = "`validation_failed`: signed, but not a Stripe event"),
        (status = 502, description = "`payment_provider_error`: refunding a capture the order could not take failed; Stripe sends the event again"),
    ))]
#[post("/payments/webhooks/stripe")]
pub async fn stripe_webhook(
    req: HttpRequest,
    db: Db,
    payments: web::Data<Payments>,
    body: web::Bytes,
) -> AppResult<web::Json<WebhookReceived>> {
    let signature = req
        .headers()
        .get(STRIPE_SIGNATURE)
        .and_then(|v| v.to_str().ok());
    // Verified before a connection is taken: a flood of forged events cannot drain the pool.
    let event = service::verify_stripe_event(&payments, signature, &body)?;
    let mut conn = db.conn().await?;
    service::apply_stripe_event(&mut conn, &payments, event).await?;
    Ok(web::Json(WebhookReceived { received: true }))
}

/// Captures all of an `authorized` payment at its provider; the order becomes `paid` (or,
/// when it can no longer take the money, the capture is refunded at once). Audited.
#[utoipa::path(tag = "payments", operation_id = "adminCapturePayment",
    params(("id" = i64, Path, description = "Payment id")),
    responses(
        (status = 200, description = "The payment, `captured`", body = PaymentOut),
        (status = 400, description = "`invalid_path`: the id is not an integer"),
        NeedsManageOrders,
        (status = 404, description = "`not_found`: no such payment"),
        (status = 409, description = "`invalid_payment_state`: the payment is not `authorized`"),
        (status = 502, description = "`payment_provider_error`: the payment provider failed; nothing changed"),
    ),
    security(("bearer" = [])))]
#[post("/admin/payments/{id}/capture")]
pub async fn capture_payment(
    admin: Authorized<ManageOrders>,
    db: Db,
    payments: web::Data<Payments>,
    id: web::Path<i64>,
) -> AppResult<web::Json<PaymentOut>> {
    let mut conn = db.conn().await?;
    let payment =
        service::capture_payment(&mut conn, &payments, admin.user_id, id.into_inner()).await?;
    Ok(web::Json(payment))
}

/// An empty body refunds everything left; otherwise JSON `{amount?, reason?}`.
fn parse_refund(req: &HttpRequest, body: &[u8]) -> AppResult<RefundRequest> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(RefundRequest::default());
    }
    if !ecom_core::http::has_content_type(req, "application/json") {
        return Err(AppError::unsupported_media_type(
            "send the body as application/json",
        ));
    }
    let parsed: RefundRequest = ecom_core::http::json_object(body)?;
    if parsed
        .reason
        .as_ref()
        .is_some_and(|r| r.chars().count() > 500)
    {
        return Err(AppError::invalid_field("reason", "at most 500 characters"));
    }
    Ok(parsed)
}

/// Refunds `amount` (default: all that is left) of a `captured` or `partially_refunded`
/// payment at its provider. Refunds of one payment are serialized; reaching the captured
/// amount makes the payment `refunded` and a paid, shipped or delivered order `refunded`.
/// Stock is not returned. Audited.
#[utoipa::path(tag = "payments", operation_id = "adminRefundPayment",
    params(
        ("id" = i64, Path, description = "Payment id"),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$",
            description = "Client-chosen key (1..=255 visible ASCII characters). The same key and request from the same caller within 24 h replay the first answer (header `Idempotent-Replayed: true`); the same key with another request is 422 `idempotency_key_reused`."),
    ),
    request_body(content = Option<RefundRequest>, description = "Optional; no body refunds everything left", content_type = "application/json"),
    responses(
        (status = 200, description = "The payment with the new refund", body = PaymentOut,
            headers(("Idempotent-Replayed" = bool, description = "`true` when this is a replay"))),
        (status = 400, description = "`invalid_path`: the id is not an integer; `malformed_json`: the body is not JSON"),
        NeedsManageOrders,
        (status = 404, description = "`not_found`: no such payment"),
        (status = 409, description = "`invalid_payment_state`: the payment is not `captured` or `partially_refunded`"),
        (status = 415, description = "`unsupported_media_type`: a body that is not JSON"),
        (status = 422, description = "`refund_exceeds_captured`: the refunds would exceed the captured amount; `validation_failed`: a bad amount, reason or Idempotency-Key, or an unknown field; `idempotency_key_reused`"),
        (status = 502, description = "`payment_provider_error`: the payment provider failed; nothing changed"),
    ),
    security(("bearer" = [])))]
#[post("/admin/payments/{id}/refund")]
pub async fn refund_payment(
    admin: Authorized<ManageOrders>,
    db: Db,
    payments: web::Data<Payments>,
    id: web::Path<i64>,
    req: HttpRequest,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let refund = parse_refund(&req, &body)?;
    let key = idempotency_key(&req)?;
    let mut conn = db.conn().await?;
    let payment = service::refund_payment(
        &mut conn,
        &payments,
        admin.user_id,
        id.into_inner(),
        refund.amount,
        refund
            .reason
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty()),
        key,
    )
    .await?;
    Ok(answer(HttpResponse::Ok(), payment, false))
}

/// Records a bank transfer or cash payment of an order's exact total: a `manual` payment,
/// `captured`, and the order `paid` (history `admin`, `manual_payment`). Audited.
#[utoipa::path(tag = "payments", operation_id = "adminRecordManualPayment",
    params(
        ("id" = i64, Path, description = "Order id"),
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$",
            description = "Client-chosen key (1..=255 visible ASCII characters). The same key and request from the same caller within 24 h replay the first answer (header `Idempotent-Replayed: true`); the same key with another request is 422 `idempotency_key_reused`."),
    ),
    request_body = ManualPaymentRequest,
    responses(
        (status = 201, description = "The payment, `manual` and `captured`", body = PaymentOut,
            headers(
                ("Location" = String, description = "/orders/{id}/payments"),
                ("Idempotent-Replayed" = bool, description = "`true` when this is a replay"),
            )),
        (status = 400, description = "`invalid_path`: the id is not an integer"),
        NeedsManageOrders,
        (status = 404, description = "`not_found`: no such order"),
        (status = 409, description = "`order_not_payable`: the order is not `pending`; `payment_in_progress`: it has an `authorized` payment"),
        (status = 422, description = "`amount_mismatch`: the amount is not the order's total; `validation_failed`: a bad amount, reference or Idempotency-Key, or an unknown field; `idempotency_key_reused`"),
        (status = 502, description = "`payment_provider_error`: voiding the order's open Stripe payment failed; nothing changed"),
    ),
    security(("bearer" = [])))]
#[post("/admin/orders/{id}/payments/manual")]
pub async fn manual_payment(
    req: HttpRequest,
    admin: Authorized<ManageOrders>,
    db: Db,
    payments: web::Data<Payments>,
    id: web::Path<i64>,
    body: JsonObject<ManualPaymentRequest>,
) -> AppResult<HttpResponse> {
    let reference = body.reference.trim();
    if reference.is_empty() || reference.chars().count() > 255 {
        return Err(PaymentsError::invalid("reference", "1..=255 characters").into());
    }
    if body.amount.is_zero() {
        return Err(PaymentsError::invalid("amount", "must be greater than 0").into());
    }
    let mut conn = db.conn().await?;
    let payment = service::record_manual_payment(
        &mut conn,
        &payments,
        admin.user_id,
        id.into_inner(),
        body.amount,
        reference,
        idempotency_key(&req)?,
    )
    .await?;
    Ok(answer(HttpResponse::Created(), payment, true))
}
