//! Handlers of /admin/webhooks: parse, authorize, call a service, render.

use actix_web::http::header;
use actix_web::{HttpResponse, delete, get, patch, post, web};
use ecom_core::authorized::{Authorized, ManageWebhooks};
use ecom_core::request_db::Db;
use ecom_core::settings::Settings;
use ecom_core::{AppResult, JsonObject, Page, PageQuery};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::{
    CreateWebhookRequest, DeliveryOut, DeliveryPage, DeliveryQuery, NeedsManageWebhooks,
    TestQueued, UpdateWebhookRequest, WebhookCreated, WebhookOut, WebhookPage,
};
use crate::service;

/// Registers the webhooks' handlers; each carries its route and its operation.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_webhook)
        .service(list_webhooks)
        .service(get_webhook)
        .service(update_webhook)
        .service(delete_webhook)
        .service(test_webhook)
        .service(list_deliveries)
        .service(retry_delivery);
}

/// Registers an endpoint that receives the events its patterns name, signed the Standard
/// Webhooks way with the `secret` shown in this answer only. Audited (`webhook.create`).
#[utoipa::path(tag = "webhooks", operation_id = "createWebhook",
    request_body = CreateWebhookRequest,
    responses(
        (status = 201, description = "The endpoint and its signing secret (shown this once)", body = WebhookCreated,
            headers(("Location" = String, description = "/admin/webhooks/{id}"))),
        (status = 400, description = "`malformed_json`: the body is not JSON"),
        NeedsManageWebhooks,
        (status = 415, description = "`unsupported_media_type`: a body that is not JSON"),
        (status = 422, description = "`url_not_allowed`: the host is (or resolves to) a private, loopback, link-local, unspecified or multicast address and `WEBHOOK_ALLOW_PRIVATE` is off; `validation_failed`: a URL that is not http(s) or whose host does not resolve, an unknown event pattern, a long description, or an unknown field"),
    ),
    security(("bearer" = [])))]
#[post("/admin/webhooks")]
pub async fn create_webhook(
    admin: Authorized<ManageWebhooks>,
    db: Db,
    settings: web::Data<Settings>,
    body: JsonObject<CreateWebhookRequest>,
) -> AppResult<HttpResponse> {
    // Checked (its host resolved) before a connection is taken.
    let new = service::check_new_endpoint(&body, settings.webhook_allow_private).await?;
    let mut conn = db.conn().await?;
    let created = service::create_endpoint(&mut conn, admin.user_id, &new).await?;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/admin/webhooks/{}", created.webhook.id),
        ))
        .json(created))
}

/// Every endpoint, oldest first (without secrets).
#[utoipa::path(tag = "webhooks", operation_id = "listWebhooks",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of endpoints", body = WebhookPage),
        (status = 400, description = "`invalid_query`: malformed query"),
        NeedsManageWebhooks,
        (status = 422, description = "`validation_failed`: limit/offset out of range"),
    ),
    security(("bearer" = [])))]
#[get("/admin/webhooks")]
pub async fn list_webhooks(
    _admin: Authorized<ManageWebhooks>,
    db: Db,
    query: web::Query<PageQuery>,
) -> AppResult<web::Json<Page<WebhookOut>>> {
    let page = query.validate()?;
    let mut conn = db.conn().await?;
    Ok(web::Json(service::list_endpoints(&mut conn, page).await?))
}

/// One endpoint (without its secret).
#[utoipa::path(tag = "webhooks", operation_id = "getWebhook",
    params(("id" = i64, Path, description = "Endpoint id")),
    responses(
        (status = 200, description = "The endpoint", body = WebhookOut),
        (status = 400, description = "`invalid_path`: the id is not an integer"),
        NeedsManageWebhooks,
        (status = 404, description = "`not_found`: no such endpoint"),
    ),
    security(("bearer" = [])))]
#[get("/admin/webhooks/{id}")]
pub async fn get_webhook(
    _admin: Authorized<ManageWebhooks>,
    db: Db,
    id: web::Path<i64>,
) -> AppResult<web::Json<WebhookOut>> {
    let mut conn = db.conn().await?;
    let endpoint = service::get_endpoint(&mut conn, id.into_inner()).await?;
    Ok(web::Json(endpoint.into()))
}

/// Changes an endpoint's URL, patterns, description or state, checked as on create.
/// `is_active: true` re-enables an endpoint the store disabled after failed deliveries
/// (its count of failures starts again; its pending deliveries resume); `false` disables
/// it (no deliveries until re-enabled; pending ones wait). Audited (`webhook.update`).
#[utoipa::path(tag = "webhooks", operation_id = "updateWebhook",
    params(("id" = i64, Path, description = "Endpoint id")),
    request_body = UpdateWebhookRequest,
    responses(
        (status = 200, description = "The endpoint after the change", body = WebhookOut),
        (status = 400, description = "`invalid_path`: the id is not an integer; `malformed_json`: the body is not JSON"),
        NeedsManageWebhooks,
        (status = 404, description = "`not_found`: no such endpoint"),
        (status = 415, description = "`unsupported_media_type`: a body that is not JSON"),
        (status = 422, description = "`url_not_allowed` or `validation_failed`, as on create"),
    ),
    security(("bearer" = [])))]
#[patch("/admin/webhooks/{id}")]
pub async fn update_webhook(
    admin: Authorized<ManageWebhooks>,
    db: Db,
    settings: web::Data<Settings>,
    id: web::Path<i64>,
    body: JsonObject<UpdateWebhookRequest>,
) -> AppResult<web::Json<WebhookOut>> {
    let changes = service::check_changes(&body, settings.webhook_allow_private).await?;
    let mut conn = db.conn().await?;
    let updated =
        service::update_endpoint(&mut conn, admin.user_id, id.into_inner(), &changes).await?;
    Ok(web::Json(updated))
}

