//! Test support for every crate of the workspace.
//!
//! - [`TestDb`]: a fresh database per test, cloned from a template migrated once per
//!   migration set, dropped when the test ends. The server is `TEST_DATABASE_URL`
//!   (default `postgres://postgres@127.0.0.1:5432/postgres`), or a private PostgreSQL
//!   started in the temp folder when nothing answers there.
//! - [`TestApp`]: the real app factory in process, with JSON request helpers.
//! - [`spawn_server`]: the same app on a real socket, port 0, through the binary's builder.
//! - [`Client`]: typed clients per role over a [`TestApp`], with the common flows.
//! - [`fixtures`]: the accounts, amounts and rows every crate's tests share.
//! - [`localstripe`], [`smtp`]: fake Stripe and a real SMTP server on loopback (Python
//!   peers in virtualenvs made by [`python_venv`]).

pub mod client;
pub mod fixtures;
pub mod localstripe;
pub mod python_venv;
pub mod smtp;

pub use client::{Client, NewOrder, NewProduct, Page, Role, SignedUp, Tokens};

use std::sync::OnceLock;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header::HeaderMap;
use actix_web::http::{Method, StatusCode};
use actix_web::test::TestRequest;
use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use ecom_core::db::{self, PgPool, PoolOptions};
use ecom_core::migrate::{self, Direction};
use ecom_core::settings::{SecretString, Settings, SettingsLoader};
use ecom_core::{AppContext, Module};
use serde_json::Value;

/// Default server for tests.
pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// The content type of the OAuth2 password form that login also takes.
pub const FORM: &str = "application/x-www-form-urlencoded";
/// Signing key used by test apps.
pub const TEST_SECRET: &str = "test-secret-key-that-is-long-enough-0123456789";

struct Server {
    admin_url: String,
    template: String,
}

static SERVER: OnceLock<Server> = OnceLock::new();

/// Runs a future to completion on a private runtime in its own thread, so it can be
/// called from sync code (Drop, OnceLock) inside or outside a test's runtime.
fn run_detached<T: Send + 'static>(f: impl AsyncFnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("test runtime builds");
        rt.block_on(f())
    })
    .join()
    .expect("test helper thread panicked")
}

fn server() -> &'static Server {
    SERVER.get_or_init(|| run_detached(init_server))
}

async fn reachable(url: &str) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(3), db::connect(url)).await,
        Ok(Ok(_))
    )
}

async fn init_server() -> Server {
    let explicit = std::env::var("TEST_DATABASE_URL").ok();
    let candidate = explicit
        .clone()
        .unwrap_or_else(|| DEFAULT_TEST_DATABASE_URL.to_string());
    let admin_url = if reachable(&candidate).await {
        candidate
    } else if explicit.is_some() {
        panic!("TEST_DATABASE_URL is set but its server does not answer");
    } else {
        let options = ecom_core::private_pg::LaunchOptions {
            data_dir: std::env::temp_dir().join("ecom-test-postgres"),
            ephemeral: true,
        };
        let pg = tokio::task::spawn_blocking(move || {
            ecom_core::private_pg::PrivatePostgres::start(&options)
        })
        .await
        .expect("launcher task")
        .unwrap_or_else(|e| {
            panic!("no PostgreSQL at {DEFAULT_TEST_DATABASE_URL} and the private one failed: {e}")
        });
        // Left running for the next test binary; it lives in the temp folder.
        pg.url("postgres")
    };
    let template = format!("ecom_tpl_{}", migrate::FINGERPRINT);
    prepare_template(&admin_url, &template).await;
    Server {
        admin_url,
        template,
    }
}

/// Creates the migrated template once; other processes wait on the advisory lock.
async fn prepare_template(admin_url: &str, template: &str) {
    let mut admin = db::connect(admin_url)
        .await
        .expect("connect to the test server");
    admin
        .batch_execute("SELECT pg_advisory_lock(7231)")
        .await
        .expect("template lock");
    let exists = db::database_exists(&mut admin, template)
        .await
        .expect("query pg_database");
    let stale = exists && !has_every_migration(admin_url, template).await;
    if stale {
        // A template built from another checkout's migrations under the same name.
        db::drop_database(&mut admin, template)
            .await
            .expect("drop stale template");
    }
    if !exists || stale {
        let building = format!("{template}_building");
        db::drop_database(&mut admin, &building)
            .await
            .expect("drop stale build");
        db::create_database(&mut admin, &building, None)
            .await
            .expect("create template");
        migrate::migrate(&db::with_database(admin_url, &building), Direction::Up)
            .await
            .expect("migrations apply to the template");
        admin
            .batch_execute(&format!(
                "ALTER DATABASE {} RENAME TO {}",
                db::quote_ident(&building),
                db::quote_ident(template)
            ))
            .await
            .expect("publish template");
    }
    admin
        .batch_execute("SELECT pg_advisory_unlock(7231)")
        .await
        .expect("template unlock");
}

