//! Request and response bodies of /admin.

use chrono::{DateTime, NaiveDate, Utc};
use ecom_auth::service::roles::UserFilter;
use ecom_core::audit::AuditFilter;
use ecom_core::calendar::{utc_day_end, utc_day_start};
use ecom_core::pagination::de;
use ecom_core::{AppError, PageQuery, PageRequest};
use ecom_orders::model::{AdminOrderFilter, OrderStatus, ReportRange};
use ecom_orders::service::MAX_TOP_PRODUCTS;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, IntoResponses, ToSchema};

/// A user as administrators see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminUser {
    pub id: i64,
    pub email: String,
    #[schema(example = "user")]
    pub role: String,
    pub is_active: bool,
    /// Whether the owner followed a verification (or password reset) link.
    pub email_verified: bool,
    pub full_name: Option<String>,
    pub created_at: DateTime<Utc>,
}

ecom_core::from_fields!(ecom_auth::model::User => AdminUser {
    id, email, role, is_active, email_verified, full_name, created_at
});

/// Filters of `GET /admin/users`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserListQuery {
    /// `limit`, `offset` and `skip` (documented by [`PageQuery`]).
    #[serde(flatten)]
    #[param(ignore)]
    pub page: PageQuery,
    /// Case-insensitive part of the email or the full name.
    pub search: Option<String>,
    /// Exact role name.
    pub role: Option<String>,
    #[serde(default, deserialize_with = "de::opt_bool")]
    pub is_active: Option<bool>,
}

impl UserListQuery {
    /// The filter and the page; 422 when the paging is out of bounds.
    pub fn filter(self) -> Result<(UserFilter, PageRequest), AppError> {
        let page = self.page.validate()?;
        let filter = UserFilter {
            search: self.search,
            role: self.role,
            is_active: self.is_active,
        };
        Ok((filter, page))
    }
}

/// `PATCH /admin/users/{id}/role`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRoleRequest {
    /// An existing role.
    #[schema(example = "admin")]
    pub role: String,
}

/// `PATCH /admin/users/{id}/ban`: no body, or `{"banned": true}`, bans; `{"banned": false}` unbans.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BanRequest {
    #[schema(default = true)]
    pub banned: bool,
}

/// A role and its permissions, as ecom-auth keeps them.
pub type RoleOut = ecom_auth::model::Role;

/// `PUT /admin/roles/{name}`: the role's whole permission set.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutRoleRequest {
    #[schema(example = json!(["view:reports", "manage:orders"]))]
    pub permissions: Vec<String>,
}

/// Filters of `GET /admin/audit`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// `limit`, `offset` and `skip` (documented by [`PageQuery`]).
    #[serde(flatten)]
    #[param(ignore)]
    pub page: PageQuery,
    #[serde(default, deserialize_with = "de::opt_i64")]
    pub actor_id: Option<i64>,
    /// e.g. `user.ban`, `role.put`, `order.status_change`, `product.update`.
    pub action: Option<String>,
    /// `user`, `role`, `order` or `product`.
    pub target_type: Option<String>,
    /// First UTC day included (YYYY-MM-DD).
    pub from: Option<NaiveDate>,
    /// Last UTC day included (YYYY-MM-DD).
    pub to: Option<NaiveDate>,
}

impl AuditQuery {
    /// The filter and the page; 422 for paging out of bounds or `from` after `to`.
    pub fn filter(self) -> Result<(AuditFilter, PageRequest), AppError> {
        let (page, (from, until)) = page_and_days(&self.page, self.from, self.to)?;
        let filter = AuditFilter {
            actor_id: self.actor_id,
            action: self.action,
            target_type: self.target_type,
            target_id: None,
            from,
            until,
        };
        Ok((filter, page))
    }
}

/// An optional instant range `[start, end)`.
pub type InstantRange = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// The paging, then the UTC days `[from, to]`, checked in that order by every dated listing.
fn page_and_days(
    page: &PageQuery,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<(PageRequest, InstantRange), AppError> {
    let page = page.validate()?;
    Ok((page, day_bounds(from, to)?))
}

/// `[from, to]` in UTC days as `[start, end)` instants; `from > to` is refused.
pub fn day_bounds(
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<InstantRange, AppError> {
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(AppError::invalid_field("from", "must not be after `to`"));
    }
    Ok((from.map(utc_day_start), to.map(utc_day_end)))
}

/// Filters of `GET /admin/orders`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdminOrderQuery {
    /// `limit`, `offset` and `skip` (documented by [`PageQuery`]).
    #[serde(flatten)]
    #[param(ignore)]
    pub page: PageQuery,
    #[param(value_type = Option<ecom_orders::model::OrderStatus>)]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "de::opt_i64")]
    pub user_id: Option<i64>,
    /// First UTC day of creation included (YYYY-MM-DD).
    pub from: Option<NaiveDate>,
    /// Last UTC day of creation included (YYYY-MM-DD).
    pub to: Option<NaiveDate>,
}

impl AdminOrderQuery {
    /// The filter and the page; 422 for paging out of bounds, an unknown status, or
    /// `from` after `to`.
    pub fn filter(self) -> Result<(AdminOrderFilter, PageRequest), AppError> {
        let (page, _) = page_and_days(&self.page, self.from, self.to)?;
        let status = self
            .status
            .as_deref()
            .map(str::parse::<OrderStatus>)
            .transpose()
            .map_err(|e| AppError::invalid_field("status", e.to_string()))?;
        let filter = AdminOrderFilter {
            status,
            user_id: self.user_id,
            created_from: self.from,
            created_to: self.to,
        };
        Ok((filter, page))
    }
}

