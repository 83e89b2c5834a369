//! The webhooks tests' fixtures: a receiver on loopback that records what it gets and
//! answers as told, an app with the webhooks module and the fixed accounts, the fan-out
//! consumer and delivery workers on the test database, and events recorded through the
//! outbox.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel_async::AsyncConnection;
use ecom_core::events::{self, Event, NewEvent, Wakeups};
use ecom_core::settings::Settings;
use ecom_testkit::fixtures::{ADMIN, accounts};
use ecom_testkit::{AppService, TestApp, TestDb, test_app, test_context, test_settings};
use ecom_webhooks::{DeliveryConfig, Dispatcher};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request as the receiver got it.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    /// Lower-cased names.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(String::as_str)
            .unwrap_or_default()
    }

    pub fn webhook_id(&self) -> i64 {
        self.header("webhook-id")
            .parse()
            .expect("webhook-id is the event id")
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

/// How the receiver answers a request: a status after a delay.
#[derive(Debug, Clone, Copy)]
pub struct Reply {
    pub status: u16,
    pub delay: Duration,
}

impl Reply {
    pub const OK: Reply = Reply::status(200);

    pub const fn status(status: u16) -> Self {
        Self {
            status,
            delay: Duration::ZERO,
        }
    }

    pub const fn after(status: u16, delay: Duration) -> Self {
        Self { status, delay }
    }
}

type Script = dyn Fn(usize) -> Reply + Send + Sync;

/// A webhook receiver on a loopback port: keeps every request (counted at arrival) and
/// answers each as its script says for the request's number (0, 1, 2, … in arrival order).
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<Arc<Script>>>,
    count: Arc<AtomicUsize>,
}

impl Receiver {
    pub async fn start(script: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let receiver = Self {
            url: format!("http://127.0.0.1:{port}/hook"),
            port,
            received: Arc::default(),
            script: Arc::new(Mutex::new(Arc::new(script))),
            count: Arc::default(),
        };
        let serving = receiver.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serving.clone().serve(stream));
            }
        });
        receiver
    }

    /// A receiver answering every request with `reply`.
    pub async fn answering(reply: Reply) -> Self {
        Self::start(move |_| reply).await
    }

    /// Answers from now on as `script` says.
    pub fn answer(&self, script: impl Fn(usize) -> Reply + Send + Sync + 'static) {
        *self.script.lock().expect("script lock") = Arc::new(script);
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("received lock").clone()
    }

    /// Waits until at least `n` requests came (panics after `within`).
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        eventually(
            &format!("{n} requests at the receiver"),
            within,
            async || {
                let got = self.received();
                (got.len() >= n).then_some(got)
            },
        )
        .await
    }

    async fn serve(self, mut stream: TcpStream) {
        let mut buf: Vec<u8> = Vec::new();
        loop {
            let head_end = loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                match stream.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
            let mut lines = head.split("\r\n");
            let path = lines
                .next()
                .and_then(|l| l.split(' ').nth(1))
                .unwrap_or_default()
                .to_string();
            let headers: HashMap<String, String> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                .collect();
            let length: usize = headers
                .get("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            while buf.len() < head_end + length {
                match stream.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
            let body = buf[head_end..head_end + length].to_vec();
            buf.drain(..head_end + length);
            let n = self.count.fetch_add(1, Ordering::SeqCst);
            self.received.lock().expect("received lock").push(Received {
                path,
                headers,
                body,
                at: Instant::now(),
            });
            let script = self.script.lock().expect("script lock").clone();
            let reply = script(n);
            tokio::time::sleep(reply.delay).await;
            let location = if (300..400).contains(&reply.status) {
                format!("location: http://127.0.0.1:{}/moved\r\n", self.port)
            } else {
                String::new()
            };
            let answer = format!(
                "HTTP/1.1 {} Scripted\r\ncontent-length: 0\r\n{location}\r\n",
                reply.status
            );
            if stream.write_all(answer.as_bytes()).await.is_err() {
                return;
            }
        }
    }
}