/// Whether the template has exactly the migrations embedded in this build.
async fn has_every_migration(admin_url: &str, template: &str) -> bool {
    use diesel::migration::MigrationSource;
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Version {
        #[diesel(sql_type = diesel::sql_types::Text)]
        version: String,
    }
    let Ok(mut conn) = db::connect(&db::with_database(admin_url, template)).await else {
        return false;
    };
    let applied: Vec<Version> =
        match diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
            .load(&mut conn)
            .await
        {
            Ok(rows) => rows,
            Err(_) => return false,
        };
    drop(conn);
    let mut applied: Vec<String> = applied.into_iter().map(|v| v.version).collect();
    let mut embedded: Vec<String> =
        MigrationSource::<diesel::pg::Pg>::migrations(&migrate::MIGRATIONS)
            .unwrap_or_default()
            .iter()
            .map(|m| m.name().version().to_string())
            .collect();
    applied.sort();
    embedded.sort();
    applied == embedded
}

/// A database of its own for one test, dropped when the value is.
pub struct TestDb {
    pub name: String,
    pub url: String,
    admin_url: String,
}

impl std::fmt::Debug for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDb")
            .field("name", &self.name)
            .field("url", &db::redacted_url(&self.url))
            .finish_non_exhaustive()
    }
}

impl TestDb {
    /// A migrated, empty database cloned from the template.
    pub async fn new() -> Self {
        Self::create(true).await
    }

    /// A migrated database and one connection to it.
    pub async fn connected() -> (Self, AsyncPgConnection) {
        let db = Self::new().await;
        let conn = db.connect().await;
        (db, conn)
    }

    /// An empty database with no migrations applied (for migration tests).
    pub async fn empty() -> Self {
        Self::create(false).await
    }

    async fn create(migrated: bool) -> Self {
        let server = server();
        let name = format!("ecom_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = db::connect(&server.admin_url)
            .await
            .expect("connect to the test server");
        let template = migrated.then_some(server.template.as_str());
        db::create_database(&mut admin, &name, template)
            .await
            .expect("create the test database");
        Self {
            url: db::with_database(&server.admin_url, &name),
            admin_url: server.admin_url.clone(),
            name,
        }
    }

    /// One connection to this database.
    pub async fn connect(&self) -> AsyncPgConnection {
        db::connect(&self.url)
            .await
            .expect("connect to the test database")
    }

    /// A small pool on this database.
    pub fn pool(&self) -> PgPool {
        let options = PoolOptions {
            max_size: 8,
            wait_timeout: Duration::from_secs(10),
            statement_timeout: Duration::from_secs(30),
            application_name: "ecom-test".into(),
        };
        db::build_pool(&self.url, &options).expect("build test pool")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        run_detached(async move || {
            if let Ok(mut admin) = db::connect(&admin_url).await {
                let _ = db::drop_database(&mut admin, &name).await;
            }
        });
    }
}

/// Settings for a test app on `db`: fixed secret, DEBUG off, extra values by name.
pub fn test_settings(db: &TestDb, extra: &[(&str, &str)]) -> Settings {
    let mut loader = SettingsLoader::isolated()
        .set("DATABASE_URL", db.url.clone())
        .set("SECRET_KEY", TEST_SECRET)
        .set("DEBUG", "false")
        .set("DATABASE_POOL_SIZE", "8");
    for (name, value) in extra {
        loader = loader.set(name, *value);
    }
    loader.load().expect("test settings are valid")
}

/// Builds the app context for a test on `db` with the given modules.
pub fn test_context(db: &TestDb, modules: Vec<Module>, extra: &[(&str, &str)]) -> AppContext {
    let settings = test_settings(db, extra);
    AppContext::new(
        settings,
        db.pool(),
        &SecretString::new(TEST_SECRET),
        modules,
    )
    .expect("app context builds")
}

/// A response with its body read.
#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl TestResponse {
    /// The body as JSON (`Value::Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn assert_status(&self, expected: u16) -> &Self {
        assert_eq!(
            self.status.as_u16(),
            expected,
            "unexpected status; body: {}",
            self.text()
        );
        self
    }

    /// Asserts a problem+json error with this status and code.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) -> &Self {
        self.assert_status(status);
        assert_eq!(
            self.header("content-type"),
            Some(ecom_core::error::PROBLEM_JSON),
            "errors are problem+json"
        );
        let body = self.json();
        assert_eq!(body["code"], code, "problem code; body: {body}");
        assert_eq!(body["status"], status, "problem status field");
        self
    }
}

