//! The store as a shop runs it when it outgrows one process (issue 16): a PostgreSQL
//! primary with a streaming replica, three `ecom` processes of the binary under test and
//! HAProxy in front, all on loopback, started by `deploy/local-cluster.sh`.
//!
//! 1. `replicas_share_one_store`: the login throttle, a ban, an `Idempotency-Key`, the
//!    read replica's staleness and the background work hold across processes.
//! 2. `restarts_and_kills_drop_nothing`: a rolling restart, `kill -9` of a replica and the
//!    standby stopped, each under load through HAProxy; prints its figures with
//!    `cargo test -p ecom-api --test e2e cluster -- --nocapture`.
//!
//! Each test runs its own cluster (in the temp folder, on free ports) and its scenarios in
//! sequence: the e2e binary shares two cores with the other tests.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix_web::http::Method;
use actix_web::http::header::HeaderMap;
use ecom_testkit::http_client;
use serde_json::{Value, json};

use crate::PASSWORD;
use crate::load::{
    self, Attempt, OnNoAnswer, OrderLoad, Outcome, Record, Shop, admin_token,
    assert_acknowledged_orders_stored, login, ms, outcome_of_answer, outcome_of_error, query,
    query_number, seeded, stock_shop, stored,
};
use crate::webhook_drill::SlowReceiver;

/// The script under test, from the repository root.
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/local-cluster.sh");
/// `start` builds nothing (ECOM_BIN) but makes two PostgreSQL servers and a base backup.
const START_BOUND: Duration = Duration::from_secs(180);
/// A drill command (`stop-ecom` waits for the drain, `start-ecom` for HAProxy's UP).
const COMMAND_BOUND: Duration = Duration::from_secs(90);
/// The longest one test may take; it normally takes a fraction of this.
const TEST_BOUND: Duration = Duration::from_secs(420);
/// Order and catalog clients of the loads through HAProxy.
const SHOPPERS: usize = 16;
const BROWSERS: usize = 16;

/// A cluster of its own: `stop` runs when this is dropped, also when the test panics, and
/// then the logs folder is kept and named.
struct Cluster {
    dir: PathBuf,
    settings: Vec<(String, String)>,
    /// HAProxy.
    url: String,
    /// The primary.
    database_url: String,
    /// The streaming replica.
    read_url: String,
    /// Each `ecom` process directly, 1-based in the script's commands.
    replicas: Vec<String>,
    log_dir: PathBuf,
    /// Set once the test reached its end: only then are the logs removed (a test that
    /// panics or times out keeps them).
    finished: bool,
}

