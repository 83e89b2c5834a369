//! Wiring of the `ecom` binary: which domain modules make up the store and how the
//! server starts and stops. No domain logic lives here.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ecom_core::db::{Database, PgPool, PoolOptions, SessionTimeouts, build_pool_with};
use ecom_core::events::Wakeups;
use ecom_core::migrate::{self, Direction};
use ecom_core::read_replica::ReadReplica;
use ecom_core::server::{self, ServerConfig, StopRequests};
use ecom_core::settings::{Settings, resolve_secret_key};
use ecom_core::{AppContext, Module};
use tokio::signal::unix::{Signal, SignalKind, signal};

/// Payments as the settings configure them: `manual` always, `stripe` when a Stripe secret
/// key is set (`STRIPE_API_BASE`, `STRIPE_CAPTURE_METHOD`); webhooks need
/// `STRIPE_WEBHOOK_SECRET`.
pub fn payments(settings: &Settings) -> anyhow::Result<Arc<ecom_payments::Payments>> {
    let stripe = match settings.stripe_key() {
        None => None,
        Some(key) => {
            let capture_method = settings.stripe_capture_method.parse().map_err(|_| {
                anyhow::anyhow!("STRIPE_CAPTURE_METHOD must be automatic or manual")
            })?;
            let provider = ecom_payments::StripeProvider::new(ecom_payments::StripeConfig {
                api_base: settings.stripe_api_base.clone(),
                secret_key: key.clone(),
                capture_method,
            })
            .context("build Stripe's HTTP client")?;
            Some(Arc::new(provider) as Arc<dyn ecom_payments::PaymentProvider>)
        }
    };
    Ok(Arc::new(ecom_payments::Payments::new(
        stripe,
        &settings.store_currency,
        settings.manual_payment_window_hours(),
        settings.stripe_webhook_secret.clone(),
    )))
}

/// Every domain's routes and OpenAPI fragment, in the order they are mounted. Orders get
/// payments' answers to what a cancellation needs (void, refund) through their port; the
/// event streams wait on `wakeups`.
pub fn modules(payments: &Arc<ecom_payments::Payments>, wakeups: &Wakeups) -> Vec<Module> {
    let hooks = Arc::new(ecom_payments::PaymentsHooks::new(payments.clone()));
    vec![
        ecom_auth::module(),
        ecom_catalog::module(),
        ecom_orders::module_with_payments(hooks),
        ecom_carts::module(),
        ecom_payments::module(payments.clone()),
        ecom_admin::module(),
        ecom_events::module(wakeups.clone()),
        ecom_webhooks::module(),
    ]
}

/// Every domain's periodic clean-ups (expired throttle windows, refresh tokens,
/// idempotency records, expired carts, payments' idempotency records, email tokens, delivered
/// mails, events past `EVENT_RETENTION_DAYS`, webhook deliveries), run by each replica; see
/// `ecom_core::housekeeping`.
pub fn chores(settings: &Settings) -> Vec<ecom_core::housekeeping::Chore> {
    let mut chores = ecom_auth::chores();
    chores.extend(ecom_orders::chores());
    chores.extend(ecom_carts::chores());
    chores.extend(ecom_payments::chores());
    chores.extend(ecom_events::chores(settings.event_retention_days));
    chores.extend(ecom_webhooks::chores(settings));
    chores.extend(ecom_mail::chores());
    chores
}

/// The outbox's consumers this replica runs (each shares its cursor with the other
/// replicas'): the NATS bridge when `NATS_URL` is set.
pub fn event_consumers(settings: &Settings) -> Vec<ecom_core::events::Consumer> {
    let mut consumers = Vec::new();
    if let Some(url) = &settings.nats_url {
        consumers.push(ecom_events::nats::consumer(url.clone()));
    }
    consumers
}

/// How often each replica runs the clean-ups.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(60);

