//! The store's migrations, embedded in the binary and applied under an advisory lock
//! so that several replicas may start at once.

use diesel::RunQueryDsl;
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

/// Every migration of the workspace (`migrations/`, one history for the whole database).
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations");

/// Changes whenever any migration file changes (see build.rs).
pub const FINGERPRINT: &str = env!("ECOM_MIGRATIONS_FINGERPRINT");

/// Key of the advisory lock held while migrating.
const MIGRATION_LOCK: i64 = 0x0065_636f_6d6d_6967; // "ecommig"

/// Why migrating failed.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("could not connect to the database: {0}")]
    Connect(#[from] diesel::ConnectionError),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("migration task failed: {0}")]
    Task(String),
}

type SyncConn = AsyncConnectionWrapper<AsyncPgConnection>;

/// What to do with the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Apply every pending migration.
    Up,
    /// Revert the newest applied migration.
    RevertLast,
    /// Revert every applied migration.
    RevertAll,
}

/// Runs the migrations on the database at `url`; returns the versions applied or reverted.
pub async fn migrate(url: &str, direction: Direction) -> Result<Vec<String>, MigrateError> {
    let url = url.to_string();
    // diesel_migrations is synchronous; run it on the blocking pool through the wrapper.
    tokio::task::spawn_blocking(move || {
        use diesel::Connection;
        let mut conn = SyncConn::establish(&url)?;
        diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
            .execute(&mut conn)
            .map_err(|e| MigrateError::Migration(e.to_string()))?;
        let result = run(&mut conn, direction);
        let _ = diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
            .execute(&mut conn);
        result
    })
    .await
    .map_err(|e| MigrateError::Task(e.to_string()))?
}

fn run(conn: &mut SyncConn, direction: Direction) -> Result<Vec<String>, MigrateError> {
    let err = |e: Box<dyn std::error::Error + Send + Sync>| MigrateError::Migration(e.to_string());
    let versions = match direction {
        Direction::Up => conn.run_pending_migrations(MIGRATIONS).map_err(err)?,
        Direction::RevertLast => vec![conn.revert_last_migration(MIGRATIONS).map_err(err)?],
        Direction::RevertAll => conn.revert_all_migrations(MIGRATIONS).map_err(err)?,
    };
    Ok(versions.into_iter().map(|v| v.to_string()).collect())
}
