//! Fault drills: the `ecom` binary over a real socket, on a PostgreSQL of its own, while
//! 16 shoppers place orders with an `Idempotency-Key` each.
//!
//! 1. PostgreSQL is restarted (`pg_ctl restart -m fast`, then `-m immediate`) under the
//!    load; clients retry 5xx and connection errors with the same key until acknowledged.
//! 2. The server gets SIGTERM under the load.
//!
//! Each prints its figures (`cargo test -p ecom-api --test e2e drills -- --nocapture`).

use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::process::Child;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ecom_core::private_pg::{LaunchOptions, PrivatePostgres, StopMode};
use ecom_testkit::{TEST_SECRET, http_client};

use crate::binary::{drain_bound, free_port, send_signal, spawn_ecom, wait_exit, wait_healthy};
use crate::load::{
    self, Attempt, OnNoAnswer, OrderLoad, Outcome, Record, Shop, admin_token,
    assert_acknowledged_orders_stored, ms, stock_shop, stored, wait_acks,
};

const SHOPPERS: usize = 16;
const PRODUCTS: usize = 4;
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

/// An administrator (as `ecom create-admin` makes one), products with a large stock
/// created through the API, and 16 signed-up shoppers.
async fn seed(stack: &Stack) -> Shop {
    let base = stack.base();
    let admin = admin_token(&base, &stack.url, "root@drill.example").await;
    stock_shop(&base, &admin, "drill", PRODUCTS, SHOPPERS).await
}

fn start_shoppers(
    stack: &Stack,
    shop: &Shop,
    record: &Rc<RefCell<Record>>,
    stop: &Rc<Cell<bool>>,
    on_no_answer: OnNoAnswer,
) -> Vec<actix_web::rt::task::JoinHandle<()>> {
    let load = OrderLoad {
        base: stack.base(),
        keys: "drill",
        on_no_answer,
        deadline: Instant::now() + DRILL_BOUND,
    };
    load::start_shoppers(&load, shop, record, stop)
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
    let db = stored(&stack.url, &shop);

    let statuses = record.statuses();
    let refused = record.count(|o| matches!(o, Outcome::Refused(_)));
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
    let db = stored(&stack.url, &shop);

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
    let refused = record.count(|o| matches!(o, Outcome::Refused(_)));
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
