//! Handlers of /carts: parse, find the holder, call a service, render.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, delete, get, post, put, web};
use ecom_core::principal::MaybePrincipal;
use ecom_core::request_db::Db;
use ecom_core::settings::Settings;
use ecom_core::{AppResult, Principal};
use ecom_orders::api::OrderOut;
use ecom_orders::routes::IDEMPOTENCY_KEY;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::{
    CartHasProblems, CartMissing, CartOut, MergeRequest, NewCartOut, SetQuantityRequest,
};
use crate::error::CartsError;
use crate::model::Holder;
use crate::service;

/// Request header carrying a guest cart's token.
pub const CART_TOKEN: &str = "X-Cart-Token";

/// Registers the carts' handlers; each carries its route and its operation.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_cart)
        .service(get_cart)
        .service(set_cart_item)
        .service(remove_cart_item)
        .service(merge_cart)
        .service(checkout_cart);
}

/// A header's text; one that is not visible ASCII counts as absent (it matches nothing).
fn header_text<'r>(req: &'r HttpRequest, name: &str) -> Option<&'r str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The caller as a cart holder: the signed-in user and the `X-Cart-Token` sent.
fn holder<'r>(req: &'r HttpRequest, user_id: Option<i64>) -> Holder<'r> {
    Holder {
        user_id,
        cart_token: header_text(req, CART_TOKEN),
    }
}

fn location(id: i64) -> (header::HeaderName, String) {
    (header::LOCATION, format!("/carts/{id}"))
}

/// Makes a cart. Anonymous: a guest cart and its token (201), shown this once. Signed in:
/// a cart bound to the user (201), or their active cart (200): one per user, even when
/// requests race.
#[utoipa::path(tag = "carts", operation_id = "createCart",
    responses(
        (status = 201, description = "A new cart: a guest cart with its token (anonymous caller), or the signed-in user's new cart (no `token`)", body = NewCartOut,
            headers(("Location" = String, description = "/carts/{id}"))),
        (status = 200, description = "The signed-in user's active cart, which already existed", body = CartOut),
    ),
    security((), ("bearer" = [])))]
#[post("/carts")]
pub async fn create_cart(
    principal: MaybePrincipal,
    db: Db,
    settings: web::Data<Settings>,
) -> AppResult<HttpResponse> {
    let mut conn = db.conn().await?;
    let ttl = settings.cart_ttl();
    let Some(user) = principal.0 else {
        let guest = service::create_guest_cart(&mut conn, ttl).await?;
        return Ok(HttpResponse::Created()
            .insert_header(location(guest.cart.id))
            .json(NewCartOut {
                token: Some(guest.token),
                cart: guest.cart,
            }));
    };
    let found = service::user_cart(&mut conn, user.user_id, ttl).await?;
    let mut res = if found.created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    res.insert_header(location(found.cart.id));
    Ok(if found.created {
        res.json(NewCartOut {
            token: None,
            cart: found.cart,
        })
    } else {
        res.json(found.cart)
    })
}

/// The cart, priced from the catalog now, with the problems a checkout would meet.
#[utoipa::path(tag = "carts", operation_id = "getCart",
    params(
        ("id" = i64, Path, description = "Cart id"),
        ("X-Cart-Token" = Option<String>, Header, description = "A guest cart's token; a user's cart needs the owner's bearer token instead"),
    ),
    responses(
        (status = 200, description = "The cart", body = CartOut),
        CartMissing,
    ),
    security((), ("bearer" = [])))]
#[get("/carts/{id}")]
pub async fn get_cart(
    req: HttpRequest,
    principal: MaybePrincipal,
    db: Db,
    id: web::Path<i64>,
) -> AppResult<web::Json<CartOut>> {
    let holder = holder(&req, principal.0.map(|p| p.user_id));
    let mut conn = db.conn().await?;
    let cart = service::get_cart(&mut conn, id.into_inner(), holder).await?;
    Ok(web::Json(cart))
}

/// Sets the absolute quantity of a variant (idempotent; 0 removes the line) and
/// acknowledges its current price, so `price_changed` is cleared for the line.
#[utoipa::path(tag = "carts", operation_id = "setCartItem",
    params(
        ("id" = i64, Path, description = "Cart id"),
        ("variant_id" = i64, Path, description = "Variant id"),
        ("X-Cart-Token" = Option<String>, Header, description = "A guest cart's token; a user's cart needs the owner's bearer token instead"),
    ),
    request_body = SetQuantityRequest,
    responses(
        (status = 200, description = "The cart after the change", body = CartOut),
        CartMissing,
        (status = 409, description = "`cart_converted`: the cart was checked out"),
        (status = 422, description = "`validation_failed` (quantity outside 0..=1000), `unknown_variant` (missing or deleted variant, quantity > 0) or `cart_full` (a 101st line)"),
    ),
    security((), ("bearer" = [])))]
#[put("/carts/{id}/items/{variant_id}")]
pub async fn set_cart_item(
    req: HttpRequest,
    principal: MaybePrincipal,
    db: Db,
    settings: web::Data<Settings>,
    path: web::Path<(i64, i64)>,
    body: ecom_core::JsonObject<SetQuantityRequest>,
) -> AppResult<web::Json<CartOut>> {
    let (id, variant_id) = path.into_inner();
    let holder = holder(&req, principal.0.map(|p| p.user_id));
    let mut conn = db.conn().await?;
    let cart = service::set_quantity(
        &mut conn,
        id,
        holder,
        variant_id,
        body.quantity,
        settings.cart_ttl(),
    )
    .await?;
    Ok(web::Json(cart))
}

