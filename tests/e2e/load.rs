//! Load shared by the fault drills and the cluster tests: shoppers placing order after
//! order with an `Idempotency-Key` each, what every attempt got, and the check that the
//! database holds exactly the orders that were acknowledged.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::process::Command;
use std::rc::Rc;
use std::time::{Duration, Instant};

use ecom_testkit::http_client;
use serde_json::{Value, json};

use crate::PASSWORD;

/// The stock every seeded product starts with: large enough never to run out.
pub(crate) const STOCK: i64 = 1_000_000;
/// Pause before retrying a failed attempt (real clients would honour `Retry-After`; the
/// load retries sooner to see how fast the store comes back).
const RETRY_PAUSE: Duration = Duration::from_millis(50);

pub(crate) fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// A status and a JSON body (`Null` when the body is not JSON).
pub(crate) async fn post(url: String, body: Value, token: Option<&str>) -> (u16, Value) {
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
pub(crate) async fn seeded(url: String, body: Value, token: Option<&str>, expected: u16) -> Value {
    let (status, answer) = post(url.clone(), body, token).await;
    assert_eq!(status, expected, "{url}: {answer}");
    answer
}

/// The access token of a login that must succeed.
pub(crate) async fn login(base: &str, email: &str) -> String {
    let credentials = json!({"email": email, "password": PASSWORD});
    let pair = seeded(format!("{base}/auth/login"), credentials, None, 200).await;
    pair["access_token"]
        .as_str()
        .expect("access token")
        .to_string()
}

/// Makes `email` an administrator straight in the database (as `ecom create-admin` does)
/// and signs in as it.
pub(crate) async fn admin_token(base: &str, database_url: &str, email: &str) -> String {
    let mut conn = ecom_core::db::connect(database_url).await.expect("connect");
    ecom_auth::service::accounts::create_admin(&mut conn, email, PASSWORD.into())
        .await
        .expect("admin");
    drop(conn);
    login(base, email).await
}

/// Products and shoppers of one load, apart from any other load on the same database.
pub(crate) struct Shop {
    pub products: Vec<i64>,
    /// The shoppers' access tokens.
    pub shoppers: Vec<String>,
    pub user_ids: Vec<i64>,
}

/// `products` products with [`STOCK`] units each, created by `admin` through the API, and
/// `shoppers` signed-up shoppers; `label` keeps names and emails apart between loads.
pub(crate) async fn stock_shop(
    base: &str,
    admin: &str,
    label: &str,
    products: usize,
    shoppers: usize,
) -> Shop {
    let mut shop = Shop {
        products: Vec::new(),
        shoppers: Vec::new(),
        user_ids: Vec::new(),
    };
    for i in 0..products {
        let item = json!({"name": format!("{label} item {i}"), "description": "", "price": "2.50", "stock": STOCK});
        let product = seeded(format!("{base}/products"), item, Some(admin), 201).await;
        shop.products
            .push(product["id"].as_i64().expect("product id"));
    }
    for i in 0..shoppers {
        let email = format!("shopper{i}@{label}.example");
        let credentials = json!({"email": email, "password": PASSWORD});
        let user = seeded(format!("{base}/auth/register"), credentials, None, 201).await;
        shop.user_ids.push(user["id"].as_i64().expect("user id"));
        shop.shoppers.push(login(base, &email).await);
    }
    shop
}

/// Rows of a query, tab-separated columns, straight from the database at `url`.
pub(crate) fn query(url: &str, sql: &str) -> Vec<Vec<String>> {
    // The client of the server's own installation, else whichever is on PATH.
    let psql = ecom_core::private_pg::find_binaries()
        .map(|dir| dir.join("psql"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("psql"));
    let output = Command::new(psql)
        .args([
            url,
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

/// The one number a query answers.
pub(crate) fn query_number(url: &str, sql: &str) -> i64 {
    query(url, sql)[0][0].parse().expect("a number")
}

/// How one attempt ended.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// 201 with the order's id.
    Placed(i64),
    /// Any other complete answer.
    Status(u16),
    /// No connection: the request never reached the server (what the client said).
    Refused(String),
    /// The connection failed after it was made, before an answer's head arrived.
    Lost(String),
    /// The head arrived but the body did not: a reset mid-response.
    Incomplete(String),
}

impl Outcome {
    /// What the client library said about a failed exchange.
    pub(crate) fn failure(&self) -> Option<&str> {
        match self {
            Outcome::Refused(why) | Outcome::Lost(why) | Outcome::Incomplete(why) => Some(why),
            _ => None,
        }
    }

    /// A 5xx or no complete answer at all.
    pub(crate) fn failed(&self) -> bool {
        match self {
            Outcome::Placed(_) => false,
            Outcome::Status(s) => *s >= 500,
            Outcome::Refused(_) | Outcome::Lost(_) | Outcome::Incomplete(_) => true,
        }
    }
}

/// One request: its key (or path), when it was sent and answered, and how it ended.
pub(crate) struct Attempt {
    pub key: String,
    pub sent: Instant,
    pub done: Instant,
    pub outcome: Outcome,
}

pub(crate) struct Ack {
    pub order_id: i64,
    pub key: String,
    pub units: Vec<(i64, i64)>,
    pub sent: Instant,
}

/// What every client saw, shared by the single-threaded clients.
#[derive(Default)]
pub(crate) struct Record {
    pub attempts: Vec<Attempt>,
    pub acks: Vec<Ack>,
    /// Keys given up on without an acknowledgement, with why.
    pub unanswered: Vec<(String, Outcome)>,
}

impl Record {
    pub(crate) fn statuses(&self) -> BTreeMap<u16, usize> {
        let mut counts = BTreeMap::new();
        for a in &self.attempts {
            if let Outcome::Status(s) = a.outcome {
                *counts.entry(s).or_default() += 1;
            }
        }
        counts
    }

    pub(crate) fn count(&self, what: fn(&Outcome) -> bool) -> usize {
        self.attempts.iter().filter(|a| what(&a.outcome)).count()
    }

    /// The first acknowledgement of a request sent at or after `t`.
    pub(crate) fn first_ack_sent_after(&self, t: Instant) -> Option<Instant> {
        self.attempts
            .iter()
            .filter(|a| a.sent >= t && matches!(a.outcome, Outcome::Placed(_)))
            .map(|a| a.done)
            .min()
    }

    /// Attempts that got a 5xx or no complete answer.
    pub(crate) fn failures(&self) -> Vec<&Attempt> {
        self.attempts
            .iter()
            .filter(|a| a.outcome.failed())
            .collect()
    }
}

/// What a shopper does when an attempt gets no answer.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnNoAnswer {
    /// Retry with the same key (the server, or another replica, is still there).
    Retry,
    /// Give the key up and stop (the shutdown drill: the server is going away).
    Stop,
}

/// How an answer (or its absence) reads. awc's error types are not reachable from this
/// crate, so the variant name in their `Debug` output tells a refused connection.
pub(crate) fn outcome_of_error(debug: String) -> Outcome {
    if debug.starts_with("Connect(") {
        Outcome::Refused(debug)
    } else {
        Outcome::Lost(debug)
    }
}

pub(crate) fn outcome_of_answer(
    status: u16,
    body: Result<actix_web::web::Bytes, String>,
) -> Outcome {
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

/// Where the shoppers send their orders and how they treat failures.
#[derive(Clone)]
pub(crate) struct OrderLoad {
    pub base: String,
    /// The keys' prefix: keys are `{prefix}-{shopper}-{n}`.
    pub keys: &'static str,
    pub on_no_answer: OnNoAnswer,
    /// No attempt is retried after this.
    pub deadline: Instant,
}

/// One shopper: order after order, each with a fresh key retried until acknowledged,
/// until `stop` is set (the key in hand is still seen through) or the deadline passes.
async fn shopper(
    index: usize,
    load: OrderLoad,
    token: String,
    products: Vec<i64>,
    record: Rc<RefCell<Record>>,
    stop: Rc<Cell<bool>>,
) {
    let client = http_client();
    let place = async |key: &str, body: &Value| -> Outcome {
        let sent = client
            .post(format!("{}/orders", load.base))
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
        let key = format!("{}-{index}-{n}", load.keys);
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
                Outcome::Refused(_) | Outcome::Lost(_) | Outcome::Incomplete(_) => {
                    load.on_no_answer == OnNoAnswer::Retry
                }
            };
            if !retry || Instant::now() > load.deadline {
                record.borrow_mut().unanswered.push((key.clone(), outcome));
                return;
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }
}

/// Every shopper of `shop` on a task of its own, until `stop` is set.
pub(crate) fn start_shoppers(
    load: &OrderLoad,
    shop: &Shop,
    record: &Rc<RefCell<Record>>,
    stop: &Rc<Cell<bool>>,
) -> Vec<actix_web::rt::task::JoinHandle<()>> {
    shop.shoppers
        .iter()
        .enumerate()
        .map(|(i, token)| {
            actix_web::rt::spawn(shopper(
                i,
                load.clone(),
                token.clone(),
                shop.products.clone(),
                record.clone(),
                stop.clone(),
            ))
        })
        .collect()
}

/// Waits (bounded) until `n` more orders are acknowledged.
pub(crate) async fn wait_acks(record: &Rc<RefCell<Record>>, n: usize) {
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

/// Where the database itself stands after a load, from the tables, for the shop's
/// shoppers and products only.
pub(crate) struct Stored {
    /// order id → its Idempotency-Key.
    pub orders: HashMap<i64, String>,
    pub orders_without_lines: usize,
    /// product id → units taken off its stock.
    pub stock_taken: HashMap<i64, i64>,
    /// product id → units in order lines.
    pub units_in_lines: HashMap<i64, i64>,
}

fn id_list(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

pub(crate) fn stored(database_url: &str, shop: &Shop) -> Stored {
    let int = |s: &str| s.parse::<i64>().expect("number");
    let (users, products) = (id_list(&shop.user_ids), id_list(&shop.products));
    let orders = query(
        database_url,
        &format!(
            "SELECT o.id, coalesce(k.key, '') FROM orders o \
             LEFT JOIN order_idempotency k ON k.order_id = o.id WHERE o.user_id IN ({users})"
        ),
    )
    .into_iter()
    .map(|r| (int(&r[0]), r[1].clone()))
    .collect();
    let orders_without_lines = query_number(
        database_url,
        &format!(
            "SELECT count(*) FROM orders o WHERE o.user_id IN ({users}) \
             AND NOT EXISTS (SELECT 1 FROM order_lines l WHERE l.order_id = o.id)"
        ),
    ) as usize;
    let stock_taken = query(
        database_url,
        &format!("SELECT id, stock FROM products WHERE id IN ({products})"),
    )
    .into_iter()
    .map(|r| (int(&r[0]), STOCK - int(&r[1])))
    .collect();
    let units_in_lines = query(
        database_url,
        &format!(
            "SELECT product_id, sum(quantity) FROM order_lines WHERE product_id IN ({products}) \
             GROUP BY product_id"
        ),
    )
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
pub(crate) fn assert_acknowledged_orders_stored(record: &Record, db: &Stored) {
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