/// Deletes an endpoint and its delivery log; nothing more is sent to it. Audited
/// (`webhook.delete`).
#[utoipa::path(tag = "webhooks", operation_id = "deleteWebhook",
    params(("id" = i64, Path, description = "Endpoint id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "`invalid_path`: the id is not an integer"),
        NeedsManageWebhooks,
        (status = 404, description = "`not_found`: no such endpoint"),
    ),
    security(("bearer" = [])))]
#[delete("/admin/webhooks/{id}")]
pub async fn delete_webhook(
    admin: Authorized<ManageWebhooks>,
    db: Db,
    id: web::Path<i64>,
) -> AppResult<HttpResponse> {
    let mut conn = db.conn().await?;
    service::delete_endpoint(&mut conn, admin.user_id, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Records a `webhook.test` event (aggregate `webhook`, data `{endpoint_id, message}`) in
/// the outbox; it is delivered to this endpoint only, whatever its patterns, and its
/// delivery shows in the log once the fan-out has passed it.
#[utoipa::path(tag = "webhooks", operation_id = "testWebhook",
    params(("id" = i64, Path, description = "Endpoint id")),
    responses(
        (status = 202, description = "The test event is recorded; its delivery follows", body = TestQueued),
        (status = 400, description = "`invalid_path`: the id is not an integer"),
        NeedsManageWebhooks,
        (status = 404, description = "`not_found`: no such endpoint"),
        (status = 409, description = "`webhook_disabled`: the endpoint is disabled; re-enable it first"),
    ),
    security(("bearer" = [])))]
#[post("/admin/webhooks/{id}/test")]
pub async fn test_webhook(
    _admin: Authorized<ManageWebhooks>,
    db: Db,
    id: web::Path<i64>,
) -> AppResult<HttpResponse> {
    let mut conn = db.conn().await?;
    let delivery = service::send_test(&mut conn, id.into_inner()).await?;
    Ok(HttpResponse::Accepted().json(delivery))
}

/// The endpoint's delivery log, newest first; `status` filters. Delivery: a `POST` of the
/// event envelope (the same bytes at every attempt) with `webhook-id` (the event id),
/// `webhook-timestamp` and `webhook-signature` (Standard Webhooks). A 2xx within 10 s
/// succeeds; a network error, a timeout, 5xx, 408 or 429 is retried after
/// `WEBHOOK_RETRY_BASE_MS`·2^(attempts−1) (at most 1 h, ±25 % jitter) up to
/// `WEBHOOK_MAX_ATTEMPTS`; any other status (redirects are not followed) or a destination
/// that resolves to a private address (`destination_not_allowed`) fails at once.
/// `WEBHOOK_DISABLE_AFTER_FAILURES` failed deliveries in a row disable the endpoint;
/// while it is disabled its pending deliveries wait (none is sent) and resume when it is
/// re-enabled. Deliveries are kept `EVENT_RETENTION_DAYS`.
#[utoipa::path(tag = "webhooks", operation_id = "listWebhookDeliveries",
    params(("id" = i64, Path, description = "Endpoint id"), DeliveryQuery, PageQuery),
    responses(
        (status = 200, description = "A page of deliveries, newest first", body = DeliveryPage),
        (status = 400, description = "`invalid_path`: the id is not an integer; `invalid_query`: malformed query"),
        NeedsManageWebhooks,
        (status = 404, description = "`not_found`: no such endpoint"),
        (status = 422, description = "`validation_failed`: unknown status, or limit/offset out of range"),
    ),
    security(("bearer" = [])))]
#[get("/admin/webhooks/{id}/deliveries")]
pub async fn list_deliveries(
    _admin: Authorized<ManageWebhooks>,
    db: Db,
    id: web::Path<i64>,
    query: web::Query<DeliveryQuery>,
) -> AppResult<web::Json<Page<DeliveryOut>>> {
    let page = query.page.validate()?;
    let status = query.status()?;
    let mut conn = db.conn().await?;
    let deliveries = service::list_deliveries(&mut conn, id.into_inner(), status, page).await?;
    Ok(web::Json(deliveries))
}

/// Queues a delivery again, now, with a fresh attempt budget (`attempts` starts at 0).
#[utoipa::path(tag = "webhooks", operation_id = "retryWebhookDelivery",
    params(
        ("id" = i64, Path, description = "Endpoint id"),
        ("delivery_id" = i64, Path, description = "Delivery id"),
    ),
    responses(
        (status = 202, description = "The delivery, `pending` again", body = DeliveryOut),
        (status = 400, description = "`invalid_path`: an id is not an integer"),
        NeedsManageWebhooks,
        (status = 404, description = "`not_found`: no such endpoint, or no such delivery of it"),
        (status = 409, description = "`already_delivered`: the delivery succeeded; `webhook_disabled`: the endpoint is disabled"),
    ),
    security(("bearer" = [])))]
#[post("/admin/webhooks/{id}/deliveries/{delivery_id}/retry")]
pub async fn retry_delivery(
    _admin: Authorized<ManageWebhooks>,
    db: Db,
    path: web::Path<(i64, i64)>,
) -> AppResult<HttpResponse> {
    let (id, delivery_id) = path.into_inner();
    let mut conn = db.conn().await?;
    let delivery = service::retry_delivery(&mut conn, id, delivery_id).await?;
    Ok(HttpResponse::Accepted().json(delivery))
}
