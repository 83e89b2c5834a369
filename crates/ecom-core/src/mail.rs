//! The mail queue's write side: a domain that must send a mail writes it, complete, into
//! `mail_outbox` on the change's own connection, in its transaction, so a committed change
//! ⇔ its mail, and a crash after commit never loses it. ecom-mail's workers deliver it
//! afterwards (SMTP or `.eml` files), at least once, always with the Message-ID chosen here.
//!
//! Core knows no domain: what a mail says is the caller's business; this module only
//! stores it and wakes the workers (`NOTIFY` on [`crate::events::CHANNEL`] at commit, the
//! channel [`crate::events::Wakeups`] listens on).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

diesel::table! {
    mail_outbox (id) {
        id -> Int8,
        message_id -> Text,
        kind -> Text,
        sender -> Text,
        recipient -> Text,
        subject -> Text,
        text_body -> Text,
        status -> Text,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
        sent_at -> Nullable<Timestamptz>,
    }
}

/// A mail to send: everything the message needs.
#[derive(Clone)]
pub struct OutgoingMail {
    /// What it is (`verify_email`, `reset_password`, `order_confirmation`): for logs.
    pub kind: &'static str,
    /// `MAIL_FROM`, e.g. `ecom <no-reply@shop.example>`.
    pub from: String,
    pub to: String,
    pub subject: String,
    pub text_body: String,
    /// `<…@domain>`; see [`message_id`]. A mail enqueued again with the same id is the
    /// same mail (nothing is added), so a replayed producer never sends twice.
    pub message_id: String,
}

// Never prints the recipient or the body (tokens, links).
crate::debug_showing!(OutgoingMail { kind, message_id });

/// A queued mail, as the workers read it.
#[derive(Clone, Queryable, Selectable, QueryableByName)]
#[diesel(table_name = mail_outbox, check_for_backend(diesel::pg::Pg))]
pub struct QueuedMail {
    pub id: i64,
    pub message_id: String,
    pub kind: String,
    pub sender: String,
    pub recipient: String,
    pub subject: String,
    pub text_body: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

crate::debug_showing!(QueuedMail {
    id,
    kind,
    message_id,
    status,
    attempts
});

/// A `Message-ID` (`<local@domain>`) for a mail from `from`: `local` made unique by the
/// caller (random, or derived from what the mail is about, so a replay keeps it), the
/// domain taken from the sender's address (`localhost` when it has none).
pub fn message_id(from: &str, local: &str) -> String {
    let address = from
        .rsplit_once('<')
        .map(|(_, rest)| rest.trim_end_matches('>'))
        .unwrap_or(from);
    let domain = address
        .rsplit_once('@')
        .map(|(_, d)| d.trim())
        .filter(|d| !d.is_empty())
        .unwrap_or("localhost");
    format!("<{local}@{domain}>")
}

/// A fresh random `Message-ID` for a mail from `from`.
pub fn random_message_id(from: &str) -> String {
    message_id(from, &crate::random_hex(16))
}

/// Queues `mail` on the change's connection, inside its transaction, and wakes the workers
/// at commit. Returns the mail's id (the existing one when a mail with this Message-ID is
/// queued already).
pub async fn enqueue(conn: &mut AsyncPgConnection, mail: OutgoingMail) -> QueryResult<i64> {
    debug_assert!(
        crate::db::in_transaction(conn),
        "mails are queued inside the change's transaction"
    );
    diesel::sql_query("SELECT pg_notify($1, '')")
        .bind::<Text, _>(crate::events::CHANNEL)
        .execute(conn)
        .await?;
    let inserted: Option<i64> = diesel::insert_into(mail_outbox::table)
        .values((
            mail_outbox::message_id.eq(&mail.message_id),
            mail_outbox::kind.eq(mail.kind),
            mail_outbox::sender.eq(&mail.from),
            mail_outbox::recipient.eq(&mail.to),
            mail_outbox::subject.eq(&mail.subject),
            mail_outbox::text_body.eq(&mail.text_body),
        ))
        .on_conflict(mail_outbox::message_id)
        .do_nothing()
        .returning(mail_outbox::id)
        .get_result(conn)
        .await
        .optional()?;
    match inserted {
        Some(id) => Ok(id),
        None => {
            mail_outbox::table
                .filter(mail_outbox::message_id.eq(&mail.message_id))
                .select(mail_outbox::id)
                .get_result(conn)
                .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::message_id;

    #[test]
    fn message_ids_take_the_senders_domain() {
        assert_eq!(
            message_id("ecom <no-reply@shop.example>", "abc"),
            "<abc@shop.example>"
        );
        assert_eq!(message_id("orders@b.example", "x"), "<x@b.example>");
        assert_eq!(message_id("nobody", "x"), "<x@localhost>");
    }
}
