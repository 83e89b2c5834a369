//! Rows and domain types of orders.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::prelude::*;
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::{BigInt, Date, Numeric, Text};
use ecom_core::Money;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::schema::{order_lines, order_status_history, orders};
pub use ecom_catalog::ItemRef;

ecom_core::string_enum! {
    /// Where an order is in its lifecycle:
    /// `pending → paid → shipped → delivered`, `pending | paid → cancelled`, and
    /// `paid | shipped | delivered → refunded` (its payment refunded in full).
    #[derive(AsExpression, FromSqlRow)]
    #[serde(rename_all = "lowercase")]
    #[strum(serialize_all = "lowercase")]
    #[diesel(sql_type = Text)]
    pub enum OrderStatus {
        Pending,
        Paid,
        Shipped,
        Delivered,
        Cancelled,
        Refunded,
    }
}

impl OrderStatus {
    /// Whether the lifecycle allows going from `self` to `to`. Which caller may take an
    /// edge is the services' business: `→ paid` and `→ refunded` only through payments
    /// (see [`crate::service::settlement`]).
    pub fn can_become(&self, to: OrderStatus) -> bool {
        use OrderStatus::*;
        matches!(
            (self, to),
            (Pending, Paid)
                | (Paid, Shipped)
                | (Shipped, Delivered)
                | (Pending, Cancelled)
                | (Paid, Cancelled)
                | (Paid, Refunded)
                | (Shipped, Refunded)
                | (Delivered, Refunded)
        )
    }

    /// Whether an order in this status counts as a sale in the reports: cancelled and
    /// refunded orders kept no money.
    pub fn is_sale(&self) -> bool {
        !matches!(self, OrderStatus::Cancelled | OrderStatus::Refunded)
    }
}

/// Why a text is not a status: names it and lists the statuses.
pub fn unknown_status(text: &str) -> String {
    let names: Vec<&str> = OrderStatus::ALL.iter().map(OrderStatus::as_str).collect();
    format!("`{text}` is not an order status ({})", names.join(", "))
}

impl ToSql<Text, Pg> for OrderStatus {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <str as ToSql<Text, Pg>>::to_sql(self.as_str(), out)
    }
}

impl FromSql<Text, Pg> for OrderStatus {
    fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<Text, Pg>>::from_sql(bytes)?;
        text.parse().map_err(|_| unknown_status(&text).into())
    }
}

/// An order row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = orders, check_for_backend(diesel::pg::Pg))]
pub struct OrderRow {
    pub id: i64,
    pub user_id: i64,
    pub status: OrderStatus,
    pub total_price: Money,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub payment_due_at: Option<DateTime<Utc>>,
}

impl OrderRow {
    /// See [`Order::is_payable`].
    pub(crate) fn is_payable(&self, now: DateTime<Utc>) -> bool {
        payable(self.status, self.payment_due_at, now)
    }
}

/// `pending` and before the due time (a pending order without one never falls due).
fn payable(status: OrderStatus, due: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    status == OrderStatus::Pending && due.is_none_or(|due| now < due)
}

/// One line of an order: one variant, with the product's name and the variant's SKU,
/// options and unit price at purchase.
///
/// Also the response body (`OrderItemOut`): the line is sent as stored, without its order id.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Serialize, Deserialize, ToSchema)]
#[diesel(table_name = order_lines, check_for_backend(diesel::pg::Pg))]
#[schema(as = OrderItemOut, description = "One line of an order: one variant, with the product's name and the variant's SKU, options\nand unit price at purchase.")]
pub struct OrderLine {
    #[serde(skip)]
    pub order_id: i64,
    pub product_id: i64,
    #[schema(example = "Wireless Keyboard")]
    pub product_name: String,
    pub variant_id: i64,
    #[schema(example = "KB-WL-UK")]
    pub sku: Option<String>,
    /// The variant's options, name → value (`{}` for a product without options).
    #[schema(value_type = HashMap<String, String>, example = json!({"Layout": "UK"}))]
    pub options: serde_json::Value,
    #[schema(example = 2)]
    pub quantity: i32,
    pub unit_price: Money,
    /// `unit_price × quantity`, exact.
    pub line_total: Money,
}

