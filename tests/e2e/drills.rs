//! Fault drills: the `ecom` binary over a real socket, on a PostgreSQL of its own, while
//! 16 shoppers place orders with an `Idempotency-Key` each.
//!
//! 1. PostgreSQL is restarted (`pg_ctl restart -m fast`, then `-m immediate`) under the
//!    load; clients retry 5xx and connection errors with the same key until acknowledged.
//! 2. The server gets SIGTERM under the load.
//!
//! Each prints its figures (`cargo test -p ecom-api --test e2e drills -- --nocapture`).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ecom_core::private_pg::{LaunchOptions, PrivatePostgres, StopMode};
use ecom_testkit::{TEST_SECRET, http_client};
use serde_json::{Value, json};

use crate::PASSWORD;
use crate::binary::{drain_bound, free_port, send_signal, spawn_ecom, wait_exit, wait_healthy};

const SHOPPERS: usize = 16;
const PRODUCTS: usize = 4;
const STOCK: i64 = 1_000_000;
/// Pause before retrying a failed attempt (real clients would honour `Retry-After`; the
/// drill retries sooner to see how fast the store comes back).
const RETRY_PAUSE: Duration = Duration::from_millis(50);
/// How long one drill may run at most; it normally takes a fraction of this.
const DRILL_BOUND: Duration = Duration::from_secs(120);

/// A PostgreSQL and an `ecom` of their own, both stopped when this is dropped, even when
/// the drill panics.
struct Stack {
    dir: PathBuf,
    pg: Arc<PrivatePostgres>,
    server: Child,
    port: u16,
    url: String,
    log: PathBuf,
}