/// The expiry of unpaid orders, run by each replica on its own, shorter schedule
/// ([`ecom_orders::expiry_schedule`]) so orders go within 10 s of their due time. An
/// authorized payment holds its order open; open payments are voided before a cancel.
pub fn expiry_chores(
    payments: &Arc<ecom_payments::Payments>,
) -> Vec<ecom_core::housekeeping::Chore> {
    let hooks = Arc::new(ecom_payments::PaymentsHooks::new(payments.clone()));
    vec![ecom_orders::expiry_chore(hooks.clone(), hooks)]
}

/// Builds the app context the server and the end-to-end tests share, with an event
/// listener of its own.
pub fn app_context(
    settings: Settings,
    pool: PgPool,
    secret: &ecom_core::settings::SecretString,
) -> anyhow::Result<AppContext> {
    let wakeups = Wakeups::listen(pool.clone());
    app_context_with(settings, pool, secret, &wakeups)
}

/// [`app_context`] on the replica's event listener, shared with its background consumers.
pub fn app_context_with(
    settings: Settings,
    pool: PgPool,
    secret: &ecom_core::settings::SecretString,
    wakeups: &Wakeups,
) -> anyhow::Result<AppContext> {
    let payments = payments(&settings)?;
    let ctx = AppContext::new(settings, pool, secret, modules(&payments, wakeups))
        .map_err(anyhow::Error::msg)?;
    Ok(ctx.with_resolver(ecom_auth::resolver()))
}

/// `ecom serve`: open (or start) the database, migrate, serve until SIGTERM/SIGINT,
/// then drain (`SHUTDOWN_GRACE_MS`), finish in-flight requests (`SHUTDOWN_TIMEOUT_SECONDS`),
/// close the pool and stop the private PostgreSQL.
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    if settings.uses_private_database() {
        tracing::info!(dir = %settings.ecom_data_dir.display(), "no DATABASE_URL: using the private PostgreSQL");
    }
    let database = Database::open(&settings).await?;
    let result = serve_on(&settings, &database.url).await;
    database.shutdown().await;
    result
}

/// The start-up steps in order, each its own function below; then serve and clean up.
async fn serve_on(settings: &Settings, url: &str) -> anyhow::Result<()> {
    apply_migrations(url).await?;
    let secret = resolve_secret_key(settings)?;
    let pool = open_pool(settings, url)?;
    warn_if_debug(settings);
    ensure_development_admin(settings, &pool).await?;
    // Background work has a pool of its own, so a backlog (webhooks, mails) never takes the
    // connections requests need, and its sessions show as `<PROJECT_NAME>-background`.
    let background = open_background_pool(settings, url)?;
    let housekeeping =
        ecom_core::housekeeping::spawn(background.clone(), chores(settings), HOUSEKEEPING_EVERY);
    let wakeups = Wakeups::listen(background.clone());
    let consumers: Vec<_> = event_consumers(settings)
        .into_iter()
        .map(|c| c.spawn(background.clone(), wakeups.clone()))
        .collect();
    // The webhooks' fan-out consumer and delivery worker (leases: any replica may die).
    let webhooks = ecom_webhooks::spawn(background.clone(), wakeups.clone(), settings)
        .context("build the webhook delivery client")?;
    let expiry = ecom_core::housekeeping::spawn_on(
        background.clone(),
        expiry_chores(&payments(settings)?),
        ecom_orders::expiry_schedule(),
    );
    let mail = ecom_mail::spawn(settings, background.clone(), wakeups.clone())?;
    let mut ctx = app_context_with(settings.clone(), pool.clone(), &secret, &wakeups)?;
    // The read replica, checked from the background pool so checks never queue behind
    // requests; reads use it only once a check has found it up.
    let replica = open_read_replica(settings)?;
    let replica_checker = replica
        .as_ref()
        .map(|replica| replica.spawn_checker(background.clone()));
    if let Some(replica) = replica {
        ctx = ctx.with_read_replica(replica);
    }
    let result = serve_until_signalled(settings, ctx).await;
    if let Some(checker) = replica_checker {
        checker.abort();
    }
    // Each expiry is one transaction: stopping mid-round leaves no order half cancelled.
    housekeeping.abort();
    expiry.abort();
    // A consumer moves its cursor in the transaction of its batch: an abort redoes the
    // batch elsewhere (at least once), never skips it.
    consumers.iter().for_each(|c| c.abort());
    // Deliveries in flight are leased: whichever replica runs next sends them again.
    webhooks.abort();
    // A mail leased when aborted is sent again by the next replica, same Message-ID.
    mail.abort();
    background.close();
    pool.close();
    tracing::info!("closed the database pool");
    result
}

