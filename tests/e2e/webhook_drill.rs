//! Kill drill for webhooks (issue 15, "Done when"): the `ecom` binary is SIGKILLed while
//! 500 orders are being placed concurrently and a webhook receiver answers slowly; after
//! a restart every committed order's `order.created` reaches the receiver at least once,
//! none arrives for an order that did not commit, and the distinct `webhook-id`s (how a
//! receiver drops duplicates) are exactly the committed orders.
//!
//! `cargo test -p ecom-api --test e2e webhook_drill -- --nocapture` prints its figures.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use diesel_async::RunQueryDsl;
use ecom_testkit::{TEST_SECRET, TestDb, http_client};
use serde_json::{Value, json};

use crate::binary::{free_port, spawn_ecom, wait_healthy};
use crate::{PASSWORD, make_admin};

const ORDERS: usize = 500;
const SHOPPERS: usize = 10;
/// Orders placed at once.
const CONCURRENCY: usize = 50;
/// The receiver's answer time.
const RECEIVER_DELAY: Duration = Duration::from_millis(200);
/// Acknowledged orders before the kill.
const KILL_AFTER_ACKS: usize = 150;

/// One delivery as the receiver got it: `webhook-id`, the event's type and its order.
pub(crate) type Got = (i64, String, i64);

/// A webhook receiver on loopback that answers 200 after [`RECEIVER_DELAY`] (the cluster
/// tests use it too).
pub(crate) struct SlowReceiver {
    pub(crate) url: String,
    got: Arc<Mutex<Vec<Got>>>,
    pub(crate) handle: actix_web::dev::ServerHandle,
}

impl SlowReceiver {
    pub(crate) fn start() -> Self {
        let got: Arc<Mutex<Vec<Got>>> = Arc::default();
        let state = web::Data::new(got.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .route("/hook", web::post().to(receive))
        })
        .workers(1)
        .listen(listener)
        .expect("listen")
        .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Self {
            url: format!("http://127.0.0.1:{port}/hook"),
            got,
            handle,
        }
    }

    pub(crate) fn got(&self) -> Vec<Got> {
        self.got.lock().expect("receiver lock").clone()
    }
}

async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    got: web::Data<Arc<Mutex<Vec<Got>>>>,
) -> HttpResponse {
    tokio::time::sleep(RECEIVER_DELAY).await;
    let id = req
        .headers()
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1);
    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    got.lock().expect("receiver lock").push((
        id,
        event["type"].as_str().unwrap_or_default().to_string(),
        event["aggregate_id"].as_i64().unwrap_or(-1),
    ));
    HttpResponse::Ok().finish()
}

async fn post(url: String, body: Value, token: Option<&str>) -> Result<(u16, Value), String> {
    let mut req = http_client().post(url);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let mut res = req.send_json(&body).await.map_err(|e| e.to_string())?;
    let bytes = res.body().await.map_err(|e| e.to_string())?;
    Ok((
        res.status().as_u16(),
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    ))
}

async fn seeded(url: String, body: Value, token: Option<&str>, expected: u16) -> Value {
    let (status, answer) = post(url.clone(), body, token).await.expect("answers");
    assert_eq!(status, expected, "{url}: {answer}");
    answer
}

async fn login(base: &str, email: &str) -> String {
    let pair = seeded(
        format!("{base}/auth/login"),
        json!({"email": email, "password": PASSWORD}),
        None,
        200,
    )
    .await;
    pair["access_token"].as_str().expect("token").to_string()
}

#[derive(diesel::QueryableByName)]
struct OrderId {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
}

