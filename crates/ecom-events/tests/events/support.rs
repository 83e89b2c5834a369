//! A store of events only: the events module, a resolver over fixed accounts, helpers to
//! record events and to read a Server-Sent Events stream.

use std::sync::Arc;
use std::time::Duration;

use diesel_async::AsyncConnection;
use ecom_core::events::{self, NewEvent, Wakeups};
use ecom_core::settings::SecretString;
use ecom_core::{AppContext, Permission};
use ecom_testkit::{FixedAccounts, TEST_SECRET, TestDb, test_context};
use futures_util::StreamExt;

/// A shopper.
pub const AMY: i64 = 1;
/// Another shopper.
pub const BOB: i64 = 2;
/// Holds `manage:orders`.
pub const STAFF: i64 = 3;

pub fn accounts() -> Arc<FixedAccounts> {
    let accounts = FixedAccounts::new();
    accounts.set(AMY, "user", &[], true);
    accounts.set(BOB, "user", &[], true);
    accounts.set(STAFF, "staff", &[Permission::ManageOrders], true);
    accounts
}

pub fn context(db: &TestDb, accounts: &Arc<FixedAccounts>) -> AppContext {
    let wakeups = Wakeups::listen(db.pool());
    test_context(db, vec![ecom_events::module(wakeups)], &[]).with_resolver(accounts.clone())
}

/// Records one event in a transaction of its own; returns the newest id after it.
pub async fn record(db: &TestDb, event_type: &str, aggregate_id: i64, owner: Option<i64>) -> i64 {
    let mut conn = db.connect().await;
    let aggregate_type = event_type
        .split('.')
        .next()
        .expect("a type has a prefix")
        .to_string();
    conn.transaction::<_, diesel::result::Error, _>(async |conn| {
        events::record(
            conn,
            NewEvent {
                event_type,
                aggregate_type: &aggregate_type,
                aggregate_id,
                owner_id: owner,
                data: serde_json::json!({"n": aggregate_id}),
            },
        )
        .await
    })
    .await
    .expect("record");
    events::last_id(&mut conn).await.expect("last id")
}

/// A token for `user_id` living `secs` seconds.
pub fn short_token(user_id: i64, secs: i64) -> String {
    ecom_core::access_token::AccessTokens::new(&SecretString::new(TEST_SECRET), 30)
        .issue_for(user_id, 0, secs)
        .expect("sign")
        .token
}

/// One SSE message as received.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub id: Option<i64>,
    pub event: Option<String>,
    pub data: Option<serde_json::Value>,
    /// A comment line (`: ping`).
    pub comment: Option<String>,
}

/// Reads a `text/event-stream` body message by message.
pub struct SseReader {
    response: std::pin::Pin<
        Box<dyn futures_util::Stream<Item = Result<bytes::Bytes, awc::error::PayloadError>>>,
    >,
    buffer: String,
}

impl SseReader {
    /// Opens the stream at `url` with extra `headers`; panics unless it answers 200 SSE.
    pub async fn open(url: &str, headers: &[(&str, &str)]) -> Self {
        let client = awc::Client::builder().disable_timeout().finish();
        let mut req = client
            .get(url)
            .insert_header(("accept", "text/event-stream"));
        for &h in headers {
            req = req.insert_header(h);
        }
        let response = req.send().await.expect("the server answers");
        assert_eq!(response.status(), 200, "the stream opens");
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        Self {
            response: Box::pin(response),
            buffer: String::new(),
        }
    }

    /// The next message (comments included), or `None` when the stream ended or
    /// nothing came within `wait`.
    pub async fn next(&mut self, wait: Duration) -> Option<Message> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                return Some(parse(&block));
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.next())
                .await
                .ok()??;
            let bytes = chunk.ok()?;
            self.buffer.push_str(&String::from_utf8_lossy(&bytes));
        }
    }

    /// The next message that is an event (comments skipped).
    pub async fn next_event(&mut self, wait: Duration) -> Option<Message> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let message = self.next(left).await?;
            if message.id.is_some() {
                return Some(message);
            }
        }
    }

    /// Whether the server ends the stream within `wait` (events before the end count as
    /// "not ended" and are returned).
    pub async fn ends_within(&mut self, wait: Duration) -> Result<(), Message> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let message = parse(&block);
                if message.id.is_some() {
                    return Err(message);
                }
                continue;
            }
            match tokio::time::timeout_at(deadline, self.response.next()).await {
                Ok(None) | Ok(Some(Err(_))) => return Ok(()),
                Ok(Some(Ok(bytes))) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                Err(_) => panic!("the stream is still open after {wait:?}"),
            }
        }
    }
}

fn parse(block: &str) -> Message {
    let mut message = Message {
        id: None,
        event: None,
        data: None,
        comment: None,
    };
    for line in block.lines() {
        if let Some(c) = line.strip_prefix(':') {
            message.comment = Some(c.trim().to_string());
        } else if let Some(v) = line.strip_prefix("id: ") {
            message.id = v.parse().ok();
        } else if let Some(v) = line.strip_prefix("event: ") {
            message.event = Some(v.to_string());
        } else if let Some(v) = line.strip_prefix("data: ") {
            message.data = serde_json::from_str(v).ok();
        }
    }
    message
}
