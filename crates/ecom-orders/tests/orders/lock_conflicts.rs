//! Stuck and conflicting transactions, provoked for real: a row held past `lock_timeout`
//! answers 503 with `Retry-After` and changes nothing; a checkout, a cancellation and a
//! stock return that lose a real deadlock run again and take effect exactly once; inside a
//! caller's transaction the conflict goes back to the caller instead.

use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use ecom_catalog::{ItemRef, StockLine};
use ecom_core::db::{PoolOptions, SessionTimeouts, build_pool_with};
use ecom_core::settings::SecretString;
use ecom_core::{AppContext, AppError};
use ecom_orders::OrdersError;
use ecom_testkit::{TEST_SECRET, TestDb, http_client, spawn_server, test_settings};
use serde_json::Value;

use crate::support::{
    SHOPPER, WINDOW, accounts, body, count, count_rows, lines, order, orders_server, stock_of,
    stocked, token,
};

/// A database with `First` and `Second` (`stock` each) and a competitor already holding
/// `Second`: how the deadlock tests between two products open.
async fn second_held(stock: i32) -> (TestDb, AsyncPgConnection, [i64; 2], Competitor) {
    let (db, conn, ids) = stocked!(("First", "2.00", stock), ("Second", "3.00", stock)).await;
    let competitor = Competitor::holding(&db, &lock_product(ids[1])).await;
    (db, conn, ids, competitor)
}

/// Longest a test waits for something that must happen (a generous bound, not a timing goal).
const BOUND: Duration = Duration::from_secs(30);

/// A competing transaction on its own connection, with a second connection to watch it.
/// It checks for deadlocks only after a minute, so when it closes a cycle PostgreSQL
/// aborts the other side (whose `deadlock_timeout` is the default second).
struct Competitor {
    conn: AsyncPgConnection,
    observer: AsyncPgConnection,
}

impl Competitor {
    /// Opens a transaction and runs `first_lock` in it.
    async fn holding(db: &TestDb, first_lock: &str) -> Self {
        let mut conn = db.connect().await;
        conn.batch_execute(&format!(
            "SET deadlock_timeout = '60s'; BEGIN; {first_lock};"
        ))
        .await
        .expect("the competitor takes its first lock");
        Self {
            conn,
            observer: db.connect().await,
        }
    }

    /// Runs `other_side` while closing the cycle on `second_lock`, within [`BOUND`]: what
    /// the other side answers once PostgreSQL has broken the deadlock.
    async fn deadlock<T>(&mut self, other_side: impl Future<Output = T>, second_lock: &str) -> T {
        let (answer, ()) = actix_web::rt::time::timeout(
            BOUND,
            futures_util::future::join(other_side, self.close_the_cycle(second_lock)),
        )
        .await
        .expect("the deadlock is broken");
        answer
    }

    /// Once another session waits for one of our locks, asks for `second_lock` (held by that
    /// session: a deadlock), gets it when PostgreSQL aborts the other side, and commits.
    async fn close_the_cycle(&mut self, second_lock: &str) {
        self.until_someone_waits().await;
        self.conn
            .batch_execute(second_lock)
            .await
            .expect("the competitor wins the deadlock");
        self.conn.batch_execute("COMMIT").await.expect("commit");
    }

