//! Typed settings: defaults < `ecom.toml` < `.env` < process environment < explicit overrides.
//!
//! Names are the environment variables of API.md (`DATABASE_URL`, `PORT`, ...); in
//! `ecom.toml` the same names are written in lower case.

use std::collections::HashMap;
use std::fmt;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Default `SHUTDOWN_GRACE_MS`: serving on after SIGTERM/SIGINT while `/ready` says 503.
pub const DEFAULT_SHUTDOWN_GRACE_MS: u64 = 5000;
/// Default `SHUTDOWN_TIMEOUT_SECONDS`: how long in-flight requests may take to finish.
pub const DEFAULT_SHUTDOWN_TIMEOUT_SECONDS: u64 = 30;

/// Default `ORDER_PAYMENT_WINDOW_SECONDS`: half an hour to pay for a new order.
pub const DEFAULT_ORDER_PAYMENT_WINDOW_SECONDS: u64 = 1800;

/// Default `MANUAL_PAYMENT_WINDOW_HOURS`: three days to pay by bank transfer or cash once
/// the shopper chose the `manual` provider.
pub const DEFAULT_MANUAL_PAYMENT_WINDOW_HOURS: u64 = 72;

/// Default `CART_TTL_DAYS`: a cart lives a month after its last write.
pub const DEFAULT_CART_TTL_DAYS: u64 = 30;

/// Smallest accepted `SECRET_KEY` outside development mode, in bytes.
pub const MIN_SECRET_KEY_BYTES: usize = 32;

/// Why the settings cannot be used; the message always names the setting.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("invalid setting: {0}")]
    Invalid(String),
    #[error("could not read settings: {0}")]
    Read(String),
}

/// A value that must never reach a log line.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"[redacted]\"")
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Every setting of the server. Build with [`Settings::load`] or [`SettingsLoader`].
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// PostgreSQL URL; `None` means "run on the private PostgreSQL" (development mode).
    pub database_url: Option<SecretString>,
    /// A streaming replica of the primary for anonymous catalog reads and the sales report;
    /// `None`: every read on the primary.
    pub database_read_url: Option<SecretString>,
    /// How far behind the primary the replica may be before reads skip it.
    pub read_replica_max_lag_ms: u64,
    pub secret_key: Option<SecretString>,
    /// Explicit `DEBUG`; see [`Settings::debug`] for the effective value.
    #[serde(rename = "debug")]
    pub debug_flag: Option<bool>,
    pub project_name: String,
    pub access_token_expire_minutes: i64,
    pub refresh_token_expire_days: i64,
    pub host: String,
    pub port: u16,
    pub database_pool_size: usize,
    /// How long a request waits for a pooled connection before answering 503.
    pub database_pool_timeout_ms: u64,
    /// `statement_timeout` set on every pooled connection.
    pub database_statement_timeout_ms: u64,
    pub log_format: LogFormat,
    pub ecom_data_dir: PathBuf,
    /// Comma-separated origins allowed by CORS; empty allows none, `*` allows any.
    pub cors_allowed_origins: String,
    /// `lock_timeout` of every pooled connection: a stuck lock holder answers 503, not a hang.
    pub database_lock_timeout_ms: u64,
    /// `idle_in_transaction_session_timeout` of every pooled connection.
    pub database_idle_in_transaction_timeout_ms: u64,
    /// Failed logins allowed per email within the throttle window.
    pub login_max_failures_per_email: u32,
    /// Failed logins allowed per client address within the throttle window.
    pub login_max_failures_per_address: u32,
    pub login_throttle_window_seconds: u64,
    /// Comma-separated CIDRs of the proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: String,
    /// When set, `GET /metrics` needs `Authorization: Bearer <token>`.
    pub metrics_token: Option<SecretString>,
    /// After SIGTERM/SIGINT: how long to keep serving while `/ready` answers 503, so a
    /// load balancer stops routing here before the listener closes.
    pub shutdown_grace_ms: u64,
    /// Then: how long in-flight requests may take to finish before they are cut off.
    pub shutdown_timeout_seconds: u64,
    /// How long a replica reuses a search's text matches (0: never); see ecom-catalog.
    pub search_cache_seconds: u64,
    /// How long a new order stays `pending` awaiting payment before the server cancels it.
    pub order_payment_window_seconds: u64,
    /// How long a pending order waits for a `manual` payment (bank transfer, cash) from
    /// the moment the shopper chose it; payments hands it to ecom-orders.
    pub manual_payment_window_hours: u64,
    /// How long a cart lives after its last write.
    pub cart_ttl_days: u64,
    /// The store's one currency, ISO 4217 (`USD`).
    pub store_currency: String,
    /// Stripe's API (or a Stripe-protocol server such as localstripe).
    pub stripe_api_base: String,
    /// Stripe's secret key (`STRIPE_SECRET_KEY`, or `STRIPE_API_KEY`); without one only the
    /// `manual` provider is offered.
    pub stripe_secret_key: Option<SecretString>,
    /// The same key under the name API.md uses.
    pub stripe_api_key: Option<SecretString>,
    /// The webhook endpoint's signing secret; without one every webhook is refused.
    pub stripe_webhook_secret: Option<SecretString>,
    /// `automatic` (capture at once) or `manual` (an administrator captures).
    pub stripe_capture_method: String,
    /// Attempts per webhook delivery before it is `failed`.
    pub webhook_max_attempts: u32,
    /// The first retry's delay; each further retry doubles it (≤ 1 h, ±25 % jitter).
    pub webhook_retry_base_ms: u64,
    /// `failed` deliveries in a row that disable an endpoint.
    pub webhook_disable_after_failures: u32,
    /// Allow webhook destinations on private and loopback addresses (tests, closed networks).
    pub webhook_allow_private: bool,
    /// How long events (and webhook deliveries) are kept.
    pub event_retention_days: u64,
    /// NATS server; with one, every event is also published to JetStream.
    pub nats_url: Option<String>,
    /// SMTP server (`smtp://[user:pass@]host:port[?tls=required]`, `smtps://…`); without
    /// one, mails are written as `.eml` files under `{ECOM_DATA_DIR}/mail/`.
    pub smtp_url: Option<SecretString>,
    /// The sender of every mail.
    pub mail_from: String,
    /// Base of the links in mails (`{STOREFRONT_URL}/verify-email?token=…`).
    pub storefront_url: String,
    pub email_verification_ttl_hours: u64,
    pub password_reset_ttl_minutes: u64,
}

