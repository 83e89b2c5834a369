//! Wiring of the `ecom` binary: which domain modules make up the store and how the
//! server starts and stops. No domain logic lives here.

use anyhow::Context;
use ecom_core::db::{Database, PoolOptions, build_pool};
use ecom_core::migrate::{self, Direction};
use ecom_core::settings::{Settings, resolve_secret_key};
use ecom_core::{AppContext, Module, build_app};

/// Every domain's routes and OpenAPI fragment, in the order they are mounted.
pub fn modules() -> Vec<Module> {
    vec![
        ecom_auth::module(),
        ecom_catalog::module(),
        ecom_orders::module(),
        ecom_admin::module(),
    ]
}

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
/// then finish in-flight requests, close the pool and stop the private PostgreSQL.
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
    let pool =
        build_pool(url, &PoolOptions::from_settings(settings)).map_err(anyhow::Error::msg)?;
    if settings.debug() {
        tracing::warn!("DEBUG is on (development mode); do not use it in production");
        let mut conn = pool.get().await.context("database connection")?;
        if ecom_auth::service::accounts::ensure_development_admin(&mut conn).await? {
            tracing::warn!(
                email = ecom_auth::service::accounts::DEV_ADMIN_EMAIL,
                "created the development admin with the documented password; DEBUG only"
            );
        }
    }
    let ctx = app_context(settings.clone(), pool.clone(), &secret)?;
    let server = actix_web::HttpServer::new(move || build_app(&ctx))
        .shutdown_timeout(30)
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
    server.run().await.context("server failed")?;
    tracing::info!("stopped accepting; in-flight requests finished");
    pool.close();
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
