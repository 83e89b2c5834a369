//! The outbox: every domain event, recorded in the transaction of the change it
//! describes (a committed change ⇔ its events), and read afterwards by the consumers
//! that deliver it: webhooks, live streams, NATS, mail.
//!
//! - [`record`] is the one way to write an event. Call it on the change's own connection,
//!   inside its transaction, as late as possible (it holds the outbox lock until commit).
//! - **Ids grow in commit order.** `record` inserts a draft (a negative id, no
//!   sequence) that nobody else can see; at COMMIT a deferred trigger (see the migration
//!   `core_events`) takes a transaction-level advisory lock ([`OUTBOX_LOCK`]), draws the
//!   real id and the sequence, and sends the `NOTIFY`. The lock is released after the
//!   transaction is visible, so while one transaction holds a drawn but uncommitted id, no
//!   other can draw one: a reader that sees event `n` sees every event below `n`, and a
//!   cursor ("everything after `n`") never skips one that commits late. The lock is held
//!   only for the commit itself, whatever the transaction did after `record` (a payment
//!   provider's call), so event writers wait on each other only that long.
//! - **`sequence` is 1, 2, 3, … per aggregate without gaps**: drawn under the same lock
//!   from the aggregate's newest event; retention keeps each aggregate's newest event so
//!   the count never restarts.
//! - Consumers: [`Consumer`] moves a per-consumer cursor (`event_cursors`), one replica at
//!   a time (`FOR UPDATE SKIP LOCKED`), woken by `LISTEN/NOTIFY` through [`Wakeups`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use tokio::sync::watch;
use utoipa::ToSchema;

use crate::db::{PgConn, PgPool};
use crate::error::AppError;
use crate::pagination::PageRequest;

diesel::table! {
    events (id) {
        id -> Int8,
        event_type -> Text,
        aggregate_type -> Text,
        aggregate_id -> Int8,
        sequence -> Nullable<Int8>,
        owner_id -> Nullable<Int8>,
        data -> Jsonb,
        occurred_at -> Timestamptz,
    }
}

diesel::table! {
    event_cursors (consumer) {
        consumer -> Text,
        last_event_id -> Int8,
        updated_at -> Timestamptz,
    }
}

/// Key of the transaction-level advisory lock that orders event ids by commit ("ecomoutb");
/// the migration's trigger spells it out.
pub const OUTBOX_LOCK: i64 = 0x6563_6f6d_6f75_7462;

/// The `NOTIFY` channel woken at each commit that recorded events.
pub const CHANNEL: &str = "ecom_events";

/// Every event type of the contract (API.md, Events), plus `webhook.test`, which only a
/// webhook's test delivery carries.
pub const TYPES: &[&str] = &[
    "order.created",
    "order.status_changed",
    "order.paid",
    "order.cancelled",
    "order.refunded",
    "payment.updated",
    "product.created",
    "product.updated",
    "product.deleted",
    "user.registered",
];

/// One recorded event, as webhooks, streams and NATS carry it.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, QueryableByName, Serialize, ToSchema)]
#[diesel(table_name = events, check_for_backend(diesel::pg::Pg))]
pub struct Event {
    /// Grows in commit order; `Last-Event-ID` and `after` refer to it.
    pub id: i64,
    /// `order.created`, `payment.updated`, …
    #[serde(rename = "type")]
    #[diesel(column_name = event_type)]
    pub event_type: String,
    pub occurred_at: DateTime<Utc>,
    /// `order`, `payment`, `product`, `user`.
    pub aggregate_type: String,
    pub aggregate_id: i64,
    /// 1, 2, 3, … per aggregate, without gaps (set at commit; readers never see it unset).
    #[schema(value_type = i64)]
    pub sequence: Option<i64>,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    /// Whose order or payment this is (what `GET /users/me/events` shows); not sent.
    #[serde(skip)]
    #[schema(ignore)]
    pub owner_id: Option<i64>,
}

/// An event about to be recorded.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    pub event_type: &'a str,
    pub aggregate_type: &'a str,
    pub aggregate_id: i64,
    /// The user whose order or payment it is (what `GET /users/me/events` shows); `None`
    /// for every other event, a user's own `user.registered` included.
    pub owner_id: Option<i64>,
    pub data: serde_json::Value,
}

