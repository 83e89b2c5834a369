//! Handlers of /admin: parse, authorize, call a service, render.

use std::sync::Arc;

use actix_web::{HttpRequest, get, patch, put, web};
use ecom_auth::service::roles as auth_roles;
use ecom_core::audit::{self, AuditRecord};
use ecom_core::authorized::{
    Authorized, ManageOrders, ManageUsers, NeedsManageOrders, ViewReports,
};
use ecom_core::request_db::Db;
use ecom_core::{AppError, AppResult, Page, PageQuery};
use utoipa_actix_web::service_config::ServiceConfig;

use ecom_orders::PaymentsPort;
use ecom_orders::api::OrderOut;
use ecom_orders::service::{lifecycle, queries as order_queries, reports};

use crate::api::{
    AdminOrderQuery, AdminUser, AuditQuery, BanRequest, ChangeOrderStatusRequest,
    ChangeRoleRequest, ChangesOwnAccount, NeedsManageUsers, PutRoleRequest, RoleOut,
    SalesReportOut, SalesReportQuery, UserChangeForbidden, UserListQuery, UserMissing,
};
use crate::service::{self, UserAction};

/// Registers the /admin handlers; each carries its route and its operation.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_users)
        .service(change_role)
        .service(ban_user)
        .service(list_roles)
        .service(put_role)
        .service(list_audit)
        .service(list_orders)
        .service(change_order_status)
        .service(sales_report);
}

/// Users, newest first, with filters.
#[utoipa::path(tag = "admin", operation_id = "adminListUsers",
    params(UserListQuery, PageQuery),
    responses(
        (status = 200, description = "A page of users", body = inline(Page<AdminUser>)),
        NeedsManageUsers,
        (status = 422, description = "`validation_failed`: paging out of bounds"),
    ),
    security(("bearer" = [])))]
#[get("/admin/users")]
pub async fn list_users(
    _admin: Authorized<ManageUsers>,
    db: Db,
    query: web::Query<UserListQuery>,
) -> AppResult<web::Json<Page<AdminUser>>> {
    let (filter, page) = query.into_inner().filter()?;
    let mut conn = db.conn().await?;
    let (users, total) = auth_roles::list_users(&mut conn, &filter, page).await?;
    Ok(web::Json(
        Page::new(users, total, page).map(AdminUser::from),
    ))
}

/// Gives a user another existing role. Administrators cannot change their own role.
#[utoipa::path(tag = "admin", operation_id = "adminChangeUserRole",
    params(("id" = i64, Path, description = "User id")),
    request_body = ChangeRoleRequest,
    responses(
        (status = 200, description = "The updated user", body = AdminUser),
        UserChangeForbidden,
        UserMissing,
        ChangesOwnAccount,
        (status = 422, description = "`validation_failed`: unknown role or field"),
    ),
    security(("bearer" = [])))]
#[patch("/admin/users/{id}/role")]
pub async fn change_role(
    admin: Authorized<ManageUsers>,
    db: Db,
    id: web::Path<i64>,
    body: ecom_core::JsonObject<ChangeRoleRequest>,
) -> AppResult<web::Json<AdminUser>> {
    let mut conn = db.conn().await?;
    let action = UserAction::ChangeRole(&body.role);
    let user = service::act_on_user(&mut conn, &admin, id.into_inner(), action).await?;
    Ok(web::Json(user.into()))
}

/// Bans (no body, or `{"banned": true}`) or unbans (`{"banned": false}`) a user. A ban
/// revokes every refresh token and stops access tokens on the next request.
#[utoipa::path(tag = "admin", operation_id = "adminBanUser",
    params(("id" = i64, Path, description = "User id")),
    request_body(content = Option<BanRequest>, description = "Optional; no body bans", content_type = "application/json"),
    responses(
        (status = 200, description = "The updated user", body = AdminUser),
        UserChangeForbidden,
        UserMissing,
        ChangesOwnAccount,
    ),
    security(("bearer" = [])))]