/// Builder that decides which sources are read; tests use it to pass settings
/// without touching the process environment. Its Debug names the overrides, never
/// their values (they may be `DATABASE_URL`, `SECRET_KEY`, `METRICS_TOKEN`).
#[derive(Default)]
pub struct SettingsLoader {
    file: Option<PathBuf>,
    dotenv: Option<PathBuf>,
    read_process_env: bool,
    overrides: HashMap<String, String>,
}

impl fmt::Debug for SettingsLoader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.overrides.keys().collect();
        names.sort();
        f.debug_struct("SettingsLoader")
            .field("file", &self.file)
            .field("dotenv", &self.dotenv)
            .field("read_process_env", &self.read_process_env)
            .field("overrides", &names)
            .finish()
    }
}

impl SettingsLoader {
    /// Nothing but defaults and explicit overrides.
    pub fn isolated() -> Self {
        Self::default()
    }

    /// The sources the server reads: `ecom.toml` and `.env` in the working directory, then the environment.
    pub fn from_environment() -> Self {
        Self {
            file: Some(PathBuf::from("ecom.toml")),
            dotenv: Some(PathBuf::from(".env")),
            read_process_env: true,
            overrides: HashMap::new(),
        }
    }

    /// Sets one value by its environment name (`PORT`, `DATABASE_URL`, ...).
    pub fn set(mut self, name: &str, value: impl Into<String>) -> Self {
        self.overrides
            .insert(name.to_ascii_uppercase(), value.into());
        self
    }

