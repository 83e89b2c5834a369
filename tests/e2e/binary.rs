//! The `ecom` binary itself: start-up, serving and graceful shutdown on SIGTERM and SIGINT.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ecom_testkit::{TEST_SECRET, TestDb, http_client};

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn ecom(envs: &[(&str, String)]) -> Child {
    spawn_ecom(envs, None)
}

/// `ecom serve` with these settings only; its output (the log) goes to `log` if given.
pub(crate) fn spawn_ecom(envs: &[(&str, String)], log: Option<&std::path::Path>) -> Child {
    let (stdout, stderr) = match log {
        Some(path) => {
            let file = std::fs::File::create(path).expect("log file");
            let copy = file.try_clone().expect("log file handle");
            (Stdio::from(file), Stdio::from(copy))
        }
        None => (Stdio::null(), Stdio::null()),
    };
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ecom"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(std::env::temp_dir())
        .stdout(stdout)
        .stderr(stderr);
    cmd.spawn().expect("ecom starts")
}

pub(crate) async fn wait_healthy(port: u16, child: &mut Child) {
    let client = http_client();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("ecom exited early: {status}");
        }
        let res = client
            .get(format!("http://127.0.0.1:{port}/ready"))
            .send()
            .await;
        if res.is_ok_and(|r| r.status().as_u16() == 200) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("ecom did not become ready");
}

/// Sends `signal` (`TERM`, `INT`) to the process.
pub(crate) fn send_signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} failed");
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    send_signal(child, "TERM");
    child.wait().expect("ecom exits")
}