#[patch("/admin/users/{id}/ban")]
pub async fn ban_user(
    admin: Authorized<ManageUsers>,
    db: Db,
    id: web::Path<i64>,
    req: HttpRequest,
    body: web::Bytes,
) -> AppResult<web::Json<AdminUser>> {
    let action = if parse_ban(&req, &body)? {
        UserAction::Ban
    } else {
        UserAction::Unban
    };
    let mut conn = db.conn().await?;
    let user = service::act_on_user(&mut conn, &admin, id.into_inner(), action).await?;
    Ok(web::Json(user.into()))
}

/// An empty body bans; otherwise it must be JSON `{"banned": bool}`.
fn parse_ban(req: &HttpRequest, body: &[u8]) -> AppResult<bool> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(true);
    }
    if !ecom_core::http::has_content_type(req, "application/json") {
        return Err(AppError::unsupported_media_type(
            "send the body as application/json",
        ));
    }
    let parsed: BanRequest = ecom_core::http::json_object(body)?;
    Ok(parsed.banned)
}

/// Every role with its permissions.
#[utoipa::path(tag = "admin", operation_id = "adminListRoles",
    responses(
        (status = 200, description = "Roles by name", body = Vec<RoleOut>),
        NeedsManageUsers,
    ),
    security(("bearer" = [])))]
#[get("/admin/roles")]
pub async fn list_roles(
    _admin: Authorized<ManageUsers>,
    db: Db,
) -> AppResult<web::Json<Vec<RoleOut>>> {
    let mut conn = db.conn().await?;
    let roles = auth_roles::list_roles(&mut conn).await?;
    Ok(web::Json(roles))
}

/// Creates a role or replaces its permissions; `admin` always keeps every permission.
/// Holders of the role get the new set on their next request.
#[utoipa::path(tag = "admin", operation_id = "adminPutRolePermissions",
    params(("name" = String, Path, description = "Role name: a-z, 0-9, '_' and '-'")),
    request_body = PutRoleRequest,
    responses(
        (status = 200, description = "The role as stored", body = RoleOut),
        (status = 403, description = "`forbidden`: needs `manage:users`; `permission_not_held`: adds or removes a permission the caller lacks (one the caller lacks may stay as it is)"),
        (status = 409, description = "`cannot_modify_self`: the caller's own role"),
        (status = 422, description = "`validation_failed`: unknown permission or bad name"),
    ),
    security(("bearer" = [])))]
#[put("/admin/roles/{name}")]
pub async fn put_role(
    admin: Authorized<ManageUsers>,
    db: Db,
    name: web::Path<String>,
    body: ecom_core::JsonObject<PutRoleRequest>,
) -> AppResult<web::Json<RoleOut>> {
    let mut conn = db.conn().await?;
    let role = service::put_role(&mut conn, &admin, &name, &body.permissions).await?;
    Ok(web::Json(role))
}

/// The append-only trail of administrative actions, newest first.
#[utoipa::path(tag = "admin", operation_id = "adminListAuditRecords",
    params(AuditQuery, PageQuery),
    responses(
        (status = 200, description = "A page of the trail", body = inline(Page<AuditRecord>)),
        (status = 400, description = "`invalid_query`"),
        NeedsManageUsers,
        (status = 422, description = "`validation_failed`: paging or `from` after `to`"),
    ),
    security(("bearer" = [])))]
#[get("/admin/audit")]
pub async fn list_audit(
    _admin: Authorized<ManageUsers>,
    db: Db,
    query: web::Query<AuditQuery>,
) -> AppResult<web::Json<Page<AuditRecord>>> {
    let (filter, page) = query.into_inner().filter()?;
    let mut conn = db.conn().await?;
    let (items, total) = audit::list(&mut conn, &filter, page).await?;
    Ok(web::Json(Page::new(items, total, page)))
}

/// Every order, newest first, with filters.
#[utoipa::path(tag = "admin", operation_id = "adminListOrders",
    params(AdminOrderQuery, PageQuery),
    responses(
        (status = 200, description = "A page of orders", body = ecom_orders::api::OrderPage),
        (status = 400, description = "`invalid_query`"),
        NeedsManageOrders,
        (status = 422, description = "`validation_failed`: paging, status, or `from` after `to`"),
    ),
    security(("bearer" = [])))]
