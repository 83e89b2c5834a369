//! The NATS JetStream bridge (`NATS_URL`): every event, in id order, is published to
//! subject `ecom.events.<type>` of stream `ECOM_EVENTS` (created when missing), with
//! `Nats-Msg-Id` = the event id, so JetStream drops a re-publish within its duplicate
//! window.
//!
//! It is an outbox [`Consumer`] named `nats`: a batch is published and every publish
//! acknowledged by JetStream before the cursor moves. While NATS is down the acks fail,
//! the cursor stays, and the consumer retries with a growing pause: an outage delays
//! events, never loses them. A batch cut short is published again whole (duplicates that
//! `Nats-Msg-Id` absorbs, and a consumer de-duplicates by the same id beyond the window).

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use bytes::Bytes;
use ecom_core::AppError;
use ecom_core::events::{Consumer, Event};
use tokio::sync::Mutex;

/// The JetStream stream the events go to.
pub const STREAM: &str = "ECOM_EVENTS";
/// Subjects are `ecom.events.<type>`, e.g. `ecom.events.order.created`.
pub const SUBJECT_PREFIX: &str = "ecom.events.";
/// Events published per cursor move.
const BATCH: i64 = 200;
/// How long a connect or an acknowledgement may take before the batch counts as failed.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The bridge's connection, made on first use and again after a failure.
struct Bridge {
    url: String,
    context: Mutex<Option<jetstream::Context>>,
}

/// The outbox consumer publishing to the NATS server at `url`.
pub fn consumer(url: String) -> Consumer {
    let bridge = Arc::new(Bridge {
        url,
        context: Mutex::new(None),
    });
    Consumer::new("nats", BATCH, move |_conn, batch| {
        let bridge = bridge.clone();
        Box::pin(async move { bridge.publish(batch).await })
    })
}

impl Bridge {
    async fn publish(&self, batch: &[Event]) -> Result<(), AppError> {
        let mut guard = self.context.lock().await;
        if guard.is_none() {
            *guard = Some(self.connect().await?);
        }
        let Some(context) = guard.as_ref() else {
            return Err(AppError::unavailable("NATS is not connected"));
        };
        let result = publish_all(context, batch).await;
        if result.is_err() {
            // Start afresh next time: the stream may have to be created again, too.
            *guard = None;
        }
        result
    }

    async fn connect(&self) -> Result<jetstream::Context, AppError> {
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(TIMEOUT)
            .connect(self.url.as_str())
            .await
            .map_err(|e| AppError::unavailable(format!("NATS connect: {e}")))?;
        let mut context = jetstream::new(client);
        context.set_timeout(TIMEOUT);
        context
            .get_or_create_stream(stream::Config {
                name: STREAM.to_string(),
                subjects: vec![format!("{SUBJECT_PREFIX}>")],
                ..Default::default()
            })
            .await
            .map_err(|e| AppError::unavailable(format!("NATS stream {STREAM}: {e}")))?;
        Ok(context)
    }
}

/// Publishes the batch in order, then waits for every acknowledgement.
async fn publish_all(context: &jetstream::Context, batch: &[Event]) -> Result<(), AppError> {
    let mut acks = Vec::with_capacity(batch.len());
    for event in batch {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", event.id.to_string().as_str());
        let body = serde_json::to_vec(event).map_err(AppError::internal)?;
        let ack = context
            .publish_with_headers(
                format!("{SUBJECT_PREFIX}{}", event.event_type),
                headers,
                Bytes::from(body),
            )
            .await
            .map_err(|e| AppError::unavailable(format!("NATS publish: {e}")))?;
        acks.push(ack);
    }
    for ack in acks {
        ack.await
            .map_err(|e| AppError::unavailable(format!("NATS acknowledgement: {e}")))?;
    }
    Ok(())
}