#[actix_web::test]
async fn webhook_kill_drill() {
    let db = TestDb::new().await;
    let receiver = SlowReceiver::start();
    let port = free_port();
    let log = std::env::temp_dir().join(format!("ecom-hooks-drill-{port}.log"));
    let envs = [
        ("DATABASE_URL", db.url.clone()),
        ("SECRET_KEY", TEST_SECRET.to_string()),
        ("PORT", port.to_string()),
        ("NO_COLOR", "1".to_string()),
        ("WEBHOOK_ALLOW_PRIVATE", "true".to_string()),
        ("WEBHOOK_RETRY_BASE_MS", "200".to_string()),
    ];
    let mut server = spawn_ecom(&envs, Some(&log));
    wait_healthy(port, &mut server).await;
    let base = format!("http://127.0.0.1:{port}");

    // An administrator, a product with plenty of stock, the endpoint, the shoppers.
    make_admin(&db, "root@hooks-drill.example").await;
    let admin = login(&base, "root@hooks-drill.example").await;
    let product = seeded(
        format!("{base}/products"),
        json!({"name": "Drill item", "description": "", "price": "2.50", "stock": 1_000_000}),
        Some(&admin),
        201,
    )
    .await["id"]
        .as_i64()
        .expect("product id");
    seeded(
        format!("{base}/admin/webhooks"),
        json!({"url": receiver.url, "events": ["order.created"]}),
        Some(&admin),
        201,
    )
    .await;
    let mut shoppers = Vec::new();
    for i in 0..SHOPPERS {
        let email = format!("shopper{i}@hooks-drill.example");
        seeded(
            format!("{base}/auth/register"),
            json!({"email": email, "password": PASSWORD}),
            None,
            201,
        )
        .await;
        shoppers.push(login(&base, &email).await);
    }

    // 500 orders, 50 at a time; the server is killed after 150 acknowledgements.
    let acked: Rc<std::cell::RefCell<Vec<i64>>> = Rc::default();
    let slots = Rc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let mut placing = Vec::new();
    for i in 0..ORDERS {
        let (acked, slots, token, url) = (
            acked.clone(),
            slots.clone(),
            shoppers[i % SHOPPERS].clone(),
            format!("{base}/orders"),
        );
        placing.push(actix_web::rt::spawn(async move {
            let _slot = slots.acquire().await.expect("slot");
            let body = json!({"items": [{"product_id": product, "quantity": 1}]});
            if let Ok((201, order)) = post(url, body, Some(&token)).await {
                acked
                    .borrow_mut()
                    .push(order["id"].as_i64().expect("order id"));
            }
        }));
    }
    let started = Instant::now();
    while acked.borrow().len() < KILL_AFTER_ACKS {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "orders too slow"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill().expect("SIGKILL");
    server.wait().expect("killed");
    let killed_at = Instant::now();
    let delivered_before_kill = receiver.got().len();
    for task in placing {
        task.await.expect("order task");
    }
    let acked: BTreeSet<i64> = acked.borrow().iter().copied().collect();

    // Restart; the outbox and the leases bring every committed order's event.
    let mut server = spawn_ecom(&envs, Some(&log));
    wait_healthy(port, &mut server).await;
    let mut conn = db.connect().await;
    let committed: BTreeSet<i64> = diesel::sql_query("SELECT id FROM orders")
        .load::<OrderId>(&mut conn)
        .await
        .expect("orders")
        .into_iter()
        .map(|o| o.id)
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let orders: BTreeSet<i64> = receiver.got().iter().map(|g| g.2).collect();
        if committed.is_subset(&orders) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} committed orders never reached the receiver",
            committed.difference(&orders).count()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let recovered = killed_at.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = server.kill();
    let _ = server.wait();
    receiver.handle.stop(false).await;
    let _ = std::fs::remove_file(&log);

    let got = receiver.got();
    let mut per_id: BTreeMap<i64, usize> = BTreeMap::new();
    for (id, kind, _) in &got {
        assert_eq!(
            kind, "order.created",
            "only what the endpoint subscribed to"
        );
        *per_id.entry(*id).or_default() += 1;
    }
    let orders: BTreeSet<i64> = got.iter().map(|g| g.2).collect();
    let duplicates: usize = per_id.values().map(|n| n - 1).sum();
    println!(
        "webhook kill drill: {ORDERS} orders tried, {} acknowledged before the kill, {} committed; \
         {delivered_before_kill} deliveries before the kill, {} after; {duplicates} duplicates; \
         every committed order's event delivered {recovered:.1?} after the kill",
        acked.len(),
        committed.len(),
        got.len() - delivered_before_kill,
    );
    assert!(
        acked.is_subset(&committed),
        "every acknowledged order committed"
    );
    assert!(committed.len() < ORDERS, "the kill came mid-way");
    assert_eq!(
        orders, committed,
        "an order.created per committed order, none for others"
    );
    assert_eq!(
        per_id.len(),
        committed.len(),
        "distinct webhook-ids = committed orders"
    );
}