/// Removes a variant's line; a line that is not there is fine.
#[utoipa::path(tag = "carts", operation_id = "removeCartItem",
    params(
        ("id" = i64, Path, description = "Cart id"),
        ("variant_id" = i64, Path, description = "Variant id"),
        ("X-Cart-Token" = Option<String>, Header, description = "A guest cart's token; a user's cart needs the owner's bearer token instead"),
    ),
    responses(
        (status = 200, description = "The cart without the line", body = CartOut),
        CartMissing,
        (status = 409, description = "`cart_converted`: the cart was checked out"),
    ),
    security((), ("bearer" = [])))]
#[delete("/carts/{id}/items/{variant_id}")]
pub async fn remove_cart_item(
    req: HttpRequest,
    principal: MaybePrincipal,
    db: Db,
    settings: web::Data<Settings>,
    path: web::Path<(i64, i64)>,
) -> AppResult<web::Json<CartOut>> {
    let (id, variant_id) = path.into_inner();
    let holder = holder(&req, principal.0.map(|p| p.user_id));
    let mut conn = db.conn().await?;
    let cart =
        service::set_quantity(&mut conn, id, holder, variant_id, 0, settings.cart_ttl()).await?;
    Ok(web::Json(cart))
}

/// Merges a guest cart into the caller's own cart: per variant the quantity becomes
/// max(own, min(own + guest, 1000, available)); the guest cart is then gone (404). Of
/// concurrent merges of one guest cart exactly one applies; the others get 404.
#[utoipa::path(tag = "carts", operation_id = "mergeCart",
    params(("id" = i64, Path, description = "The caller's cart")),
    request_body = MergeRequest,
    responses(
        (status = 200, description = "The caller's cart with the guest cart's lines merged in", body = CartOut),
        (status = 404, description = "`not_found`: the cart is not the caller's (or is missing or expired), or the cart_token names no active guest cart"),
        (status = 409, description = "`cart_converted`: the caller's cart was checked out"),
        (status = 422, description = "`cart_full`: the merged cart would hold more than 100 lines; nothing was merged"),
    ),
    security(("bearer" = [])))]
#[post("/carts/{id}/merge")]
pub async fn merge_cart(
    principal: Principal,
    db: Db,
    settings: web::Data<Settings>,
    id: web::Path<i64>,
    body: ecom_core::JsonObject<MergeRequest>,
) -> AppResult<web::Json<CartOut>> {
    let mut conn = db.conn().await?;
    let cart = service::merge_guest_cart(
        &mut conn,
        id.into_inner(),
        principal.user_id,
        &body.cart_token,
        settings.cart_ttl(),
    )
    .await?;
    Ok(web::Json(cart))
}

/// Checks the cart out into an order, as `POST /orders` places one (stock taken, prices
/// of this moment, `pending`, the caller's), in one transaction under the cart's lock;
/// the cart becomes `converted`. The same `Idempotency-Key` again returns the same order
/// (`Idempotent-Replayed: true`); concurrent checkouts place exactly one order.
#[utoipa::path(tag = "carts", operation_id = "checkoutCart",
    params(
        ("id" = i64, Path, description = "Cart id"),
        ("Idempotency-Key" = String, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$",
            description = "Required (1..=255 visible ASCII characters). The same key from the same caller after the checkout replays its 201"),
        ("X-Cart-Token" = Option<String>, Header, description = "A guest cart's token; a user's cart needs the owner's bearer token instead"),
    ),
    responses(
        (status = 201, description = "The order (or its replay for the same Idempotency-Key)", body = OrderOut,
            headers(
                ("Location" = String, description = "/orders/{id}"),
                ("Idempotent-Replayed" = bool, description = "`true` when this is a replay"),
            )),
        (status = 400, description = "`idempotency_key_required`: no Idempotency-Key header"),
        CartMissing,
        (status = 409, description = "`cart_has_problems` (the body lists the problems; nothing was ordered), `cart_converted` (already checked out with another key) or `insufficient_stock`",
            body = CartHasProblems, content_type = "application/problem+json"),
        (status = 422, description = "`cart_empty`: the cart has no lines; `validation_failed`: a bad Idempotency-Key"),
    ),
    security(("bearer" = [])))]
#[post("/carts/{id}/checkout")]
pub async fn checkout_cart(
    req: HttpRequest,
    principal: Principal,
    db: Db,
    settings: web::Data<Settings>,
    id: web::Path<i64>,
) -> AppResult<HttpResponse> {
    // A key that is not visible ASCII reaches the service as empty, which refuses it.
    let key = match req.headers().get(IDEMPOTENCY_KEY) {
        None => return Err(CartsError::IdempotencyKeyRequired.into()),
        Some(value) => value.to_str().unwrap_or_default().to_string(),
    };
    let holder = holder(&req, Some(principal.user_id));
    let mut conn = db.conn().await?;
    let checkout = service::checkout_cart(
        &mut conn,
        id.into_inner(),
        holder,
        &key,
        settings.order_payment_window(),
        settings.cart_ttl(),
    )
    .await?;
    Ok(ecom_orders::routes::created(checkout))
}
