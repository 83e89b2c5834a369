//! ecom-admin: user, role and order administration, the audit trail and sales
//! analytics under `/admin`. It owns no tables: it calls the other domains' public
//! services and records each action in core's audit trail in the same transaction.
//!
//! Routes are declared once, with their operations (see [`ecom_core::Module`]).
//! Admin owns no rules: `api` parses and defaults its queries, and the owning domains
//! validate (roles and bans in ecom-auth, report ranges in ecom-orders).

use utoipa::OpenApi;

pub mod api;
pub mod error;
pub mod routes;
pub mod service;

#[derive(OpenApi)]
#[openapi(
    components(schemas(
        api::AdminUser,
        api::ChangeRoleRequest,
        api::BanRequest,
        api::RoleOut,
        api::PutRoleRequest,
        ecom_core::audit::AuditRecord,
        api::ChangeOrderStatusRequest,
        api::SalesReportOut,
        api::TopProductOut,
        api::DailySalesOut
    )),
    tags((name = "admin", description = "Users, roles, orders, audit trail and sales reports"))
)]
struct AdminApi;

/// The /admin module: its routes and OpenAPI fragment.
pub fn module() -> ecom_core::Module {
    ecom_core::Module::routes("admin", routes::configure, AdminApi::openapi())
}
