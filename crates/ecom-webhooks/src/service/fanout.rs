//! The `webhooks` outbox consumer: each event becomes one delivery per active endpoint
//! whose patterns match, inserted in the transaction that moves the consumer's cursor,
//! so an event is fanned out exactly once per endpoint (and `UNIQUE (endpoint_id,
//! event_id)` keeps it so should a batch ever come twice). A `webhook.test` event goes
//! only to the endpoint named in its data.

use std::future::Future;
use std::pin::Pin;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use ecom_core::AppError;
use ecom_core::db::PgConn;
use ecom_core::events::{Consumer, Event, TypePattern};

use super::deliveries::{TEST_EVENT, wake_workers};
use crate::schema::{webhook_deliveries as wd, webhook_endpoints as we};

/// The consumer's cursor name.
pub const CONSUMER: &str = "webhooks";
/// Events per batch (one transaction).
const BATCH: i64 = 500;
/// Rows per INSERT (4 parameters each, under PostgreSQL's 65535).
const ROWS_PER_INSERT: usize = 1000;

#[derive(Insertable)]
#[diesel(table_name = wd)]
struct NewDelivery<'a> {
    endpoint_id: i64,
    event_id: i64,
    event_type: &'a str,
    body: &'a [u8],
}

/// The outbox consumer that fans events out into deliveries.
pub fn consumer() -> Consumer {
    Consumer::new(CONSUMER, BATCH, handle)
}

fn handle<'c>(
    conn: &'c mut PgConn,
    events: &'c [Event],
) -> Pin<Box<dyn Future<Output = Result<(), AppError>> + Send + 'c>> {
    Box::pin(async move { fan_out(conn, events).await.map(drop) })
}

/// Whether `event` goes to the endpoint `id` subscribed with `patterns`.
pub fn wanted(event: &Event, id: i64, patterns: &[TypePattern]) -> bool {
    if event.event_type == TEST_EVENT {
        return event.data.get("endpoint_id").and_then(|v| v.as_i64()) == Some(id);
    }
    patterns.iter().any(|p| p.matches(&event.event_type))
}

/// Inserts the deliveries of `events` (on the cursor's transaction) and returns how many
/// were new; wakes the delivery workers at commit when there are any.
pub async fn fan_out(conn: &mut PgConn, events: &[Event]) -> Result<usize, AppError> {
    let endpoints: Vec<(i64, Vec<Option<String>>)> = we::table
        .filter(we::is_active.eq(true))
        .select((we::id, we::events))
        .load(conn)
        .await?;
    if endpoints.is_empty() {
        return Ok(0);
    }
    let subscriptions: Vec<(i64, Vec<TypePattern>)> = endpoints
        .into_iter()
        .map(|(id, patterns)| {
            let parsed = patterns
                .iter()
                .flatten()
                .filter_map(|p| TypePattern::parse(p))
                .collect();
            (id, parsed)
        })
        .collect();
    let bodies: Vec<Vec<u8>> = events
        .iter()
        .map(serde_json::to_vec)
        .collect::<Result<_, _>>()
        .map_err(AppError::internal)?;
    let mut rows = Vec::new();
    for (event, body) in events.iter().zip(&bodies) {
        for (id, patterns) in &subscriptions {
            if wanted(event, *id, patterns) {
                rows.push(NewDelivery {
                    endpoint_id: *id,
                    event_id: event.id,
                    event_type: &event.event_type,
                    body,
                });
            }
        }
    }
    let mut inserted = 0;
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        inserted += diesel::insert_into(wd::table)
            .values(chunk)
            .on_conflict((wd::endpoint_id, wd::event_id))
            .do_nothing()
            .execute(conn)
            .await?;
    }
    if inserted > 0 {
        wake_workers(conn).await?;
    }
    Ok(inserted)
}