/// [`db_and_app`] with `email` registered and logged in: (database, app, its id, its
/// access token), how the tests of one signed-in shopper open.
pub async fn signed_up_app(
    context: impl FnOnce(&TestDb) -> AppContext,
    email: &str,
    password: &str,
) -> (TestDb, TestApp<impl AppService>, i64, String) {
    let (db, app) = db_and_app(context).await;
    let (id, token) = app.sign_up(email, password).await;
    (db, app, id, token)
}

/// The OpenAPI document the app `context` builds serves on a fresh database: how the
/// document tests open.
pub async fn served_openapi(context: impl FnOnce(&TestDb) -> AppContext) -> Value {
    let (_db, app) = db_and_app(context).await;
    app.openapi().await
}

/// The app in process: requests go through the real factory and middleware.
pub struct TestApp<S> {
    service: S,
    pub ctx: AppContext,
}

/// The in-process app's service, named once for the helpers that hand out a [`TestApp`].
pub trait AppService:
    Service<actix_http::Request, Response = ServiceResponse<Self::Body>, Error = actix_web::Error>
{
    type Body: MessageBody;
}

impl<S, B: MessageBody> AppService for S
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    type Body = B;
}

/// Starts the app in process for `ctx`.
pub async fn test_app(ctx: AppContext) -> TestApp<impl AppService> {
    let service = actix_web::test::init_service(ecom_core::build_app(&ctx)).await;
    TestApp { service, ctx }
}

/// A migrated database and the app `context` builds on it, in process.
pub async fn db_and_app(
    context: impl FnOnce(&TestDb) -> AppContext,
) -> (TestDb, TestApp<impl AppService>) {
    let db = TestDb::new().await;
    let app = test_app(context(&db)).await;
    (db, app)
}