    pub fn load(self) -> Result<Settings, SettingsError> {
        let mut builder = config::Config::builder()
            .set_default("project_name", "ecom")
            .and_then(|b| b.set_default("access_token_expire_minutes", 30))
            .and_then(|b| b.set_default("refresh_token_expire_days", 7))
            .and_then(|b| b.set_default("host", "127.0.0.1"))
            .and_then(|b| b.set_default("port", 8080))
            .and_then(|b| b.set_default("database_pool_size", 16))
            .and_then(|b| b.set_default("database_pool_timeout_ms", 3000))
            .and_then(|b| b.set_default("database_statement_timeout_ms", 15000))
            .and_then(|b| b.set_default("read_replica_max_lag_ms", 1000))
            .and_then(|b| b.set_default("log_format", "text"))
            .and_then(|b| b.set_default("ecom_data_dir", "./.ecom"))
            .and_then(|b| b.set_default("cors_allowed_origins", ""))
            .and_then(|b| b.set_default("database_lock_timeout_ms", 5000))
            .and_then(|b| b.set_default("database_idle_in_transaction_timeout_ms", 30000))
            .and_then(|b| b.set_default("login_max_failures_per_email", 5))
            .and_then(|b| b.set_default("login_max_failures_per_address", 30))
            .and_then(|b| b.set_default("login_throttle_window_seconds", 300))
            .and_then(|b| b.set_default("trusted_proxies", ""))
            .and_then(|b| b.set_default("shutdown_grace_ms", DEFAULT_SHUTDOWN_GRACE_MS))
            .and_then(|b| {
                b.set_default("shutdown_timeout_seconds", DEFAULT_SHUTDOWN_TIMEOUT_SECONDS)
            })
            .and_then(|b| b.set_default("search_cache_seconds", 5))
            .and_then(|b| {
                b.set_default(
                    "order_payment_window_seconds",
                    DEFAULT_ORDER_PAYMENT_WINDOW_SECONDS,
                )
            })
            .and_then(|b| {
                b.set_default(
                    "manual_payment_window_hours",
                    DEFAULT_MANUAL_PAYMENT_WINDOW_HOURS,
                )
            })
            .and_then(|b| b.set_default("cart_ttl_days", DEFAULT_CART_TTL_DAYS))
            .and_then(|b| b.set_default("store_currency", "USD"))
            .and_then(|b| b.set_default("stripe_api_base", "https://api.stripe.com"))
            .and_then(|b| b.set_default("stripe_capture_method", "automatic"))
            .and_then(|b| b.set_default("webhook_max_attempts", 8))
            .and_then(|b| b.set_default("webhook_retry_base_ms", 60_000))
            .and_then(|b| b.set_default("webhook_disable_after_failures", 10))
            .and_then(|b| b.set_default("webhook_allow_private", false))
            .and_then(|b| b.set_default("event_retention_days", 30))
            .and_then(|b| b.set_default("mail_from", "ecom <no-reply@localhost>"))
            .and_then(|b| b.set_default("storefront_url", "http://127.0.0.1:8080"))
            .and_then(|b| b.set_default("email_verification_ttl_hours", 48))
            .and_then(|b| b.set_default("password_reset_ttl_minutes", 30))
            .map_err(|e| SettingsError::Read(e.to_string()))?;
        if let Some(file) = &self.file {
            builder = builder.add_source(config::File::from(file.as_path()).required(false));
        }
        if let Some(path) = &self.dotenv {
            builder = builder.add_source(env_source(read_dotenv(path)?));
        }
        if self.read_process_env {
            builder = builder.add_source(env_source(std::env::vars().collect()));
        }
        builder = builder.add_source(env_source(self.overrides));
        let raw = builder
            .build()
            .map_err(|e| SettingsError::Read(name_settings(&e.to_string())))?;
        let settings: Settings = raw
            .try_deserialize()
            .map_err(|e| SettingsError::Invalid(name_settings(&e.to_string())))?;
        settings.validate()?;
        Ok(settings)
    }
}

/// Keeps only our own names, so unrelated variables (`PATH`, `HOME`) never reach the parser.
fn env_source(vars: HashMap<String, String>) -> config::Environment {
    let ours: config::Map<String, String> = vars
        .into_iter()
        .filter(|(k, _)| KNOWN_NAMES.contains(&k.to_ascii_uppercase().as_str()))
        .map(|(k, v)| (k.to_ascii_uppercase(), v))
        .collect();
    config::Environment::default()
        .source(Some(ours))
        .try_parsing(true)
}