/// Records `event` on the change's connection, inside its transaction (see the module
/// doc for when it gets its id). Outside a transaction it would commit on its own and
/// lose the "committed change ⇔ its events" rule, so that is refused as a bug.
pub async fn record(conn: &mut AsyncPgConnection, event: NewEvent<'_>) -> QueryResult<()> {
    debug_assert!(
        crate::db::in_transaction(conn),
        "events are recorded inside the change's transaction"
    );
    diesel::insert_into(events::table)
        .values((
            events::event_type.eq(event.event_type),
            events::aggregate_type.eq(event.aggregate_type),
            events::aggregate_id.eq(event.aggregate_id),
            events::owner_id.eq(event.owner_id),
            events::data.eq(event.data),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// A subscription pattern: a type (`order.created`), a prefix (`order.*`) or `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypePattern {
    Any,
    Prefix(String),
    Exact(String),
}

impl TypePattern {
    /// Parses a pattern naming known types only: `*`, `<prefix>.*` where some type has that
    /// prefix, or one of [`TYPES`] (and `webhook.test`). `None` when it names nothing.
    pub fn parse(pattern: &str) -> Option<Self> {
        if pattern == "*" {
            return Some(Self::Any);
        }
        if let Some(prefix) = pattern.strip_suffix(".*") {
            let known = TYPES
                .iter()
                .any(|t| t.split_once('.').is_some_and(|(p, _)| p == prefix));
            return known.then(|| Self::Prefix(prefix.to_string()));
        }
        (TYPES.contains(&pattern) || pattern == "webhook.test")
            .then(|| Self::Exact(pattern.to_string()))
    }

    /// Whether `event_type` is one this pattern names.
    pub fn matches(&self, event_type: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Prefix(prefix) => event_type.split_once('.').is_some_and(|(p, _)| p == prefix),
            Self::Exact(t) => t == event_type,
        }
    }

    /// The pattern as written.
    pub fn as_string(&self) -> String {
        match self {
            Self::Any => "*".to_string(),
            Self::Prefix(p) => format!("{p}.*"),
            Self::Exact(t) => t.clone(),
        }
    }
}

/// Which events a listing or stream shows.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Empty: every type.
    pub types: Vec<TypePattern>,
    /// Only events whose order or payment belongs to this user.
    pub owner_id: Option<i64>,
    /// Only events with a larger id.
    pub after: Option<i64>,
}

impl EventFilter {
    /// The SQL arguments: exact types and prefixes (`order.%`), or `None` for "any type".
    fn type_arrays(&self) -> Option<(Vec<String>, Vec<String>)> {
        if self.types.is_empty() || self.types.contains(&TypePattern::Any) {
            return None;
        }
        let mut exact = Vec::new();
        let mut prefixes = Vec::new();
        for pattern in &self.types {
            match pattern {
                TypePattern::Any => {}
                TypePattern::Prefix(p) => prefixes.push(format!("{p}.%")),
                TypePattern::Exact(t) => exact.push(t.clone()),
            }
        }
        Some((exact, prefixes))
    }
}

const FILTER_SQL: &str = "($1 OR event_type = ANY($2) OR event_type LIKE ANY($3)) \
     AND ($4::int8 IS NULL OR owner_id = $4) AND id > $5";

