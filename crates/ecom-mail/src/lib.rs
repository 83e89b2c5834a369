//! ecom-mail: delivers the mails other domains queue in `mail_outbox`
//! ([`ecom_core::mail::enqueue`], in the transaction that makes a mail necessary), and
//! queues order confirmations from the outbox's `order.paid` events.
//!
//! - [`transport`]: SMTP through lettre (`SMTP_URL`), or complete `.eml` files under
//!   `{ECOM_DATA_DIR}/mail/`
//! - [`queue`], [`worker`]: leasing due mails (`FOR UPDATE SKIP LOCKED`), sending outside
//!   the transaction, retries with backoff; at least once, a resend keeps its Message-ID
//! - [`orders`]: the `mail` outbox consumer of `order.paid`
//!
//! No routes and no tables of its own; it reads account addresses through ecom-auth's
//! public functions.

pub mod error;
pub mod orders;
pub mod queue;
pub mod transport;
pub mod worker;

use std::sync::Arc;

use ecom_core::db::PgPool;
use ecom_core::events::Wakeups;
use ecom_core::settings::Settings;

pub use error::MailError;
pub use transport::Transport;
pub use worker::DeliveryOptions;

/// Days a sent or failed mail stays in the queue (for support questions) before the
/// clean-up deletes it.
pub const KEEP_DONE_DAYS: i32 = 30;

/// The background tasks of one replica: the delivery worker and the order-confirmation
/// consumer. Abort them at shutdown; whatever was in flight is sent again by a replica.
#[derive(Debug)]
pub struct MailTasks {
    pub delivery: tokio::task::JoinHandle<()>,
    pub confirmations: tokio::task::JoinHandle<()>,
}

impl MailTasks {
    pub fn abort(&self) {
        self.delivery.abort();
        self.confirmations.abort();
    }
}

/// Starts mail delivery as the settings say (`SMTP_URL` or `.eml` files, `MAIL_FROM`,
/// `STORE_CURRENCY`, `STOREFRONT_URL`), woken by `wakeups`.
pub fn spawn(settings: &Settings, pool: PgPool, wakeups: Wakeups) -> Result<MailTasks, MailError> {
    let transport = Arc::new(Transport::from_settings(settings)?);
    match transport.as_ref() {
        Transport::Smtp(_) => tracing::info!("mails go out through SMTP_URL"),
        Transport::Files(dir) => {
            tracing::info!(dir = %dir.display(), "no SMTP_URL: mails are written as .eml files")
        }
    }
    let delivery = worker::spawn(
        transport,
        pool.clone(),
        wakeups.clone(),
        DeliveryOptions::default(),
    );
    let confirmations = orders::consumer(confirmation_settings(settings)).spawn(pool, wakeups);
    Ok(MailTasks {
        delivery,
        confirmations,
    })
}

/// The order confirmation's settings.
pub fn confirmation_settings(settings: &Settings) -> orders::ConfirmationSettings {
    orders::ConfirmationSettings {
        from: settings.mail_from.clone(),
        currency: settings.store_currency.clone(),
        storefront_url: settings.storefront_url.trim_end_matches('/').to_string(),
    }
}

/// The mail queue's clean-up: sent and failed mails older than [`KEEP_DONE_DAYS`].
pub fn chores() -> Vec<ecom_core::housekeeping::Chore> {
    vec![ecom_core::housekeeping::Chore::new(
        "mail_outbox",
        |conn, batch| {
            Box::pin(async move { Ok(queue::purge_done(conn, KEEP_DONE_DAYS, batch).await?) })
        },
    )]
}
