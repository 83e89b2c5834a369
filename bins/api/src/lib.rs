//! Wiring of the `ecom` binary: which domain modules make up the store and how the
//! server starts and stops. No domain logic lives here.

use std::time::Duration;

use anyhow::Context;
use ecom_core::db::{Database, PoolOptions, SessionTimeouts, build_pool_with};
use ecom_core::http::Draining;
use ecom_core::migrate::{self, Direction};
use ecom_core::settings::{Settings, resolve_secret_key};
use ecom_core::{AppContext, Module, build_app};
use tokio::signal::unix::{Signal, SignalKind, signal};

/// Every domain's routes and OpenAPI fragment, in the order they are mounted.
pub fn modules() -> Vec<Module> {
    vec![
        ecom_auth::module(),
        ecom_catalog::module(),
        ecom_orders::module(),
        ecom_admin::module(),
    ]
}

/// Every domain's periodic clean-ups (expired throttle windows, refresh tokens,
/// idempotency records), run by each replica; see `ecom_core::housekeeping`.
pub fn chores() -> Vec<ecom_core::housekeeping::Chore> {
    let mut chores = ecom_auth::chores();
    chores.extend(ecom_orders::chores());
    chores
}

/// How often each replica runs the clean-ups.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(60);

/// Builds the app context the server and the end-to-end tests share.
pub fn app_context(
    settings: Settings,
    pool: ecom_core::db::PgPool,
    secret: &ecom_core::settings::SecretString,
) -> anyhow::Result<AppContext> {
    let resolver = ecom_auth::resolver(pool.clone());
    let ctx = AppContext::new(settings, pool, secret, modules()).map_err(anyhow::Error::msg)?;
    Ok(ctx.with_resolver(resolver))
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

async fn serve_on(settings: &Settings, url: &str) -> anyhow::Result<()> {
    let applied = migrate::migrate(url, Direction::Up).await?;
    if !applied.is_empty() {
        tracing::info!(count = applied.len(), "applied migrations");
    }
    let secret = resolve_secret_key(settings)?;
    let pool = build_pool_with(
        url,
        &PoolOptions::from_settings(settings),
        &SessionTimeouts::from_settings(settings),
    )
    .map_err(anyhow::Error::msg)?;
    if settings.debug() {
        tracing::warn!("DEBUG is on (development mode); do not use it in production");
    }
    // The documented admin/admin123 exists only on the private PostgreSQL, whatever DEBUG says.
    if settings.uses_private_database() {
        let mut conn = pool.get().await.context("database connection")?;
        if ecom_auth::service::accounts::ensure_development_admin(&mut conn).await? {
            tracing::warn!(
                email = ecom_auth::service::accounts::DEV_ADMIN_EMAIL,
                "created the development admin with the documented password (private PostgreSQL only)"
            );
        }
    }
    let housekeeping = ecom_core::housekeeping::spawn(pool.clone(), chores(), HOUSEKEEPING_EVERY);
    let ctx = app_context(settings.clone(), pool.clone(), &secret)?;
    let draining = ctx.draining().clone();
    // Registered before the listener opens, so an early signal drains instead of killing.
    let signals = StopSignals::listen().context("cannot listen for SIGTERM/SIGINT")?;
    let server = actix_web::HttpServer::new(move || build_app(&ctx))
        // SIGTERM and SIGINT are ours (see `run_until_signalled`); actix would stop at once on SIGINT.
        .disable_signals()
        .shutdown_timeout(settings.shutdown_timeout_seconds)
        .bind((settings.host.as_str(), settings.port))
        .with_context(|| {
            format!(
                "cannot listen on {}:{} (HOST, PORT)",
                settings.host, settings.port
            )
        })?;
    for addr in server.addrs() {
        tracing::info!(%addr, "listening; API docs at http://{addr}/docs");
    }
    let drain = Drain {
        grace: Duration::from_millis(settings.shutdown_grace_ms),
        timeout: Duration::from_secs(settings.shutdown_timeout_seconds),
    };
    let result = run_until_signalled(server.run(), signals, &draining, drain).await;
    housekeeping.abort();
    pool.close();
    tracing::info!("closed the database pool");
    result
}

/// The phases of a drain: `grace` of serving while `/ready` answers 503, so a load
/// balancer probing it stops sending requests here before the listener closes; then up
/// to `timeout` for in-flight requests to finish (any still running are cut off).
#[derive(Debug, Clone, Copy)]
struct Drain {
    grace: Duration,
    timeout: Duration,
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

    /// The name of the next signal received.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}

/// Serves until a stop signal, then drains: `/ready` turns 503 at once, the server keeps
/// serving for the grace, then stops accepting and lets in-flight requests finish (up to
/// the drain's timeout, which actix enforces). A second signal at any point of the drain
/// stops at once.
async fn run_until_signalled(
    mut server: actix_web::dev::Server,
    mut signals: StopSignals,
    draining: &Draining,
    drain: Drain,
) -> anyhow::Result<()> {
    let grace = drain.grace;
    let handle = server.handle();
    let first = tokio::select! {
        result = &mut server => return result.context("server failed"),
        name = signals.next() => name,
    };
    draining.start();
    tracing::info!(
        signal = first,
        grace_ms = grace.as_millis() as u64,
        "draining: /ready answers 503; still serving until the grace ends (signal again to stop at once)"
    );
    tokio::select! {
        result = &mut server => return result.context("server failed"),
        name = signals.next() => return stop_at_once(server, name),
        () = tokio::time::sleep(grace) => {}
    }
    tracing::info!(
        timeout_s = drain.timeout.as_secs(),
        "grace over: stopped accepting; finishing in-flight requests"
    );
    // The command is sent now; the server future carries it out while it is polled.
    drop(handle.stop(true));
    tokio::select! {
        result = &mut server => result.context("server failed")?,
        name = signals.next() => return stop_at_once(server, name),
    }
    tracing::info!("in-flight requests finished");
    Ok(())
}

/// Dropping the server makes its workers close every connection now. Still a clean exit:
/// the operator asked for it.
fn stop_at_once(server: actix_web::dev::Server, signal: &str) -> anyhow::Result<()> {
    tracing::warn!(
        signal,
        "second signal: stopping at once; requests still running are cut off"
    );
    drop(server);
    Ok(())
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