/// An order with its lines; also the response body (`OrderOut`), sent as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = OrderOut, description = "An order. `status` follows `pending → paid → shipped → delivered`, or `pending | paid →\ncancelled`; `paid | shipped | delivered → refunded` when its payment is refunded in full.")]
#[schema(example = json!({
    "id": 7, "user_id": 12, "status": "pending", "total_price": "109.97",
    "payment_due_at": "2026-11-25T18:30:00Z",
    "created_at": "2026-11-25T18:00:00Z", "updated_at": "2026-11-25T18:00:00Z",
    "items": [
        {"product_id": 3, "product_name": "USB-C Cable", "variant_id": 3, "sku": null, "options": {},
         "quantity": 1, "unit_price": "9.99", "line_total": "9.99"},
        {"product_id": 42, "product_name": "Wireless Keyboard", "variant_id": 57, "sku": "KB-WL-UK",
         "options": {"Layout": "UK"}, "quantity": 2, "unit_price": "49.99", "line_total": "99.98"}
    ]
}))]
pub struct Order {
    pub id: i64,
    pub user_id: i64,
    pub status: OrderStatus,
    /// Sum of the line totals, exact.
    pub total_price: Money,
    /// While `pending`: when the server cancels the order unless it is paid by then
    /// (placement + `ORDER_PAYMENT_WINDOW_SECONDS`); `null` in every other status.
    pub payment_due_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// One line per variant (duplicate request lines are merged), in product-id, then
    /// variant-id order.
    pub items: Vec<OrderLine>,
}

impl Order {
    /// Whether the order may be paid at `now`: `pending` and not past its `payment_due_at`.
    pub fn is_payable(&self, now: DateTime<Utc>) -> bool {
        payable(self.status, self.payment_due_at, now)
    }

    pub(crate) fn from_row(row: OrderRow, items: Vec<OrderLine>) -> Self {
        Self {
            id: row.id,
            user_id: row.user_id,
            status: row.status,
            total_price: row.total_price,
            payment_due_at: row.payment_due_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
            items,
        }
    }
}

/// One line of a checkout request as the client sent it: a variant, or a product (its
/// default variant), and a quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestedLine {
    pub item: ItemRef,
    pub quantity: i64,
}

/// What `POST /orders` produced: a new order, or the replay of an earlier one with the
/// same `Idempotency-Key` and body.
#[derive(Debug, Clone)]
pub struct Checkout {
    pub order: Order,
    pub replayed: bool,
}

ecom_core::string_enum! {
    /// Who made a status change: the order's owner, an administrator, or the store itself
    /// (an unpaid order expiring, a payment arriving).
    #[derive(AsExpression, FromSqlRow)]
    #[serde(rename_all = "lowercase")]
    #[strum(serialize_all = "lowercase")]
    #[diesel(sql_type = Text)]
    #[schema(as = OrderActor)]
    pub enum ActorKind {
        User,
        Admin,
        System,
    }
}

impl ToSql<Text, Pg> for ActorKind {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <str as ToSql<Text, Pg>>::to_sql(self.as_str(), out)
    }
}

impl FromSql<Text, Pg> for ActorKind {
    fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<Text, Pg>>::from_sql(bytes)?;
        text.parse()
            .map_err(|_| format!("`{text}` is not an order actor").into())
    }
}

/// Who makes a status change, as the history records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// The order's owner, acting on their own order.
    User(i64),
    /// Someone acting with `manage:orders` (or an administrative process naming its user).
    Admin(i64),
    /// The store itself: no user is named.
    System,
}

impl Actor {
    pub fn kind(&self) -> ActorKind {
        match self {
            Actor::User(_) => ActorKind::User,
            Actor::Admin(_) => ActorKind::Admin,
            Actor::System => ActorKind::System,
        }
    }

    /// The acting user's id; `None` for the system.
    pub fn user_id(&self) -> Option<i64> {
        match *self {
            Actor::User(id) | Actor::Admin(id) => Some(id),
            Actor::System => None,
        }
    }
}

