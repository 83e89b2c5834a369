//! Handlers of /orders: parse, authorize, call a service, render.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use ecom_core::request_db::Db;
use ecom_core::settings::Settings;
use ecom_core::{AppError, AppResult, Page, PageQuery, Permission, Principal};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::{
    CreateOrderRequest, OrderHistoryPage, OrderListQuery, OrderMissing, OrderOut, OrderPage,
};
use crate::model::{Checkout, StatusChangeRecord};
use crate::service;
use crate::service::PaymentsPort;

/// Request header carrying the client's idempotency key.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
/// Response header set to `true` when a 201 is the replay of an earlier request.
pub const IDEMPOTENT_REPLAYED: &str = "Idempotent-Replayed";
/// Registers the orders' handlers; each carries its route and its operation, and the
/// app factory answers 405 for other methods on a served path.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_orders)
        .service(create_order)
        .service(get_order)
        .service(order_history)
        .service(cancel_order);
}

fn idempotency_key(req: &HttpRequest) -> AppResult<Option<String>> {
    match req.headers().get(IDEMPOTENCY_KEY) {
        None => Ok(None),
        Some(value) => value.to_str().map(|s| Some(s.to_string())).map_err(|_| {
            AppError::invalid_field(IDEMPOTENCY_KEY, "must be visible ASCII characters")
        }),
    }
}

/// Places an order, all or nothing: every product must be in the catalog and have the
/// stock; prices are the catalog's at this moment. With `Idempotency-Key`, repeating the
/// same request within 24 h returns the first order again (same id, header
/// `Idempotent-Replayed: true`, no second stock decrement), even when the requests race.
#[utoipa::path(tag = "orders", operation_id = "createOrder",
    params(
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$",
            description = "Client-chosen key (1..=255 visible ASCII characters). The same key and body from the same user within 24 h replay the first 201; the same key with another body is 422 `idempotency_key_reused`."),
    ),
    request_body = CreateOrderRequest,
    responses(
        (status = 201, description = "The order (or the replay of the first order with this Idempotency-Key)", body = OrderOut,
            headers(
                ("Location" = String, description = "/orders/{id}"),
                ("Idempotent-Replayed" = bool, description = "`true` when this is a replay"),
            )),
        (status = 409, description = "`insufficient_stock`: the detail names each short product and variant, what was requested and what is available; nothing was ordered"),
        (status = 422, description = "`validation_failed` (quantity outside 1..=1000 per variant, no items, a line naming both or neither of `product_id` and `variant_id`, unknown field, bad Idempotency-Key), `unknown_product` (not in the catalog), `unknown_variant` (missing or deleted), or `idempotency_key_reused`"),
    ),
    security(("bearer" = [])))]
#[post("/orders")]
pub async fn create_order(
    req: HttpRequest,
    principal: Principal,
    db: Db,
    settings: web::Data<Settings>,
    body: ecom_core::JsonObject<CreateOrderRequest>,
) -> AppResult<HttpResponse> {
    let key = idempotency_key(&req)?;
    let lines = body.lines()?;
    let mut conn = db.conn().await?;
    let checkout = service::place_order(
        &mut conn,
        principal.user_id,
        &lines,
        key.as_deref(),
        settings.order_payment_window(),
    )
    .await?;
    Ok(created(checkout))
}

/// The 201 of a placed order, wherever it was placed (`POST /orders`, a cart's checkout):
/// its `Location`, and `Idempotent-Replayed: true` when it is a replay.
pub fn created(checkout: Checkout) -> HttpResponse {
    let mut res = HttpResponse::Created();
    res.insert_header((header::LOCATION, format!("/orders/{}", checkout.order.id)));
    if checkout.replayed {
        res.insert_header((IDEMPOTENT_REPLAYED, "true"));
    }
    res.json(checkout.order)
}

/// The caller's orders, newest first; `status` filters.
#[utoipa::path(tag = "orders", operation_id = "listOrders",
    params(OrderListQuery, PageQuery),
    responses(
        (status = 200, description = "A page of the caller's orders", body = OrderPage),
        (status = 400, description = "`invalid_query`: malformed query"),
        (status = 422, description = "`validation_failed`: unknown status, or limit/offset out of range"),
    ),
    security(("bearer" = [])))]
