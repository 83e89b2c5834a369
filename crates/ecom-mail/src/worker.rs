//! The delivery worker: leases due mails, sends them outside any transaction, records the
//! outcome (sent, or a retry with backoff). Every replica runs one; they share the queue
//! through `FOR UPDATE SKIP LOCKED` (see [`crate::queue`]). It sleeps until the next mail
//! is due, a commit wakes it (`NOTIFY` at enqueue), or 30 s pass.

use std::sync::Arc;
use std::time::Duration;

use ecom_core::db::PgPool;
use ecom_core::events::Wakeups;
use ecom_core::mail::QueuedMail;

use crate::error::MailError;
use crate::queue;
use crate::transport::{DeliveryError, SMTP_TIMEOUT, Transport};

/// How the worker paces itself.
#[derive(Debug, Clone)]
pub struct DeliveryOptions {
    /// Mails leased (and sent concurrently) at once.
    pub batch: i64,
    /// How long a leased mail is left to its sender before another may send it again:
    /// longer than a send can take.
    pub lease: Duration,
    /// Attempts before a mail is given up (`failed`).
    pub max_attempts: i32,
    /// The first retry's delay; each further one doubles it, up to [`MAX_RETRY_DELAY`].
    pub retry_base: Duration,
}

/// The longest pause between two attempts of one mail.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);
/// The longest sleep without a wake-up.
const IDLE: Duration = Duration::from_secs(30);

impl Default for DeliveryOptions {
    fn default() -> Self {
        Self {
            batch: 10,
            lease: SMTP_TIMEOUT * 4,
            max_attempts: 12,
            retry_base: Duration::from_secs(30),
        }
    }
}

impl DeliveryOptions {
    /// The pause after the `attempts`-th failed attempt.
    pub fn retry_delay(&self, attempts: i32) -> Duration {
        let doublings = u32::try_from(attempts.saturating_sub(1))
            .unwrap_or(0)
            .min(20);
        self.retry_base
            .saturating_mul(2u32.saturating_pow(doublings))
            .min(MAX_RETRY_DELAY)
    }
}

/// Runs the delivery worker until aborted.
pub fn spawn(
    transport: Arc<Transport>,
    pool: PgPool,
    wakeups: Wakeups,
    options: DeliveryOptions,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut woken = wakeups.subscribe();
        let mut failures = 0u32;
        loop {
            woken.mark_unchanged();
            let pause = match deliver_due(&transport, &pool, &options).await {
                Ok(n) if n as i64 >= options.batch => {
                    failures = 0;
                    continue;
                }
                Ok(_) => {
                    failures = 0;
                    until_next_due(&pool).await
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e, "mail delivery failed; retrying");
                    let backoff = Duration::from_millis(200 * 2u64.pow(failures.min(8)));
                    tokio::time::sleep(backoff.min(IDLE)).await;
                    continue;
                }
            };
            let _ = tokio::time::timeout(pause, woken.changed()).await;
        }
    })
}

/// How long to sleep when nothing is due now: until the next mail is due, at most [`IDLE`].
async fn until_next_due(pool: &PgPool) -> Duration {
    let next = match pool.get().await {
        Ok(mut conn) => queue::next_due(&mut conn).await.ok().flatten(),
        Err(_) => None,
    };
    next.map_or(IDLE, |at| {
        (at - chrono::Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO)
            .max(Duration::from_millis(50))
            .min(IDLE)
    })
}

/// One round: leases due mails, sends them concurrently, records each outcome. Returns how
/// many were leased.
pub async fn deliver_due(
    transport: &Transport,
    pool: &PgPool,
    options: &DeliveryOptions,
) -> Result<usize, MailError> {
    let leased = {
        let mut conn = pool.get().await?;
        queue::claim(&mut conn, options.batch, options.lease).await?
    };
    let outcomes = futures_util::future::join_all(
        leased
            .iter()
            .map(|mail| deliver_one(transport, pool, options, mail)),
    )
    .await;
    outcomes.into_iter().collect::<Result<Vec<()>, _>>()?;
    Ok(leased.len())
}

async fn deliver_one(
    transport: &Transport,
    pool: &PgPool,
    options: &DeliveryOptions,
    mail: &QueuedMail,
) -> Result<(), MailError> {
    let outcome = transport.deliver(mail).await;
    let mut conn = pool.get().await?;
    match outcome {
        Ok(()) => {
            queue::mark_sent(&mut conn, mail).await?;
            tracing::info!(
                mail_id = mail.id,
                kind = %mail.kind,
                attempts = mail.attempts,
                "mail sent"
            );
        }
        Err(e) => {
            let give_up =
                matches!(e, DeliveryError::Permanent(_)) || mail.attempts >= options.max_attempts;
            let delay = options.retry_delay(mail.attempts);
            queue::mark_failed(&mut conn, mail, &e.to_string(), delay, give_up).await?;
            tracing::warn!(
                mail_id = mail.id,
                kind = %mail.kind,
                attempts = mail.attempts,
                give_up,
                error = %e,
                "mail not sent"
            );
        }
    }
    Ok(())
}