/// One recorded status change; also the response body of `GET /orders/{id}/history`
/// (`OrderHistoryEntry`), sent without its ids.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Serialize, ToSchema)]
#[diesel(table_name = order_status_history, check_for_backend(diesel::pg::Pg))]
#[schema(as = OrderHistoryEntry, description = "One status change of an order: who made it and why.")]
#[schema(example = json!({
    "from_status": "pending", "to_status": "cancelled", "actor": "system",
    "actor_id": null, "reason": "payment_timeout", "created_at": "2026-11-25T18:30:04Z"
}))]
pub struct StatusChangeRecord {
    #[serde(skip)]
    pub id: i64,
    #[serde(skip)]
    pub order_id: i64,
    /// `null` for the placing of the order.
    pub from_status: Option<OrderStatus>,
    pub to_status: OrderStatus,
    pub actor: ActorKind,
    /// The acting user; `null` when the actor is `system`.
    pub actor_id: Option<i64>,
    /// Why, when the change has a stated cause (`payment_timeout`, …); else `null`.
    #[schema(example = "payment_timeout")]
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// An order before and after a status change, for the caller's audit trail.
#[derive(Debug, Clone)]
pub struct StatusChange {
    pub before: Order,
    pub after: Order,
}

/// Filters of the admin listing of every order. Dates are UTC days, both inclusive.
#[derive(Debug, Clone, Default)]
pub struct AdminOrderFilter {
    pub status: Option<OrderStatus>,
    pub user_id: Option<i64>,
    pub created_from: Option<NaiveDate>,
    pub created_to: Option<NaiveDate>,
}

/// A report's period: UTC days `from..=to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportRange {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// Headline figures of a period. Cancelled and refunded orders are left out of every figure except
/// `active_customers` (anyone who placed an order counts as active).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SalesTotals {
    /// Orders placed in the period and neither cancelled nor refunded.
    pub total_orders: i64,
    /// Sum of their totals.
    pub total_revenue: Money,
    /// `total_revenue / total_orders`, rounded to cents; zero without orders.
    pub average_order_value: Money,
    /// Distinct users who placed at least one order in the period (cancelled or not).
    pub active_customers: i64,
}

/// Orders placed in a period per status, every status present (zero when none).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct StatusCounts {
    pub pending: i64,
    pub paid: i64,
    pub shipped: i64,
    pub delivered: i64,
    pub cancelled: i64,
    pub refunded: i64,
}

impl StatusCounts {
    pub fn get(&self, status: OrderStatus) -> i64 {
        match status {
            OrderStatus::Pending => self.pending,
            OrderStatus::Paid => self.paid,
            OrderStatus::Shipped => self.shipped,
            OrderStatus::Delivered => self.delivered,
            OrderStatus::Cancelled => self.cancelled,
            OrderStatus::Refunded => self.refunded,
        }
    }

    pub(crate) fn set(&mut self, status: OrderStatus, n: i64) {
        match status {
            OrderStatus::Pending => self.pending = n,
            OrderStatus::Paid => self.paid = n,
            OrderStatus::Shipped => self.shipped = n,
            OrderStatus::Delivered => self.delivered = n,
            OrderStatus::Cancelled => self.cancelled = n,
            OrderStatus::Refunded => self.refunded = n,
        }
    }
}

/// A best-selling product of a period (cancelled and refunded orders left out). `name` is the name on
/// its most recent order line. Read as the report's query names its columns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, QueryableByName)]
pub struct TopProduct {
    #[diesel(sql_type = BigInt)]
    pub product_id: i64,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = BigInt)]
    pub units_sold: i64,
    #[diesel(sql_type = Numeric)]
    pub revenue: Money,
}

/// One UTC day of a period: orders placed that day and neither cancelled nor refunded,
/// and their revenue.
/// Read as the report's query names its columns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, QueryableByName)]
pub struct DailySales {
    #[diesel(sql_type = Date)]
    pub date: NaiveDate,
    #[diesel(sql_type = BigInt)]
    pub orders: i64,
    #[diesel(sql_type = Numeric)]
    pub revenue: Money,
}

/// Every order figure of the admin's sales report, read from one snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SalesReport {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub totals: SalesTotals,
    pub orders_by_status: StatusCounts,
    pub top_products: Vec<TopProduct>,
    pub daily: Vec<DailySales>,
}
