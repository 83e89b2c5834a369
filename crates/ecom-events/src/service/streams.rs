//! Live event streams (Server-Sent Events) over the outbox.
//!
//! A stream holds no database connection while it waits: it sleeps until a commit with
//! events wakes it ([`Wakeups`]) or 15 s pass, then takes a pooled connection, re-checks
//! the caller (ban, revoked login, lost permission end the stream), sends every visible
//! event after its position, in id order, and gives the connection back. Ids grow in
//! commit order, so "everything after the last id sent" neither skips nor repeats one.
//! The stream ends when the token expires, the client goes away (noticed at the next
//! send, a ping at the latest) or the caller may no longer see it.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use ecom_core::db::PgPool;
use ecom_core::events::{self, Event, EventFilter, Wakeups};
use ecom_core::principal::StreamPrincipal;
use ecom_core::{AppError, Permission};
use futures_util::Stream;
use tokio::sync::mpsc;

/// A comment line at least this often, so proxies keep the connection and clients see it
/// alive (API.md: at least every 15 s).
pub const PING_EVERY: Duration = Duration::from_secs(15);
/// Events read per query while catching up.
const BATCH: i64 = 200;
/// Re-checks of the caller at most this often while events keep waking the stream.
const RECHECK_EVERY: Duration = Duration::from_secs(5);

/// One open stream: whose, what, and from where.
#[derive(Debug)]
pub struct Subscription {
    pub caller: StreamPrincipal,
    /// Held for the whole stream (`manage:orders` for `/admin/events`).
    pub needs: Option<Permission>,
    /// Its `after` is the position: the last id sent.
    pub filter: EventFilter,
}

/// One event as an SSE message: `id`, `event` (the type) and `data` (the event, one line).
pub fn sse_message(event: &Event) -> Bytes {
    let data = serde_json::to_string(event).unwrap_or_else(|_| "{}".to_string());
    Bytes::from(format!(
        "id: {}\nevent: {}\ndata: {}\n\n",
        event.id, event.event_type, data
    ))
}

/// The stream's body: runs [`follow`] in a task of its own, ending when the client goes.
pub fn sse_body(
    subscription: Subscription,
    pool: PgPool,
    wakeups: Wakeups,
) -> impl Stream<Item = Result<Bytes, Infallible>> {
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::spawn(follow(subscription, pool, wakeups, tx));
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|bytes| (Ok(bytes), rx))
    })
}

/// Why a stream stopped, for the log.
#[derive(Debug)]
enum End {
    ClientGone,
    TokenExpired,
    Refused(AppError),
}

async fn follow(mut sub: Subscription, pool: PgPool, wakeups: Wakeups, tx: mpsc::Sender<Bytes>) {
    let user_id = sub.caller.principal.user_id;
    match run(&mut sub, &pool, &wakeups, &tx).await {
        End::Refused(e) => {
            tracing::debug!(user_id, reason = %e, "event stream ended: caller refused")
        }
        end => tracing::debug!(user_id, ?end, "event stream ended"),
    }
}

async fn run(
    sub: &mut Subscription,
    pool: &PgPool,
    wakeups: &Wakeups,
    tx: &mpsc::Sender<Bytes>,
) -> End {
    let mut woken = wakeups.subscribe();
    let expires_in = sub.caller.expires_at - chrono_now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(expires_in.max(0) as u64);
    // Tells EventSource how soon to reconnect, and flushes the headers at once.
    if tx
        .send(Bytes::from_static(b"retry: 3000\n: connected\n\n"))
        .await
        .is_err()
    {
        return End::ClientGone;
    }
    let mut last_check = tokio::time::Instant::now();
    let mut must_check = false;
    loop {
        woken.mark_unchanged();
        if let Err(end) = catch_up(sub, pool, tx, must_check).await {
            return end;
        }
        if must_check {
            last_check = tokio::time::Instant::now();
        }
        let ping = tokio::time::sleep(PING_EVERY);
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return End::TokenExpired,
            changed = woken.changed() => {
                if changed.is_err() {
                    // No listener any more: fall back to the pings' pace.
                    tokio::time::sleep(PING_EVERY).await;
                }
                must_check = last_check.elapsed() >= RECHECK_EVERY;
            }
            _ = ping => {
                if tx.send(Bytes::from_static(b": ping\n\n")).await.is_err() {
                    return End::ClientGone;
                }
                must_check = true;
            }
        }
    }
}

/// Sends every visible event after the position, re-checking the caller first when asked.
/// The connection goes back to the pool before anything is sent, so a slow client never
/// holds one. A database that is away is not the end of the stream: the next wake-up
/// tries again.
async fn catch_up(
    sub: &mut Subscription,
    pool: &PgPool,
    tx: &mpsc::Sender<Bytes>,
    mut check: bool,
) -> Result<(), End> {
    loop {
        let batch = match read_batch(sub, pool, check).await? {
            Some(batch) => batch,
            None => return Ok(()),
        };
        check = false;
        for event in &batch {
            tx.send(sse_message(event))
                .await
                .map_err(|_| End::ClientGone)?;
            sub.filter.after = Some(event.id);
        }
        if (batch.len() as i64) < BATCH {
            return Ok(());
        }
    }
}

/// The next batch after the position (`None` when the database cannot be read now).
async fn read_batch(
    sub: &Subscription,
    pool: &PgPool,
    check: bool,
) -> Result<Option<Vec<Event>>, End> {
    let mut conn = match pool.get().await {
        Ok(conn) => conn,
        Err(e) => {
            tracing::warn!(error = %e, "event stream cannot reach the database; trying again later");
            return Ok(None);
        }
    };
    if check {
        let principal = sub.caller.recheck(&mut conn).await.map_err(End::Refused)?;
        if let Some(needed) = sub.needs {
            principal.require(needed).map_err(End::Refused)?;
        }
    }
    match events::list_after(&mut conn, &sub.filter, BATCH).await {
        Ok(batch) => Ok(Some(batch)),
        Err(e) => {
            tracing::warn!(error = %e, "event stream query failed; trying again later");
            Ok(None)
        }
    }
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