    async fn until_someone_waits(&mut self) {
        for _ in 0..400 {
            let waiting = count(
                &mut self.observer,
                "SELECT count(*) AS n FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .await;
            if waiting > 0 {
                return;
            }
            actix_web::rt::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("nobody started waiting for the competitor's lock");
    }
}

fn lock_product(id: i64) -> String {
    format!("SELECT id FROM products WHERE id = {id} FOR UPDATE")
}

async fn send(
    client: &awc::Client,
    url: &str,
    payload: Option<Value>,
    key: Option<&str>,
) -> (u16, Value, Option<String>, Option<String>) {
    let mut req = client
        .post(url)
        .insert_header(("authorization", format!("Bearer {}", token(SHOPPER))));
    if let Some(key) = key {
        req = req.insert_header(("idempotency-key", key.to_string()));
    }
    let sent = match payload {
        Some(p) => req.send_json(&p).await,
        None => req.send().await,
    };
    let mut res = sent.expect("request sent");
    let header = |name: &str| {
        res.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (retry_after, replayed) = (header("retry-after"), header("idempotent-replayed"));
    let json: Value = res.json().await.unwrap_or(Value::Null);
    (res.status().as_u16(), json, retry_after, replayed)
}

#[actix_web::test]
async fn an_order_for_a_row_held_past_lock_timeout_answers_503_and_changes_nothing() {
    let (db, mut conn, [held]) = stocked!(("Held", "5.00", 10)).await;
    // The statement timeout is ten minutes: only lock_timeout can end the wait.
    let settings = test_settings(
        &db,
        &[
            ("DATABASE_LOCK_TIMEOUT_MS", "300"),
            ("DATABASE_STATEMENT_TIMEOUT_MS", "600000"),
        ],
    );
    let pool = build_pool_with(
        &db.url,
        &PoolOptions::from_settings(&settings),
        &SessionTimeouts::from_settings(&settings),
    )
    .expect("pool");
    {
        let mut pooled = pool.get().await.expect("pooled connection");
        let setting: Setting = diesel::sql_query("SELECT current_setting('lock_timeout') AS value")
            .get_result(&mut *pooled)
            .await
            .expect("show lock_timeout");
        assert_eq!(setting.value, "300ms");
    }
    let ctx = AppContext::new(
        settings,
        pool,
        &SecretString::new(TEST_SECRET),
        vec![ecom_catalog::module(), ecom_orders::module()],
    )
    .expect("app context")
    .with_resolver(accounts());
    let server = spawn_server(ctx);
    let client = http_client();
    let url = server.url("/orders");

    let mut holder = db.connect().await;
    holder
        .batch_execute(&format!("BEGIN; {};", lock_product(held)))
        .await
        .expect("a stuck transaction holds the product row");
    let (status, problem, retry_after, _) = actix_web::rt::time::timeout(
        BOUND,
        send(&client, &url, Some(body(&[(held, 2)])), Some("held-1")),
    )
    .await
    .expect("lock_timeout answers long before the statement timeout");
    assert_eq!(status, 503, "{problem}");
    assert_eq!(problem["code"], "service_unavailable");
    assert_eq!(retry_after.as_deref(), Some("1"));
    holder.batch_execute("ROLLBACK").await.expect("release");

    assert_eq!(stock_of(&mut conn, held).await, 10);
    assert_eq!(count_rows(&mut conn, "orders").await, 0);
    assert_eq!(
        count_rows(&mut conn, "order_idempotency").await,
        0,
        "the refused request left no claim on its key"
    );
    // Retried with the same key once the row is free, the order goes through.
    let (status, _, _, _) = send(&client, &url, Some(body(&[(held, 2)])), Some("held-1")).await;
    assert_eq!(status, 201);
    assert_eq!(stock_of(&mut conn, held).await, 8);
    server.stop().await;
}

#[derive(diesel::QueryableByName)]
struct Setting {
    #[diesel(sql_type = diesel::sql_types::Text)]
    value: String,
}

#[actix_web::test]
async fn a_checkout_that_loses_a_deadlock_runs_again_and_orders_exactly_once() {
    // The checkout locks `first`, then waits for `second`, which the competitor holds; the
    // competitor then asks for `first`: a real deadlock, which PostgreSQL breaks by
    // aborting the checkout's transaction.
    let (db, mut conn, [first, second], mut competitor) = second_held(10).await;
    let (server, client, url) = orders_server(&db, 4, "/orders");
    let checkout = send(
        &client,
        &url,
        Some(body(&[(first, 1), (second, 1)])),
        Some("deadlock-1"),
    );
    let (status, placed, _, replayed) = competitor.deadlock(checkout, &lock_product(first)).await;
    // The competitor got `first` while the checkout was under way, so the checkout's first
    // run was aborted; a 201 means a later run placed the order.
    assert_eq!(status, 201, "{placed}");
    assert_eq!(replayed, None);
    assert_eq!(count_rows(&mut conn, "orders").await, 1);
    assert_eq!(stock_of(&mut conn, first).await, 9);
    assert_eq!(stock_of(&mut conn, second).await, 9);

    // The key was claimed by the run that committed: the same request replays that order.
    let (status, again, _, replayed) = send(
        &client,
        &url,
        Some(body(&[(first, 1), (second, 1)])),
        Some("deadlock-1"),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(replayed.as_deref(), Some("true"));
    assert_eq!(again["id"], placed["id"]);
    assert_eq!(count_rows(&mut conn, "orders").await, 1);
    assert_eq!(stock_of(&mut conn, first).await, 9);
    assert_eq!(stock_of(&mut conn, second).await, 9);
    server.stop().await;
}

#[actix_web::test]
async fn a_cancellation_that_loses_a_deadlock_runs_again_and_returns_stock_once() {
    let (db, mut conn, [item]) = stocked!(("Item", "4.00", 10)).await;
    let placed = order(&mut conn, SHOPPER, &[(item, 3)]).await;
    assert_eq!(stock_of(&mut conn, item).await, 7);
    let (server, client, url) = orders_server(&db, 4, &format!("/orders/{}/cancel", placed.id));

    // The cancellation locks the order, then waits for the product row to return stock;
    // the competitor, holding that row, asks for the order row.
    let mut competitor = Competitor::holding(&db, &lock_product(item)).await;
    let order_lock = format!("SELECT id FROM orders WHERE id = {} FOR UPDATE", placed.id);
    let (status, cancelled, _, _) = competitor
        .deadlock(send(&client, &url, None, None), &order_lock)
        .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(stock_of(&mut conn, item).await, 10, "returned exactly once");
    assert_eq!(
        count(
            &mut conn,
            &format!(
                "SELECT count(*) AS n FROM order_status_history \
                 WHERE order_id = {} AND to_status = 'cancelled'",
                placed.id
            )
        )
        .await,
        1
    );
    let (status, _, _, _) = send(&client, &url, None, None).await;
    assert_eq!(status, 409, "a second cancel is refused");
    assert_eq!(stock_of(&mut conn, item).await, 10);
    server.stop().await;
}

#[actix_web::test]
async fn a_stock_return_on_its_own_runs_again_after_a_deadlock() {
    let (db, mut conn, [first, second], mut competitor) = second_held(5).await;
    let mut returning = db.connect().await;
    let stock = [
        StockLine {
            item: ItemRef::Product(first),
            quantity: 3,
        },
        StockLine {
            item: ItemRef::Product(second),
            quantity: 4,
        },
    ];
    let returning = ecom_catalog::return_stock(&mut returning, &stock);
    let returned = competitor.deadlock(returning, &lock_product(first)).await;
    returned.expect("the second run returns the stock");
    assert_eq!(stock_of(&mut conn, first).await, 8);
    assert_eq!(stock_of(&mut conn, second).await, 9);
}

#[actix_web::test]
async fn inside_a_callers_transaction_a_deadlocked_checkout_is_not_run_again() {
    let (db, mut conn, [first, second], mut competitor) = second_held(10).await;
    let mut caller = db.connect().await;
    let wanted = lines(&[(first, 1), (second, 1)]);
    let in_callers_transaction = caller.transaction(async |conn| {
        ecom_orders::place_order(conn, SHOPPER, &wanted, Some("outer-1"), WINDOW).await
    });
    let outcome = competitor
        .deadlock(in_callers_transaction, &lock_product(first))
        .await;
    let err = outcome.expect_err("the conflict goes back to the transaction's owner");
    assert!(
        matches!(err, OrdersError::Database(ref e)
            if ecom_core::error::sqlstate_of(e) == Some("40P01")),
        "{err:?}"
    );
    let response = AppError::from(err);
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(response.retry_after_secs(), Some(1));
    assert_eq!(count_rows(&mut conn, "orders").await, 0);
    assert_eq!(stock_of(&mut conn, first).await, 10);
    assert_eq!(stock_of(&mut conn, second).await, 10);
}

#[actix_web::test]
async fn the_idempotency_purge_is_bounded_and_skips_rows_another_replica_holds() {
    use ecom_orders::service::checkout::purge_expired_idempotency;
    let (db, mut conn) = TestDb::connected().await;
    conn.batch_execute(
        "INSERT INTO order_idempotency (user_id, key, fingerprint, expires_at) \
         SELECT 1, 'expired-' || i, 'f', now() - interval '1 minute' * i \
         FROM generate_series(1, 7) AS i; \
         INSERT INTO order_idempotency (user_id, key, fingerprint) VALUES (1, 'live', 'f');",
    )
    .await
    .expect("records");
    // Another replica's clean-up (or a request re-claiming its expired key) holds one row.
    let mut other = db.connect().await;
    other
        .batch_execute("BEGIN; SELECT 1 FROM order_idempotency WHERE key = 'expired-7' FOR UPDATE;")
        .await
        .expect("hold one row");

    let mut a = db.connect().await;
    let mut b = db.connect().await;
    // Two replicas at once, three rows each at most: neither waits, no row goes twice.
    let (first_a, first_b) = actix_web::rt::time::timeout(
        BOUND,
        futures_util::future::join(
            purge_expired_idempotency(&mut a, 3),
            purge_expired_idempotency(&mut b, 3),
        ),
    )
    .await
    .expect("the purges do not wait on the held row");
    let (first_a, first_b) = (first_a.expect("purge a"), first_b.expect("purge b"));
    assert!(
        first_a <= 3 && first_b <= 3,
        "bounded: {first_a} + {first_b}"
    );
    let rest = purge_expired_idempotency(&mut a, 3)
        .await
        .expect("purge again");
    assert_eq!(
        first_a + first_b + rest,
        6,
        "every expired row not held, once"
    );
    assert_eq!(
        count_rows(&mut conn, "order_idempotency").await,
        2,
        "the held row and the live one remain"
    );
    other.batch_execute("ROLLBACK").await.expect("release");
    assert_eq!(
        purge_expired_idempotency(&mut a, 3)
            .await
            .expect("purge the released row"),
        1
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM order_idempotency WHERE key = 'live'"
        )
        .await,
        1
    );
}