/// Every setting's environment name.
pub const KNOWN_NAMES: &[&str] = &[
    "DATABASE_URL",
    "DATABASE_READ_URL",
    "READ_REPLICA_MAX_LAG_MS",
    "SECRET_KEY",
    "DEBUG",
    "PROJECT_NAME",
    "ACCESS_TOKEN_EXPIRE_MINUTES",
    "REFRESH_TOKEN_EXPIRE_DAYS",
    "HOST",
    "PORT",
    "DATABASE_POOL_SIZE",
    "DATABASE_POOL_TIMEOUT_MS",
    "DATABASE_STATEMENT_TIMEOUT_MS",
    "LOG_FORMAT",
    "ECOM_DATA_DIR",
    "CORS_ALLOWED_ORIGINS",
    "DATABASE_LOCK_TIMEOUT_MS",
    "DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS",
    "LOGIN_MAX_FAILURES_PER_EMAIL",
    "LOGIN_MAX_FAILURES_PER_ADDRESS",
    "LOGIN_THROTTLE_WINDOW_SECONDS",
    "TRUSTED_PROXIES",
    "METRICS_TOKEN",
    "SHUTDOWN_GRACE_MS",
    "SHUTDOWN_TIMEOUT_SECONDS",
    "SEARCH_CACHE_SECONDS",
    "ORDER_PAYMENT_WINDOW_SECONDS",
    "MANUAL_PAYMENT_WINDOW_HOURS",
    "CART_TTL_DAYS",
    "STORE_CURRENCY",
    "STRIPE_API_BASE",
    "STRIPE_SECRET_KEY",
    "STRIPE_API_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "STRIPE_CAPTURE_METHOD",
    "WEBHOOK_MAX_ATTEMPTS",
    "WEBHOOK_RETRY_BASE_MS",
    "WEBHOOK_DISABLE_AFTER_FAILURES",
    "WEBHOOK_ALLOW_PRIVATE",
    "EVENT_RETENTION_DAYS",
    "NATS_URL",
    "SMTP_URL",
    "MAIL_FROM",
    "STOREFRONT_URL",
    "EMAIL_VERIFICATION_TTL_HOURS",
    "PASSWORD_RESET_TTL_MINUTES",
];

fn read_dotenv(path: &Path) -> Result<HashMap<String, String>, SettingsError> {
    match dotenvy::from_path_iter(path) {
        Ok(iter) => iter
            .map(|item| item.map_err(|e| SettingsError::Read(format!("{}: {e}", path.display()))))
            .collect(),
        Err(e) if e.not_found() => Ok(HashMap::new()),
        Err(e) => Err(SettingsError::Read(format!("{}: {e}", path.display()))),
    }
}

/// `config` reports keys in lower case (`for key "port"`); say the name the operator sets.
fn name_settings(message: &str) -> String {
    let mut out = message.to_string();
    for name in KNOWN_NAMES {
        let lower = name.to_ascii_lowercase();
        out = out.replace(&format!("\"{lower}\""), name);
        out = out.replace(&format!("`{lower}`"), name);
    }
    out
}

impl Settings {
    /// Reads the server's sources (see [`SettingsLoader::from_environment`]).
    pub fn load() -> Result<Self, SettingsError> {
        SettingsLoader::from_environment().load()
    }