/// Brings the schema up to date before anything opens a pooled connection.
async fn apply_migrations(url: &str) -> anyhow::Result<()> {
    let applied = migrate::migrate(url, Direction::Up).await?;
    if !applied.is_empty() {
        tracing::info!(count = applied.len(), "applied migrations");
    }
    Ok(())
}

/// The pool with the configured size and per-connection timeouts.
fn open_pool(settings: &Settings, url: &str) -> anyhow::Result<PgPool> {
    build_pool_with(
        url,
        &PoolOptions::from_settings(settings),
        &SessionTimeouts::from_settings(settings),
    )
    .map_err(anyhow::Error::msg)
}

/// Connections of the background pool: the event consumers, the webhook and mail workers,
/// the clean-ups and the expiry of unpaid orders, and the replica's `LISTEN`.
pub const BACKGROUND_POOL_SIZE: usize = 6;

/// The background work's pool: [`BACKGROUND_POOL_SIZE`] connections named
/// `<PROJECT_NAME>-background`, with the request pool's timeouts.
fn open_background_pool(settings: &Settings, url: &str) -> anyhow::Result<PgPool> {
    let mut options = PoolOptions::from_settings(settings);
    options.max_size = BACKGROUND_POOL_SIZE;
    options.application_name = format!("{}-background", settings.project_name);
    build_pool_with(url, &options, &SessionTimeouts::from_settings(settings))
        .map_err(anyhow::Error::msg)
}

/// The read replica of `DATABASE_READ_URL`, with a pool as large as the primary's (the same
/// per-connection timeouts); `None` without one.
fn open_read_replica(settings: &Settings) -> anyhow::Result<Option<Arc<ReadReplica>>> {
    let Some(url) = &settings.database_read_url else {
        return Ok(None);
    };
    let mut options = PoolOptions::from_settings(settings);
    options.application_name = format!("{}-read", settings.project_name);
    let pool = build_pool_with(
        url.expose(),
        &options,
        &SessionTimeouts::from_settings(settings),
    )
    .map_err(anyhow::Error::msg)?;
    tracing::info!(
        max_lag_ms = settings.read_replica_max_lag_ms,
        "anonymous catalog reads and reports go to the read replica while it keeps up"
    );
    Ok(Some(ReadReplica::new(
        pool,
        Duration::from_millis(settings.read_replica_max_lag_ms),
    )))
}

fn warn_if_debug(settings: &Settings) {
    if settings.debug() {
        tracing::warn!("DEBUG is on (development mode); do not use it in production");
    }
}

/// The documented admin/admin123 exists only on the private PostgreSQL, whatever DEBUG says.
async fn ensure_development_admin(settings: &Settings, pool: &PgPool) -> anyhow::Result<()> {
    if !settings.uses_private_database() {
        return Ok(());
    }
    let mut conn = pool.get().await.context("database connection")?;
    if ecom_auth::service::accounts::ensure_development_admin(&mut conn).await? {
        tracing::warn!(
            email = ecom_auth::service::accounts::DEV_ADMIN_EMAIL,
            "created the development admin with the documented password (private PostgreSQL only)"
        );
    }
    Ok(())
}

