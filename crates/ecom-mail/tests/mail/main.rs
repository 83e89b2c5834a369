//! ecom-mail's tests: the mails of the store delivered for real, to an SMTP server on
//! loopback (aiosmtpd) or as `.eml` files, with the real PostgreSQL behind the queue.

mod confirmations;
mod delivery;

use std::sync::Arc;
use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use ecom_core::AppContext;
use ecom_core::events::Wakeups;
use ecom_core::mail::{QueuedMail, mail_outbox};
use ecom_core::settings::Settings;
use ecom_mail::{DeliveryOptions, Transport};
use ecom_testkit::{TestDb, test_context, test_settings};

/// A strong password for test accounts.
pub const PASSWORD: &str = "plum-orbit-candle-42";
/// The storefront the links point at.
pub const STOREFRONT: &str = "https://shop.example";
/// The sender of every mail.
pub const FROM: &str = "Shop <no-reply@shop.example>";

/// Settings of a store whose links and sender are the ones above, plus `extra`.
pub fn mail_settings(db: &TestDb, extra: &[(&str, &str)]) -> Settings {
    let mut all = vec![("STOREFRONT_URL", STOREFRONT), ("MAIL_FROM", FROM)];
    all.extend_from_slice(extra);
    test_settings(db, &all)
}

/// The auth module (which queues the mails) with the same settings.
pub fn mail_context(db: &TestDb, extra: &[(&str, &str)]) -> AppContext {
    let mut all = vec![("STOREFRONT_URL", STOREFRONT), ("MAIL_FROM", FROM)];
    all.extend_from_slice(extra);
    test_context(db, vec![ecom_auth::module()], &all).with_resolver(ecom_auth::resolver())
}

/// Quick retries and a short lease, so the tests see them happen.
pub fn quick_options() -> DeliveryOptions {
    DeliveryOptions {
        batch: 10,
        lease: Duration::from_secs(2),
        max_attempts: 3,
        retry_base: Duration::from_millis(200),
    }
}

/// A delivery worker for `settings` (SMTP or files) on `db`, woken by its commits.
pub fn start_delivery(
    db: &TestDb,
    settings: &Settings,
    options: DeliveryOptions,
) -> tokio::task::JoinHandle<()> {
    let transport = Transport::from_settings(settings).expect("a usable transport");
    ecom_mail::worker::spawn(Arc::new(transport), db.pool(), wakeups(db), options)
}

/// Wake-ups at each commit on `db` (its events, its queued mails).
pub fn wakeups(db: &TestDb) -> Wakeups {
    Wakeups::listen(db.pool())
}

/// Every queued mail to `email`, oldest first.
pub async fn queued(db: &TestDb, email: &str) -> Vec<QueuedMail> {
    let mut conn = db.connect().await;
    mail_outbox::table
        .filter(mail_outbox::recipient.eq(email))
        .order(mail_outbox::id)
        .select(QueuedMail::as_select())
        .load(&mut conn)
        .await
        .expect("read the queue")
}

/// Waits (up to 20 s) until the mail with this id has `status`; returns it.
pub async fn wait_for_status(db: &TestDb, id: i64, status: &str) -> QueuedMail {
    let mut conn = db.connect().await;
    for _ in 0..400 {
        let mail: QueuedMail = mail_outbox::table
            .find(id)
            .select(QueuedMail::as_select())
            .first(&mut conn)
            .await
            .expect("read the mail");
        if mail.status == status {
            return mail;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("mail {id} never became {status}");
}