    /// `ORDER_PAYMENT_WINDOW_SECONDS` as a duration.
    pub fn order_payment_window(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.order_payment_window_seconds)
    }

    /// `MANUAL_PAYMENT_WINDOW_HOURS` in whole hours, as
    /// `ecom_orders::extend_payment_window` takes it (bounded, so it always fits).
    pub fn manual_payment_window_hours(&self) -> i64 {
        i64::try_from(self.manual_payment_window_hours).unwrap_or(i64::MAX)
    }

    /// `CART_TTL_DAYS` as a duration.
    pub fn cart_ttl(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.cart_ttl_days.saturating_mul(86_400))
    }

    /// Stripe's secret key, by either of its names (`STRIPE_SECRET_KEY` first).
    pub fn stripe_key(&self) -> Option<&SecretString> {
        self.stripe_secret_key
            .as_ref()
            .or(self.stripe_api_key.as_ref())
    }

    /// Whether the server runs on its private PostgreSQL (no `DATABASE_URL`).
    pub fn uses_private_database(&self) -> bool {
        self.database_url.is_none()
    }

    /// `DEBUG` as set, else true only on the private PostgreSQL.
    pub fn debug(&self) -> bool {
        self.debug_flag.unwrap_or(self.uses_private_database())
    }

    fn validate(&self) -> Result<(), SettingsError> {
        let invalid = |m: &str| Err(SettingsError::Invalid(m.to_string()));
        if let Some(url) = &self.database_url {
            let u = url.expose();
            if !(u.starts_with("postgres://") || u.starts_with("postgresql://")) {
                return invalid("DATABASE_URL must start with postgres:// or postgresql://");
            }
        }
        if let Some(url) = &self.database_read_url {
            let u = url.expose();
            if !(u.starts_with("postgres://") || u.starts_with("postgresql://")) {
                return invalid("DATABASE_READ_URL must start with postgres:// or postgresql://");
            }
            if self.database_url.is_none() {
                return invalid("DATABASE_READ_URL needs DATABASE_URL (the replica's primary)");
            }
        }
        for name in KNOWN_NAMES {
            if let Some((value, range)) = self.bounded_number(name)
                && !range.contains(&value)
            {
                let (min, max) = range.into_inner();
                return invalid(&format!("{name} must be between {min} and {max}"));
            }
        }
        if let Err(e) = self.trusted_proxy_networks() {
            return Err(SettingsError::Invalid(e));
        }
        if self
            .metrics_token
            .as_ref()
            .is_some_and(|t| t.expose().trim().is_empty())
        {
            return invalid("METRICS_TOKEN must not be empty when set");
        }
        if self.host.trim().is_empty() {
            return invalid("HOST must not be empty");
        }
        if !(self.store_currency.len() == 3
            && self.store_currency.bytes().all(|b| b.is_ascii_alphabetic()))
        {
            return invalid("STORE_CURRENCY must be an ISO 4217 code such as USD");
        }
        if !(self.stripe_api_base.starts_with("https://")
            || self.stripe_api_base.starts_with("http://"))
        {
            return invalid("STRIPE_API_BASE must be an http(s) URL");
        }
        if !matches!(self.stripe_capture_method.as_str(), "automatic" | "manual") {
            return invalid("STRIPE_CAPTURE_METHOD must be automatic or manual");
        }
        for (name, value) in [
            ("STRIPE_SECRET_KEY", &self.stripe_secret_key),
            ("STRIPE_API_KEY", &self.stripe_api_key),
            ("STRIPE_WEBHOOK_SECRET", &self.stripe_webhook_secret),
        ] {
            if value.as_ref().is_some_and(|v| v.expose().trim().is_empty()) {
                return invalid(&format!("{name} must not be empty when set"));
            }
        }
        if !(self.storefront_url.starts_with("https://")
            || self.storefront_url.starts_with("http://"))
        {
            return invalid("STOREFRONT_URL must be an http(s) URL");
        }
        if self.nats_url.as_ref().is_some_and(|u| u.trim().is_empty()) {
            return invalid("NATS_URL must not be empty when set");
        }
        if self.smtp_url.as_ref().is_some_and(|u| {
            !(u.expose().starts_with("smtp://") || u.expose().starts_with("smtps://"))
        }) {
            return invalid("SMTP_URL must start with smtp:// or smtps://");
        }
        if self.project_name.trim().is_empty() {
            return invalid("PROJECT_NAME must not be empty");
        }
        if !self.debug() {
            match &self.secret_key {
                None => {
                    return invalid(
                        "SECRET_KEY is required outside DEBUG (at least 32 bytes, e.g. `openssl rand -hex 32`)",
                    );
                }
                Some(k) if k.expose().len() < MIN_SECRET_KEY_BYTES => {
                    return invalid("SECRET_KEY must be at least 32 bytes outside DEBUG");
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// A numeric setting's value and the inclusive range it must fall in, by its
    /// environment name; `None` for the settings that are not bounded numbers.
    fn bounded_number(&self, name: &str) -> Option<(i128, RangeInclusive<i128>)> {
        Some(match name {
            "ACCESS_TOKEN_EXPIRE_MINUTES" => (self.access_token_expire_minutes.into(), 1..=24 * 60),
            "REFRESH_TOKEN_EXPIRE_DAYS" => (self.refresh_token_expire_days.into(), 1..=365),
            "DATABASE_POOL_SIZE" => (self.database_pool_size as i128, 1..=1000),
            "DATABASE_POOL_TIMEOUT_MS" => (self.database_pool_timeout_ms.into(), 1..=600_000),
            "DATABASE_STATEMENT_TIMEOUT_MS" => {
                (self.database_statement_timeout_ms.into(), 1..=3_600_000)
            }
            "DATABASE_LOCK_TIMEOUT_MS" => (self.database_lock_timeout_ms.into(), 1..=3_600_000),
            // Below the replica check's own period (250 ms) the replica would flap.
            "READ_REPLICA_MAX_LAG_MS" => (self.read_replica_max_lag_ms.into(), 250..=3_600_000),
            "DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS" => (
                self.database_idle_in_transaction_timeout_ms.into(),
                1..=86_400_000,
            ),
            "LOGIN_MAX_FAILURES_PER_EMAIL" => {
                (self.login_max_failures_per_email.into(), 1..=1_000_000)
            }
            "LOGIN_MAX_FAILURES_PER_ADDRESS" => {
                (self.login_max_failures_per_address.into(), 1..=1_000_000)
            }
            "LOGIN_THROTTLE_WINDOW_SECONDS" => {
                (self.login_throttle_window_seconds.into(), 1..=86_400)
            }
            "SHUTDOWN_GRACE_MS" => (self.shutdown_grace_ms.into(), 0..=600_000),
            "SHUTDOWN_TIMEOUT_SECONDS" => (self.shutdown_timeout_seconds.into(), 1..=3600),
            "SEARCH_CACHE_SECONDS" => (self.search_cache_seconds.into(), 0..=3600),
            // Down to a second so tests can watch an order expire; up to a week.
            "ORDER_PAYMENT_WINDOW_SECONDS" => {
                (self.order_payment_window_seconds.into(), 1..=7 * 86_400)
            }
            // An hour at least; a month at most, so stock is not held longer for an
            // unpaid order.
            "MANUAL_PAYMENT_WINDOW_HOURS" => (self.manual_payment_window_hours.into(), 1..=720),
            "CART_TTL_DAYS" => (self.cart_ttl_days.into(), 1..=365),
            "WEBHOOK_MAX_ATTEMPTS" => (self.webhook_max_attempts.into(), 1..=100),
            // Down to 10 ms so tests can watch retries; the backoff itself caps at an hour.
            "WEBHOOK_RETRY_BASE_MS" => (self.webhook_retry_base_ms.into(), 10..=3_600_000),
            "WEBHOOK_DISABLE_AFTER_FAILURES" => {
                (self.webhook_disable_after_failures.into(), 1..=10_000)
            }
            "EVENT_RETENTION_DAYS" => (self.event_retention_days.into(), 1..=3650),
            "EMAIL_VERIFICATION_TTL_HOURS" => (self.email_verification_ttl_hours.into(), 1..=720),
            "PASSWORD_RESET_TTL_MINUTES" => (self.password_reset_ttl_minutes.into(), 1..=1440),
            _ => return None,
        })
    }

    /// `TRUSTED_PROXIES` parsed; a bare address counts as a /32 (or /128) network.
    pub fn trusted_proxy_networks(&self) -> Result<Vec<ipnet::IpNet>, String> {
        self.trusted_proxies
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<ipnet::IpNet>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| format!("TRUSTED_PROXIES: `{s}` is not a CIDR (e.g. 10.0.0.0/8)"))
            })
            .collect()
    }

    /// The CORS origins as a list (empty when none are allowed).
    pub fn cors_origins(&self) -> Vec<String> {
        self.cors_allowed_origins
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// In development mode the signing key is made once and kept in the data folder,
/// so tokens survive restarts. Outside it, `SECRET_KEY` is mandatory (checked by `load`).
pub fn resolve_secret_key(settings: &Settings) -> Result<SecretString, SettingsError> {
    if let Some(key) = &settings.secret_key {
        return Ok(key.clone());
    }
    let path = settings.ecom_data_dir.join("secret_key");
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim().to_string();
        if existing.len() >= MIN_SECRET_KEY_BYTES {
            return Ok(SecretString(existing));
        }
    }
    std::fs::create_dir_all(&settings.ecom_data_dir).map_err(|e| {
        SettingsError::Read(format!(
            "ECOM_DATA_DIR {}: {e}",
            settings.ecom_data_dir.display()
        ))
    })?;
    let key = crate::random_hex(32);
    write_private_file(&path, &key)
        .map_err(|e| SettingsError::Read(format!("ECOM_DATA_DIR {}: {e}", path.display())))?;
    Ok(SecretString(key))
}

/// Writes a file readable by its owner only.
pub(crate) fn write_private_file(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())
}
