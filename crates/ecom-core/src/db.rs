//! The PostgreSQL pool (diesel-async on deadpool) and database administration helpers.

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use futures_util::FutureExt;

use crate::settings::Settings;

/// The shared connection pool.
pub type PgPool = Pool<AsyncPgConnection>;
/// A connection checked out of the pool.
pub type PooledConn = diesel_async::pooled_connection::deadpool::Object<AsyncPgConnection>;
/// Why no connection could be handed out (timeout or database down): answers 503.
pub type PoolError = diesel_async::pooled_connection::deadpool::PoolError;
/// The connection type every service function takes.
pub use diesel_async::AsyncPgConnection as PgConn;

/// Pool options taken from [`Settings`].
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub max_size: usize,
    pub wait_timeout: Duration,
    pub statement_timeout: Duration,
    pub application_name: String,
}

impl PoolOptions {
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            max_size: settings.database_pool_size,
            wait_timeout: Duration::from_millis(settings.database_pool_timeout_ms),
            statement_timeout: Duration::from_millis(settings.database_statement_timeout_ms),
            application_name: settings.project_name.clone(),
        }
    }
}

/// How long a pooled connection's session may wait for a row lock, and may sit idle inside
/// an open transaction before the server ends it, so a stuck request cannot hold stock rows
/// for minutes. Kept apart from [`PoolOptions`] so that its existing literals stay valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimeouts {
    /// `lock_timeout`: a lock wait longer than this fails with SQLSTATE 55P03 (503).
    pub lock_timeout: Duration,
    /// `idle_in_transaction_session_timeout`: the server closes such a session (25P03).
    pub idle_in_transaction_timeout: Duration,
}

impl Default for SessionTimeouts {
    /// The documented defaults of `DATABASE_LOCK_TIMEOUT_MS` and
    /// `DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS`.
    fn default() -> Self {
        Self {
            lock_timeout: Duration::from_millis(5000),
            idle_in_transaction_timeout: Duration::from_millis(30_000),
        }
    }
}

impl SessionTimeouts {
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            lock_timeout: Duration::from_millis(settings.database_lock_timeout_ms),
            idle_in_transaction_timeout: Duration::from_millis(
                settings.database_idle_in_transaction_timeout_ms,
            ),
        }
    }
}

/// Builds the pool with the default [`SessionTimeouts`]; see [`build_pool_with`].
pub fn build_pool(url: &str, options: &PoolOptions) -> Result<PgPool, String> {
    build_pool_with(url, options, &SessionTimeouts::default())
}

/// Builds the pool. Every connection gets `application_name`, `statement_timeout`,
/// `lock_timeout`, `idle_in_transaction_session_timeout`, UTC, and no JIT: the sales
/// report's estimates (800k for a 150 ms query) made PostgreSQL spend 200–300 ms
/// compiling it, more than running it. Connections are made
/// lazily, so this succeeds even while the database is down.
pub fn build_pool_with(
    url: &str,
    options: &PoolOptions,
    timeouts: &SessionTimeouts,
) -> Result<PgPool, String> {
    let setup_sql = format!(
        "SET application_name = {}; SET statement_timeout = {}; SET lock_timeout = {}; \
         SET idle_in_transaction_session_timeout = {}; SET TIME ZONE 'UTC'; SET jit = off;",
        quote_literal(&options.application_name),
        options.statement_timeout.as_millis(),
        timeouts.lock_timeout.as_millis(),
        timeouts.idle_in_transaction_timeout.as_millis(),
    );
    let mut config = ManagerConfig::<AsyncPgConnection>::default();
    // No `SELECT 1` at every checkout: a connection that died is found broken on first use
    // (one 503, and the pool drops it), which the PostgreSQL restart drill covers.
    config.recycling_method = RecyclingMethod::Fast;
    config.custom_setup = Box::new(move |url| {
        let setup_sql = setup_sql.clone();
        let url = url.to_string();
        let connect = async move {
            let mut conn = AsyncPgConnection::establish(&url).await?;
            conn.batch_execute(&setup_sql)
                .await
                .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
            Ok(conn)
        };
        // Established on the drivers' runtime, so the connection's I/O task lives there.
        async move {
            connection_drivers()
                .spawn(connect)
                .await
                .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?
        }
        .boxed()
    });
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, config);
    Pool::builder(manager)
        .max_size(options.max_size)
        .wait_timeout(Some(options.wait_timeout))
        .create_timeout(Some(options.wait_timeout))
        .recycle_timeout(Some(options.wait_timeout))
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(|e| e.to_string())
}

