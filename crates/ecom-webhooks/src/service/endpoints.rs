//! Endpoints: create, read, update, delete, each write audited in its own transaction.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use ecom_core::audit::{self, AuditEntry};
use ecom_core::events::TypePattern;
use ecom_core::pagination::Paged;
use ecom_core::{Page, PageRequest};

use super::Result;
use super::destination::{check_destination, parse_url};
use super::signature::new_secret;
use crate::api::{CreateWebhookRequest, UpdateWebhookRequest, WebhookCreated, WebhookOut};
use crate::error::WebhooksError;
use crate::model::Endpoint;
use crate::schema::webhook_endpoints as we;

/// Most patterns one endpoint subscribes with.
pub const MAX_PATTERNS: usize = 50;
/// Longest description.
pub const MAX_DESCRIPTION: usize = 500;

/// The audit trail's name for an endpoint.
const TARGET: &str = "webhook";

/// Parses subscription patterns: 1..=[`MAX_PATTERNS`], each known to
/// [`TypePattern::parse`]; duplicates are dropped, the order kept.
pub fn parse_patterns(raw: &[String]) -> Result<Vec<String>> {
    if raw.is_empty() || raw.len() > MAX_PATTERNS {
        return Err(WebhooksError::invalid(
            "events",
            format!("between 1 and {MAX_PATTERNS} patterns"),
        ));
    }
    let mut patterns: Vec<String> = Vec::with_capacity(raw.len());
    for (i, text) in raw.iter().enumerate() {
        let pattern = TypePattern::parse(text.trim()).ok_or_else(|| {
            WebhooksError::invalid(
                format!("events[{i}]"),
                "not an event type, `<prefix>.*` or `*`",
            )
        })?;
        let text = pattern.as_string();
        if !patterns.contains(&text) {
            patterns.push(text);
        }
    }
    Ok(patterns)
}

fn check_description(description: &Option<String>) -> Result<Option<String>> {
    let description = description
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty());
    if description.is_some_and(|d| d.chars().count() > MAX_DESCRIPTION) {
        return Err(WebhooksError::invalid(
            "description",
            format!("at most {MAX_DESCRIPTION} characters"),
        ));
    }
    Ok(description.map(str::to_string))
}

/// Checks a URL's shape and destination (see [`check_destination`]).
async fn checked_url(raw: &str, allow_private: bool) -> Result<String> {
    let url = parse_url(raw)?;
    check_destination(&url, allow_private).await?;
    Ok(url.to_string())
}

/// Records an endpoint write (`webhook.create`, `.update`, `.delete`) with the endpoint
/// before and after it, in the write's transaction.
async fn audit_write(
    conn: &mut diesel_async::AsyncPgConnection,
    actor_id: i64,
    action: &str,
    before: Option<&Endpoint>,
    after: Option<&Endpoint>,
) -> Result<()> {
    let target_id = after.or(before).map_or(0, |e| e.id);
    audit::record(
        conn,
        AuditEntry {
            actor_id,
            action,
            target_type: TARGET,
            target_id: target_id.to_string(),
            before: before.map(snapshot),
            after: after.map(snapshot),
        },
    )
    .await?;
    Ok(())
}

fn snapshot(endpoint: &Endpoint) -> serde_json::Value {
    serde_json::to_value(WebhookOut::from(endpoint.clone())).unwrap_or_default()
}

/// A new endpoint, checked (its host resolved) before any connection is taken.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    url: String,
    events: Vec<String>,
    description: Option<String>,
}

/// Checks a create request: URL shape and destination, patterns, description.
pub async fn check_new_endpoint(
    req: &CreateWebhookRequest,
    allow_private: bool,
) -> Result<NewEndpoint> {
    let events = parse_patterns(&req.events)?;
    let description = check_description(&req.description)?;
    let url = checked_url(&req.url, allow_private).await?;
    Ok(NewEndpoint {
        url,
        events,
        description,
    })
}

/// What an update changes, checked as on create (before any connection is taken).
#[derive(Debug, Clone)]
pub struct EndpointChanges {
    url: Option<String>,
    events: Option<Vec<String>>,
    /// `Some(None)` clears the description.
    description: Option<Option<String>>,
    is_active: Option<bool>,
}

/// Checks an update request as [`check_new_endpoint`] checks a create.
pub async fn check_changes(
    req: &UpdateWebhookRequest,
    allow_private: bool,
) -> Result<EndpointChanges> {
    let events = req.events.as_deref().map(parse_patterns).transpose()?;
    let description = req
        .description
        .as_ref()
        .map(|d| check_description(&Some(d.clone())))
        .transpose()?;
    let url = match &req.url {
        Some(raw) => Some(checked_url(raw, allow_private).await?),
        None => None,
    };
    Ok(EndpointChanges {
        url,
        events,
        description,
        is_active: req.is_active,
    })
}

