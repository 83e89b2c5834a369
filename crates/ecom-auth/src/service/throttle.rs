//! Login throttling in PostgreSQL, shared by every replica.
//!
//! Each login attempt is counted for its email and for its client address *before* the
//! password is verified, in one `INSERT … ON CONFLICT … RETURNING`, so of N concurrent
//! guesses at most the limit are evaluated and the rest answer 429. Counts live in a
//! fixed window that starts at a key's first attempt. A success clears the email's count
//! and takes its own attempt back from the address's count, so signing in never uses up
//! the address's allowance. Expired rows go in a bounded periodic clean-up, never per
//! request.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Integer, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use ecom_core::settings::Settings;

use crate::error::{AuthError, AuthResult};
use crate::schema::login_throttle;

/// How many attempts each kind of key may make within the window.
#[derive(Debug, Clone, Copy)]
pub struct ThrottleLimits {
    pub per_email: u32,
    pub per_address: u32,
    pub window: Duration,
}

impl ThrottleLimits {
    /// `LOGIN_MAX_FAILURES_PER_EMAIL`, `LOGIN_MAX_FAILURES_PER_ADDRESS`, `LOGIN_THROTTLE_WINDOW_SECONDS`.
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            per_email: settings.login_max_failures_per_email,
            per_address: settings.login_max_failures_per_address,
            window: Duration::from_secs(settings.login_throttle_window_seconds),
        }
    }
}

/// The two keys one login attempt is counted under.
#[derive(Debug, Clone)]
pub struct AttemptKeys {
    email: String,
    address: String,
}

impl AttemptKeys {
    /// `email` as typed (trimmed and lower-cased here, valid or not) and the client address.
    pub fn new(email: &str, client_address: &str) -> Self {
        Self {
            email: format!("email:{}", truncate(&email.trim().to_lowercase(), 254)),
            address: format!("addr:{client_address}"),
        }
    }
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

#[derive(QueryableByName)]
struct Counted {
    #[diesel(sql_type = Text)]
    key: String,
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(sql_type = Timestamptz)]
    expires_at: DateTime<Utc>,
}

/// Counts one attempt under both keys. `Err(Throttled)` when either key is over its
/// limit: the attempt must then not be evaluated.
pub async fn count_attempt(
    conn: &mut AsyncPgConnection,
    limits: ThrottleLimits,
    keys: &AttemptKeys,
) -> AuthResult<()> {
    let window_ms = i64::try_from(limits.window.as_millis()).unwrap_or(i64::MAX);
    // Keys in a fixed order, so two attempts never lock the rows in opposite orders.
    let mut ordered = vec![keys.email.clone(), keys.address.clone()];
    ordered.sort();
    let rows: Vec<Counted> = diesel::sql_query(
        "INSERT INTO login_throttle AS t (key, attempts, window_started_at, expires_at) \
         SELECT k, 1, now(), now() + make_interval(secs => $2 / 1000.0) FROM unnest($1::text[]) AS k \
         ON CONFLICT (key) DO UPDATE SET \
           attempts = CASE WHEN t.expires_at <= now() THEN 1 ELSE t.attempts + 1 END, \
           window_started_at = CASE WHEN t.expires_at <= now() THEN now() ELSE t.window_started_at END, \
           expires_at = CASE WHEN t.expires_at <= now() THEN EXCLUDED.expires_at ELSE t.expires_at END \
         RETURNING t.key, t.attempts, t.expires_at",
    )
    .bind::<Array<Text>, _>(&ordered)
    .bind::<BigInt, _>(window_ms)
    .load(conn)
    .await?;
    let now = Utc::now();
    let wait = rows
        .iter()
        .filter(|row| {
            let limit = if row.key == keys.email {
                limits.per_email
            } else {
                limits.per_address
            };
            i64::from(row.attempts) > i64::from(limit)
        })
        .map(|row| (row.expires_at - now).num_seconds().max(0) as u64 + 1)
        .max();
    match wait {
        Some(retry_after_secs) => Err(AuthError::Throttled { retry_after_secs }),
        None => Ok(()),
    }
}

/// Counts one event under `key` in a fixed window of `window` starting at the key's first
/// event (the same rows and clean-up as logins; other uses prefix their keys). Returns the
/// count in the current window, this event included, and when the window ends.
pub(crate) async fn count(
    conn: &mut AsyncPgConnection,
    key: &str,
    window: Duration,
) -> AuthResult<(i32, DateTime<Utc>)> {
    let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
    let row: Counted = diesel::sql_query(
        "INSERT INTO login_throttle AS t (key, attempts, window_started_at, expires_at) \
         VALUES ($1, 1, now(), now() + make_interval(secs => $2 / 1000.0)) \
         ON CONFLICT (key) DO UPDATE SET \
           attempts = CASE WHEN t.expires_at <= now() THEN 1 ELSE t.attempts + 1 END, \
           window_started_at = CASE WHEN t.expires_at <= now() THEN now() ELSE t.window_started_at END, \
           expires_at = CASE WHEN t.expires_at <= now() THEN EXCLUDED.expires_at ELSE t.expires_at END \
         RETURNING t.key, t.attempts, t.expires_at",
    )
    .bind::<Text, _>(key)
    .bind::<BigInt, _>(window_ms)
    .get_result(conn)
    .await?;
    Ok((row.attempts, row.expires_at))
}

/// Seconds until `expires_at`, at least 1: a `Retry-After`.
pub(crate) fn retry_after(expires_at: DateTime<Utc>) -> u64 {
    (expires_at - Utc::now()).num_seconds().max(0) as u64 + 1
}

/// After a successful login: the email starts afresh and the address gets its attempt back.
pub async fn record_success(conn: &mut AsyncPgConnection, keys: &AttemptKeys) -> AuthResult<()> {
    diesel::delete(login_throttle::table.find(&keys.email))
        .execute(conn)
        .await?;
    diesel::update(
        login_throttle::table
            .find(&keys.address)
            .filter(login_throttle::attempts.gt(0)),
    )
    .set(login_throttle::attempts.eq(login_throttle::attempts - 1))
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes up to `batch` rows whose window has ended; returns how many. Rows another
/// replica is deleting or counting right now are skipped, so replicas never wait on or
/// double each other.
pub async fn purge_expired(conn: &mut AsyncPgConnection, batch: i64) -> AuthResult<usize> {
    Ok(diesel::sql_query(
        "DELETE FROM login_throttle WHERE key IN ( \
           SELECT key FROM login_throttle WHERE expires_at < now() \
           ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)",
    )
    .bind::<BigInt, _>(batch)
    .execute(conn)
    .await?)
}