/// The runtime every pooled connection's I/O task runs on. diesel-async spawns that task
/// on the runtime that opens the connection; pooled connections are shared by every actix
/// worker, and each worker has a runtime of its own that ends when the worker stops during
/// a shutdown's drain, which cut the connections it had opened under requests still
/// running on the other workers (503s in a rolling restart). This runtime lives as long as
/// the process.
fn connection_drivers() -> &'static tokio::runtime::Runtime {
    static DRIVERS: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    DRIVERS.get_or_init(|| {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("ecom-db")
            .enable_all()
            .build()
            .expect("the database connections' runtime starts")
    })
}

/// Most runs of one operation under [`retry_conflicts`], the first included.
pub const CONFLICT_ATTEMPTS: u32 = 4;

/// An error that may be a transaction conflict (SQLSTATE 40001 or 40P01), after which the
/// whole transaction can be run again. Domain errors implement it by asking their database
/// variant.
pub trait TransactionConflict {
    fn is_transaction_conflict(&self) -> bool;
}

impl TransactionConflict for diesel::result::Error {
    fn is_transaction_conflict(&self) -> bool {
        crate::error::is_transaction_conflict(self)
    }
}

/// Decides, after a failed run of a transaction, whether to run it again: only after a
/// serialization failure or a deadlock, only up to [`CONFLICT_ATTEMPTS`] runs in all, and
/// only at the outermost level. When the connection was already inside a transaction, the
/// operation ran in a savepoint of the caller's, the conflict has aborted the caller's
/// transaction too, and only its owner can run it again: the conflict goes back to the
/// owner (which retries, or answers 503 with `Retry-After`).
///
/// [`transaction_with_retry`] and [`retry_conflicts`] run their loops with it.
#[derive(Debug)]
pub struct ConflictRetry {
    owns_transaction: bool,
    runs: u32,
}

impl ConflictRetry {
    /// Call before the first run, on the connection the transaction will run on.
    pub fn new(conn: &mut PgConn) -> Self {
        Self {
            owns_transaction: !in_transaction(conn),
            runs: 1,
        }
    }

    /// After a run failed with `err`: resolves to `true`, after a short jittered pause,
    /// when the whole transaction should run again.
    pub fn again<E: TransactionConflict>(
        &mut self,
        err: &E,
    ) -> impl Future<Output = bool> + Send + 'static {
        let rerun =
            self.owns_transaction && self.runs < CONFLICT_ATTEMPTS && err.is_transaction_conflict();
        let pause = rerun.then(|| conflict_backoff(self.runs));
        if rerun {
            tracing::info!(
                run = self.runs,
                "transaction conflict (40001/40P01); running it again"
            );
            self.runs += 1;
        }
        async move {
            match pause {
                Some(pause) => {
                    tokio::time::sleep(pause).await;
                    true
                }
                None => false,
            }
        }
    }
}

/// Runs `operation` (which opens and commits its own transaction on `conn`) under a
/// [`ConflictRetry`]: again after a serialization failure or a deadlock, at most
/// [`CONFLICT_ATTEMPTS`] runs, and only when `conn` has no open transaction. Use it where
/// the caller owns the transaction (a route, a job); inside a future that must be `Send`
/// for every lifetime (another transaction's closure), use [`transaction_with_retry`].
pub async fn retry_conflicts<T, E, F>(conn: &mut PgConn, mut operation: F) -> Result<T, E>
where
    F: AsyncFnMut(&mut PgConn) -> Result<T, E>,
    E: TransactionConflict,
{
    let mut retry = ConflictRetry::new(conn);
    loop {
        match operation(&mut *conn).await {
            Err(e) if retry.again(&e).await => {}
            outcome => return outcome,
        }
    }
}

/// A transaction's body that [`transaction_with_retry`] may run more than once: an async
/// closure over the connection whose runs are `Send`, so the retried transaction can
/// itself be awaited inside another transaction.
pub trait RetriedRun<'c, R>:
    AsyncFn(&'c mut PgConn) -> R + Fn(&'c mut PgConn) -> <Self as RetriedRun<'c, R>>::Run
{
    type Run: Future<Output = R>;
}

impl<'c, R, F, Run> RetriedRun<'c, R> for F
where
    F: AsyncFn(&'c mut PgConn) -> R + Fn(&'c mut PgConn) -> Run,
    Run: Future<Output = R>,
{
    type Run = Run;
}

/// Runs `body` in a transaction (a savepoint of the caller's, if one is open) under a
/// [`ConflictRetry`]: the whole transaction again after a serialization failure or a
/// deadlock, only when this call owns it. Unlike [`retry_conflicts`], its future stays
/// `Send` inside another transaction's closure.
pub async fn transaction_with_retry<T, E, F>(conn: &mut PgConn, body: F) -> Result<T, E>
where
    F: for<'c> RetriedRun<'c, Result<T, E>, Run: Send> + Sync,
    E: TransactionConflict + From<diesel::result::Error> + Send,
    T: Send,
{
    let mut retry = ConflictRetry::new(conn);
    loop {
        match conn.transaction(async |conn| body(conn).await).await {
            Err(e) if retry.again(&e).await => {}
            outcome => return outcome,
        }
    }
}