/// Registers an endpoint with a new secret, audited as `webhook.create`.
pub async fn create_endpoint(
    conn: &mut ecom_core::db::PgConn,
    actor_id: i64,
    new: &NewEndpoint,
) -> Result<WebhookCreated> {
    let NewEndpoint {
        url,
        events,
        description,
    } = new;
    let secret = new_secret();
    let endpoint = conn
        .transaction::<_, WebhooksError, _>(async |conn| {
            let endpoint: Endpoint = diesel::insert_into(we::table)
                .values((
                    we::url.eq(url),
                    we::events.eq(events.iter().map(|e| Some(e.clone())).collect::<Vec<_>>()),
                    we::description.eq(description),
                    we::secret.eq(&secret),
                ))
                .returning(Endpoint::as_returning())
                .get_result(conn)
                .await?;
            audit_write(conn, actor_id, "webhook.create", None, Some(&endpoint)).await?;
            Ok(endpoint)
        })
        .await?;
    Ok(WebhookCreated {
        webhook: endpoint.into(),
        secret,
    })
}

/// One page of endpoints, oldest first.
pub async fn list_endpoints(
    conn: &mut ecom_core::db::PgConn,
    page: PageRequest,
) -> Result<Page<WebhookOut>> {
    let total: i64 = we::table.count().get_result(conn).await?;
    let items: Vec<Endpoint> = we::table
        .select(Endpoint::as_select())
        .order(we::id)
        .paged(page)
        .load(conn)
        .await?;
    Ok(Page::new(
        items.into_iter().map(WebhookOut::from).collect(),
        total,
        page,
    ))
}

/// One endpoint (404 when missing).
pub async fn get_endpoint(conn: &mut ecom_core::db::PgConn, id: i64) -> Result<Endpoint> {
    we::table
        .find(id)
        .select(Endpoint::as_select())
        .get_result(conn)
        .await
        .optional()?
        .ok_or(WebhooksError::NotFound(id))
}

/// Applies checked changes, audited as `webhook.update`. `is_active: true` re-enables the
/// endpoint and forgets its failures.
pub async fn update_endpoint(
    conn: &mut ecom_core::db::PgConn,
    actor_id: i64,
    id: i64,
    changes: &EndpointChanges,
) -> Result<WebhookOut> {
    let EndpointChanges {
        url,
        events,
        description,
        is_active,
    } = changes;
    let updated = conn
        .transaction::<_, WebhooksError, _>(async |conn| {
            let before: Endpoint = we::table
                .find(id)
                .select(Endpoint::as_select())
                .for_update()
                .get_result(conn)
                .await
                .optional()?
                .ok_or(WebhooksError::NotFound(id))?;
            let mut after = before.clone();
            if let Some(url) = &url {
                after.url = url.clone();
            }
            if let Some(events) = &events {
                after.events = events.iter().map(|e| Some(e.clone())).collect();
            }
            if let Some(description) = &description {
                after.description = description.clone();
            }
            match is_active {
                Some(true) if !before.is_active => {
                    after.is_active = true;
                    after.disabled_reason = None;
                    after.consecutive_failures = 0;
                }
                Some(false) if before.is_active => {
                    after.is_active = false;
                    after.disabled_reason = None;
                }
                _ => {}
            }
            let updated: Endpoint = diesel::update(we::table.find(id))
                .set((
                    we::url.eq(&after.url),
                    we::events.eq(&after.events),
                    we::description.eq(&after.description),
                    we::is_active.eq(after.is_active),
                    we::disabled_reason.eq(&after.disabled_reason),
                    we::consecutive_failures.eq(after.consecutive_failures),
                    we::updated_at.eq(diesel::dsl::now),
                ))
                .returning(Endpoint::as_returning())
                .get_result(conn)
                .await?;
            audit_write(
                conn,
                actor_id,
                "webhook.update",
                Some(&before),
                Some(&updated),
            )
            .await?;
            if updated.is_active && !before.is_active {
                // Its pending deliveries may be due: wake the workers at commit.
                super::deliveries::wake_workers(conn).await?;
            }
            Ok(updated)
        })
        .await?;
    Ok(updated.into())
}

/// Deletes an endpoint and its delivery log, audited as `webhook.delete`.
pub async fn delete_endpoint(
    conn: &mut ecom_core::db::PgConn,
    actor_id: i64,
    id: i64,
) -> Result<()> {
    conn.transaction::<_, WebhooksError, _>(async |conn| {
        let deleted: Endpoint = diesel::delete(we::table.find(id))
            .returning(Endpoint::as_returning())
            .get_result(conn)
            .await
            .optional()?
            .ok_or(WebhooksError::NotFound(id))?;
        audit_write(conn, actor_id, "webhook.delete", Some(&deleted), None).await?;
        Ok(())
    })
    .await
}
