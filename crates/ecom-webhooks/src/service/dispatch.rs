//! The delivery workers: one loop per replica (several may run anywhere), sharing due
//! deliveries through `FOR UPDATE SKIP LOCKED`.
//!
//! - **Claim** in one short statement: due `pending` deliveries of active endpoints are
//!   leased (`next_attempt_at = now() + lease`, `attempts + 1`) and handed to this worker;
//!   a worker that dies leaves its deliveries to be claimed again when the lease expires.
//! - **Send** outside any transaction, several at once (at most `max_in_flight`, and at
//!   most `per_endpoint` to one endpoint, so a slow or dead receiver never holds up the
//!   others), with a timeout, redirects not followed, through a resolver that refuses
//!   private destinations unless allowed and connects only to the addresses it checked.
//! - **Record** the result in one statement, only if the delivery is still the
//!   attempt this worker claimed; failures feed the endpoint's count of failed deliveries
//!   in a row, which disables it at `disable_after`.
//! - Sleeps until the earliest due attempt, a commit that recorded events or queued
//!   deliveries (LISTEN/NOTIFY through [`Wakeups`]), or the end of one of its sends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Bytea, Double, Integer, Nullable, Text, Timestamptz};
use diesel_async::RunQueryDsl;
use ecom_core::AppError;
use ecom_core::db::{PgConn, PgPool};
use ecom_core::events::Wakeups;
use ecom_core::settings::Settings;
use reqwest::Url;
use tokio::sync::{Notify, Semaphore};

use super::destination::{CheckedResolver, DestinationNotAllowed, is_public, literal_ip};
use super::signature::sign;
use crate::model::TOO_MANY_FAILURES;

/// Longest pause between two looks at the due deliveries (a safety net; wake-ups and the
/// earliest due time normally decide).
const MAX_SLEEP: Duration = Duration::from_secs(60);
/// Longest first-retry-delay doubling result.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// How deliveries are made; see [`DeliveryConfig::from_settings`].
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Attempts per delivery before it is `failed` (`WEBHOOK_MAX_ATTEMPTS`).
    pub max_attempts: u32,
    /// The first retry's delay, doubled for each further one (`WEBHOOK_RETRY_BASE_MS`).
    pub retry_base: Duration,
    /// `failed` deliveries in a row that disable an endpoint.
    pub disable_after: u32,
    /// Allow private and loopback destinations (`WEBHOOK_ALLOW_PRIVATE`).
    pub allow_private: bool,
    /// Whole-attempt timeout: a 2xx must arrive within it.
    pub timeout: Duration,
    /// How long a claimed delivery is left to its worker before others may take it.
    pub lease: Duration,
    /// Sends in flight at once, per worker.
    pub max_in_flight: usize,
    /// Sends in flight at once to one endpoint, per worker.
    pub per_endpoint: usize,
}

impl DeliveryConfig {
    /// The documented behaviour: the settings' attempts, delays and destination rule, a
    /// 10 s timeout, a 30 s lease, 64 sends in flight (16 per endpoint: one endpoint alone
    /// is sent about 600 events/s from a debug build on two cores, and a slow one holds at
    /// most a quarter of the sends).
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            max_attempts: settings.webhook_max_attempts.max(1),
            retry_base: Duration::from_millis(settings.webhook_retry_base_ms),
            disable_after: settings.webhook_disable_after_failures.max(1),
            allow_private: settings.webhook_allow_private,
            timeout: Duration::from_secs(10),
            lease: Duration::from_secs(30),
            max_in_flight: 64,
            per_endpoint: 16,
        }
    }
}

/// The delay before the attempt after attempt number `attempts` (1-based):
/// `base · 2^(attempts − 1)` with ±25 % jitter, at most an hour.
pub fn retry_delay(base: Duration, attempts: u32) -> Duration {
    use rand::Rng;
    let doubled = base.saturating_mul(2u32.saturating_pow(attempts.saturating_sub(1).min(31)));
    let jitter = rand::rng().random_range(0.75..=1.25);
    doubled.min(MAX_BACKOFF).mul_f64(jitter).min(MAX_BACKOFF)
}

/// A delivery this worker has leased.
#[derive(QueryableByName)]
struct Claimed {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    endpoint_id: i64,
    #[diesel(sql_type = BigInt)]
    event_id: i64,
    #[diesel(sql_type = Bytea)]
    body: Vec<u8>,
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(sql_type = Text)]
    url: String,
    #[diesel(sql_type = Text)]
    secret: String,
}

ecom_core::debug_showing!(Claimed {
    id,
    endpoint_id,
    event_id,
    attempts
});

