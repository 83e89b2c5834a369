//! The read side of core's mail queue (`mail_outbox`): leasing due mails, and recording
//! what became of a send.
//!
//! A lease is the claim itself: due mails are picked with `FOR UPDATE SKIP LOCKED` (so
//! replicas never pick the same row) and their `next_attempt_at` moved past the end of
//! the send (`lease`), in one autocommitted statement. The send happens outside any
//! transaction. A sender that dies before recording the outcome leaves the mail `pending`
//! with an expired lease: another worker picks it again and sends it with the same
//! Message-ID, which is what lets a receiver drop the duplicate.

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Double, Integer, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use ecom_core::mail::{QueuedMail, mail_outbox};

/// Leases up to `batch` due mails for `lease` and counts the attempt.
pub async fn claim(
    conn: &mut AsyncPgConnection,
    batch: i64,
    lease: Duration,
) -> QueryResult<Vec<QueuedMail>> {
    diesel::sql_query(
        "UPDATE mail_outbox SET attempts = attempts + 1, \
             next_attempt_at = now() + make_interval(secs => $2) \
         WHERE id IN ( \
             SELECT id FROM mail_outbox WHERE status = 'pending' AND next_attempt_at <= now() \
             ORDER BY next_attempt_at, id LIMIT $1 FOR UPDATE SKIP LOCKED) \
         RETURNING *",
    )
    .bind::<BigInt, _>(batch)
    .bind::<Double, _>(lease.as_secs_f64())
    .load(conn)
    .await
}

/// Records a delivered mail. Only the lease holder's outcome counts: a worker whose lease
/// ran out (and was re-leased) changes nothing.
pub async fn mark_sent(conn: &mut AsyncPgConnection, mail: &QueuedMail) -> QueryResult<bool> {
    let changed = diesel::update(
        mail_outbox::table
            .find(mail.id)
            .filter(mail_outbox::status.eq("pending"))
            .filter(mail_outbox::attempts.eq(mail.attempts)),
    )
    .set((
        mail_outbox::status.eq("sent"),
        mail_outbox::sent_at.eq(diesel::dsl::now),
        mail_outbox::last_error.eq(None::<String>),
    ))
    .execute(conn)
    .await?;
    Ok(changed == 1)
}

/// Records a failed send: retried after `delay`, or `failed` for good when `give_up`.
pub async fn mark_failed(
    conn: &mut AsyncPgConnection,
    mail: &QueuedMail,
    error: &str,
    delay: Duration,
    give_up: bool,
) -> QueryResult<bool> {
    let changed = diesel::sql_query(
        "UPDATE mail_outbox SET last_error = $3, \
             status = CASE WHEN $4 THEN 'failed' ELSE 'pending' END, \
             next_attempt_at = now() + make_interval(secs => $5) \
         WHERE id = $1 AND attempts = $2 AND status = 'pending'",
    )
    .bind::<BigInt, _>(mail.id)
    .bind::<Integer, _>(mail.attempts)
    .bind::<Text, _>(error)
    .bind::<Bool, _>(give_up)
    .bind::<Double, _>(delay.as_secs_f64())
    .execute(conn)
    .await?;
    Ok(changed == 1)
}

/// When the next pending mail is due, if any.
pub async fn next_due(
    conn: &mut AsyncPgConnection,
) -> QueryResult<Option<chrono::DateTime<chrono::Utc>>> {
    mail_outbox::table
        .filter(mail_outbox::status.eq("pending"))
        .select(diesel::dsl::min(mail_outbox::next_attempt_at))
        .get_result(conn)
        .await
}

/// Retention: deletes up to `batch` sent or failed mails older than `days`.
pub async fn purge_done(conn: &mut AsyncPgConnection, days: i32, batch: i64) -> QueryResult<usize> {
    diesel::sql_query(
        "DELETE FROM mail_outbox WHERE id IN ( \
           SELECT id FROM mail_outbox WHERE status <> 'pending' \
             AND created_at < now() - make_interval(days => $1) \
           ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
    )
    .bind::<Integer, _>(days)
    .bind::<BigInt, _>(batch)
    .execute(conn)
    .await
}
