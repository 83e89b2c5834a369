//! The delivery log: listing, manual retry, the test delivery, and retention.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer};
use diesel_async::{AsyncConnection, RunQueryDsl};
use ecom_core::db::PgConn;
use ecom_core::events::{self, NewEvent};
use ecom_core::pagination::Paged;
use ecom_core::{Page, PageRequest};

use super::Result;
use super::endpoints::get_endpoint;
use crate::api::{DeliveryOut, TestQueued};
use crate::error::WebhooksError;
use crate::model::{Delivery, DeliveryStatus, Endpoint};
use crate::schema::{webhook_deliveries as wd, webhook_endpoints as we};

/// The event type of a test delivery.
pub const TEST_EVENT: &str = "webhook.test";

/// Wakes the delivery workers of every replica (they listen on the outbox channel) when
/// the transaction commits.
pub(crate) async fn wake_workers(conn: &mut PgConn) -> QueryResult<()> {
    diesel::sql_query(format!("SELECT pg_notify('{}', '')", events::CHANNEL))
        .execute(conn)
        .await
        .map(drop)
}

/// One page of an endpoint's deliveries, newest first, optionally of one status.
pub async fn list_deliveries(
    conn: &mut PgConn,
    endpoint_id: i64,
    status: Option<DeliveryStatus>,
    page: PageRequest,
) -> Result<Page<DeliveryOut>> {
    get_endpoint(conn, endpoint_id).await?;
    let query = || {
        let mut q = wd::table
            .filter(wd::endpoint_id.eq(endpoint_id))
            .into_boxed();
        if let Some(status) = status {
            q = q.filter(wd::status.eq(status.as_str()));
        }
        q
    };
    let total: i64 = query().count().get_result(conn).await?;
    let items: Vec<Delivery> = query()
        .select(Delivery::as_select())
        .order(wd::id.desc())
        .paged(page)
        .load(conn)
        .await?;
    Ok(Page::new(
        items.into_iter().map(DeliveryOut::from).collect(),
        total,
        page,
    ))
}

/// The endpoint, share-locked for the transaction so it is not disabled or deleted under
/// a write that depends on it being active; 404 when missing.
async fn endpoint_for_share(conn: &mut PgConn, endpoint_id: i64) -> Result<Endpoint> {
    we::table
        .find(endpoint_id)
        .select(Endpoint::as_select())
        .for_share()
        .get_result(conn)
        .await
        .optional()?
        .ok_or(WebhooksError::NotFound(endpoint_id))
}

/// Queues a delivery again now with a fresh attempt budget. A succeeded one → 409
/// `already_delivered`; a disabled endpoint → 409 `webhook_disabled`.
pub async fn retry_delivery(
    conn: &mut PgConn,
    endpoint_id: i64,
    delivery_id: i64,
) -> Result<DeliveryOut> {
    conn.transaction::<_, WebhooksError, _>(async |conn| {
        let endpoint = endpoint_for_share(conn, endpoint_id).await?;
        let delivery: Delivery = wd::table
            .filter(wd::id.eq(delivery_id).and(wd::endpoint_id.eq(endpoint_id)))
            .select(Delivery::as_select())
            .for_update()
            .get_result(conn)
            .await
            .optional()?
            .ok_or(WebhooksError::DeliveryNotFound(delivery_id))?;
        if delivery.status == DeliveryStatus::Succeeded.as_str() {
            return Err(WebhooksError::AlreadyDelivered(delivery_id));
        }
        if !endpoint.is_active {
            return Err(WebhooksError::Disabled(endpoint_id));
        }
        let queued: Delivery = diesel::update(wd::table.find(delivery_id))
            .set((
                wd::status.eq(DeliveryStatus::Pending.as_str()),
                wd::attempts.eq(0),
                wd::next_attempt_at.eq(diesel::dsl::now),
                wd::updated_at.eq(diesel::dsl::now),
            ))
            .returning(Delivery::as_returning())
            .get_result(conn)
            .await?;
        wake_workers(conn).await?;
        Ok(queued.into())
    })
    .await
}

/// Records a `webhook.test` event (aggregate `webhook`, this endpoint) in the outbox; the
/// fan-out gives it to this endpoint only, whatever its patterns, once it commits. A
/// disabled endpoint → 409 `webhook_disabled`.
pub async fn send_test(conn: &mut PgConn, endpoint_id: i64) -> Result<TestQueued> {
    conn.transaction::<_, WebhooksError, _>(async |conn| {
        let endpoint = endpoint_for_share(conn, endpoint_id).await?;
        if !endpoint.is_active {
            return Err(WebhooksError::Disabled(endpoint_id));
        }
        events::record(
            conn,
            NewEvent {
                event_type: TEST_EVENT,
                aggregate_type: "webhook",
                aggregate_id: endpoint_id,
                owner_id: None,
                data: serde_json::json!({
                    "endpoint_id": endpoint_id,
                    "message": "a test delivery from the store",
                }),
            },
        )
        .await?;
        Ok(TestQueued {
            endpoint_id,
            event_type: TEST_EVENT.to_string(),
        })
    })
    .await
}

/// Retention chore: deletes up to `batch` deliveries created more than `days` ago,
/// whatever their status. Rows another transaction holds are skipped.
pub async fn purge_expired_deliveries(conn: &mut PgConn, days: u64, batch: i64) -> Result<usize> {
    let deleted = diesel::sql_query(
        "DELETE FROM webhook_deliveries WHERE id IN ( \
             SELECT id FROM webhook_deliveries \
             WHERE created_at < now() - make_interval(days => $1) \
             ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
    )
    .bind::<Integer, _>(days.min(i32::MAX as u64) as i32)
    .bind::<BigInt, _>(batch.max(0))
    .execute(conn)
    .await?;
    Ok(deleted)
}
