//! The `ecom` binary itself: start-up, serving and graceful shutdown on SIGTERM.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ecom_testkit::{TEST_SECRET, TestDb, http_client};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn ecom(envs: &[(&str, String)]) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ecom"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd.spawn().expect("ecom starts")
}

async fn wait_healthy(port: u16, child: &mut Child) {
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

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    child.wait().expect("ecom exits")
}

#[actix_web::test]
async fn serves_on_a_database_url_and_stops_on_sigterm() {
    let db = TestDb::new().await;
    let port = free_port();
    let mut child = ecom(&[
        ("DATABASE_URL", db.url.clone()),
        ("SECRET_KEY", TEST_SECRET.to_string()),
        ("PORT", port.to_string()),
    ]);
    wait_healthy(port, &mut child).await;
    let login = http_client()
        .post(format!("http://127.0.0.1:{port}/auth/login"))
        .send_json(&serde_json::json!({"email": "admin@example.com", "password": "admin123"}))
        .await
        .expect("login answers");
    assert_eq!(
        login.status().as_u16(),
        401,
        "no development admin outside DEBUG"
    );
    let status = terminate(&mut child);
    assert!(status.success(), "graceful exit, got {status}");
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
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
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
    let login = http_client()
        .post(format!("http://127.0.0.1:{port}/auth/login"))
        .send_json(&serde_json::json!({"email": "admin@example.com", "password": "admin123"}))
        .await
        .expect("login answers");
    assert_eq!(
        login.status().as_u16(),
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
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
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