#[derive(QueryableByName)]
struct Due {
    #[diesel(sql_type = Nullable<Timestamptz>)]
    at: Option<DateTime<Utc>>,
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx.
    Delivered(u16),
    /// A network error, a timeout, 5xx, 408 or 429: tried again while attempts are left.
    Retry { code: Option<u16>, error: String },
    /// Any other answer (redirects included) or a refused destination: failed at once.
    Fail { code: Option<u16>, error: String },
}

impl Outcome {
    /// The outcome of an HTTP answer with status `code`.
    pub fn of_status(code: u16) -> Self {
        match code {
            200..=299 => Self::Delivered(code),
            500..=599 | 408 | 429 => Self::Retry {
                code: Some(code),
                error: format!("http_{code}"),
            },
            _ => Self::Fail {
                code: Some(code),
                error: format!("http_{code}"),
            },
        }
    }
}

/// The delivery worker of one replica.
pub struct Dispatcher {
    pool: PgPool,
    config: DeliveryConfig,
    client: reqwest::Client,
    /// Sends in flight per endpoint.
    busy: Mutex<HashMap<i64, usize>>,
    slots: Arc<Semaphore>,
    finished: Notify,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Dispatcher {
    pub fn new(pool: PgPool, config: DeliveryConfig) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(CheckedResolver {
                allow_private: config.allow_private,
            }))
            .user_agent("ecom-webhooks/1")
            .build()?;
        Ok(Self {
            pool,
            slots: Arc::new(Semaphore::new(config.max_in_flight.max(1))),
            config,
            client,
            busy: Mutex::new(HashMap::new()),
            finished: Notify::new(),
        })
    }

    /// Runs the worker until the handle is aborted.
    pub fn spawn(self, wakeups: Wakeups) -> tokio::task::JoinHandle<()> {
        let this = Arc::new(self);
        tokio::spawn(async move { this.run(wakeups).await })
    }

    async fn run(self: Arc<Self>, wakeups: Wakeups) {
        let mut woken = wakeups.subscribe();
        let mut failures = 0u32;
        loop {
            woken.mark_unchanged();
            let free = self.slots.available_permits();
            if free == 0 {
                self.finished.notified().await;
                continue;
            }
            match self.claim(free).await {
                Ok(claimed) => {
                    failures = 0;
                    let full = claimed.len() >= free;
                    for delivery in claimed {
                        self.start(delivery);
                    }
                    if full {
                        continue;
                    }
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e, "webhook deliveries: claim failed; retrying");
                    let pause = Duration::from_millis(200 * 2u64.pow(failures.min(8)));
                    tokio::time::sleep(pause.min(Duration::from_secs(30))).await;
                    continue;
                }
            }
            let pause = match self.next_due().await {
                Ok(Some(at)) => (at - Utc::now())
                    .to_std()
                    .unwrap_or_default()
                    .clamp(Duration::from_millis(10), MAX_SLEEP),
                Ok(None) => MAX_SLEEP,
                Err(_) => Duration::from_secs(1),
            };
            tokio::select! {
                _ = woken.changed() => {}
                _ = self.finished.notified() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// Endpoints this worker sends to, with how many sends each has in flight.
    fn in_flight(&self) -> (Vec<i64>, Vec<i32>) {
        let busy = self.busy.lock().expect("busy map lock");
        busy.iter().map(|(id, n)| (*id, *n as i32)).unzip()
    }

    /// Leases up to `limit` due deliveries (at most `per_endpoint` in flight per endpoint).
    async fn claim(&self, limit: usize) -> Result<Vec<Claimed>, AppError> {
        let (ids, used) = self.in_flight();
        let mut conn = self.pool.get().await?;
        // Per active endpoint (an index scan each), its earliest due deliveries up to the
        // room this worker has for it; of those the earliest `limit`, skipping rows another
        // worker is claiming.
        let claimed = diesel::sql_query(
            "WITH used AS (SELECT * FROM unnest($1::int8[], $2::int4[]) AS u(endpoint_id, n)), \
             due AS ( \
                 SELECT d.id FROM webhook_deliveries d \
                 WHERE d.id IN ( \
                     SELECT c.id FROM webhook_endpoints e \
                     LEFT JOIN used u ON u.endpoint_id = e.id \
                     CROSS JOIN LATERAL ( \
                         SELECT x.id, x.next_attempt_at FROM webhook_deliveries x \
                         WHERE x.endpoint_id = e.id AND x.status = 'pending' \
                           AND x.next_attempt_at <= now() \
                         ORDER BY x.next_attempt_at \
                         LIMIT greatest($3 - coalesce(u.n, 0), 0)) c \
                     WHERE e.is_active \
                     ORDER BY c.next_attempt_at LIMIT $4) \
                   AND d.status = 'pending' AND d.next_attempt_at <= now() \
                 FOR UPDATE SKIP LOCKED) \
             UPDATE webhook_deliveries d \
             SET attempts = d.attempts + 1, \
                 next_attempt_at = now() + make_interval(secs => $5), updated_at = now() \
             FROM due, webhook_endpoints e \
             WHERE d.id = due.id AND e.id = d.endpoint_id \
             RETURNING d.id, d.endpoint_id, d.event_id, d.body, d.attempts, e.url, e.secret",
        )
        .bind::<Array<BigInt>, _>(ids)
        .bind::<Array<Integer>, _>(used)
        .bind::<BigInt, _>(self.config.per_endpoint as i64)
        .bind::<BigInt, _>(limit as i64)
        .bind::<Double, _>(self.config.lease.as_secs_f64())
        .load(&mut conn)
        .await?;
        Ok(claimed)
    }

    /// When the earliest pending delivery this worker could send falls due.
    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, AppError> {
        let saturated: Vec<i64> = {
            let busy = self.busy.lock().expect("busy map lock");
            busy.iter()
                .filter(|(_, n)| **n >= self.config.per_endpoint)
                .map(|(id, _)| *id)
                .collect()
        };
        let mut conn = self.pool.get().await?;
        let due: Due = diesel::sql_query(
            "SELECT min(x.next_attempt_at) AS at FROM webhook_endpoints e \
             CROSS JOIN LATERAL ( \
                 SELECT next_attempt_at FROM webhook_deliveries d \
                 WHERE d.endpoint_id = e.id AND d.status = 'pending' \
                 ORDER BY next_attempt_at LIMIT 1) x \
             WHERE e.is_active AND e.id <> ALL($1)",
        )
        .bind::<Array<BigInt>, _>(saturated)
        .get_result(&mut conn)
        .await?;
        Ok(due.at)
    }

    /// Sends one claimed delivery in its own task, holding a slot.
    fn start(self: &Arc<Self>, delivery: Claimed) {
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            // Claims never exceed the free slots; should one, its lease brings it back.
            return;
        };
        *self
            .busy
            .lock()
            .expect("busy map lock")
            .entry(delivery.endpoint_id)
            .or_default() += 1;
        let this = self.clone();
        tokio::spawn(async move {
            let outcome = this.attempt(&delivery).await;
            if let Err(e) = this.record(&delivery, &outcome).await {
                // The lease brings the delivery back: at least once.
                tracing::warn!(delivery = delivery.id, error = %e, "could not record a webhook attempt");
            }
            {
                let mut busy = this.busy.lock().expect("busy map lock");
                if let Some(n) = busy.get_mut(&delivery.endpoint_id) {
                    *n -= 1;
                    if *n == 0 {
                        busy.remove(&delivery.endpoint_id);
                    }
                }
            }
            drop(permit);
            this.finished.notify_one();
        });
    }

    /// One attempt: a signed POST of the stored body.
    async fn attempt(&self, delivery: &Claimed) -> Outcome {
        let Ok(url) = Url::parse(&delivery.url) else {
            return Outcome::Fail {
                code: None,
                error: "invalid_url".into(),
            };
        };
        // IP literals never reach the resolver: check them here.
        if !self.config.allow_private && literal_ip(&url).is_some_and(|ip| !is_public(ip)) {
            return Outcome::Fail {
                code: None,
                error: "destination_not_allowed".into(),
            };
        }
        let id = delivery.event_id.to_string();
        let timestamp = Utc::now().timestamp();
        let signature = sign(&delivery.secret, &id, timestamp, &delivery.body);
        let sent = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(delivery.body.clone())
            .send()
            .await;
        match sent {
            Ok(response) => Outcome::of_status(response.status().as_u16()),
            Err(e) => outcome_of_error(&e),
        }
    }

    /// Records `outcome` if the delivery is still the attempt this worker claimed, in one
    /// statement (the delivery and its endpoint's count of failures in a row together).
    async fn record(&self, delivery: &Claimed, outcome: &Outcome) -> Result<(), AppError> {
        let mut conn = self.pool.get().await?;
        let config = &self.config;
        match outcome {
            Outcome::Delivered(code) => {
                settle(&mut conn, delivery, "succeeded", Some(*code), None, 0).await
            }
            Outcome::Retry { code, error } if (delivery.attempts as u32) < config.max_attempts => {
                let delay = retry_delay(config.retry_base, delivery.attempts as u32);
                diesel::sql_query(
                    "UPDATE webhook_deliveries SET response_code = $3, last_error = $4, \
                     next_attempt_at = now() + make_interval(secs => $5), updated_at = now() \
                     WHERE id = $1 AND attempts = $2 AND status = 'pending'",
                )
                .bind::<BigInt, _>(delivery.id)
                .bind::<Integer, _>(delivery.attempts)
                .bind::<Nullable<Integer>, _>(code.map(i32::from))
                .bind::<Text, _>(error)
                .bind::<Double, _>(delay.as_secs_f64())
                .execute(&mut conn)
                .await?;
                Ok(())
            }
            Outcome::Retry { code, error } | Outcome::Fail { code, error } => {
                let disable_after = config.disable_after.min(i32::MAX as u32) as i32;
                settle(
                    &mut conn,
                    delivery,
                    "failed",
                    *code,
                    Some(error),
                    disable_after,
                )
                .await
            }
        }
    }
}