/// `PATCH /admin/orders/{id}/status`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeOrderStatusRequest {
    /// `shipped` (from `paid`), `delivered` (from `shipped`), or `cancelled` (from
    /// `pending` or `paid`). `paid` and `refunded` are set by payments, not here.
    pub status: ecom_orders::model::OrderStatus,
}

/// Parameters of `GET /admin/reports/sales`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SalesReportQuery {
    /// First UTC day (YYYY-MM-DD); default 29 days before `to`.
    pub from: Option<NaiveDate>,
    /// Last UTC day, included (YYYY-MM-DD); default today.
    pub to: Option<NaiveDate>,
    /// How many best-selling products, 1..=50 (default 5).
    #[serde(default, deserialize_with = "de::opt_i64")]
    #[param(minimum = 1, maximum = 50, default = 5)]
    pub top: Option<i64>,
}

/// A best-selling product of the period.
#[derive(Debug, Serialize, ToSchema)]
pub struct TopProductOut {
    pub product_id: i64,
    pub name: String,
    pub units_sold: i64,
    #[schema(schema_with = ecom_core::money::total_schema)]
    pub revenue: ecom_core::Money,
}

/// One UTC day of the period (days without orders included).
#[derive(Debug, Serialize, ToSchema)]
pub struct DailySalesOut {
    pub date: NaiveDate,
    pub orders: i64,
    #[schema(schema_with = ecom_core::money::total_schema)]
    pub revenue: ecom_core::Money,
}

/// The sales report. Cancelled and refunded orders count in `orders_by_status` only.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "from": "2026-11-01", "to": "2026-11-02", "total_orders": 3, "total_revenue": "209.95",
    "average_order_value": "69.98",
    "orders_by_status": {"pending": 1, "paid": 1, "shipped": 0, "delivered": 1, "cancelled": 1, "refunded": 0},
    "top_products": [{"product_id": 42, "name": "Wireless Keyboard", "units_sold": 3, "revenue": "149.97"}],
    "daily": [{"date": "2026-11-01", "orders": 2, "revenue": "149.97"}, {"date": "2026-11-02", "orders": 1, "revenue": "59.98"}],
    "new_users": 2, "active_customers": 2
}))]
pub struct SalesReportOut {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Orders placed in the period, cancelled and refunded ones left out.
    pub total_orders: i64,
    #[schema(schema_with = ecom_core::money::total_schema)]
    pub total_revenue: ecom_core::Money,
    pub average_order_value: ecom_core::Money,
    pub orders_by_status: ecom_orders::model::StatusCounts,
    pub top_products: Vec<TopProductOut>,
    pub daily: Vec<DailySalesOut>,
    /// Accounts created in the period.
    pub new_users: i64,
    /// Distinct users who placed an order in the period.
    pub active_customers: i64,
}

impl SalesReportOut {
    pub fn new(report: ecom_orders::model::SalesReport, new_users: i64) -> Self {
        Self {
            from: report.from,
            to: report.to,
            total_orders: report.totals.total_orders,
            total_revenue: report.totals.total_revenue,
            average_order_value: report.totals.average_order_value,
            orders_by_status: report.orders_by_status,
            top_products: report
                .top_products
                .into_iter()
                .map(|p| TopProductOut {
                    product_id: p.product_id,
                    name: p.name,
                    units_sold: p.units_sold,
                    revenue: p.revenue,
                })
                .collect(),
            daily: report
                .daily
                .into_iter()
                .map(|d| DailySalesOut {
                    date: d.date,
                    orders: d.orders,
                    revenue: d.revenue,
                })
                .collect(),
            new_users,
            active_customers: report.totals.active_customers,
        }
    }
}

impl SalesReportQuery {
    /// The period and `top`, defaulted, then checked by the report's owner (ecom-orders).
    pub fn validate(&self, today: NaiveDate) -> Result<(ReportRange, i64), AppError> {
        let to = self.to.unwrap_or(today);
        let from = self.from.unwrap_or(to - chrono::Duration::days(29));
        let range = ReportRange::new(from, to)?;
        let top = self.top.unwrap_or(5);
        if !(1..=MAX_TOP_PRODUCTS).contains(&top) {
            return Err(AppError::invalid_field(
                "top",
                format!("must be between 1 and {MAX_TOP_PRODUCTS}"),
            ));
        }
        Ok((range, top))
    }
}

/// A user addressed by id must exist. Declared once; core gives each error its `Problem` body.
#[derive(IntoResponses)]
pub enum UserMissing {
    /// `not_found`: no such user
    #[response(status = 404)]
    NotFound,
}

/// The reads of users and roles need `manage:users`.
#[derive(IntoResponses)]
pub enum NeedsManageUsers {
    /// `forbidden`: needs `manage:users`
    #[response(status = 403)]
    Forbidden,
}

/// A change to a user (role, ban) needs `manage:users` and every permission involved.
#[derive(IntoResponses)]
pub enum UserChangeForbidden {
    /// `forbidden`: needs `manage:users`; `permission_not_held`: the user's role (or the new role) has a permission the caller lacks
    #[response(status = 403)]
    Forbidden,
}

/// Administrators cannot change their own account this way.
#[derive(IntoResponses)]
pub enum ChangesOwnAccount {
    /// `cannot_modify_self`
    #[response(status = 409)]
    OwnAccount,
}