#[get("/admin/orders")]
pub async fn list_orders(
    _admin: Authorized<ManageOrders>,
    db: Db,
    query: web::Query<AdminOrderQuery>,
) -> AppResult<web::Json<Page<OrderOut>>> {
    let (filter, page) = query.into_inner().filter()?;
    let mut conn = db.conn().await?;
    let orders = order_queries::list_orders(&mut conn, &filter, page).await?;
    Ok(web::Json(orders))
}

/// Moves an order along its lifecycle: to `shipped`, `delivered` or `cancelled` only.
///
/// `paid` and `refunded` come from payments (a captured or manual payment, refunds), so
/// asking for them, or for `pending`, is 409 `invalid_status_transition` like any illegal
/// jump. `cancelled` works as `POST /orders/{id}/cancel` does for `manage:orders`: from
/// `pending` or `paid`, the order's payments voided or refunded in full at the provider
/// first (its failure: 502, nothing changed), the stock returned. Recorded in the order's
/// history and the audit trail.
#[utoipa::path(tag = "admin", operation_id = "adminChangeOrderStatus",
    params(("id" = i64, Path, description = "Order id")),
    request_body = ChangeOrderStatusRequest,
    responses(
        (status = 200, description = "The order after the change", body = OrderOut),
        NeedsManageOrders,
        (status = 404, description = "`not_found`: no such order"),
        (status = 409, description = "`invalid_status_transition`: an illegal jump, or a status this endpoint does not set (pending, paid, refunded)"),
        (status = 422, description = "`validation_failed`: unknown status"),
        (status = 502, description = "`payment_provider_error`: cancelling, the payment provider failed to void or refund the order's payment; nothing was changed"),
    ),
    security(("bearer" = [])))]
#[patch("/admin/orders/{id}/status")]
pub async fn change_order_status(
    admin: Authorized<ManageOrders>,
    db: Db,
    payments: web::Data<Arc<dyn PaymentsPort>>,
    id: web::Path<i64>,
    body: ecom_core::JsonObject<ChangeOrderStatusRequest>,
) -> AppResult<web::Json<OrderOut>> {
    let mut conn = db.conn().await?;
    let change = lifecycle::change_status_audited(
        &mut conn,
        id.into_inner(),
        body.status,
        admin.user_id,
        payments.as_ref().as_ref(),
    )
    .await?;
    Ok(web::Json(change.after))
}

/// Sales figures over UTC days `from..=to` (default: the last 30 days).
#[utoipa::path(tag = "admin", operation_id = "adminGetSalesReport",
    params(SalesReportQuery),
    responses(
        (status = 200, description = "The report", body = SalesReportOut),
        (status = 400, description = "`invalid_query`: a date is not YYYY-MM-DD"),
        (status = 403, description = "`forbidden`: needs `view:reports`"),
        (status = 422, description = "`validation_failed`: `from` after `to`, period too long, or `top` out of 1..=50"),
    ),
    security(("bearer" = [])))]
#[get("/admin/reports/sales")]
pub async fn sales_report(
    _admin: Authorized<ViewReports>,
    db: Db,
    query: web::Query<SalesReportQuery>,
) -> AppResult<web::Json<SalesReportOut>> {
    let (range, top) = query.validate(chrono::Utc::now().date_naive())?;
    let (from, to) = (range.from, range.to);
    // Rollups are written on the primary; the report is read on the read replica when one
    // is up (it may be up to READ_REPLICA_MAX_LAG_MS behind, and uses the rollups it has).
    reports::build_rollups(&mut *db.conn().await?, range).await?;
    let (report, new_users) = db
        .read_replica(async |conn| {
            let report = reports::read_sales_report(conn, range, top).await?;
            let new_users = ecom_auth::service::accounts::count_created_between(
                conn,
                ecom_core::calendar::utc_day_start(from),
                ecom_core::calendar::utc_day_end(to),
            )
            .await?;
            Ok((report, new_users))
        })
        .await?;
    Ok(web::Json(SalesReportOut::new(report, new_users)))
}