/// Whether `conn` has an open transaction (or a broken transaction manager, which is
/// treated the same: nothing may be retried on it).
pub fn in_transaction(conn: &mut PgConn) -> bool {
    use diesel_async::TransactionManager;
    let status =
        <PgConn as AsyncConnection>::TransactionManager::transaction_manager_status_mut(conn);
    !matches!(status.transaction_depth(), Ok(None))
}

/// Pause before run `attempt + 1`: 10 ms doubled per attempt, jittered to 50–150 %, so
/// transactions that collided do not collide again in lockstep.
fn conflict_backoff(attempt: u32) -> Duration {
    use rand::Rng;
    let base_ms = 10u64 << attempt.saturating_sub(1).min(6);
    let jittered = rand::rng().random_range(base_ms / 2..=base_ms + base_ms / 2);
    Duration::from_millis(jittered)
}

/// Quotes a string as an SQL literal.
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Quotes an SQL identifier (database names built by tests and the launcher).
pub fn quote_ident(value: &str) -> String {
    format!("\"{}\"", value.replace('"', "\"\""))
}

/// Opens one connection outside any pool (start-up and administration).
pub async fn connect(url: &str) -> Result<AsyncPgConnection, diesel::ConnectionError> {
    AsyncPgConnection::establish(url).await
}

#[derive(QueryableByName)]
struct Exists {
    #[diesel(sql_type = Bool)]
    exists: bool,
}

/// Whether a database of that name exists on the server `conn` is connected to.
pub async fn database_exists(conn: &mut AsyncPgConnection, name: &str) -> QueryResult<bool> {
    let row: Exists =
        diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
            .bind::<Text, _>(name)
            .get_result(conn)
            .await?;
    Ok(row.exists)
}

/// `CREATE DATABASE name [TEMPLATE template]`.
pub async fn create_database(
    conn: &mut AsyncPgConnection,
    name: &str,
    template: Option<&str>,
) -> QueryResult<()> {
    let mut sql = format!("CREATE DATABASE {}", quote_ident(name));
    if let Some(t) = template {
        sql.push_str(&format!(" TEMPLATE {}", quote_ident(t)));
    }
    conn.batch_execute(&sql).await
}

/// Drops a database, disconnecting its sessions first.
pub async fn drop_database(conn: &mut AsyncPgConnection, name: &str) -> QueryResult<()> {
    conn.batch_execute(&format!(
        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
        quote_ident(name)
    ))
    .await
}

/// Replaces the database part of a PostgreSQL URL.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_part = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{host_part}/{database}?{q}"),
        None => format!("{host_part}/{database}"),
    }
}

/// Exposes the pool's size and use as Prometheus gauges, read at scrape time.
pub struct PoolCollector {
    pool: PgPool,
    descs: Vec<prometheus::core::Desc>,
}

impl PoolCollector {
    pub fn new(pool: PgPool) -> Self {
        let desc = metric_desc;
        let descs = vec![
            desc(
                "ecom_db_pool_max_size",
                "Largest number of connections the pool may hold.",
            ),
            desc(
                "ecom_db_pool_size",
                "Connections currently open in the pool.",
            ),
            desc("ecom_db_pool_available", "Open connections not in use."),
            desc(
                "ecom_db_pool_in_use",
                "Connections checked out by requests.",
            ),
            desc("ecom_db_pool_waiting", "Requests waiting for a connection."),
        ];
        Self { pool, descs }
    }
}

impl prometheus::core::Collector for PoolCollector {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        let s = self.pool.status();
        let in_use = s.size.saturating_sub(s.available);
        let values = [s.max_size, s.size, s.available, in_use, s.waiting];
        self.descs
            .iter()
            .zip(values)
            .map(|(desc, value)| gauge_family(desc, value as f64))
            .collect()
    }
}

/// A metric description, for collectors that read their values at scrape time.
pub(crate) fn metric_desc(name: &str, help: &str) -> prometheus::core::Desc {
    prometheus::core::Desc::new(name.into(), help.into(), vec![], Default::default())
        .expect("static metric description is valid")
}

/// One gauge's family with `value`, read at scrape time.
pub(crate) fn gauge_family(
    desc: &prometheus::core::Desc,
    value: f64,
) -> prometheus::proto::MetricFamily {
    let gauge = prometheus::Gauge::with_opts(prometheus::Opts::new(
        desc.fq_name.clone(),
        desc.help.clone(),
    ))
    .expect("static gauge options are valid");
    gauge.set(value);
    prometheus::core::Collector::collect(&gauge).remove(0)
}