/// Events matching `filter` after `filter.after`, oldest first, at most `limit`.
pub async fn list_after(
    conn: &mut AsyncPgConnection,
    filter: &EventFilter,
    limit: i64,
) -> QueryResult<Vec<Event>> {
    let (any, exact, prefixes) = match filter.type_arrays() {
        None => (true, Vec::new(), Vec::new()),
        Some((e, p)) => (false, e, p),
    };
    diesel::sql_query(format!(
        "SELECT * FROM events WHERE {FILTER_SQL} ORDER BY id LIMIT $6"
    ))
    .bind::<Bool, _>(any)
    .bind::<Array<Text>, _>(exact)
    .bind::<Array<Text>, _>(prefixes)
    .bind::<Nullable<BigInt>, _>(filter.owner_id)
    .bind::<BigInt, _>(filter.after.unwrap_or(0))
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// One page of the events matching `filter`, oldest first, with the total.
pub async fn list_page(
    conn: &mut AsyncPgConnection,
    filter: &EventFilter,
    page: PageRequest,
) -> QueryResult<(Vec<Event>, i64)> {
    let (any, exact, prefixes) = match filter.type_arrays() {
        None => (true, Vec::new(), Vec::new()),
        Some((e, p)) => (false, e, p),
    };
    let total = diesel::sql_query(format!(
        "SELECT count(*) AS n FROM events WHERE {FILTER_SQL}"
    ))
    .bind::<Bool, _>(any)
    .bind::<Array<Text>, _>(exact.clone())
    .bind::<Array<Text>, _>(prefixes.clone())
    .bind::<Nullable<BigInt>, _>(filter.owner_id)
    .bind::<BigInt, _>(filter.after.unwrap_or(0))
    .get_result::<Count>(conn)
    .await?
    .n;
    let items = diesel::sql_query(format!(
        "SELECT * FROM events WHERE {FILTER_SQL} ORDER BY id LIMIT $6 OFFSET $7"
    ))
    .bind::<Bool, _>(any)
    .bind::<Array<Text>, _>(exact)
    .bind::<Array<Text>, _>(prefixes)
    .bind::<Nullable<BigInt>, _>(filter.owner_id)
    .bind::<BigInt, _>(filter.after.unwrap_or(0))
    .bind::<BigInt, _>(page.limit)
    .bind::<BigInt, _>(page.offset)
    .load(conn)
    .await?;
    Ok((items, total))
}

/// The newest event id (0 when there is none): where a stream without `Last-Event-ID`
/// starts.
pub async fn last_id(conn: &mut AsyncPgConnection) -> QueryResult<i64> {
    events::table
        .select(diesel::dsl::max(events::id))
        .get_result::<Option<i64>>(conn)
        .await
        .map(|id| id.unwrap_or(0))
}

/// Retention chore: deletes up to `batch` events older than `days`, keeping each
/// aggregate's newest event so its `sequence` never restarts.
pub async fn delete_expired(conn: &mut PgConn, days: u64, batch: i64) -> QueryResult<usize> {
    diesel::sql_query(
        "DELETE FROM events WHERE id IN ( \
             SELECT e.id FROM events e \
             WHERE e.occurred_at < now() - make_interval(days => $1) \
               AND EXISTS (SELECT 1 FROM events n WHERE n.aggregate_type = e.aggregate_type \
                           AND n.aggregate_id = e.aggregate_id AND n.sequence > e.sequence) \
             ORDER BY e.id LIMIT $2 FOR UPDATE SKIP LOCKED)",
    )
    .bind::<diesel::sql_types::Integer, _>(days.min(i32::MAX as u64) as i32)
    .bind::<BigInt, _>(batch)
    .execute(conn)
    .await
}

/// Wake-ups at each commit that recorded events: one `LISTEN` connection per replica,
/// fanned out in-process. Reconnects by itself; every (re)connect wakes everyone too, since
/// notifications may have been missed meanwhile.
#[derive(Debug, Clone)]
pub struct Wakeups {
    rx: watch::Receiver<u64>,
}

impl Wakeups {
    /// Spawns the listener on a connection of its own, taken out of `pool` for good (a
    /// pooled connection would carry the `LISTEN` to other users; the pool makes another
    /// in its place). Lives until the runtime stops.
    pub fn listen(pool: PgPool) -> Self {
        let (tx, rx) = watch::channel(0u64);
        tokio::spawn(listen_loop(pool, tx));
        Self { rx }
    }

    /// A receiver that has seen every wake-up so far; `changed()` resolves at the next.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        let mut rx = self.rx.clone();
        rx.mark_unchanged();
        rx
    }
}

