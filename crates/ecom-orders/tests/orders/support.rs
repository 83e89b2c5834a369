//! Accounts, app builders and fixtures shared by the orders tests.

use std::sync::Arc;
use std::time::Duration;

use diesel::sql_types::BigInt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use ecom_catalog::model::NewProduct;
use ecom_core::db::{PoolOptions, build_pool};
use ecom_core::settings::SecretString;
use ecom_core::{AppContext, Money, Permission};
use ecom_testkit::{FixedAccounts, TEST_SECRET, TestDb, test_settings};
use serde_json::{Value, json};

/// Holds every permission.
pub const ADMIN: i64 = 1;
/// A shopper: signed in, no permissions.
pub const SHOPPER: i64 = 2;
/// Another shopper.
pub const OTHER: i64 = 3;
/// Holds `manage:orders` only.
pub const MANAGER: i64 = 4;
/// First of the extra shoppers used by the concurrency tests (`CROWD..CROWD + 20`).
pub const CROWD: i64 = 100;

pub fn accounts() -> Arc<FixedAccounts> {
    let accounts = FixedAccounts::new();
    accounts.set(ADMIN, "admin", &Permission::ALL, true);
    accounts.set(SHOPPER, "user", &[], true);
    accounts.set(OTHER, "user", &[], true);
    accounts.set(MANAGER, "clerk", &[Permission::ManageOrders], true);
    for id in CROWD..CROWD + 20 {
        accounts.set(id, "user", &[], true);
    }
    accounts
}

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
        ecom_testkit::test_app(
            ecom_testkit::test_context(
                $db,
                vec![ecom_catalog::module(), ecom_orders::module()],
                &[],
            )
            .with_resolver($crate::support::accounts()),
        )
        .await
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

pub fn money(s: &str) -> Money {
    s.parse().expect("valid money")
}

pub fn token(user_id: i64) -> String {
    ecom_testkit::access_token(user_id)
}

/// Creates a product through ecom-catalog's service; returns its id.
pub async fn product(conn: &mut AsyncPgConnection, name: &str, price: &str, stock: i32) -> i64 {
    let new = NewProduct {
        name: name.into(),
        description: String::new(),
        price: money(price),
        stock,
        category: None,
    };
    ecom_catalog::service::create_product(conn, new)
        .await
        .expect("create product")
        .row
        .id
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

/// A count from any `SELECT count(*) AS n ...` statement.
pub async fn count(conn: &mut AsyncPgConnection, sql: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let row: N = diesel::sql_query(sql)
        .get_result(conn)
        .await
        .expect("count query");
    row.n
}

/// An order body from `(product_id, quantity)` pairs.
pub fn body(lines: &[(i64, i64)]) -> Value {
    json!({
        "items": lines
            .iter()
            .map(|(p, q)| json!({"product_id": p, "quantity": q}))
            .collect::<Vec<_>>()
    })
}

/// The requested lines of an order, for service calls.
pub fn lines(pairs: &[(i64, i64)]) -> Vec<ecom_orders::RequestedLine> {
    pairs
        .iter()
        .map(|&(product_id, quantity)| ecom_orders::RequestedLine {
            product_id,
            quantity,
        })
        .collect()
}

/// Places an order through the service for `user_id`; returns it.
pub async fn order(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    pairs: &[(i64, i64)],
) -> ecom_orders::Order {
    ecom_orders::place_order(conn, user_id, &lines(pairs), None)
        .await
        .expect("order placed")
        .order
}