impl Stack {
    async fn start() -> Self {
        let dir =
            std::env::temp_dir().join(format!("ecom-drill-{}", uuid::Uuid::new_v4().simple()));
        // Durable (fsync, synchronous commit): an immediate stop must not lose a commit.
        let options = LaunchOptions {
            data_dir: dir.clone(),
            ephemeral: false,
        };
        let pg = tokio::task::spawn_blocking(move || PrivatePostgres::start(&options))
            .await
            .expect("launcher task")
            .expect("the drill's PostgreSQL starts");
        let url = pg.url("postgres");
        let port = free_port();
        let log = dir.join("ecom.log");
        let server = spawn_ecom(
            &[
                ("DATABASE_URL", url.clone()),
                ("SECRET_KEY", TEST_SECRET.to_string()),
                ("PORT", port.to_string()),
                ("NO_COLOR", "1".to_string()),
            ],
            Some(&log),
        );
        let mut stack = Self {
            dir,
            pg: Arc::new(pg),
            server,
            port,
            url,
            log,
        };
        wait_healthy(port, &mut stack.server).await;
        stack
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The server's log lines about failed requests (to explain a 5xx).
    fn failures_logged(&self) -> String {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("request failed") || l.contains("ERROR"))
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Rows of a query, tab-separated columns, straight from the database.
    fn query(&self, sql: &str) -> Vec<Vec<String>> {
        // The client of the server's own installation, else whichever is on PATH.
        let psql = ecom_core::private_pg::find_binaries()
            .map(|dir| dir.join("psql"))
            .filter(|p| p.is_file())
            .unwrap_or_else(|| PathBuf::from("psql"));
        let output = Command::new(psql)
            .args([
                &self.url,
                "-X",
                "-A",
                "-t",
                "-F",
                "\t",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ])
            .output()
            .expect("psql runs");
        crate::assert_ran(&output, sql);
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = self.pg.stop();
        if std::thread::panicking() {
            let kept = self.dir.with_extension("log");
            if std::fs::copy(&self.log, &kept).is_ok() {
                eprintln!("the failed drill's server log: {}", kept.display());
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The catalog and the shoppers of a drill.
struct Shop {
    products: Vec<i64>,
    shoppers: Vec<String>,
}

async fn post(url: String, body: Value, token: Option<&str>) -> (u16, Value) {
    let mut req = http_client().post(url);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let mut res = req.send_json(&body).await.expect("answers");
    let bytes = res.body().await.expect("body");
    (
        res.status().as_u16(),
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A POST of the seeding that must answer `expected`; its body.
async fn seeded(url: String, body: Value, token: Option<&str>, expected: u16) -> Value {
    let (status, answer) = post(url.clone(), body, token).await;
    assert_eq!(status, expected, "{url}: {answer}");
    answer
}

async fn login(base: &str, email: &str) -> String {
    let credentials = json!({"email": email, "password": PASSWORD});
    let pair = seeded(format!("{base}/auth/login"), credentials, None, 200).await;
    pair["access_token"]
        .as_str()
        .expect("access token")
        .to_string()
}

/// An administrator (as `ecom create-admin` makes one), products with a large stock
/// created through the API, and 16 signed-up shoppers.
async fn seed(stack: &Stack) -> Shop {
    let base = stack.base();
    let mut conn = ecom_core::db::connect(&stack.url).await.expect("connect");
    ecom_auth::service::accounts::create_admin(&mut conn, "root@drill.example", PASSWORD.into())
        .await
        .expect("admin");
    drop(conn);
    let admin = login(&base, "root@drill.example").await;
    let mut products = Vec::new();
    for i in 0..PRODUCTS {
        let item = json!({"name": format!("Drill item {i}"), "description": "", "price": "2.50", "stock": STOCK});
        let product = seeded(format!("{base}/products"), item, Some(&admin), 201).await;
        products.push(product["id"].as_i64().expect("product id"));
    }
    let mut shoppers = Vec::new();
    for i in 0..SHOPPERS {
        let email = format!("shopper{i}@drill.example");
        let credentials = json!({"email": email, "password": PASSWORD});
        seeded(format!("{base}/auth/register"), credentials, None, 201).await;
        shoppers.push(login(&base, &email).await);
    }
    Shop { products, shoppers }
}

/// How one attempt to place an order ended.
#[derive(Debug, Clone)]
enum Outcome {
    /// 201 with the order's id.
    Placed(i64),
    /// Any other complete answer.
    Status(u16),
    /// No connection: the request never reached the server.
    Refused,
    /// The connection failed after it was made, before an answer's head arrived.
    Lost(String),
    /// The head arrived but the body did not: a reset mid-response.
    Incomplete(String),
}

impl Outcome {
    /// What the client library said about a failed exchange.
    fn failure(&self) -> Option<&str> {
        match self {
            Outcome::Lost(why) | Outcome::Incomplete(why) => Some(why),
            _ => None,
        }
    }
}

struct Attempt {
    key: String,
    sent: Instant,
    done: Instant,
    outcome: Outcome,
}

struct Ack {
    order_id: i64,
    key: String,
    units: Vec<(i64, i64)>,
    sent: Instant,
}

/// What every shopper saw, shared by the single-threaded clients.
#[derive(Default)]
struct Record {
    attempts: Vec<Attempt>,
    acks: Vec<Ack>,
    /// Keys given up on without an acknowledgement, with why.
    unanswered: Vec<(String, Outcome)>,
}

impl Record {
    fn statuses(&self) -> BTreeMap<u16, usize> {
        let mut counts = BTreeMap::new();
        for a in &self.attempts {
            if let Outcome::Status(s) = a.outcome {
                *counts.entry(s).or_default() += 1;
            }
        }
        counts
    }

    fn count(&self, what: fn(&Outcome) -> bool) -> usize {
        self.attempts.iter().filter(|a| what(&a.outcome)).count()
    }

    /// The first acknowledgement of a request sent at or after `t`.
    fn first_ack_sent_after(&self, t: Instant) -> Option<Instant> {
        self.attempts
            .iter()
            .filter(|a| a.sent >= t && matches!(a.outcome, Outcome::Placed(_)))
            .map(|a| a.done)
            .min()
    }
}

/// What a shopper does when an attempt gets no answer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OnNoAnswer {
    /// Retry with the same key (the database drill: the server stays up).
    Retry,
    /// Give the key up and stop (the shutdown drill: the server is going away).
    Stop,
}

/// How an answer (or its absence) reads. awc's error types are not reachable from this
/// crate, so the variant name in their `Debug` output tells a refused connection.
fn outcome_of_error(debug: String) -> Outcome {
    if debug.starts_with("Connect(") {
        Outcome::Refused
    } else {
        Outcome::Lost(debug)
    }
}

fn outcome_of_answer(status: u16, body: Result<actix_web::web::Bytes, String>) -> Outcome {
    match body {
        Err(e) => Outcome::Incomplete(format!("{status}: {e}")),
        Ok(bytes) if status == 201 => {
            let order: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            match order["id"].as_i64() {
                Some(id) => Outcome::Placed(id),
                None => Outcome::Incomplete(format!("201 without an order: {order}")),
            }
        }
        Ok(_) => Outcome::Status(status),
    }
}

/// One shopper: order after order, each with a fresh key retried until acknowledged,
/// until `stop` is set (the key in hand is still seen through) or `deadline` passes.
#[allow(clippy::too_many_arguments)]
async fn shopper(
    index: usize,
    base: String,
    token: String,
    products: Vec<i64>,
    record: Rc<RefCell<Record>>,
    stop: Rc<Cell<bool>>,
    on_no_answer: OnNoAnswer,
    deadline: Instant,
) {
    let client = http_client();
    let place = async |key: &str, body: &Value| -> Outcome {
        let sent = client
            .post(format!("{base}/orders"))
            .timeout(Duration::from_secs(20))
            .bearer_auth(&token)
            .insert_header(("Idempotency-Key", key))
            .send_json(body)
            .await;
        match sent {
            Err(e) => outcome_of_error(format!("{e:?}")),
            Ok(mut res) => {
                let status = res.status().as_u16();
                let body = res.body().await.map_err(|e| format!("{e:?}"));
                outcome_of_answer(status, body)
            }
        }
    };
    let mut n = 0usize;
    while !stop.get() {
        n += 1;
        let key = format!("drill-{index}-{n}");
        let units = vec![
            (products[(index + n) % products.len()], 1 + (n % 3) as i64),
            (products[(index + n + 1) % products.len()], 1),
        ];
        let body = json!({"items": units.iter().map(|(p, q)| json!({"product_id": p, "quantity": q})).collect::<Vec<_>>()});
        loop {
            let sent = Instant::now();
            let outcome = place(&key, &body).await;
            let done = Instant::now();
            record.borrow_mut().attempts.push(Attempt {
                key: key.clone(),
                sent,
                done,
                outcome: outcome.clone(),
            });
            let retry = match &outcome {
                Outcome::Placed(order_id) => {
                    record.borrow_mut().acks.push(Ack {
                        order_id: *order_id,
                        key: key.clone(),
                        units: units.clone(),
                        sent,
                    });
                    break;
                }
                Outcome::Status(s) if *s >= 500 => true,
                Outcome::Status(_) => false,
                Outcome::Refused | Outcome::Lost(_) | Outcome::Incomplete(_) => {
                    on_no_answer == OnNoAnswer::Retry
                }
            };
            if !retry || Instant::now() > deadline {
                record.borrow_mut().unanswered.push((key.clone(), outcome));
                return;
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }
}

fn start_shoppers(
    stack: &Stack,
    shop: &Shop,
    record: &Rc<RefCell<Record>>,
    stop: &Rc<Cell<bool>>,
    on_no_answer: OnNoAnswer,
) -> Vec<actix_web::rt::task::JoinHandle<()>> {
    let deadline = Instant::now() + DRILL_BOUND;
    shop.shoppers
        .iter()
        .enumerate()
        .map(|(i, token)| {
            actix_web::rt::spawn(shopper(
                i,
                stack.base(),
                token.clone(),
                shop.products.clone(),
                record.clone(),
                stop.clone(),
                on_no_answer,
                deadline,
            ))
        })
        .collect()
}

/// Waits (bounded) until `n` more orders are acknowledged.
async fn wait_acks(record: &Rc<RefCell<Record>>, n: usize) {
    let target = record.borrow().acks.len() + n;
    let deadline = Instant::now() + Duration::from_secs(30);
    while record.borrow().acks.len() < target {
        assert!(
            Instant::now() < deadline,
            "orders stopped being acknowledged"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Where the database itself stands after a drill, from the tables.
struct Stored {
    /// order id → its Idempotency-Key.
    orders: HashMap<i64, String>,
    orders_without_lines: usize,
    /// product id → units taken off its stock.
    stock_taken: HashMap<i64, i64>,
    /// product id → units in order lines.
    units_in_lines: HashMap<i64, i64>,
}

fn stored(stack: &Stack) -> Stored {
    let int = |s: &str| s.parse::<i64>().expect("number");
    let orders = stack
        .query(
            "SELECT o.id, coalesce(k.key, '') FROM orders o \
             LEFT JOIN order_idempotency k ON k.order_id = o.id",
        )
        .into_iter()
        .map(|r| (int(&r[0]), r[1].clone()))
        .collect();
    let orders_without_lines = int(&stack.query(
        "SELECT count(*) FROM orders o \
         WHERE NOT EXISTS (SELECT 1 FROM order_lines l WHERE l.order_id = o.id)",
    )[0][0]) as usize;
    let stock_taken = stack
        .query("SELECT id, stock FROM products")
        .into_iter()
        .map(|r| (int(&r[0]), STOCK - int(&r[1])))
        .collect();
    let units_in_lines = stack
        .query("SELECT product_id, sum(quantity) FROM order_lines GROUP BY product_id")
        .into_iter()
        .map(|r| (int(&r[0]), int(&r[1])))
        .collect();
    Stored {
        orders,
        orders_without_lines,
        stock_taken,
        units_in_lines,
    }
}

/// Every acknowledged order is stored once under its key, with lines, and the stock went
/// down by exactly the units acknowledged.
fn assert_acknowledged_orders_stored(record: &Record, db: &Stored) {
    let mut acked_ids = HashSet::new();
    let mut units: HashMap<i64, i64> = HashMap::new();
    for ack in &record.acks {
        assert!(
            acked_ids.insert(ack.order_id),
            "order {} acknowledged twice",
            ack.order_id
        );
        assert_eq!(
            db.orders.get(&ack.order_id),
            Some(&ack.key),
            "acknowledged order {} is not stored under its key",
            ack.order_id
        );
        for (product, quantity) in &ack.units {
            *units.entry(*product).or_default() += quantity;
        }
    }
    assert_eq!(db.orders_without_lines, 0, "orders without lines");
    let taken: HashMap<i64, i64> = db
        .stock_taken
        .iter()
        .filter(|(_, t)| **t != 0)
        .map(|(k, v)| (*k, *v))
        .collect();
    assert_eq!(taken, units, "stock decrease = units acknowledged");
    assert_eq!(
        db.units_in_lines, units,
        "units in order lines = units acknowledged"
    );
}

/// What the drill saw around one PostgreSQL restart.
struct Restart {
    mode: StopMode,
    issued: Instant,
    /// The first connection PostgreSQL refused after the restart was issued.
    went_away: Option<Instant>,
    /// The start of the first connection it accepted again.
    back: Instant,
    /// How long that connection took to open (TCP, SCRAM, start-up).
    connect_took: Duration,
    /// When `pg_ctl restart` returned.
    pg_ctl_done: Instant,
}

/// Restarts the drill's PostgreSQL and watches, with a connection attempt every 20 ms,
/// when it refuses and when it accepts connections again.
async fn restart_postgres(stack: &Stack, mode: StopMode) -> Restart {
    let issued = Instant::now();
    let pg = stack.pg.clone();
    let mut restart = Some(tokio::task::spawn_blocking(move || pg.restart(mode)));
    let mut pg_ctl_done = None;
    let mut went_away = None;
    let deadline = issued + Duration::from_secs(60);
    let (back, connect_took) = loop {
        assert!(Instant::now() < deadline, "PostgreSQL did not come back");
        if restart.as_ref().is_some_and(|h| h.is_finished())
            && let Some(handle) = restart.take()
        {
            handle.await.expect("restart task").expect("pg_ctl restart");
            pg_ctl_done = Some(Instant::now());
        }
        let attempt = Instant::now();
        let accepted = matches!(
            tokio::time::timeout(Duration::from_secs(1), ecom_core::db::connect(&stack.url)).await,
            Ok(Ok(_))
        );
        if !accepted && went_away.is_none() {
            went_away = Some(attempt);
        }
        if accepted && (went_away.is_some() || pg_ctl_done.is_some()) {
            break (attempt, attempt.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    if let Some(handle) = restart.take() {
        handle.await.expect("restart task").expect("pg_ctl restart");
        pg_ctl_done = Some(Instant::now());
    }
    Restart {
        mode,
        issued,
        went_away,
        back,
        connect_took,
        pg_ctl_done: pg_ctl_done.unwrap_or(back),
    }
}

/// Every attempt sent within 3 s of `t`, in ms relative to it (`DRILL_TIMELINE=1`: to see
/// where a recovery spends its time).
fn print_timeline(record: &Record, t: Instant) {
    let relative = |at: Instant| {
        at.saturating_duration_since(t).as_millis() as i128
            - t.saturating_duration_since(at).as_millis() as i128
    };
    let window = Duration::from_secs(3);
    for a in &record.attempts {
        if a.sent + window >= t && a.sent <= t + window {
            eprintln!(
                "    {} sent {:+} answered {:+} {:?}",
                a.key,
                relative(a.sent),
                relative(a.done),
                a.outcome
            );
        }
    }
}

/// When a `/ready` probe was answered, and its status (`None`: no connection).
type Probe = (Instant, Option<u16>);

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// Runs a drill, failing it when it outlives [`DRILL_BOUND`] instead of hanging.
async fn within_drill_bound(drill: impl std::future::Future<Output = ()>) {
    tokio::time::timeout(DRILL_BOUND, drill)
        .await
        .expect("the drill finishes in time");
}

#[actix_web::test]
async fn drill_postgres_restarts_under_load() {
    within_drill_bound(postgres_restart_drill()).await;
}

async fn postgres_restart_drill() {
    let started = Instant::now();
    let stack = Stack::start().await;
    let shop = seed(&stack).await;
    let record = Rc::new(RefCell::new(Record::default()));
    let stop = Rc::new(Cell::new(false));
    let load_began = Instant::now();
    let shoppers = start_shoppers(&stack, &shop, &record, &stop, OnNoAnswer::Retry);
    wait_acks(&record, 100).await;

    let mut restarts = Vec::new();
    for mode in [StopMode::Fast, StopMode::Immediate] {
        let restart = restart_postgres(&stack, mode).await;
        // Bounded wait: orders must succeed again within 2 s of PostgreSQL accepting connections.
        let limit = restart.back + Duration::from_secs(2);
        while record.borrow().first_ack_sent_after(restart.back).is_none() && Instant::now() < limit
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        wait_acks(&record, 50).await;
        restarts.push(restart);
    }
    stop.set(true);
    for handle in shoppers {
        handle.await.expect("shopper task");
    }
    let load_ended = Instant::now();
    let record = record.borrow();
    let db = stored(&stack);

    let statuses = record.statuses();
    let refused = record.count(|o| matches!(o, Outcome::Refused));
    let lost = record.count(|o| matches!(o, Outcome::Lost(_)));
    let incomplete = record.count(|o| matches!(o, Outcome::Incomplete(_)));
    eprintln!(
        "drill 1 (PostgreSQL restarts): {} shoppers, {} attempts in {} ms of load, {} orders acknowledged, {} stored; \
         answers by status {statuses:?}; refused {refused}, lost {lost}, incomplete {incomplete}; whole drill {} ms",
        SHOPPERS,
        record.attempts.len(),
        ms(load_ended - load_began),
        record.acks.len(),
        db.orders.len(),
        ms(started.elapsed()),
    );
    let mut recoveries = Vec::new();
    for r in &restarts {
        let outage_503 = record
            .attempts
            .iter()
            .filter(|a| {
                a.sent >= r.issued && a.sent <= r.back && matches!(a.outcome, Outcome::Status(503))
            })
            .count();
        let recovered = record.first_ack_sent_after(r.back).map(|t| t - r.back);
        let away = r.went_away.map(|t| r.back - t);
        eprintln!(
            "  pg_ctl restart -m {:?}: pg_ctl took {} ms; PostgreSQL refused connections for {:?} ms; \
             503 answers while it restarted: {outage_503}; first order acknowledged {:?} ms after it accepted connections \
             (one new connection took {} ms)",
            r.mode,
            ms(r.pg_ctl_done - r.issued),
            away.map(ms),
            recovered.map(ms),
            ms(r.connect_took),
        );
        recoveries.push((r.mode, recovered));
        if std::env::var_os("DRILL_TIMELINE").is_some() {
            print_timeline(&record, r.back);
        }
    }

    let server_errors: Vec<(u16, usize)> = statuses
        .iter()
        .filter(|(s, _)| **s >= 500 && **s != 503)
        .map(|(s, n)| (*s, *n))
        .collect();
    assert!(
        server_errors.is_empty(),
        "5xx other than 503: {server_errors:?}; server log:\n{}",
        stack.failures_logged()
    );
    let refused_4xx: Vec<_> = statuses
        .iter()
        .filter(|(s, _)| (400..500).contains(*s))
        .collect();
    assert!(refused_4xx.is_empty(), "orders refused: {refused_4xx:?}");
    assert_eq!(
        (refused, lost, incomplete),
        (0, 0, 0),
        "the server itself stayed up"
    );
    assert!(
        record.unanswered.is_empty(),
        "keys never acknowledged: {:?}",
        record
            .unanswered
            .iter()
            .take(5)
            .map(|(k, o)| (k, o))
            .collect::<Vec<_>>()
    );
    assert_acknowledged_orders_stored(&record, &db);
    assert_eq!(
        db.orders.len(),
        record.acks.len(),
        "no order stored without being acknowledged"
    );
    for (mode, recovered) in recoveries {
        assert!(
            recovered.is_some_and(|d| d <= Duration::from_secs(2)),
            "after `-m {mode:?}` orders succeeded again only after {recovered:?}"
        );
    }
}

#[actix_web::test]
async fn drill_sigterm_under_load() {
    within_drill_bound(sigterm_drill()).await;
}

async fn sigterm_drill() {
    let mut stack = Stack::start().await;
    let shop = seed(&stack).await;
    let record = Rc::new(RefCell::new(Record::default()));
    let stop = Rc::new(Cell::new(false));
    let shoppers = start_shoppers(&stack, &shop, &record, &stop, OnNoAnswer::Stop);
    wait_acks(&record, 100).await;

    // A load balancer's probe: /ready on a connection of its own every 100 ms.
    let probes: Rc<RefCell<Vec<Probe>>> = Rc::default();
    let probing = {
        let (probes, url, stop) = (
            probes.clone(),
            format!("{}/ready", stack.base()),
            stop.clone(),
        );
        actix_web::rt::spawn(async move {
            while !stop.get() {
                // Stamped when sent: a probe sent before the signal may answer 200 after it.
                let sent = Instant::now();
                let res = http_client().get(url.as_str()).send().await;
                let status = res.ok().map(|r| r.status().as_u16());
                probes.borrow_mut().push((sent, status));
                if status.is_none() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    let signalled = Instant::now();
    send_signal(&stack.server, "TERM");
    let exit = wait_exit(&mut stack.server, drain_bound()).await;
    let exited = Instant::now();
    stop.set(true);
    for handle in shoppers {
        handle.await.expect("shopper task");
    }
    probing.await.expect("probe task");
    let record = record.borrow();
    let probes = probes.borrow();
    let db = stored(&stack);

    let first_503 = probes
        .iter()
        .find(|(t, s)| *t >= signalled && *s == Some(503))
        .map(|(t, _)| *t - signalled);
    // Once /ready has said 503 it never says 200 again (the drain does not undo itself).
    let ready_after_503 = first_503.map_or(0, |first| {
        probes
            .iter()
            .filter(|(t, s)| *t > signalled + first && *s == Some(200))
            .count()
    });
    let acked_after_signal = record.acks.iter().filter(|a| a.sent >= signalled).count();
    // The listener closes when the grace ends: requests under way then must still be answered.
    let listener_closed = signalled
        + std::time::Duration::from_millis(ecom_core::settings::DEFAULT_SHUTDOWN_GRACE_MS);
    let in_flight_at_close = record
        .attempts
        .iter()
        .filter(|a| a.sent < listener_closed && a.done > listener_closed)
        .count();
    let statuses = record.statuses();
    let refused = record.count(|o| matches!(o, Outcome::Refused));
    let lost: Vec<&Attempt> = record
        .attempts
        .iter()
        .filter(|a| matches!(a.outcome, Outcome::Lost(_)))
        .collect();
    let incomplete: Vec<&Attempt> = record
        .attempts
        .iter()
        .filter(|a| matches!(a.outcome, Outcome::Incomplete(_)))
        .collect();
    let unanswered_but_stored: Vec<&String> = record
        .unanswered
        .iter()
        .map(|(k, _)| k)
        .filter(|k| db.orders.values().any(|stored| stored == *k))
        .collect();
    eprintln!(
        "drill 2 (SIGTERM): exit {exit:?} {} ms after the signal (grace {} ms); /ready 503 {:?} ms after it; \
         {} orders acknowledged ({} sent after the signal), {} stored; answers by status {statuses:?}; \
         {in_flight_at_close} under way when the listener closed; refused connections {refused}; \
         connections lost before an answer {} (their orders stored: {}); incomplete answers {}",
        ms(exited - signalled),
        ms(std::time::Duration::from_millis(
            ecom_core::settings::DEFAULT_SHUTDOWN_GRACE_MS
        )),
        first_503.map(ms),
        record.acks.len(),
        acked_after_signal,
        db.orders.len(),
        lost.len(),
        unanswered_but_stored.len(),
        incomplete.len(),
    );
    for a in lost.iter().chain(&incomplete).take(5) {
        eprintln!(
            "  {} failed after {} ms: {}",
            a.key,
            ms(a.done - a.sent),
            a.outcome.failure().unwrap_or_default()
        );
    }

    let status = exit.expect("the process exits within the drain period");
    assert!(status.success(), "graceful exit, got {status}");
    assert!(
        first_503.is_some_and(|d| {
            d < std::time::Duration::from_millis(ecom_core::settings::DEFAULT_SHUTDOWN_GRACE_MS)
        }),
        "/ready turned 503 during the grace: {probes:?}"
    );
    assert_eq!(
        ready_after_503, 0,
        "/ready said 200 again after a 503: {probes:?}"
    );
    assert!(
        acked_after_signal > 0,
        "the server kept serving during the grace"
    );
    assert!(
        statuses.keys().all(|s| *s < 500),
        "5xx during the drain: {statuses:?}\n{}",
        stack.failures_logged()
    );
    assert!(
        incomplete.is_empty(),
        "answers cut off mid-response: {:?}",
        incomplete
            .iter()
            .map(|a| a.outcome.failure())
            .collect::<Vec<_>>()
    );
    assert!(
        unanswered_but_stored.is_empty(),
        "the server placed orders it never answered: {unanswered_but_stored:?}"
    );
    assert_acknowledged_orders_stored(&record, &db);
    assert_eq!(
        db.orders.len(),
        record.acks.len(),
        "every stored order was acknowledged"
    );
}