/// Binds `HOST`:`PORT` and serves until SIGTERM/SIGINT, then drains (see
/// [`ecom_core::server::AppServer::run_until_stopped`]).
async fn serve_until_signalled(settings: &Settings, ctx: AppContext) -> anyhow::Result<()> {
    // Registered before the listener opens, so an early signal drains instead of killing.
    let signals = StopSignals::listen().context("cannot listen for SIGTERM/SIGINT")?;
    let server = server::bind(ctx, &ServerConfig::from_settings(settings))?;
    for addr in server.addrs() {
        tracing::info!(%addr, "listening; API docs at http://{addr}/docs");
    }
    server
        .run_until_stopped(signals)
        .await
        .context("server failed")
}

/// SIGTERM (orchestrators) and SIGINT (Ctrl-C), both meaning "drain, then stop".
struct StopSignals {
    terminate: Signal,
    interrupt: Signal,
}

impl StopSignals {
    fn listen() -> std::io::Result<Self> {
        Ok(Self {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }
}

impl StopRequests for StopSignals {
    /// The name of the next signal received.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}

/// `ecom migrate [--revert]`.
pub async fn migrate_command(settings: Settings, revert: bool) -> anyhow::Result<()> {
    let database = Database::open(&settings).await?;
    let direction = if revert {
        Direction::RevertLast
    } else {
        Direction::Up
    };
    let result = migrate::migrate(&database.url, direction).await;
    database.shutdown().await;
    let versions = result?;
    let verb = if revert { "reverted" } else { "applied" };
    if versions.is_empty() {
        println!("nothing to do: the database is up to date");
    }
    for v in versions {
        println!("{verb} {v}");
    }
    Ok(())
}

/// `ecom create-admin --email E`: creates an administrator, or makes an existing
/// account one, with a password that meets the policy. Works in any mode.
pub async fn create_admin_command(
    settings: Settings,
    email: &str,
    password: String,
) -> anyhow::Result<()> {
    let database = Database::open(&settings).await?;
    let result = async {
        migrate::migrate(&database.url, Direction::Up).await?;
        let mut conn = ecom_core::db::connect(&database.url).await?;
        let user = ecom_auth::service::accounts::create_admin(&mut conn, email, password)
            .await
            .map_err(|e| match e {
                ecom_auth::AuthError::Invalid(fields) => anyhow::anyhow!(
                    "{}",
                    fields
                        .iter()
                        .map(|f| format!("{}: {}", f.field, f.message))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
                other => anyhow::Error::new(other),
            })?;
        println!("administrator {} (id {}) is ready", user.email, user.id);
        anyhow::Ok(())
    }
    .await;
    database.shutdown().await;
    result
}

/// `ecom seed-demo`: demo shoppers (from ecom-auth) and a demo catalog reviewed by them.
pub async fn seed_demo_command(
    settings: Settings,
    products: usize,
    shoppers: usize,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=10_000).contains(&shoppers),
        "--shoppers must be between 1 and 10000"
    );
    let database = Database::open(&settings).await?;
    let result = async {
        migrate::migrate(&database.url, Direction::Up).await?;
        let mut conn = ecom_core::db::connect(&database.url).await?;
        let started = std::time::Instant::now();
        let reviewers = ecom_auth::service::accounts::seed_demo_shoppers(&mut conn, shoppers).await?;
        let summary = ecom_catalog::seed::seed_demo(&mut conn, products, &reviewers).await?;
        println!(
            "seeded {} shoppers (password `{}`), {} new categories, {} products, {} reviews in {:.1?}",
            reviewers.len(),
            ecom_auth::service::accounts::DEMO_SHOPPER_PASSWORD,
            summary.categories,
            summary.products,
            summary.reviews,
            started.elapsed()
        );
        anyhow::Ok(())
    }
    .await;
    database.shutdown().await;
    result
}