/// Settles a delivery as `status` if it is still the claimed attempt, and then moves its
/// endpoint's count of failed deliveries in a row: back to 0 on success; one up on
/// failure, disabling the endpoint (`too_many_failures`) when it reaches `disable_after`.
async fn settle(
    conn: &mut PgConn,
    delivery: &Claimed,
    status: &str,
    code: Option<u16>,
    error: Option<&String>,
    disable_after: i32,
) -> Result<(), AppError> {
    diesel::sql_query(
        "WITH settled AS ( \
             UPDATE webhook_deliveries SET status = $3, response_code = $4, last_error = $5, \
                 updated_at = now() \
             WHERE id = $1 AND attempts = $2 AND status = 'pending' RETURNING endpoint_id) \
         UPDATE webhook_endpoints e SET \
             consecutive_failures = CASE WHEN $3 = 'succeeded' THEN 0 \
                                         ELSE e.consecutive_failures + 1 END, \
             disabled_reason = CASE WHEN $3 = 'failed' AND e.is_active \
                                         AND e.consecutive_failures + 1 >= $6 \
                                    THEN $7 ELSE e.disabled_reason END, \
             is_active = e.is_active AND ($3 = 'succeeded' OR e.consecutive_failures + 1 < $6), \
             updated_at = CASE WHEN $3 = 'succeeded' THEN e.updated_at ELSE now() END \
         FROM settled WHERE e.id = settled.endpoint_id \
           AND ($3 = 'failed' OR e.consecutive_failures <> 0)",
    )
    .bind::<BigInt, _>(delivery.id)
    .bind::<Integer, _>(delivery.attempts)
    .bind::<Text, _>(status)
    .bind::<Nullable<Integer>, _>(code.map(i32::from))
    .bind::<Nullable<Text>, _>(error)
    .bind::<Integer, _>(disable_after)
    .bind::<Text, _>(TOO_MANY_FAILURES)
    .execute(conn)
    .await?;
    Ok(())
}