async fn listen_loop(pool: PgPool, tx: watch::Sender<u64>) {
    use futures_util::StreamExt;
    let mut backoff = Duration::from_millis(100);
    loop {
        match pool.get().await {
            Ok(pooled) => {
                let mut conn = deadpool::managed::Object::take(pooled);
                if let Err(e) = diesel::sql_query(format!("LISTEN {CHANNEL}"))
                    .execute(&mut conn)
                    .await
                {
                    tracing::warn!(error = %e, "LISTEN failed; retrying");
                } else {
                    backoff = Duration::from_millis(100);
                    tx.send_modify(|n| *n += 1);
                    // A lost connection shows as an error item, or as a failing
                    // keep-alive query after 30 quiet seconds.
                    loop {
                        let next = {
                            let mut stream = std::pin::pin!(conn.notifications_stream());
                            tokio::time::timeout(Duration::from_secs(30), stream.next()).await
                        };
                        match next {
                            Ok(Some(Ok(_))) => tx.send_modify(|n| *n += 1),
                            Ok(Some(Err(e))) => {
                                tracing::warn!(error = %e, "event listener lost its connection");
                                break;
                            }
                            Ok(None) => break,
                            Err(_) => {
                                if diesel::sql_query("SELECT 1")
                                    .execute(&mut conn)
                                    .await
                                    .is_err()
                                {
                                    break;
                                }
                            }
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "event listener cannot connect; retrying"),
        }
        if tx.is_closed() {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

type HandleFn = dyn for<'c> Fn(
        &'c mut PgConn,
        &'c [Event],
    ) -> Pin<Box<dyn Future<Output = Result<(), AppError>> + Send + 'c>>
    + Send
    + Sync;

/// An outbox consumer: a name (its cursor) and what it does with a batch of events.
///
/// The batch is handled inside the transaction that moves the cursor: what the handler
/// writes commits with the cursor's move, and a handler error (or a crash) leaves the
/// cursor where it was, so the batch comes again: at least once. Handlers that talk to
/// the network (NATS) must be idempotent for the receiver (message ids).
#[derive(Clone)]
pub struct Consumer {
    pub name: &'static str,
    pub batch: i64,
    handle: Arc<HandleFn>,
}

impl Consumer {
    pub fn new<F>(name: &'static str, batch: i64, handle: F) -> Self
    where
        F: for<'c> Fn(
                &'c mut PgConn,
                &'c [Event],
            )
                -> Pin<Box<dyn Future<Output = Result<(), AppError>> + Send + 'c>>
            + Send
            + Sync
            + 'static,
    {
        Self {
            name,
            batch,
            handle: Arc::new(handle),
        }
    }

    /// One step: handles the next batch if this replica gets the cursor. `Ok(None)` when
    /// another replica holds it, else how many events were handled.
    pub async fn step(&self, conn: &mut PgConn) -> Result<Option<usize>, AppError> {
        conn.transaction::<_, AppError, _>(async |conn| {
            let Some(last) = self.claim_cursor(conn).await? else {
                return Ok(None);
            };
            let batch: Vec<Event> = events::table
                .filter(events::id.gt(last))
                .order(events::id)
                .limit(self.batch)
                .select(Event::as_select())
                .load(conn)
                .await?;
            let Some(newest) = batch.last().map(|e| e.id) else {
                return Ok(Some(0));
            };
            (self.handle)(conn, &batch).await?;
            diesel::update(event_cursors::table)
                .filter(event_cursors::consumer.eq(self.name))
                .set((
                    event_cursors::last_event_id.eq(newest),
                    event_cursors::updated_at.eq(diesel::dsl::now),
                ))
                .execute(conn)
                .await?;
            Ok(Some(batch.len()))
        })
        .await
    }

    /// Locks this consumer's cursor for the transaction and gives its position; `None` while
    /// another replica holds it. The first step ever makes the cursor (at 0), so the usual
    /// step costs one statement, not an insert attempt as well.
    async fn claim_cursor(&self, conn: &mut PgConn) -> QueryResult<Option<i64>> {
        let held: Option<i64> = event_cursors::table
            .filter(event_cursors::consumer.eq(self.name))
            .select(event_cursors::last_event_id)
            .for_update()
            .skip_locked()
            .get_result(conn)
            .await
            .optional()?;
        if held.is_some() {
            return Ok(held);
        }
        // Missing, or locked elsewhere: an insert that conflicts tells the second case.
        diesel::insert_into(event_cursors::table)
            .values(event_cursors::consumer.eq(self.name))
            .on_conflict_do_nothing()
            .returning(event_cursors::last_event_id)
            .get_result(conn)
            .await
            .optional()
    }

    /// Runs this consumer in the background until aborted: a full batch is followed by the
    /// next at once; otherwise it sleeps until the next commit with events (or 30 s, or 2 s
    /// while another replica holds the cursor, so it takes over soon after that one dies).
    /// Errors are logged and retried with a growing pause (≤ 10 s).
    pub fn spawn(self, pool: PgPool, wakeups: Wakeups) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut woken = wakeups.subscribe();
            let mut failures = 0u32;
            loop {
                woken.mark_unchanged();
                let result = match pool.get().await {
                    Ok(mut conn) => self.step(&mut conn).await,
                    Err(e) => Err(AppError::from(e)),
                };
                let pause = match result {
                    Ok(Some(n)) if n as i64 >= self.batch => {
                        failures = 0;
                        continue;
                    }
                    Ok(Some(_)) => {
                        failures = 0;
                        Duration::from_secs(30)
                    }
                    Ok(None) => Duration::from_secs(2),
                    Err(e) => {
                        failures += 1;
                        tracing::warn!(consumer = self.name, error = %e, "event consumer failed; retrying");
                        Duration::from_millis(200 * 2u64.pow(failures.min(8)))
                            .min(Duration::from_secs(30))
                    }
                };
                if failures > 0 {
                    tokio::time::sleep(pause).await;
                } else {
                    let _ = tokio::time::timeout(pause, woken.changed()).await;
                }
            }
        })
    }
}