impl Cluster {
    /// `local-cluster.sh start` with these settings for the `ecom` processes.
    async fn start(settings: &[(&str, &str)]) -> Self {
        assert!(
            haproxy_installed(),
            "haproxy is not installed: apt-get install haproxy (CI installs it)"
        );
        let dir =
            std::env::temp_dir().join(format!("ecom-cluster-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("cluster folder");
        // As root the script runs PostgreSQL as `postgres`, which must reach the folder.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
            .expect("cluster folder mode");
        let mut cluster = Self {
            log_dir: dir.join("logs"),
            dir,
            settings: settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            url: String::new(),
            database_url: String::new(),
            read_url: String::new(),
            replicas: Vec::new(),
            finished: false,
        };
        let stdout = cluster.run(&["start"], START_BOUND).await;
        let printed: Vec<&str> = stdout.lines().collect();
        assert_eq!(
            printed.len(),
            2,
            "start prints exactly `url:` and `database:`:\n{stdout}"
        );
        let field = |name: &str| {
            printed
                .iter()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
                .unwrap_or_else(|| panic!("no `{name}` line in:\n{stdout}"))
        };
        cluster.url = field("url:");
        cluster.database_url = field("database:");
        let env = cluster.env();
        let get = |key: &str| {
            env.get(key)
                .cloned()
                .unwrap_or_else(|| panic!("no {key} in cluster.env: {env:?}"))
        };
        assert_eq!(get("URL"), cluster.url, "cluster.env and stdout agree");
        assert_eq!(get("DATABASE_URL"), cluster.database_url);
        cluster.read_url = get("DATABASE_READ_URL");
        let replicas: usize = get("REPLICAS").parse().expect("REPLICAS");
        cluster.replicas = (1..=replicas)
            .map(|n| get(&format!("ECOM_{n}_URL")))
            .collect();
        cluster.log_dir = PathBuf::from(get("LOG_DIR"));
        cluster
    }

    /// `$CLUSTER_DIR/cluster.env` as a map.
    fn env(&self) -> HashMap<String, String> {
        std::fs::read_to_string(self.dir.join("cluster.env"))
            .expect("cluster.env")
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect()
    }

    /// The script with this cluster's settings. Its output goes to files, not pipes: a
    /// daemon that kept an inherited pipe open would hold a reader forever.
    fn command(&self, args: &[&str], out: &Path, err: &Path) -> Command {
        let path = std::env::var("PATH").unwrap_or_default();
        let mut cmd = Command::new("bash");
        cmd.arg(SCRIPT)
            .args(args)
            .env_clear()
            .env("PATH", format!("{path}:/usr/sbin:/sbin"))
            .env("CLUSTER_DIR", &self.dir)
            .env("ECOM_BIN", env!("CARGO_BIN_EXE_ecom"))
            .env("NO_COLOR", "1")
            .envs(self.settings.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(out).expect("script stdout file"))
            .stderr(std::fs::File::create(err).expect("script stderr file"));
        cmd
    }

    /// Runs a command of the script (bounded) and returns its stdout; fails the test with
    /// its stderr when it fails.
    async fn run(&self, args: &[&str], bound: Duration) -> String {
        let name = args.join("-");
        let (out, err) = (
            self.dir.join(format!("{name}.out")),
            self.dir.join(format!("{name}.err")),
        );
        let mut child = self
            .command(args, &out, &err)
            .spawn()
            .expect("the cluster script runs");
        let deadline = Instant::now() + bound;
        let status = loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "`local-cluster.sh {}` did not finish in {bound:?}:\n{}",
                    args.join(" "),
                    std::fs::read_to_string(&err).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(
            status.success(),
            "`local-cluster.sh {}` failed ({status}):\n{}",
            args.join(" "),
            std::fs::read_to_string(&err).unwrap_or_default()
        );
        std::fs::read_to_string(&out).unwrap_or_default()
    }

    /// The `ecom` processes' logs (to count what each did).
    fn ecom_logs(&self) -> Vec<(PathBuf, String)> {
        let Ok(entries) = std::fs::read_dir(&self.log_dir) else {
            return Vec::new();
        };
        let mut logs: Vec<(PathBuf, String)> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("ecom"))
            })
            .map(|p| {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                (p, text)
            })
            .collect();
        logs.sort();
        logs
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let (out, err) = (self.dir.join("stop.out"), self.dir.join("stop.err"));
        let stopped = self
            .command(&["stop"], &out, &err)
            .spawn()
            .and_then(|mut child| {
                let deadline = Instant::now() + COMMAND_BOUND;
                loop {
                    if let Some(status) = child.try_wait()? {
                        return Ok(status.success());
                    }
                    if Instant::now() > deadline {
                        let _ = child.kill();
                        let _ = child.wait();
                        return Ok(false);
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            });
        if !matches!(stopped, Ok(true)) {
            eprintln!(
                "`local-cluster.sh stop` failed ({stopped:?}): see {}",
                err.display()
            );
        }
        if !self.finished || !matches!(stopped, Ok(true)) {
            eprintln!(
                "the failed cluster test's logs are kept in {} (script output in {})",
                self.log_dir.display(),
                self.dir.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn haproxy_installed() -> bool {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin"])
        .any(|dir| Path::new(dir).join("haproxy").is_file())
}

/// A complete answer: status, headers and the JSON body (`Null` when not JSON).
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// One request that must get a complete answer.
async fn call(
    method: Method,
    url: &str,
    token: Option<&str>,
    key: Option<&str>,
    body: Option<&Value>,
) -> Answer {
    let mut req = http_client().request(method, url);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(key) = key {
        req = req.insert_header(("Idempotency-Key", key));
    }
    let sent = match body {
        Some(body) => req.send_json(body).await,
        None => req.send().await,
    };
    let mut res = sent.unwrap_or_else(|e| panic!("{url} answers: {e:?}"));
    let bytes = res.body().await.expect("body");
    Answer {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

async fn get(url: &str, token: Option<&str>) -> Answer {
    call(Method::GET, url, token, None, None).await
}

/// The `pools.replica.state` of one process's `/ready` (`None`: no answer or no replica).
async fn replica_state(base: &str) -> Option<String> {
    let res = http_client()
        .get(format!("{base}/ready"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    let mut res = res.ok()?;
    let body: Value = serde_json::from_slice(&res.body().await.ok()?).ok()?;
    body["pools"]["replica"]["state"]
        .as_str()
        .map(str::to_string)
}

/// Waits (bounded) until every process's `/ready` says the replica is in `state`.
async fn wait_replica_state(cluster: &Cluster, state: &str, bound: Duration) -> Duration {
    let began = Instant::now();
    loop {
        let mut seen = Vec::new();
        for base in &cluster.replicas {
            seen.push(replica_state(base).await);
        }
        if seen.iter().all(|s| s.as_deref() == Some(state)) {
            return began.elapsed();
        }
        assert!(
            began.elapsed() < bound,
            "/ready did not say replica `{state}` on every process within {bound:?}: {seen:?} \
             (no state at all: this build's /ready names no replica pool)"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Signs up a shopper through HAProxy; its id and access token.
async fn shopper(cluster: &Cluster, email: &str) -> (i64, String) {
    let credentials = json!({"email": email, "password": PASSWORD});
    let user = seeded(
        format!("{}/auth/register", cluster.url),
        credentials,
        None,
        201,
    )
    .await;
    let id = user["id"].as_i64().expect("user id");
    (id, login(&cluster.url, email).await)
}

/// A product created by `admin` through HAProxy with `stock` units.
async fn product(cluster: &Cluster, admin: &str, name: &str, stock: i64) -> i64 {
    let item = json!({"name": name, "description": "", "price": "4.00", "stock": stock});
    let product = seeded(format!("{}/products", cluster.url), item, Some(admin), 201).await;
    product["id"].as_i64().expect("product id")
}

/// Runs one test, failing it when it outlives [`TEST_BOUND`] instead of hanging.
async fn within_test_bound(test: impl std::future::Future<Output = ()>) {
    tokio::time::timeout(TEST_BOUND, test)
        .await
        .expect("the cluster test finishes in time");
}

// ---------------------------------------------------------------------------------------
// Test 1: one store, whichever replica answers.

const LOGIN_LIMIT: usize = 5;
/// Unpaid orders expire this fast in test 1 (scenario e).
const PAYMENT_WINDOW_SECONDS: u64 = 3;
/// The replica counts as lagging beyond this (scenario d).
const MAX_LAG_MS: u64 = 3000;

#[actix_web::test]
async fn replicas_share_one_store() {
    within_test_bound(one_store()).await;
}

async fn one_store() {
    let began = Instant::now();
    let limit = LOGIN_LIMIT.to_string();
    let window = PAYMENT_WINDOW_SECONDS.to_string();
    let lag = MAX_LAG_MS.to_string();
    let mut cluster = Cluster::start(&[
        ("LOGIN_MAX_FAILURES_PER_EMAIL", limit.as_str()),
        // Every client here is 127.0.0.1: only the per-email limit is under test.
        ("LOGIN_MAX_FAILURES_PER_ADDRESS", "1000"),
        ("ORDER_PAYMENT_WINDOW_SECONDS", window.as_str()),
        ("READ_REPLICA_MAX_LAG_MS", lag.as_str()),
        // The webhook receiver of e listens on loopback.
        ("WEBHOOK_ALLOW_PRIVATE", "true"),
    ])
    .await;
    eprintln!(
        "cluster 1 up in {} ms: {} replicas behind {}",
        ms(began.elapsed()),
        cluster.replicas.len(),
        cluster.url
    );
    let admin = admin_token(&cluster.url, &cluster.database_url, "root@cluster.example").await;
    login_throttle_holds_across_replicas(&cluster).await;
    ban_applies_on_every_replica(&cluster, &admin).await;
    idempotency_key_replays_on_another_replica(&cluster, &admin).await;
    background_work_is_done_once(&cluster, &admin).await;
    anonymous_reads_follow_the_replica(&cluster, &admin).await;
    cluster.finished = true;
    eprintln!("cluster test 1: {} ms in all", ms(began.elapsed()));
}

/// Every `ecom` process directly, then HAProxy: the doors round-robin goes through.
fn every_door(cluster: &Cluster) -> Vec<String> {
    let mut doors = cluster.replicas.clone();
    doors.push(cluster.url.clone());
    doors
}

/// a. The limit is the limit whichever replica answers, in sequence and concurrently.
async fn login_throttle_holds_across_replicas(cluster: &Cluster) {
    let doors = every_door(cluster);
    let wrong = |email: &str| json!({"email": email, "password": "not-the-password-1"});

    shopper(cluster, "guessed@cluster.example").await;
    let mut seen = Vec::new();
    for i in 0..LOGIN_LIMIT + 2 * doors.len() {
        let door = &doors[i % doors.len()];
        let body = wrong("guessed@cluster.example");
        let answer = call(
            Method::POST,
            &format!("{door}/auth/login"),
            None,
            None,
            Some(&body),
        )
        .await;
        seen.push((door.clone(), answer));
    }
    for (i, (door, answer)) in seen.iter().enumerate() {
        if i < LOGIN_LIMIT {
            assert_eq!(
                (answer.status, answer.code()),
                (401, "invalid_credentials"),
                "attempt {} at {door}: {}",
                i + 1,
                answer.body
            );
        } else {
            assert_eq!(
                (answer.status, answer.code()),
                (429, "rate_limited"),
                "attempt {} at {door}, over the limit: {}",
                i + 1,
                answer.body
            );
            let retry_after: u64 = answer
                .header("retry-after")
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("429 at {door} without a Retry-After in seconds"));
            assert!(retry_after > 0, "Retry-After {retry_after}");
        }
    }

    // Concurrent wrong guesses for another email, spread over every door.
    const GUESSES: usize = 24;
    shopper(cluster, "stormed@cluster.example").await;
    let handles: Vec<_> = (0..GUESSES)
        .map(|i| {
            let url = format!("{}/auth/login", doors[i % doors.len()]);
            actix_web::rt::spawn(async move {
                let body = wrong("stormed@cluster.example");
                call(Method::POST, &url, None, None, Some(&body))
                    .await
                    .status
            })
        })
        .collect();
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    for handle in handles {
        *statuses
            .entry(handle.await.expect("guess task"))
            .or_default() += 1;
    }
    let evaluated = statuses.get(&401).copied().unwrap_or(0);
    let throttled = statuses.get(&429).copied().unwrap_or(0);
    eprintln!(
        "a (login throttle): {} sequential attempts over {} doors: {LOGIN_LIMIT} evaluated, the rest 429; \
         {GUESSES} concurrent guesses: {statuses:?}",
        seen.len(),
        doors.len()
    );
    assert_eq!(
        evaluated + throttled,
        GUESSES,
        "only 401 and 429: {statuses:?}"
    );
    assert!(
        (1..=LOGIN_LIMIT).contains(&evaluated),
        "at most {LOGIN_LIMIT} concurrent guesses evaluated: {statuses:?}"
    );
}

/// b. A ban made through HAProxy holds on every replica at the next request.
async fn ban_applies_on_every_replica(cluster: &Cluster, admin: &str) {
    let (user_id, _) = shopper(cluster, "banned@cluster.example").await;
    let credentials = json!({"email": "banned@cluster.example", "password": PASSWORD});
    let pair = seeded(
        format!("{}/auth/login", cluster.url),
        credentials,
        None,
        200,
    )
    .await;
    let access = pair["access_token"].as_str().expect("access token");
    let refresh = pair["refresh_token"].as_str().expect("refresh token");
    // Every replica has seen the token at work (anything cached is warm).
    for base in &cluster.replicas {
        let me = get(&format!("{base}/users/me"), Some(access)).await;
        assert_eq!(me.status, 200, "{base} before the ban: {}", me.body);
    }
    let banned = call(
        Method::PATCH,
        &format!("{}/admin/users/{user_id}/ban", cluster.url),
        Some(admin),
        None,
        Some(&json!({"banned": true})),
    )
    .await;
    assert_eq!(banned.status, 200, "ban: {}", banned.body);
    for base in &cluster.replicas {
        let me = get(&format!("{base}/users/me"), Some(access)).await;
        assert_eq!(
            (me.status, me.code()),
            (403, "account_banned"),
            "{base} right after the ban: {}",
            me.body
        );
    }
    for base in &cluster.replicas {
        let renewed = call(
            Method::POST,
            &format!("{base}/auth/refresh"),
            None,
            None,
            Some(&json!({ "refresh_token": refresh })),
        )
        .await;
        assert_eq!(
            renewed.status, 401,
            "{base}: the ban revoked the login: {}",
            renewed.body
        );
    }
    eprintln!(
        "b (ban): 403 account_banned on all {} replicas at the next request; refresh 401",
        cluster.replicas.len()
    );
}

/// Stock of `product` and its units held by orders not cancelled, in one snapshot of the
/// primary (an expired order gives its units back: the check holds either way).
fn stock_and_held(cluster: &Cluster, product: i64) -> (i64, i64, i64) {
    let row = &query(
        &cluster.database_url,
        &format!(
            "SELECT p.stock, \
                    coalesce(sum(l.quantity) FILTER (WHERE o.status <> 'cancelled'), 0), \
                    count(DISTINCT o.id) \
             FROM products p LEFT JOIN order_lines l ON l.product_id = p.id \
             LEFT JOIN orders o ON o.id = l.order_id WHERE p.id = {product} GROUP BY p.stock"
        ),
    )[0];
    let int = |s: &str| s.parse::<i64>().expect("number");
    (int(&row[0]), int(&row[1]), int(&row[2]))
}

/// c. A key replayed on another replica gives the first order; raced on all, one order.
async fn idempotency_key_replays_on_another_replica(cluster: &Cluster, admin: &str) {
    const START: i64 = 100;
    let (_, token) = shopper(cluster, "keyed@cluster.example").await;
    let product = product(cluster, admin, "Keyed lamp", START).await;
    let body = json!({"items": [{"product_id": product, "quantity": 2}]});
    let place = async |base: &str, key: &str, body: &Value| {
        call(
            Method::POST,
            &format!("{base}/orders"),
            Some(&token),
            Some(key),
            Some(body),
        )
        .await
    };

    let first = place(&cluster.replicas[0], "cluster-key-1", &body).await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(first.header("idempotent-replayed"), None, "a new order");
    let order_id = first.body["id"].as_i64().expect("order id");
    for base in &cluster.replicas[1..] {
        let again = place(base, "cluster-key-1", &body).await;
        assert_eq!(again.status, 201, "{base}: {}", again.body);
        assert_eq!(
            again.body["id"].as_i64(),
            Some(order_id),
            "{base} replays the first order"
        );
        assert_eq!(again.header("idempotent-replayed"), Some("true"), "{base}");
    }
    let (stock, held, orders) = stock_and_held(cluster, product);
    assert_eq!(orders, 1, "one order for the key");
    assert_eq!(stock, START - held, "stock taken once (held {held})");

    let other = json!({"items": [{"product_id": product, "quantity": 3}]});
    let reused = place(
        cluster.replicas.last().expect("a replica"),
        "cluster-key-1",
        &other,
    )
    .await;
    assert_eq!(
        (reused.status, reused.code()),
        (422, "idempotency_key_reused"),
        "{}",
        reused.body
    );

    // The same new key on every door at once.
    let handles: Vec<_> = every_door(cluster)
        .into_iter()
        .map(|base| {
            let (token, body) = (token.clone(), body.clone());
            actix_web::rt::spawn(async move {
                let a = call(
                    Method::POST,
                    &format!("{base}/orders"),
                    Some(&token),
                    Some("cluster-key-2"),
                    Some(&body),
                )
                .await;
                (base, a.status, a.body["id"].as_i64(), a.body)
            })
        })
        .collect();
    let mut raced = Vec::new();
    for handle in handles {
        let (base, status, id, answer) = handle.await.expect("order task");
        assert_eq!(status, 201, "{base}: {answer}");
        raced.push(id.expect("order id"));
    }
    raced.dedup();
    assert_eq!(raced.len(), 1, "one order for the raced key: {raced:?}");
    assert_ne!(raced[0], order_id, "a new key, a new order");
    let (stock, held, orders) = stock_and_held(cluster, product);
    assert_eq!(orders, 2, "two keys, two orders");
    assert_eq!(stock, START - held, "each order took its stock once");
    eprintln!(
        "c (Idempotency-Key): order {order_id} replayed on {} other replicas; a key raced on {} doors: one order",
        cluster.replicas.len() - 1,
        cluster.replicas.len() + 1
    );
}

/// e. Unpaid orders expire once although replica 1 is killed right after placing them,
/// and the event dispatcher (the fan-out consumer's cursor, the delivery leases) carries
/// every one of their events to a webhook once per event; the migrations ran once although
/// every replica started at once.
async fn background_work_is_done_once(cluster: &Cluster, admin: &str) {
    const ORDERS: usize = 30;
    const START: i64 = 1000;
    let (_, token) = shopper(cluster, "unpaid@cluster.example").await;
    let products = [
        product(cluster, admin, "Unpaid kettle", START).await,
        product(cluster, admin, "Unpaid teapot", START).await,
    ];
    // Answers in 200 ms, so deliveries are in flight when replica 1 dies.
    let receiver = SlowReceiver::start();
    let endpoint = call(
        Method::POST,
        &format!("{}/admin/webhooks", cluster.url),
        Some(admin),
        None,
        Some(&json!({"url": receiver.url, "events": ["order.created", "order.cancelled"]})),
    )
    .await;
    assert_eq!(endpoint.status, 201, "{}", endpoint.body);
    // Three clients of ten orders each, through HAProxy.
    let handles: Vec<_> = (0..3)
        .map(|client| {
            let (url, token) = (cluster.url.clone(), token.clone());
            actix_web::rt::spawn(async move {
                let mut ids = Vec::new();
                for n in 0..ORDERS / 3 {
                    let body = json!({"items": [
                        {"product_id": products[n % 2], "quantity": 1 + client},
                        {"product_id": products[(n + 1) % 2], "quantity": 1},
                    ]});
                    let placed = call(
                        Method::POST,
                        &format!("{url}/orders"),
                        Some(&token),
                        None,
                        Some(&body),
                    )
                    .await;
                    assert_eq!(placed.status, 201, "{}", placed.body);
                    ids.push(placed.body["id"].as_i64().expect("order id"));
                }
                ids
            })
        })
        .collect();
    let mut orders = Vec::new();
    for handle in handles {
        orders.extend(handle.await.expect("order task"));
    }
    let placed = Instant::now();
    cluster.run(&["kill-ecom", "1"], COMMAND_BOUND).await;

    let ids = orders
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    // Due after the window, cancelled within 10 s of it (API.md), plus slack.
    let bound = Duration::from_secs(PAYMENT_WINDOW_SECONDS + 25);
    loop {
        let cancelled = query_number(
            &cluster.database_url,
            &format!("SELECT count(*) FROM orders WHERE id IN ({ids}) AND status = 'cancelled'"),
        );
        if cancelled == ORDERS as i64 {
            break;
        }
        assert!(
            placed.elapsed() < bound,
            "{cancelled} of {ORDERS} unpaid orders cancelled {} ms after replica 1 was killed",
            ms(placed.elapsed())
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let all_cancelled = placed.elapsed();
    for id in &orders {
        let history = get(
            &format!("{}/orders/{id}/history", cluster.url),
            Some(&token),
        )
        .await;
        assert_eq!(history.status, 200, "{}", history.body);
        let entries = history.body["items"].as_array().expect("history items");
        let timeouts: Vec<&Value> = entries
            .iter()
            .filter(|e| e["to_status"] == "cancelled")
            .collect();
        assert_eq!(timeouts.len(), 1, "order {id} cancelled once: {entries:?}");
        assert_eq!(timeouts[0]["reason"], "payment_timeout", "order {id}");
        assert_eq!(timeouts[0]["actor"], "system", "order {id}");
    }
    for product in products {
        let (stock, held, _) = stock_and_held(cluster, product);
        assert_eq!(
            (stock, held),
            (START, 0),
            "product {product}'s stock returned exactly once"
        );
    }

    // Migrations: each version recorded once, all of them, applied by at most one process.
    let duplicated = query_number(
        &cluster.database_url,
        "SELECT count(*) FROM (SELECT version FROM __diesel_schema_migrations \
         GROUP BY version HAVING count(*) > 1) d",
    );
    let recorded = query_number(
        &cluster.database_url,
        "SELECT count(*) FROM __diesel_schema_migrations",
    );
    let folders = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations"))
        .expect("migrations folder")
        .filter_map(Result::ok)
        .filter(|e| e.path().join("up.sql").is_file())
        .count() as i64;
    let appliers: Vec<PathBuf> = cluster
        .ecom_logs()
        .into_iter()
        .filter(|(_, text)| text.contains("applied migrations"))
        .map(|(p, _)| p)
        .collect();
    assert_eq!(duplicated, 0, "a migration recorded twice");
    assert_eq!(recorded, folders, "every migration recorded");
    assert!(
        appliers.len() <= 1,
        "more than one process applied migrations: {appliers:?}"
    );

    // Every order's two events reach the receiver, though replica 1 died with deliveries
    // leased (they go again when the 30 s lease ends). A delivery row per event and
    // endpoint is the table's unique key; what could double is the event itself (an
    // expiry run twice), which the count of webhook-ids (event ids) would show.
    let bound = Duration::from_secs(60);
    let expected: BTreeSet<(String, i64)> = orders
        .iter()
        .flat_map(|id| {
            [
                ("order.created".to_string(), *id),
                ("order.cancelled".to_string(), *id),
            ]
        })
        .collect();
    let got = loop {
        let got = receiver.got();
        let arrived: BTreeSet<(String, i64)> = got
            .iter()
            .map(|(_, kind, order)| (kind.clone(), *order))
            .collect();
        if expected.is_subset(&arrived) {
            break got;
        }
        assert!(
            placed.elapsed() < bound,
            "{} of {} order events not delivered {} ms after replica 1 was killed",
            expected.difference(&arrived).count(),
            expected.len(),
            ms(placed.elapsed())
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let all_delivered = placed.elapsed();
    receiver.handle.stop(false).await;
    // Only these orders' events: the earlier scenarios' unpaid orders expire too.
    let got: Vec<_> = got
        .into_iter()
        .filter(|(_, _, order)| orders.contains(order))
        .collect();
    let webhook_ids: BTreeSet<i64> = got.iter().map(|(id, _, _)| *id).collect();
    assert_eq!(
        webhook_ids.len(),
        expected.len(),
        "one event (webhook-id) per order and type, none doubled: {got:?}"
    );
    let resent = got.len() - webhook_ids.len();

    cluster.run(&["start-ecom", "1"], COMMAND_BOUND).await;
    eprintln!(
        "e (background work): {ORDERS} unpaid orders all cancelled {} ms after replica 1 was killed, \
         each once (payment_timeout), stock back to {START}; their {} events delivered to a webhook \
         {} ms after the kill, one webhook-id (event) each ({resent} sent again after the \
         kill: a receiver drops them by webhook-id); {recorded} migrations recorded once each, \
         applied by {} of the processes' logs",
        ms(all_cancelled),
        expected.len(),
        ms(all_delivered),
        appliers.len()
    );
}

/// d. Anonymous product reads and the sales report come from the standby (stale while its
/// replay is paused) until it lags beyond READ_REPLICA_MAX_LAG_MS; then from the primary.
/// No read failed on the standby and fell back unseen.
async fn anonymous_reads_follow_the_replica(cluster: &Cluster, admin: &str) {
    wait_replica_state(cluster, "up", Duration::from_secs(15)).await;
    query(&cluster.read_url, "SELECT pg_wal_replay_pause()");
    let paused = Instant::now();
    let product = product(cluster, admin, "Stale lantern", 5).await;
    // An account the paused standby has not seen: the report's `new_users` tells where it
    // was read (every account of this test was created today, inside the default period).
    shopper(cluster, "unseen@cluster.example").await;
    let users_on = |url: &str| query_number(url, "SELECT count(*) FROM users");
    let (on_standby, on_primary) = (users_on(&cluster.read_url), users_on(&cluster.database_url));
    assert_eq!(on_primary, on_standby + 1, "the standby's replay is paused");
    let new_users = async |base: &str| {
        let report = get(&format!("{base}/admin/reports/sales"), Some(admin)).await;
        assert_eq!(report.status, 200, "{base}: {}", report.body);
        report.body["new_users"].as_i64().expect("new_users")
    };
    for base in &cluster.replicas {
        assert_eq!(
            new_users(base).await,
            on_standby,
            "{base}: the sales report {} ms after the pause is read on the standby",
            ms(paused.elapsed())
        );
    }
    for base in &cluster.replicas {
        let url = format!("{base}/products/{product}");
        let anonymous = get(&url, None).await;
        assert_eq!(
            anonymous.status,
            404,
            "{base}: an anonymous read {} ms after the pause comes from the paused standby: {}",
            ms(paused.elapsed()),
            anonymous.body
        );
        let signed_in = get(&url, Some(admin)).await;
        assert_eq!(
            signed_in.status, 200,
            "{base}: a signed-in read comes from the primary: {}",
            signed_in.body
        );
    }
    let stale_for = paused.elapsed();
    let lagging_after = wait_replica_state(
        cluster,
        "lagging",
        Duration::from_millis(MAX_LAG_MS) + Duration::from_secs(10),
    )
    .await;
    for base in &cluster.replicas {
        let anonymous = get(&format!("{base}/products/{product}"), None).await;
        assert_eq!(
            anonymous.status, 200,
            "{base}: a lagging standby is skipped: {}",
            anonymous.body
        );
        assert_eq!(
            new_users(base).await,
            on_primary,
            "{base}: the sales report skips a lagging standby"
        );
    }
    query(&cluster.read_url, "SELECT pg_wal_replay_resume()");
    let up_after = wait_replica_state(cluster, "up", Duration::from_secs(15)).await;
    let fell_back: Vec<PathBuf> = cluster
        .ecom_logs()
        .into_iter()
        .filter(|(_, text)| text.contains("a read failed on the read replica"))
        .map(|(p, _)| p)
        .collect();
    assert!(
        fell_back.is_empty(),
        "a read failed on the standby while it was up: {fell_back:?}"
    );
    eprintln!(
        "d (read replica): anonymous reads and the sales report stale for at least {} ms after the pause; \
         /ready said `lagging` everywhere {} ms after the pause (limit {MAX_LAG_MS} ms), then reads \
         fell back to the primary; `up` again {} ms after the resume",
        ms(stale_for),
        ms(lagging_after + stale_for),
        ms(up_after)
    );
}

// ---------------------------------------------------------------------------------------
// Test 2: restarts and kills under load through HAProxy.

#[actix_web::test]
async fn restarts_and_kills_drop_nothing() {
    within_test_bound(restarts_and_kills()).await;
}

async fn restarts_and_kills() {
    let began = Instant::now();
    let mut cluster = Cluster::start(&[]).await;
    eprintln!(
        "cluster 2 up in {} ms: {} replicas behind {}",
        ms(began.elapsed()),
        cluster.replicas.len(),
        cluster.url
    );
    let admin = admin_token(&cluster.url, &cluster.database_url, "root@cluster.example").await;
    let rolling = stock_shop(&cluster.url, &admin, "rolling", 4, SHOPPERS).await;
    let killed = stock_shop(&cluster.url, &admin, "killed", 4, SHOPPERS).await;
    rolling_restart_drops_nothing(&cluster, &rolling).await;
    kill_loses_only_requests_in_flight(&cluster, &killed, &rolling.products).await;
    standby_restart_under_catalog_load(&cluster, &rolling.products).await;
    cluster.finished = true;
    eprintln!("cluster test 2: {} ms in all", ms(began.elapsed()));
}

/// Anonymous catalog reads, listing and product pages in turn, until `stop` is set.
async fn browser(
    index: usize,
    base: String,
    products: Vec<i64>,
    record: Rc<RefCell<Record>>,
    stop: Rc<Cell<bool>>,
) {
    let client = http_client();
    let mut n = index;
    while !stop.get() {
        n += 1;
        let path = if n.is_multiple_of(2) {
            "/products?limit=20".to_string()
        } else {
            format!("/products/{}", products[n % products.len()])
        };
        let sent = Instant::now();
        let outcome = match client
            .get(format!("{base}{path}"))
            .timeout(Duration::from_secs(20))
            .send()
            .await
        {
            Err(e) => outcome_of_error(format!("{e:?}")),
            Ok(mut res) => {
                let status = res.status().as_u16();
                let body = res
                    .body()
                    .limit(1 << 20)
                    .await
                    .map_err(|e| format!("{e:?}"));
                outcome_of_answer(status, body)
            }
        };
        record.borrow_mut().attempts.push(Attempt {
            key: path,
            sent,
            done: Instant::now(),
            outcome,
        });
    }
}

/// Order and catalog clients through HAProxy, stopped together.
struct Load {
    orders: Rc<RefCell<Record>>,
    reads: Rc<RefCell<Record>>,
    stop: Rc<Cell<bool>>,
    tasks: Vec<actix_web::rt::task::JoinHandle<()>>,
    began: Instant,
}

impl Load {
    /// `shop`'s shoppers ordering with keys `keys-…` (if any) and [`BROWSERS`] readers.
    fn start(cluster: &Cluster, shop: Option<&Shop>, keys: &'static str, browse: &[i64]) -> Self {
        let (orders, reads) = (Rc::<RefCell<Record>>::default(), Rc::default());
        let stop = Rc::new(Cell::new(false));
        let mut tasks = Vec::new();
        if let Some(shop) = shop {
            let load = OrderLoad {
                base: cluster.url.clone(),
                keys,
                on_no_answer: OnNoAnswer::Retry,
                deadline: Instant::now() + TEST_BOUND,
            };
            tasks.extend(load::start_shoppers(&load, shop, &orders, &stop));
        }
        for i in 0..BROWSERS {
            tasks.push(actix_web::rt::spawn(browser(
                i,
                cluster.url.clone(),
                browse.to_vec(),
                Rc::clone(&reads),
                stop.clone(),
            )));
        }
        Self {
            orders,
            reads,
            stop,
            tasks,
            began: Instant::now(),
        }
    }

    /// Stops the clients; the order clients first see their key in hand acknowledged.
    async fn finish(self) -> (Record, Record, Instant) {
        self.stop.set(true);
        for task in self.tasks {
            task.await.expect("client task");
        }
        let take = |r: Rc<RefCell<Record>>| std::mem::take(&mut *r.borrow_mut());
        (take(self.orders), take(self.reads), self.began)
    }
}

/// Latency percentiles (ms) of the attempts sent within `[from, to)`.
struct Window {
    requests: usize,
    failures: usize,
    p50: u128,
    p99: u128,
}

fn window(records: &[&Record], from: Instant, to: Instant) -> Window {
    let attempts: Vec<&Attempt> = records
        .iter()
        .flat_map(|r| r.attempts.iter())
        .filter(|a| a.sent >= from && a.sent < to)
        .collect();
    let mut latencies: Vec<u128> = attempts.iter().map(|a| ms(a.done - a.sent)).collect();
    latencies.sort_unstable();
    let at = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(0)
    };
    Window {
        requests: attempts.len(),
        failures: attempts.iter().filter(|a| a.outcome.failed()).count(),
        p50: at(0.50),
        p99: at(0.99),
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} requests, {} failed, p50 {} ms, p99 {} ms",
            self.requests, self.failures, self.p50, self.p99
        )
    }
}

/// A few failed attempts, to explain a failed assertion.
fn some_failures(records: &[&Record]) -> Vec<String> {
    records
        .iter()
        .flat_map(|r| r.failures())
        .take(8)
        .map(|a| {
            format!(
                "{} after {} ms: {:?}",
                a.key,
                ms(a.done - a.sent),
                a.outcome
            )
        })
        .collect()
}

/// The answers other than the expected `201`/`200`: a refused order or a failed read.
fn unexpected_statuses(orders: &Record, reads: &Record) -> Vec<(u16, usize)> {
    let mut odd: Vec<(u16, usize)> = orders
        .statuses()
        .into_iter()
        .filter(|(s, _)| *s != 201)
        .collect();
    odd.extend(reads.statuses().into_iter().filter(|(s, _)| *s != 200));
    odd
}

/// i. `replay_lag` of the standby as the primary reports it, every 100 ms until `stop`.
fn sample_replica_lag(
    database_url: String,
    stop: Rc<Cell<bool>>,
) -> actix_web::rt::task::JoinHandle<Vec<f64>> {
    #[derive(diesel::QueryableByName)]
    struct Lag {
        #[diesel(sql_type = diesel::sql_types::Double)]
        ms: f64,
    }
    actix_web::rt::spawn(async move {
        use diesel_async::RunQueryDsl;
        let mut conn = ecom_core::db::connect(&database_url)
            .await
            .expect("connect to the primary");
        let mut samples = Vec::new();
        while !stop.get() {
            let lag: Vec<Lag> = diesel::sql_query(
                "SELECT COALESCE(EXTRACT(EPOCH FROM replay_lag) * 1000, 0)::float8 AS ms \
                 FROM pg_stat_replication",
            )
            .load(&mut conn)
            .await
            .expect("pg_stat_replication");
            samples.extend(lag.into_iter().map(|l| l.ms));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        samples
    })
}

/// f (and i). SIGTERM each replica in turn and start it again under 16 order and 16
/// catalog clients: not one failed request.
async fn rolling_restart_drops_nothing(cluster: &Cluster, shop: &Shop) {
    let lag_stop = Rc::new(Cell::new(false));
    let lag = sample_replica_lag(cluster.database_url.clone(), lag_stop.clone());
    let load = Load::start(cluster, Some(shop), "rolling", &shop.products);
    tokio::time::sleep(Duration::from_secs(8)).await;
    let restart_began = Instant::now();
    let mut steps = Vec::new();
    for n in 1..=cluster.replicas.len() {
        let n = n.to_string();
        let t = Instant::now();
        cluster.run(&["stop-ecom", &n], COMMAND_BOUND).await;
        let stopped = t.elapsed();
        cluster.run(&["start-ecom", &n], COMMAND_BOUND).await;
        steps.push((n, stopped, t.elapsed() - stopped));
    }
    let restart_ended = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (orders, reads, began) = load.finish().await;
    let ended = Instant::now();
    lag_stop.set(true);
    let mut lags = lag.await.expect("lag sampler");
    let db = stored(&cluster.database_url, shop);

    let all = [&orders, &reads];
    let (before, during, after) = (
        window(&all, began, restart_began),
        window(&all, restart_began, restart_ended),
        window(&all, restart_ended, ended),
    );
    eprintln!(
        "f (rolling restart, {SHOPPERS} order + {BROWSERS} catalog clients through HAProxy): \
         {} orders acknowledged, {} stored, {} catalog reads",
        orders.acks.len(),
        db.orders.len(),
        reads.attempts.len()
    );
    eprintln!(
        "  before the restart ({} ms): {before}",
        ms(restart_began - began)
    );
    eprintln!(
        "  during the restart ({} ms): {during}",
        ms(restart_ended - restart_began)
    );
    eprintln!("  after it ({} ms): {after}", ms(ended - restart_ended));
    for (n, stopped, started) in &steps {
        eprintln!(
            "  replica {n}: stop-ecom {} ms, start-ecom {} ms",
            ms(*stopped),
            ms(*started)
        );
    }
    lags.sort_by(f64::total_cmp);
    let p99 = lags
        .get(((lags.len() as f64 * 0.99).ceil() as usize).saturating_sub(1))
        .copied()
        .unwrap_or(0.0);
    eprintln!(
        "i (read-replica lag under this order load, pg_stat_replication.replay_lag every 100 ms): \
         {} samples, max {:.1} ms, p99 {p99:.1} ms",
        lags.len(),
        lags.last().copied().unwrap_or(0.0)
    );

    let failures = orders.failures().len() + reads.failures().len();
    assert_eq!(
        failures,
        0,
        "failed requests during the rolling restart: {:?}",
        some_failures(&all)
    );
    let odd = unexpected_statuses(&orders, &reads);
    assert!(odd.is_empty(), "answers other than 201/200: {odd:?}");
    assert!(orders.unanswered.is_empty(), "keys never acknowledged");
    assert!(during.requests > 0, "the load ran during the restart");
    assert_acknowledged_orders_stored(&orders, &db);
    assert_eq!(
        db.orders.len(),
        orders.acks.len(),
        "no order stored unacknowledged"
    );
    assert!(!lags.is_empty(), "the primary streamed to its standby");
}

/// Milliseconds from `origin` to `at`, negative when before it.
fn relative_ms(at: Instant, origin: Instant) -> i128 {
    ms(at.saturating_duration_since(origin)) as i128
        - ms(origin.saturating_duration_since(at)) as i128
}

/// g. `kill -9` of replica 2 under the same load: only requests in flight on it fail;
/// retried with their keys, every order is stored once.
async fn kill_loses_only_requests_in_flight(cluster: &Cluster, shop: &Shop, browse: &[i64]) {
    let load = Load::start(cluster, Some(shop), "killed", browse);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let kill_issued = Instant::now();
    cluster.run(&["kill-ecom", "2"], COMMAND_BOUND).await;
    let kill_done = Instant::now();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (orders, reads, began) = load.finish().await;
    let db = stored(&cluster.database_url, shop);
    cluster.run(&["start-ecom", "2"], COMMAND_BOUND).await;

    let all = [&orders, &reads];
    let failed: Vec<&Attempt> = all.iter().flat_map(|r| r.failures()).collect();
    let late: Vec<String> = failed
        .iter()
        .filter(|a| a.done < kill_issued || a.done > kill_done + Duration::from_secs(1))
        .map(|a| format!("{} {:?}", a.key, a.outcome))
        .collect();
    // By status, or by what the client said (awc names a connection HAProxy closed while
    // its request was in flight on the killed replica `Connect(Disconnected)`).
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for a in &failed {
        let kind = match &a.outcome {
            Outcome::Status(s) => s.to_string(),
            other => other.failure().unwrap_or_default().to_string(),
        };
        *kinds.entry(kind).or_default() += 1;
    }
    let keys_acked: std::collections::HashSet<&String> =
        orders.acks.iter().map(|a| &a.key).collect();
    eprintln!(
        "g (kill -9 of replica 2 after {} ms of load; kill-ecom took {} ms): {} requests, {} failed {kinds:?}; \
         {} orders acknowledged ({} distinct keys), {} stored",
        ms(kill_issued - began),
        ms(kill_done - kill_issued),
        orders.attempts.len() + reads.attempts.len(),
        failed.len(),
        orders.acks.len(),
        keys_acked.len(),
        db.orders.len()
    );
    for a in failed.iter().take(8) {
        eprintln!(
            "  {} sent {:+} ms, failed {:+} ms from the kill: {}",
            a.key,
            relative_ms(a.sent, kill_issued),
            relative_ms(a.done, kill_issued),
            a.outcome
                .failure()
                .map_or_else(|| format!("{:?}", a.outcome), str::to_string)
        );
    }

    assert!(
        failed.len() <= SHOPPERS + BROWSERS,
        "more failures than requests in flight: {:?}",
        some_failures(&all)
    );
    assert!(
        late.is_empty(),
        "failures outside the kill's second: {late:?}"
    );
    let odd: Vec<(u16, usize)> = unexpected_statuses(&orders, &reads)
        .into_iter()
        .filter(|(s, _)| *s < 500)
        .collect();
    assert!(odd.is_empty(), "refused orders or reads: {odd:?}");
    assert!(orders.unanswered.is_empty(), "keys never acknowledged");
    assert_acknowledged_orders_stored(&orders, &db);
    assert_eq!(
        db.orders.len(),
        keys_acked.len(),
        "one stored order per acknowledged key"
    );
}

/// A `/ready` probe: when it was answered, which process, the replica state it named.
type ReadyProbe = (Instant, usize, Option<String>);

/// h. The standby stopped and started under 16 anonymous catalog clients: no 5xx, and
/// `/ready` tells it (`down`, then `up`).
async fn standby_restart_under_catalog_load(cluster: &Cluster, browse: &[i64]) {
    wait_replica_state(cluster, "up", Duration::from_secs(15)).await;
    let load = Load::start(cluster, None, "", browse);
    // Every process's /ready, every 100 ms: (when, process, replica state).
    let probes: Rc<RefCell<Vec<ReadyProbe>>> = Rc::default();
    let probing = {
        let (probes, stop, replicas) =
            (probes.clone(), load.stop.clone(), cluster.replicas.clone());
        actix_web::rt::spawn(async move {
            while !stop.get() {
                for (i, base) in replicas.iter().enumerate() {
                    let state = replica_state(base).await;
                    probes.borrow_mut().push((Instant::now(), i, state));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stop_issued = Instant::now();
    cluster.run(&["stop-standby"], COMMAND_BOUND).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let start_issued = Instant::now();
    cluster.run(&["start-standby"], COMMAND_BOUND).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let up_again = wait_replica_state(cluster, "up", Duration::from_secs(20)).await;
    let (_, reads, _) = load.finish().await;
    probing.await.expect("probe task");
    let probes = probes.borrow();

    let down_seen: Vec<usize> = (0..cluster.replicas.len())
        .map(|i| {
            probes
                .iter()
                .filter(|(t, p, s)| {
                    *p == i
                        && *t >= stop_issued
                        && *t <= start_issued
                        && s.as_deref() == Some("down")
                })
                .count()
        })
        .collect();
    let during = window(
        &[&reads],
        stop_issued,
        start_issued + Duration::from_secs(3),
    );
    eprintln!(
        "h (standby stopped {} ms, under {BROWSERS} catalog clients): {} reads, {} failed, statuses {:?}; \
         while stopped: {during}; /ready `down` probes per process {down_seen:?}; `up` on all within {} ms of looking again (3 s after start-standby returned)",
        ms(start_issued - stop_issued),
        reads.attempts.len(),
        reads.failures().len(),
        reads.statuses(),
        ms(up_again)
    );
    assert!(
        reads.failures().is_empty(),
        "failed reads while the standby restarted: {:?}",
        some_failures(&[&reads])
    );
    assert!(
        reads.statuses().keys().all(|s| *s == 200),
        "reads other than 200: {:?}",
        reads.statuses()
    );
    assert!(
        down_seen.iter().all(|n| *n > 0),
        "every process said replica `down` while the standby was stopped: {down_seen:?}"
    );
}