/// The outcome of a request that got no answer.
fn outcome_of_error(e: &reqwest::Error) -> Outcome {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut chain = Vec::new();
    while let Some(err) = source {
        if err.is::<DestinationNotAllowed>() {
            return Outcome::Fail {
                code: None,
                error: "destination_not_allowed".into(),
            };
        }
        chain.push(err.to_string());
        source = err.source();
    }
    if e.is_timeout() {
        return Outcome::Retry {
            code: None,
            error: "timeout".into(),
        };
    }
    // reqwest's own message names the URL, which may carry a token: the causes only.
    let mut error: String = chain.into_iter().skip(1).collect::<Vec<_>>().join(": ");
    if error.is_empty() {
        error = "network_error".into();
    }
    Outcome::Retry {
        code: None,
        error: error.chars().take(300).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_with_jitter_up_to_an_hour() {
        let base = Duration::from_millis(1000);
        for attempts in 1..=5u32 {
            let nominal = 1000.0 * 2f64.powi(attempts as i32 - 1);
            for _ in 0..200 {
                let ms = retry_delay(base, attempts).as_secs_f64() * 1000.0;
                assert!(
                    (nominal * 0.75 - 1.0..=nominal * 1.25 + 1.0).contains(&ms),
                    "attempt {attempts}: {ms} ms"
                );
            }
        }
        for attempts in [13, 40, u32::MAX] {
            assert!(retry_delay(base, attempts) <= MAX_BACKOFF);
        }
        let spread: std::collections::BTreeSet<u128> =
            (0..50).map(|_| retry_delay(base, 3).as_millis()).collect();
        assert!(spread.len() > 10, "jittered: {spread:?}");
    }

    #[test]
    fn only_network_trouble_5xx_408_and_429_are_retried() {
        assert_eq!(Outcome::of_status(200), Outcome::Delivered(200));
        assert_eq!(Outcome::of_status(204), Outcome::Delivered(204));
        for code in [500, 502, 503, 504, 408, 429] {
            assert!(
                matches!(Outcome::of_status(code), Outcome::Retry { .. }),
                "{code}"
            );
        }
        for code in [301, 302, 304, 400, 401, 403, 404, 410, 413, 422] {
            assert!(
                matches!(Outcome::of_status(code), Outcome::Fail { .. }),
                "{code}"
            );
        }
    }
}