impl<S, B> TestApp<S>
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    /// Sends a prepared request.
    pub async fn send(&self, req: TestRequest) -> TestResponse {
        let res = actix_web::test::call_service(&self.service, req.to_request()).await;
        let status = res.status();
        let headers = res.headers().clone();
        let body = actix_web::test::read_body(res).await.to_vec();
        TestResponse {
            status,
            headers,
            body,
        }
    }

    /// `POST path` with a body that is not JSON (a form, plain text, broken JSON) sent
    /// as `content_type`: what the legacy clients and the error tests send.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        payload: impl Into<String>,
    ) -> TestResponse {
        let req = TestRequest::post()
            .uri(path)
            .insert_header(("content-type", content_type))
            .set_payload(payload.into());
        self.send(req).await
    }

    /// The OpenAPI document the app serves: what every contract test reads.
    pub async fn openapi(&self) -> Value {
        self.get("/openapi.json").await.assert_status(200).json()
    }

    /// A request with an optional JSON body and bearer token.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> TestResponse {
        let mut req = TestRequest::default().method(method).uri(path);
        if let Some(b) = body {
            req = req.set_json(b);
        }
        if let Some(t) = token {
            req = req.insert_header(("authorization", format!("Bearer {t}")));
        }
        self.send(req).await
    }

    pub async fn get(&self, path: impl AsRef<str>) -> TestResponse {
        self.request(Method::GET, path.as_ref(), None, None).await
    }

    pub async fn get_as(&self, path: impl AsRef<str>, token: &str) -> TestResponse {
        self.request(Method::GET, path.as_ref(), None, Some(token))
            .await
    }

    pub async fn post(&self, path: &str, body: Value, token: Option<&str>) -> TestResponse {
        self.request(Method::POST, path, Some(body), token).await
    }

    pub async fn put(&self, path: &str, body: Value, token: Option<&str>) -> TestResponse {
        self.request(Method::PUT, path, Some(body), token).await
    }

    pub async fn patch(&self, path: &str, body: Value, token: Option<&str>) -> TestResponse {
        self.request(Method::PATCH, path, Some(body), token).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> TestResponse {
        self.request(Method::DELETE, path, None, token).await
    }

    /// Asserts that a documented `method` (as OpenAPI spells it) on `path` is routed:
    /// anything else on a known path is 405. `{id}` becomes 1.
    pub async fn assert_routed(&self, method: &str, path: &str) {
        let concrete = path.replace("{id}", "1");
        let verb = method.to_uppercase().parse().expect("method");
        let res = self.request(verb, &concrete, None, None).await;
        assert_ne!(res.status.as_u16(), 405, "{method} {path} is routed");
    }

    /// Posts `{email, password}` to `path` and expects `status`: register and login
    /// take the same body.
    async fn post_credentials(
        &self,
        path: &str,
        email: &str,
        password: &str,
        status: u16,
    ) -> Value {
        let body = serde_json::json!({"email": email, "password": password});
        let res = self.post(path, body, None).await;
        res.assert_status(status);
        res.json()
    }

    /// Logs in through `POST /auth/login`; returns the whole token answer.
    pub async fn tokens(&self, email: &str, password: &str) -> Value {
        self.post_credentials("/auth/login", email, password, 200)
            .await
    }

    /// Logs in through `POST /auth/login`; returns the access token.
    pub async fn login(&self, email: &str, password: &str) -> String {
        self.tokens(email, password).await["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }

    /// Registers through `POST /auth/register` and logs in; returns (user id, access token).
    pub async fn sign_up(&self, email: &str, password: &str) -> (i64, String) {
        let user = self
            .post_credentials("/auth/register", email, password, 201)
            .await;
        let id = user["id"].as_i64().expect("user id");
        (id, self.login(email, password).await)
    }
}

/// The app on a real socket (127.0.0.1, port 0); stopped when dropped.
pub struct RunningServer {
    pub base_url: String,
    handle: actix_web::dev::ServerHandle,
}

/// Starts the real HTTP server for `ctx` on a free port.
pub fn spawn_server(ctx: AppContext) -> RunningServer {
    spawn_server_with_workers(ctx, 2)
}

/// [`spawn_server`] with a chosen number of worker threads, through the same builder
/// as the binary ([`ecom_core::server`]).
pub fn spawn_server_with_workers(ctx: AppContext, workers: usize) -> RunningServer {
    let server = ecom_core::server::bind(ctx, &ecom_core::server::ServerConfig::local(workers))
        .expect("bind a free port");
    let base_url = format!("http://{}", server.local_addr());
    let handle = server.handle();
    actix_web::rt::spawn(server.run());
    RunningServer { base_url, handle }
}

impl RunningServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// `GET path` over the socket with `headers`, read like an in-process answer, so
    /// socket tests check status, headers and body as the others do.
    pub async fn get(
        &self,
        client: &awc::Client,
        path: &str,
        headers: &[(&str, &str)],
    ) -> TestResponse {
        let mut req = client.get(self.url(path));
        for &header in headers {
            req = req.insert_header(header);
        }
        let mut res = req.send().await.expect("the server answers");
        let body = res.body().await.expect("a body").to_vec();
        TestResponse {
            status: res.status(),
            headers: res.headers().clone(),
            body,
        }
    }

    /// Graceful stop: finishes in-flight requests.
    pub async fn stop(self) {
        self.handle.stop(true).await;
    }
}

/// An HTTP client for [`RunningServer`].
pub fn http_client() -> awc::Client {
    awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish()
}

/// A principal resolver over accounts kept in memory, for crates that test their
/// permission checks without ecom-auth. Changes apply on the next request.
#[derive(Default)]
pub struct FixedAccounts(
    std::sync::Mutex<std::collections::HashMap<i64, ecom_core::principal::Account>>,
);

impl FixedAccounts {
    pub fn new() -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self::default())
    }

    /// Adds or replaces an account.
    pub fn set(
        &self,
        user_id: i64,
        role: &str,
        permissions: &[ecom_core::Permission],
        is_active: bool,
    ) {
        let account = ecom_core::principal::Account {
            user_id,
            role: role.to_string(),
            permissions: permissions.iter().copied().collect(),
            is_active,
            session_active: true,
        };
        self.0
            .lock()
            .expect("accounts lock")
            .insert(user_id, account);
    }
}

#[async_trait::async_trait]
impl ecom_core::principal::PrincipalResolver for FixedAccounts {
    async fn resolve(
        &self,
        _conn: &mut diesel_async::AsyncPgConnection,
        user_id: i64,
        _session_id: i64,
    ) -> Result<Option<ecom_core::principal::Account>, ecom_core::AppError> {
        Ok(self.0.lock().expect("accounts lock").get(&user_id).cloned())
    }
}

/// An access token for `user_id` (login 0, which [`FixedAccounts`] treats as open),
/// signed with [`TEST_SECRET`] as test apps expect.
pub fn access_token(user_id: i64) -> String {
    ecom_core::access_token::AccessTokens::new(&SecretString::new(TEST_SECRET), 30)
        .issue(user_id, 0)
        .expect("sign a test token")
        .token
}