/// Waits at most `bound` for the process to exit.
pub(crate) async fn wait_exit(
    child: &mut Child,
    bound: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + bound;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// The longest a drain may take: the grace, then the in-flight limit, plus start-up slack.
pub(crate) fn drain_bound() -> Duration {
    std::time::Duration::from_millis(ecom_core::settings::DEFAULT_SHUTDOWN_GRACE_MS)
        + std::time::Duration::from_secs(ecom_core::settings::DEFAULT_SHUTDOWN_TIMEOUT_SECONDS)
        + Duration::from_secs(5)
}

/// The status of a login as the development administrator (`admin@example.com`), which
/// only the private PostgreSQL's DEBUG start-up creates.
async fn development_admin_login(port: u16) -> u16 {
    http_client()
        .post(format!("http://127.0.0.1:{port}/auth/login"))
        .send_json(&serde_json::json!({"email": "admin@example.com", "password": "admin123"}))
        .await
        .expect("login answers")
        .status()
        .as_u16()
}

/// A server process killed when the test ends, however it ends.
struct Server {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Server {
    async fn start(db: &TestDb) -> Self {
        Self::start_with(db, &[]).await
    }

    async fn start_with(db: &TestDb, extra: &[(&str, String)]) -> Self {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("ecom-{}.log", uuid::Uuid::new_v4().simple()));
        let mut envs = vec![
            ("DATABASE_URL", db.url.clone()),
            ("SECRET_KEY", TEST_SECRET.to_string()),
            ("PORT", port.to_string()),
            ("NO_COLOR", "1".to_string()),
        ];
        envs.extend(extra.iter().cloned());
        let mut child = spawn_ecom(&envs, Some(&log));
        wait_healthy(port, &mut child).await;
        Self { child, port, log }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `/ready` (a bounded wait) until it answers 503, and returns that answer's
    /// `Connection` header.
    async fn wait_not_ready(&self) -> Option<String> {
        let deadline = Instant::now()
            + std::time::Duration::from_millis(ecom_core::settings::DEFAULT_SHUTDOWN_GRACE_MS);
        while Instant::now() < deadline {
            let res = http_client()
                .get(self.url("/ready"))
                .send()
                .await
                .expect("still listening during the grace");
            if res.status().as_u16() == 503 {
                return res
                    .headers()
                    .get("connection")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("/ready did not turn 503 during the grace");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

#[actix_web::test]
async fn serves_on_a_database_url_and_stops_on_sigterm() {
    let db = TestDb::new().await;
    let port = free_port();
    let log = std::env::temp_dir().join(format!("ecom-log-{}.txt", uuid::Uuid::new_v4().simple()));
    // DEBUG on: still no development admin, because this is not the private PostgreSQL.
    // No NO_COLOR: a log written to a file must carry no colour codes anyway.
    let mut child = spawn_ecom(
        &[
            ("DATABASE_URL", db.url.clone()),
            ("SECRET_KEY", TEST_SECRET.to_string()),
            ("PORT", port.to_string()),
            ("DEBUG", "true".to_string()),
        ],
        Some(&log),
    );
    wait_healthy(port, &mut child).await;
    assert_eq!(
        development_admin_login(port).await,
        401,
        "no development admin on a DATABASE_URL, whatever DEBUG says"
    );
    let status = terminate(&mut child);
    assert!(status.success(), "graceful exit, got {status}");
    let text = std::fs::read_to_string(&log).expect("the log");
    let _ = std::fs::remove_file(&log);
    assert!(text.contains("listening"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "no ANSI escapes off a terminal:\n{text}"
    );
}

#[actix_web::test]
async fn sigint_drains_like_sigterm_ready_turning_503_first() {
    let db = TestDb::new().await;
    let mut server = Server::start(&db).await;
    send_signal(&server.child, "INT");
    let connection = server.wait_not_ready().await;
    assert_eq!(
        connection.as_deref(),
        Some("close"),
        "draining answers close kept-alive connections"
    );
    let health = http_client()
        .get(server.url("/health"))
        .send()
        .await
        .expect("still serving during the grace");
    assert_eq!(health.status().as_u16(), 200);
    let status = wait_exit(&mut server.child, drain_bound())
        .await
        .expect("exits within the drain period");
    assert!(status.success(), "graceful exit, got {status}");
    let log = server.log();
    for phase in [
        "draining",
        "grace over: stopped accepting",
        "in-flight requests finished",
        "closed the database pool",
    ] {
        assert!(log.contains(phase), "no `{phase}` in the log:\n{log}");
    }
    assert!(log.contains("SIGINT"), "names the signal:\n{log}");
    // Request log lines carry the client address (the TCP peer: no proxy is trusted).
    assert!(
        log.contains("client=127.0.0.1"),
        "client address in the request log:\n{log}"
    );
    assert!(
        http_client()
            .get(server.url("/health"))
            .send()
            .await
            .is_err(),
        "the listener is closed"
    );
}

#[actix_web::test]
async fn a_second_signal_during_the_drain_stops_at_once() {
    let db = TestDb::new().await;
    let mut server = Server::start(&db).await;
    send_signal(&server.child, "TERM");
    server.wait_not_ready().await;
    send_signal(&server.child, "INT");
    let status = wait_exit(&mut server.child, drain_bound())
        .await
        .expect("exits");
    assert!(status.success(), "exit after a forced stop, got {status}");
    let log = server.log();
    assert!(log.contains("stopping at once"), "{log}");
    assert!(
        !log.contains("grace over"),
        "the grace was cut short:\n{log}"
    );
    assert!(log.contains("closed the database pool"), "{log}");
}

#[actix_web::test]
async fn create_admin_reads_the_password_from_stdin() {
    use std::io::Write;
    let db = TestDb::new().await;
    let run = |password: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ecom"))
            .args([
                "create-admin",
                "--email",
                "Root@Example.com",
                "--password-stdin",
            ])
            .env_clear()
            .env("DATABASE_URL", &db.url)
            .env("SECRET_KEY", TEST_SECRET)
            .current_dir(std::env::temp_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("runs");
        let mut stdin = child.stdin.take().expect("stdin");
        writeln!(stdin, "{password}").expect("write password");
        drop(stdin);
        child.wait_with_output().expect("exits")
    };
    let weak = run("admin123");
    assert!(!weak.status.success(), "the policy applies to create-admin");
    let ok = run("granite-walrus-teapot-3");
    crate::assert_ran(&ok, "create-admin");
    assert!(String::from_utf8_lossy(&ok.stdout).contains("root@example.com"));
    let mut conn = db.connect().await;
    let user = ecom_auth::service::accounts::find_by_email(&mut conn, "root@example.com")
        .await
        .expect("query")
        .expect("created");
    assert_eq!(user.role, "admin");
}

#[actix_web::test]
async fn with_no_settings_it_runs_on_its_private_postgres_and_stops_it() {
    let data_dir =
        std::env::temp_dir().join(format!("ecom-serve-{}", uuid::Uuid::new_v4().simple()));
    let port = free_port();
    let mut child = ecom(&[
        ("PORT", port.to_string()),
        ("ECOM_DATA_DIR", data_dir.to_string_lossy().into_owned()),
    ]);
    wait_healthy(port, &mut child).await;
    assert_eq!(
        development_admin_login(port).await,
        200,
        "the development admin exists in DEBUG"
    );
    assert!(
        data_dir.join("postgres/PG_VERSION").exists(),
        "cluster created in the data folder"
    );
    assert!(
        data_dir.join("secret_key").exists(),
        "development key kept in the data folder"
    );
    let status = terminate(&mut child);
    assert!(status.success(), "graceful exit, got {status}");
    assert!(
        !data_dir.join("postgres/postmaster.pid").exists(),
        "the private PostgreSQL was stopped with the server"
    );
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[test]
fn refuses_to_start_without_a_secret_outside_debug() {
    let output = Command::new(env!("CARGO_BIN_EXE_ecom"))
        .env_clear()
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none")
        .current_dir(std::env::temp_dir())
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("SECRET_KEY"), "names the setting: {stderr}");
}

#[actix_web::test]
async fn seed_demo_loads_shoppers_products_and_reviews() {
    let db = TestDb::new().await;
    let output = Command::new(env!("CARGO_BIN_EXE_ecom"))
        .args(["seed-demo", "--products", "300", "--shoppers", "5"])
        .env_clear()
        .env("DATABASE_URL", &db.url)
        .env("SECRET_KEY", TEST_SECRET)
        .current_dir(std::env::temp_dir())
        .output()
        .expect("runs");
    crate::assert_ran(&output, "seed-demo");
    let app = ecom_testkit::test_app(crate::store_context(&db)).await;
    let page = app.get("/products?limit=1").await.json();
    assert_eq!(page["total"], 300);
    let token = app
        .login(
            "shopper1@demo.example",
            ecom_auth::service::accounts::DEMO_SHOPPER_PASSWORD,
        )
        .await;
    app.get_as("/users/me", &token).await.assert_status(200);
    let reviewed = app.get("/products?sort=rating&limit=1").await.json();
    assert!(
        reviewed["items"][0]["review_count"].as_i64().unwrap_or(0) > 0,
        "reviews were written"
    );
}

/// `SHUTDOWN_GRACE_MS` sets the drain's grace: with 200 ms the process is gone well
/// before the default 5 s grace would have ended.
#[actix_web::test]
async fn the_shutdown_grace_is_a_setting() {
    let db = TestDb::new().await;
    let mut server = Server::start_with(&db, &[("SHUTDOWN_GRACE_MS", "200".to_string())]).await;
    send_signal(&server.child, "TERM");
    let status = wait_exit(&mut server.child, Duration::from_secs(3))
        .await
        .expect("exits before the default grace would have ended");
    assert!(status.success(), "graceful exit, got {status}");
    let log = server.log();
    assert!(log.contains("grace_ms=200"), "{log}");
    assert!(log.contains("in-flight requests finished"), "{log}");
}

/// `ecom serve` starts the mail worker: without `SMTP_URL` a new account's verification
/// mail appears as `{ECOM_DATA_DIR}/mail/<id>.eml`, and the log names neither the address
/// nor the token.
#[actix_web::test]
async fn the_served_store_writes_its_mails_as_eml_files_without_smtp() {
    let db = TestDb::new().await;
    let data_dir =
        std::env::temp_dir().join(format!("ecom-mail-{}", uuid::Uuid::new_v4().simple()));
    let server = Server::start_with(
        &db,
        &[
            ("ECOM_DATA_DIR", data_dir.display().to_string()),
            ("STOREFRONT_URL", "https://shop.example".to_string()),
        ],
    )
    .await;
    let res = http_client()
        .post(server.url("/auth/register"))
        .send_json(&serde_json::json!({"email": "mia.mail@example.com", "password": "plum-orbit-candle-42"}))
        .await
        .expect("register answers");
    assert_eq!(res.status().as_u16(), 201);
    let folder = data_dir.join("mail");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mails = loop {
        let mails = ecom_testkit::smtp::read_mails(&folder, "eml");
        if !mails.is_empty() {
            break mails;
        }
        assert!(
            Instant::now() < deadline,
            "no .eml file in {}",
            folder.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(mails[0].header("To"), Some("mia.mail@example.com"));
    let token = mails[0]
        .link_token("https://shop.example", "/verify-email")
        .expect("a verification link");
    let res = http_client()
        .post(server.url("/auth/verify-email"))
        .send_json(&serde_json::json!({ "token": token }))
        .await
        .expect("verify answers");
    assert_eq!(res.status().as_u16(), 204);
    let log = server.log();
    assert!(log.contains("mail sent"), "{log}");
    assert!(
        !log.contains("mia.mail") && !log.contains(&token),
        "no address or token in the log"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[actix_web::test]
async fn background_work_runs_on_a_pool_of_its_own() {
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Session {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    let db = TestDb::new().await;
    let server = Server::start(&db).await;
    http_client()
        .get(server.url("/products"))
        .send()
        .await
        .expect("a request");
    let mut conn = db.connect().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let sessions: Vec<Session> = diesel::sql_query(
            "SELECT application_name AS name FROM pg_stat_activity WHERE datname = current_database() \
             AND pid <> pg_backend_pid()",
        )
        .load(&mut conn)
        .await
        .expect("sessions");
        let named = |n: &str| sessions.iter().filter(|s| s.name == n).count();
        // The replica's LISTEN and its workers on `ecom-background`; requests on `ecom`.
        if named("ecom-background") >= 1 && named("ecom") >= 1 {
            assert!(named("ecom-background") <= ecom_api::BACKGROUND_POOL_SIZE + 1);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "sessions: {:?}",
            sessions.iter().map(|s| &s.name).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(server);
}
