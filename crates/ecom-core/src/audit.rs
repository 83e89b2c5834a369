//! The audit trail: an append-only record of administrative actions.
//!
//! Core owns it because every domain writes to it (product writes in the catalog,
//! role and ban changes, order status changes) inside the transaction of the action,
//! so an action and its audit row commit or roll back together. ecom-admin reads it.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use utoipa::ToSchema;

use crate::pagination::{PageRequest, Paged};
use crate::telemetry::current_request_id;

diesel::table! {
    audit_log (id) {
        id -> Int8,
        actor_id -> Int8,
        action -> Text,
        target_type -> Text,
        target_id -> Text,
        before -> Nullable<Jsonb>,
        after -> Nullable<Jsonb>,
        request_id -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

/// One administrative action, as recorded.
#[derive(Debug, Clone, Queryable, Selectable, Serialize, ToSchema)]
#[diesel(table_name = audit_log, check_for_backend(diesel::pg::Pg))]
pub struct AuditRecord {
    pub id: i64,
    pub actor_id: i64,
    /// What was done, e.g. `user.ban`, `user.role_change`, `role.put`, `order.status_change`,
    /// `product.create`, `product.update`, `product.delete`.
    pub action: String,
    /// The kind of object acted on: `user`, `role`, `order`, `product`.
    pub target_type: String,
    pub target_id: String,
    #[schema(value_type = Option<Object>)]
    pub before: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub after: Option<serde_json::Value>,
    pub request_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// An action about to be recorded.
#[derive(Debug, Clone)]
pub struct AuditEntry<'a> {
    pub actor_id: i64,
    pub action: &'a str,
    pub target_type: &'a str,
    pub target_id: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

/// Records the action with the current request's id. Call it on the connection of
/// the action's own transaction.
pub async fn record(conn: &mut AsyncPgConnection, entry: AuditEntry<'_>) -> QueryResult<()> {
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::actor_id.eq(entry.actor_id),
            audit_log::action.eq(entry.action),
            audit_log::target_type.eq(entry.target_type),
            audit_log::target_id.eq(entry.target_id),
            audit_log::before.eq(entry.before),
            audit_log::after.eq(entry.after),
            audit_log::request_id.eq(current_request_id()),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Filters of the audit listing.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor_id: Option<i64>,
    pub action: Option<String>,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    /// Inclusive lower bound.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive upper bound.
    pub until: Option<DateTime<Utc>>,
}

/// One page of the trail, newest first, with the total.
pub async fn list(
    conn: &mut AsyncPgConnection,
    filter: &AuditFilter,
    page: PageRequest,
) -> QueryResult<(Vec<AuditRecord>, i64)> {
    let query = || {
        let mut q = audit_log::table.into_boxed();
        if let Some(actor) = filter.actor_id {
            q = q.filter(audit_log::actor_id.eq(actor));
        }
        if let Some(action) = &filter.action {
            q = q.filter(audit_log::action.eq(action.clone()));
        }
        if let Some(kind) = &filter.target_type {
            q = q.filter(audit_log::target_type.eq(kind.clone()));
        }
        if let Some(target) = &filter.target_id {
            q = q.filter(audit_log::target_id.eq(target.clone()));
        }
        if let Some(from) = filter.from {
            q = q.filter(audit_log::created_at.ge(from));
        }
        if let Some(until) = filter.until {
            q = q.filter(audit_log::created_at.lt(until));
        }
        q
    };
    let total = query().count().get_result(conn).await?;
    let items = query()
        .select(AuditRecord::as_select())
        .order((audit_log::created_at.desc(), audit_log::id.desc()))
        .paged(page)
        .load(conn)
        .await?;
    Ok((items, total))
}