/// Polls `probe` every 25 ms until it gives a value; panics naming `what` after `within`.
pub async fn eventually<T>(
    what: &str,
    within: Duration,
    mut probe: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Background tasks stopped when the value is dropped.
#[derive(Default)]
pub struct Tasks(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// The settings of the tests: private destinations allowed, fast retries.
pub const FAST: &[(&str, &str)] = &[
    ("WEBHOOK_ALLOW_PRIVATE", "true"),
    ("WEBHOOK_RETRY_BASE_MS", "100"),
    ("WEBHOOK_MAX_ATTEMPTS", "4"),
    ("WEBHOOK_DISABLE_AFTER_FAILURES", "10"),
];

/// `FAST` with `extra` on top (later names win).
pub fn settings_for(db: &TestDb, extra: &[(&str, &str)]) -> Settings {
    let mut all: Vec<(&str, &str)> = FAST.to_vec();
    all.extend_from_slice(extra);
    test_settings(db, &all)
}

/// The delivery config of `settings` with a 2 s timeout (tests that need the real 10 s
/// say so).
pub fn config_for(settings: &Settings) -> DeliveryConfig {
    DeliveryConfig {
        timeout: Duration::from_secs(2),
        ..DeliveryConfig::from_settings(settings)
    }
}

/// The app (webhooks module, fixed accounts) on a fresh database with `extra` settings.
pub async fn app_on(extra: &[(&str, &str)]) -> (TestDb, TestApp<impl AppService>) {
    let db = TestDb::new().await;
    let mut all: Vec<(&str, &str)> = FAST.to_vec();
    all.extend_from_slice(extra);
    let ctx = test_context(&db, vec![ecom_webhooks::module()], &all).with_resolver(accounts());
    let app = test_app(ctx).await;
    (db, app)
}

/// Starts the fan-out consumer on `db`.
pub fn start_fan_out(db: &TestDb, tasks: &mut Tasks) {
    let wakeups = Wakeups::listen(db.pool());
    tasks
        .0
        .push(ecom_webhooks::service::fanout::consumer().spawn(db.pool(), wakeups));
}

/// Starts one delivery worker on `db` with `config`.
pub fn start_worker(db: &TestDb, config: DeliveryConfig, tasks: &mut Tasks) {
    let wakeups = Wakeups::listen(db.pool());
    let worker = Dispatcher::new(db.pool(), config).expect("delivery client");
    tasks.0.push(worker.spawn(wakeups));
}

/// The app plus the fan-out consumer and one worker (config from the same settings,
/// adjusted by `adjust`): how most delivery tests open.
pub async fn running(
    extra: &[(&str, &str)],
    adjust: impl FnOnce(&mut DeliveryConfig),
) -> (TestDb, TestApp<impl AppService>, Tasks) {
    let (db, app) = app_on(extra).await;
    let mut config = config_for(&settings_for(&db, extra));
    adjust(&mut config);
    let mut tasks = Tasks::default();
    start_fan_out(&db, &mut tasks);
    start_worker(&db, config, &mut tasks);
    (db, app, tasks)
}

/// Registers an endpoint as the administrator: its id and secret.
pub async fn create_endpoint<S: AppService>(
    app: &TestApp<S>,
    url: &str,
    patterns: &[&str],
) -> (i64, String) {
    let res = app
        .fixed(ADMIN)
        .post("/admin/webhooks", json!({"url": url, "events": patterns}))
        .await;
    res.assert_status(201);
    let body = res.json();
    (
        body["id"].as_i64().expect("id"),
        body["secret"].as_str().expect("secret").to_string(),
    )
}

/// An endpoint's deliveries as the log lists them (newest first).
pub async fn deliveries<S: AppService>(app: &TestApp<S>, endpoint: i64) -> Vec<Value> {
    let res = app
        .fixed(ADMIN)
        .get(format!("/admin/webhooks/{endpoint}/deliveries?limit=100"))
        .await;
    res.assert_status(200);
    res.json()["items"].as_array().expect("items").clone()
}

/// Waits until the endpoint has `n` deliveries, all settled (not `pending`).
pub async fn settled<S: AppService>(
    app: &TestApp<S>,
    endpoint: i64,
    n: usize,
    within: Duration,
) -> Vec<Value> {
    eventually(
        &format!("{n} settled deliveries of endpoint {endpoint}"),
        within,
        async || {
            let items = deliveries(app, endpoint).await;
            (items.len() == n && items.iter().all(|d| d["status"] != "pending")).then_some(items)
        },
    )
    .await
}

static AGGREGATE: AtomicI64 = AtomicI64::new(1);

/// Records one event per type, in one transaction, through the outbox, and reads them
/// back as committed (ids and sequences are drawn at commit).
pub async fn record(db: &TestDb, types: &[&str]) -> Vec<Event> {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use ecom_core::events::events as ev;
    let mut conn = db.connect().await;
    let aggregates: Vec<i64> = types
        .iter()
        .map(|_| AGGREGATE.fetch_add(1, Ordering::SeqCst))
        .collect();
    conn.transaction::<_, diesel::result::Error, _>(async |conn| {
        for (event_type, aggregate_id) in types.iter().zip(&aggregates) {
            events::record(
                conn,
                NewEvent {
                    event_type,
                    aggregate_type: event_type.split('.').next().unwrap_or("order"),
                    aggregate_id: *aggregate_id,
                    owner_id: None,
                    data: json!({"note": format!("a {event_type} for the tests")}),
                },
            )
            .await?;
        }
        Ok(())
    })
    .await
    .expect("record events");
    ev::table
        .filter(ev::aggregate_id.eq_any(&aggregates))
        .filter(ev::aggregate_type.ne("webhook"))
        .order(ev::id)
        .select(Event::as_select())
        .load(&mut conn)
        .await
        .expect("read the events back")
}