/// The database the server runs on: the configured one, or the private PostgreSQL.
pub struct Database {
    pub url: String,
    /// Set when running on the private PostgreSQL.
    pub private: Option<crate::private_pg::PrivatePostgres>,
}

/// Shows where the database is, never its password.
impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("url", &redacted_url(&self.url))
            .field("private", &self.private)
            .finish()
    }
}

/// A PostgreSQL URL with its password (in the user part or a `password=` parameter)
/// replaced; a keyword/value connection string is hidden whole. When in doubt it hides
/// more (a password with an unescaped `@`, `/` or `?` never shows).
pub fn redacted_url(url: &str) -> String {
    const HIDDEN: &str = "[redacted]";
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return HIDDEN.to_string();
    };
    let (scheme, rest) = url.split_at(scheme_end);
    let (userinfo, after) = match rest.rsplit_once('@') {
        Some((userinfo, after)) => (Some(userinfo), after),
        None => (None, rest),
    };
    let mut out = scheme.to_string();
    if let Some(userinfo) = userinfo {
        match userinfo.split_once(':') {
            Some((user, _password)) => out.push_str(&format!("{user}:{HIDDEN}@")),
            None => out.push_str(&format!("{userinfo}@")),
        }
    }
    match after.split_once('?') {
        None => out.push_str(after),
        Some((location, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}={HIDDEN}"),
                    _ => p.to_string(),
                })
                .collect();
            out.push_str(&format!("{location}?{}", params.join("&")));
        }
    }
    out
}

/// Name of the store's database on the private PostgreSQL.
pub const PRIVATE_DATABASE: &str = "ecom";

/// Why no database could be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Private(#[from] crate::private_pg::PrivatePgError),
    #[error("could not prepare the private database: {0}")]
    Prepare(String),
}

impl Database {
    /// Uses `DATABASE_URL`, or starts (or reuses) the private PostgreSQL and its `ecom` database.
    pub async fn open(settings: &Settings) -> Result<Self, OpenError> {
        if let Some(url) = &settings.database_url {
            return Ok(Self {
                url: url.expose().to_string(),
                private: None,
            });
        }
        let options = crate::private_pg::LaunchOptions {
            data_dir: settings.ecom_data_dir.clone(),
            ephemeral: false,
        };
        let pg = tokio::task::spawn_blocking(move || {
            crate::private_pg::PrivatePostgres::start(&options)
        })
        .await
        .map_err(|e| OpenError::Prepare(e.to_string()))??;
        let mut admin = connect(&pg.url("postgres"))
            .await
            .map_err(|e| OpenError::Prepare(e.to_string()))?;
        if !database_exists(&mut admin, PRIVATE_DATABASE)
            .await
            .map_err(|e| OpenError::Prepare(e.to_string()))?
        {
            create_database(&mut admin, PRIVATE_DATABASE, None)
                .await
                .map_err(|e| OpenError::Prepare(e.to_string()))?;
        }
        Ok(Self {
            url: pg.url(PRIVATE_DATABASE),
            private: Some(pg),
        })
    }

    /// Stops the private PostgreSQL if this process started it.
    pub async fn shutdown(self) {
        let Some(pg) = self.private else { return };
        if !pg.started_here() {
            return;
        }
        match tokio::task::spawn_blocking(move || pg.stop()).await {
            Ok(Ok(())) => tracing::info!("stopped the private PostgreSQL"),
            Ok(Err(e)) => tracing::warn!(error = %e, "could not stop the private PostgreSQL"),
            Err(e) => tracing::warn!(error = %e, "could not stop the private PostgreSQL"),
        }
    }
}

/// Gives a statement type whose SQL never changes a static query id, so diesel-async
/// prepares it once per connection and runs the prepared statement afterwards
/// (`diesel::sql_query` is parsed again on every run); diesel-async's `RunQueryDsl` runs it. The type writes its SQL and binds
/// in its own `QueryFragment<Pg>`; its name is the cache key, so one type, one SQL text.
#[macro_export]
macro_rules! fixed_statement {
    ($name:ident) => {
        impl ::diesel::query_builder::QueryId for $name<'_> {
            type QueryId = $name<'static>;
            const HAS_STATIC_QUERY_ID: bool = true;
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_backoff_is_short_and_grows() {
        for _ in 0..200 {
            let first = conflict_backoff(1);
            assert!((5..=15).contains(&first.as_millis()), "{first:?}");
            let third = conflict_backoff(3);
            assert!((20..=60).contains(&third.as_millis()), "{third:?}");
        }
    }
}
