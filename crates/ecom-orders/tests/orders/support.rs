//! The orders tests' own fixtures; the shared ones come from `ecom_testkit::fixtures`.

use std::time::Duration;

use diesel::sql_types::BigInt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use ecom_core::AppContext;
use ecom_core::db::{PoolOptions, build_pool};
use ecom_core::settings::SecretString;
pub use ecom_testkit::fixtures::{
    ADMIN, CROWD, MANAGER, OTHER, SHOPPER, accounts, count, count_rows, money, token,
};
pub use ecom_testkit::stocked;
use ecom_testkit::{NewOrder, TEST_SECRET, TestDb, test_settings};

/// The catalog and orders modules, on `pool`, with the accounts above.
pub fn context_on(db: &TestDb, pool: ecom_core::db::PgPool) -> AppContext {
    AppContext::new(
        test_settings(db, &[]),
        pool,
        &SecretString::new(TEST_SECRET),
        vec![ecom_catalog::module(), ecom_orders::module()],
    )
    .expect("app context builds")
    .with_resolver(accounts())
}

/// The catalog and orders modules in process, with the accounts above.
#[macro_export]
macro_rules! app {
    ($db:expr) => {
        ecom_testkit::test_app(ecom_testkit::fixtures::context(
            $db,
            vec![ecom_catalog::module(), ecom_orders::module()],
        ))
        .await
    };
}

/// [`stocked!`] with the catalog and orders app on the same database:
/// `let (db, mut conn, [mug], app) = shop!(("Mug", "8.50", 10)).await;`, how the HTTP
/// order tests open.
#[macro_export]
macro_rules! shop {
    ($($product:tt),+ $(,)?) => {
        async {
            let (db, conn, ids) = ecom_testkit::stocked!($($product),+).await;
            let app = $crate::app!(&db);
            (db, conn, ids, app)
        }
    };
}

/// A pool big enough for hundreds of concurrent requests queueing on one product.
pub fn big_pool(db: &TestDb, size: usize) -> ecom_core::db::PgPool {
    let options = PoolOptions {
        max_size: size,
        wait_timeout: Duration::from_secs(60),
        statement_timeout: Duration::from_secs(60),
        application_name: "ecom-orders-test".into(),
    };
    build_pool(&db.url, &options).expect("pool")
}

/// A product's stock as the catalog reports it (deleted products included).
pub async fn stock_of(conn: &mut AsyncPgConnection, id: i64) -> i32 {
    #[derive(diesel::QueryableByName)]
    struct Stock {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        stock: i32,
    }
    let row: Stock = diesel::sql_query("SELECT stock FROM products WHERE id = $1")
        .bind::<BigInt, _>(id)
        .get_result(conn)
        .await
        .expect("product stock");
    row.stock
}

/// An order body from `(product_id, quantity)` pairs.
pub fn body(lines: &[(i64, i64)]) -> serde_json::Value {
    serde_json::to_value(NewOrder::of(lines)).expect("order body")
}

/// The requested lines of an order, for service calls.
pub fn lines(pairs: &[(i64, i64)]) -> Vec<ecom_orders::RequestedLine> {
    pairs
        .iter()
        .map(|&(product_id, quantity)| ecom_orders::RequestedLine {
            item: ecom_catalog::ItemRef::Product(product_id),
            quantity,
        })
        .collect()
}

/// The payment window orders placed through the service get: the default setting's.
pub const WINDOW: Duration =
    Duration::from_secs(ecom_core::settings::DEFAULT_ORDER_PAYMENT_WINDOW_SECONDS);

/// Places an order through the service for `user_id`; returns it.
pub async fn order(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    pairs: &[(i64, i64)],
) -> ecom_orders::Order {
    ecom_orders::place_order(conn, user_id, &lines(pairs), None, WINDOW)
        .await
        .expect("order placed")
        .order
}

/// The catalog and orders modules on a real socket with a pool of `pool_size`, a client
/// and the URL of `path` on it: how the racing tests open.
pub fn orders_server(
    db: &TestDb,
    pool_size: usize,
    path: &str,
) -> (ecom_testkit::RunningServer, awc::Client, String) {
    let server = ecom_testkit::spawn_server(context_on(db, big_pool(db, pool_size)));
    let url = server.url(path);
    (server, ecom_testkit::http_client(), url)
}

/// Reverts migrations newest first until the one whose version starts with `version`
/// (`20261206000300`) is undone.
pub async fn revert_through(db: &TestDb, version: &str) {
    use ecom_core::migrate::{self, Direction};
    for _ in 0..100 {
        let reverted = migrate::migrate(&db.url, Direction::RevertLast)
            .await
            .expect("revert");
        if reverted
            .iter()
            .any(|v| v.replace('-', "").starts_with(version))
        {
            return;
        }
    }
    panic!("migration {version} was never reverted");
}

/// Pays a pending order the way a provider's capture does (history `system`, reason
/// `payment_captured`, no audit entry): the only way to `paid` besides a manual payment.
/// Panics unless the order was payable.
pub async fn pay(conn: &mut AsyncPgConnection, order_id: i64) -> ecom_orders::StatusChange {
    match ecom_orders::mark_paid(conn, order_id, ecom_orders::PaidBy::Captured)
        .await
        .expect("mark_paid runs")
    {
        ecom_orders::PaidOutcome::Paid(change) => change,
        ecom_orders::PaidOutcome::NotPayable { status } => {
            panic!("order {order_id} is {status}, not payable")
        }
    }
}

/// An administrator's status change without payments (see [`ecom_orders::NoPayments`]).
pub async fn move_to(
    conn: &mut AsyncPgConnection,
    order_id: i64,
    to: ecom_orders::OrderStatus,
) -> Result<ecom_orders::StatusChange, ecom_orders::OrdersError> {
    ecom_orders::change_status(conn, order_id, to, ADMIN, &ecom_orders::NoPayments).await
}
