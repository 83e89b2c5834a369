//! Handlers of the event streams: parse, authorize, then a list or a stream.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, web};
use ecom_core::events::{self, Event, EventFilter, Wakeups};
use ecom_core::principal::StreamPrincipal;
use ecom_core::request_db::Db;
use ecom_core::{AppResult, Page, PageQuery, Permission};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::{EventListRefused, EventQuery};
use crate::error::EventsError;
use crate::service::streams::{self, Subscription};
use ecom_core::authorized::NeedsManageOrders;

/// Registers the event handlers and the wake-ups their streams wait on.
pub fn configure(cfg: &mut ServiceConfig, wakeups: Wakeups) {
    cfg.app_data(web::Data::new(wakeups));
    cfg.service(my_events).service(all_events);
}

/// The caller's own order and payment events (`order.*`, `payment.*`).
///
/// With `Accept: text/event-stream`: Server-Sent Events (`id`, `event` = type, `data` =
/// the event), a `: ping` comment at least every 15 s. `Last-Event-ID: n` resumes with
/// every event after `n`, in order, none skipped or repeated; without it (and without
/// `after`) only new events come. The stream ends when the token expires, the login is
/// revoked or the account banned. Otherwise: a list, oldest first. The token may come as
/// `?access_token=` (browsers' EventSource sends no headers).
#[utoipa::path(tag = "events", operation_id = "listMyEvents",
    params(EventQuery, PageQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume a stream after this event id")),
    responses(
        (status = 200, description = "The caller's events: a list, oldest first, or (with `Accept: text/event-stream`) a live stream",
            content((inline(Page<Event>) = "application/json"), (String = "text/event-stream"))),
        EventListRefused,
    ),
    security(("bearer" = [])))]
#[get("/users/me/events")]
pub async fn my_events(
    caller: StreamPrincipal,
    req: HttpRequest,
    db: Db,
    wakeups: web::Data<Wakeups>,
    query: web::Query<EventQuery>,
) -> AppResult<HttpResponse> {
    let (mut filter, page) = query.filter()?;
    // Only orders and payments carry an owner: user and product events never show here.
    filter.owner_id = Some(caller.principal.user_id);
    respond(&req, db, &wakeups, caller, None, filter, page).await
}

/// Every event of the store (`manage:orders`); as `GET /users/me/events` otherwise.
#[utoipa::path(tag = "events", operation_id = "adminListEvents",
    params(EventQuery, PageQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume a stream after this event id")),
    responses(
        (status = 200, description = "Every event: a list, oldest first, or (with `Accept: text/event-stream`) a live stream",
            content((inline(Page<Event>) = "application/json"), (String = "text/event-stream"))),
        NeedsManageOrders,
        EventListRefused,
    ),
    security(("bearer" = [])))]
#[get("/admin/events")]
pub async fn all_events(
    caller: StreamPrincipal,
    req: HttpRequest,
    db: Db,
    wakeups: web::Data<Wakeups>,
    query: web::Query<EventQuery>,
) -> AppResult<HttpResponse> {
    caller.principal.require(Permission::ManageOrders)?;
    let (filter, page) = query.filter()?;
    respond(
        &req,
        db,
        &wakeups,
        caller,
        Some(Permission::ManageOrders),
        filter,
        page,
    )
    .await
}

/// Whether the client asked for Server-Sent Events.
fn wants_stream(req: &HttpRequest) -> bool {
    req.headers()
        .get_all(header::ACCEPT)
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/event-stream"))
}

/// `Last-Event-ID`, if sent; 400 when it is not an event id.
fn last_event_id(req: &HttpRequest) -> Result<Option<i64>, EventsError> {
    match req.headers().get("last-event-id") {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .filter(|n| *n >= 0)
            .map(Some)
            .ok_or(EventsError::BadLastEventId),
    }
}

async fn respond(
    req: &HttpRequest,
    db: Db,
    wakeups: &Wakeups,
    caller: StreamPrincipal,
    needs: Option<Permission>,
    mut filter: EventFilter,
    page: ecom_core::PageRequest,
) -> AppResult<HttpResponse> {
    let resume = last_event_id(req)?;
    let mut conn = db.conn().await?;
    if !wants_stream(req) {
        let (items, total) = events::list_page(&mut conn, &filter, page)
            .await
            .map_err(EventsError::from)?;
        return Ok(HttpResponse::Ok().json(Page::new(items, total, page)));
    }
    filter.after = match (resume, filter.after) {
        (Some(id), _) => Some(id),
        (None, Some(after)) => Some(after),
        (None, None) => Some(
            events::last_id(&mut conn)
                .await
                .map_err(EventsError::from)?,
        ),
    };
    // The stream takes connections as it goes; this one goes back now.
    drop(conn);
    let subscription = Subscription {
        caller,
        needs,
        filter,
    };
    let body = streams::sse_body(subscription, db.pool().clone(), wakeups.clone());
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}