#[get("/orders")]
pub async fn list_orders(
    principal: Principal,
    db: Db,
    query: web::Query<OrderListQuery>,
) -> AppResult<web::Json<Page<OrderOut>>> {
    let page = query.page.validate()?;
    let status = query.status()?;
    let mut conn = db.conn().await?;
    let orders = service::list_user_orders(&mut conn, principal.user_id, status, page).await?;
    Ok(web::Json(orders))
}

/// One order: the caller's own, or any with `manage:orders`. Another user's order is 404.
#[utoipa::path(tag = "orders", operation_id = "getOrder",
    params(("id" = i64, Path, description = "Order id")),
    responses(
        (status = 200, description = "The order", body = OrderOut),
        (status = 400, description = "`invalid_path`: the id is not an integer"),
        OrderMissing,
    ),
    security(("bearer" = [])))]
#[get("/orders/{id}")]
pub async fn get_order(
    principal: Principal,
    db: Db,
    id: web::Path<i64>,
) -> AppResult<web::Json<OrderOut>> {
    let mut conn = db.conn().await?;
    let order = service::get_order_for(
        &mut conn,
        id.into_inner(),
        principal.user_id,
        principal.has(Permission::ManageOrders),
    )
    .await?;
    Ok(web::Json(order))
}

/// An order's status changes, oldest first: who made each (`user`, `admin` or `system`,
/// with the user's id unless `system`) and why. The caller's own order, or any with
/// `manage:orders`; another user's order is 404.
#[utoipa::path(tag = "orders", operation_id = "getOrderHistory",
    params(("id" = i64, Path, description = "Order id"), PageQuery),
    responses(
        (status = 200, description = "A page of the order's status changes, oldest first", body = OrderHistoryPage),
        (status = 400, description = "`invalid_path`: the id is not an integer; `invalid_query`: malformed query"),
        OrderMissing,
        (status = 422, description = "`validation_failed`: limit/offset out of range"),
    ),
    security(("bearer" = [])))]
#[get("/orders/{id}/history")]
pub async fn order_history(
    principal: Principal,
    db: Db,
    id: web::Path<i64>,
    query: web::Query<PageQuery>,
) -> AppResult<web::Json<Page<StatusChangeRecord>>> {
    let page = query.validate()?;
    let mut conn = db.conn().await?;
    let history = service::order_history(
        &mut conn,
        id.into_inner(),
        principal.user_id,
        principal.has(Permission::ManageOrders),
        page,
    )
    .await?;
    Ok(web::Json(history))
}

/// Cancels an order and returns its stock: the owner while `pending`, a holder of
/// `manage:orders` while `pending` or `paid` (audited when it is someone else's order).
///
/// Its open payments are voided and captured ones refunded in full first, at the
/// provider; if the provider fails, nothing changes (502 `payment_provider_error`).
#[utoipa::path(tag = "orders", operation_id = "cancelOrder",
    params(("id" = i64, Path, description = "Order id")),
    responses(
        (status = 200, description = "The cancelled order", body = OrderOut),
        (status = 400, description = "`invalid_path`: the id is not an integer"),
        OrderMissing,
        (status = 409, description = "`invalid_status_transition`: the order can no longer be cancelled (by this caller), e.g. it is already cancelled"),
        (status = 502, description = "`payment_provider_error`: the payment provider failed to void or refund the order's payment; nothing was changed, the order is as it was"),
    ),
    security(("bearer" = [])))]
#[post("/orders/{id}/cancel")]
pub async fn cancel_order(
    principal: Principal,
    db: Db,
    payments: web::Data<Arc<dyn PaymentsPort>>,
    id: web::Path<i64>,
) -> AppResult<web::Json<OrderOut>> {
    let mut conn = db.conn().await?;
    let change = service::cancel_order(
        &mut conn,
        id.into_inner(),
        principal.user_id,
        principal.has(Permission::ManageOrders),
        payments.as_ref().as_ref(),
    )
    .await?;
    Ok(web::Json(change.after))
}
