//! The accounts, values and rows that the crates' tests share, so no test crate keeps
//! its own copy. The accounts live in [`FixedAccounts`] (no ecom-auth needed); tests
//! that go through the real identity module sign up instead ([`crate::Client`]).

use std::sync::Arc;

use diesel::sql_types::BigInt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use ecom_core::{Money, Permission};
use serde_json::Value;

use std::sync::atomic::{AtomicUsize, Ordering};

use ecom_core::{AppContext, Module};

use crate::{FixedAccounts, TestDb};

/// Holds every permission.
pub const ADMIN: i64 = 1;
/// A shopper: signed in, no permissions.
pub const SHOPPER: i64 = 2;
/// Another shopper.
pub const OTHER: i64 = 3;
/// Holds `manage:orders` and `manage:products`.
pub const MANAGER: i64 = 4;
/// Holds `create:product` only.
pub const CREATOR: i64 = 5;
/// First of the extra shoppers of the concurrency tests (`CROWD..CROWD + CROWD_SIZE`).
pub const CROWD: i64 = 100;
/// How many crowd shoppers [`accounts`] holds.
pub const CROWD_SIZE: i64 = 50;

/// Every account above, active.
pub fn accounts() -> Arc<FixedAccounts> {
    let accounts = FixedAccounts::new();
    accounts.set(ADMIN, "admin", Permission::ALL, true);
    accounts.set(SHOPPER, "user", &[], true);
    accounts.set(OTHER, "user", &[], true);
    accounts.set(
        MANAGER,
        "clerk",
        &[Permission::ManageOrders, Permission::ManageProducts],
        true,
    );
    accounts.set(CREATOR, "merchant", &[Permission::CreateProduct], true);
    for id in CROWD..CROWD + CROWD_SIZE {
        accounts.set(id, "user", &[], true);
    }
    accounts
}

/// A literal amount.
#[track_caller]
pub fn money(s: &str) -> Money {
    s.parse().expect("valid money")
}

/// A bearer token for one of the accounts above.
pub fn token(user_id: i64) -> String {
    crate::access_token(user_id)
}

/// The ids of a listing's items, in order.
#[track_caller]
pub fn ids(body: &Value) -> Vec<i64> {
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| p["id"].as_i64().expect("id"))
        .collect()
}

/// Asserts that the JSON object `value` has every one of `keys`.
#[track_caller]
pub fn assert_fields(value: &Value, keys: &[&str]) {
    for key in keys {
        assert!(value.get(key).is_some(), "{key} in {value}");
    }
}

/// How many rows `table` holds.
pub async fn count_rows(conn: &mut AsyncPgConnection, table: &str) -> i64 {
    count(conn, &format!("SELECT count(*) AS n FROM {table}")).await
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

/// A context for `modules` on `db`, with [`accounts`] as the principal resolver.
pub fn context(db: &TestDb, modules: Vec<Module>) -> AppContext {
    crate::test_context(db, modules, &[]).with_resolver(accounts())
}

/// Counts the statements a connection sends from now on (to pin a query budget).
pub fn count_statements(conn: &mut AsyncPgConnection) -> Arc<AtomicUsize> {
    use diesel::connection::InstrumentationEvent;
    use diesel_async::AsyncConnection;
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
        if matches!(event, InstrumentationEvent::StartQuery { .. }) {
            seen.fetch_add(1, Ordering::SeqCst);
        }
    });
    count
}

/// The names of the parameters `doc` documents for `method path`.
pub fn parameter_names<'a>(doc: &'a Value, path: &str, method: &str) -> Vec<&'a str> {
    doc["paths"][path][method]["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .map(|p| p["name"].as_str().expect("name"))
        .collect()
}

/// Asserts that `doc` documents every parameter of `names` on `method path`.
#[track_caller]
pub fn assert_parameters(doc: &Value, path: &str, method: &str, names: &[&str]) {
    let params = parameter_names(doc, path, method);
    for name in names {
        assert!(params.contains(name), "{method} {path} documents {name}");
    }
}

/// Asserts that every 4xx response of an operation is problem+json; the 4xx statuses.
#[track_caller]
pub fn assert_problem_responses<'a>(operation: &'a Value, operation_id: &str) -> Vec<&'a str> {
    let responses = operation["responses"].as_object().expect("responses");
    let errors: Vec<&str> = responses
        .keys()
        .map(String::as_str)
        .filter(|s| s.starts_with('4'))
        .collect();
    for status in &errors {
        assert!(
            responses[*status]["content"]["application/problem+json"].is_object(),
            "{operation_id} {status} is problem+json"
        );
    }
    errors
}

/// Asserts that `doc` has a component schema for each of `names`.
#[track_caller]
pub fn assert_schemas(doc: &Value, names: &[&str]) {
    for name in names {
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "schema {name}"
        );
    }
}

/// Makes `email` an administrator with `password` through ecom-auth (a macro: the calling
/// crate depends on ecom-auth, the test kit does not); yields its id.
#[macro_export]
macro_rules! make_admin {
    ($db:expr, $email:expr, $password:expr) => {
        async {
            let mut conn = $db.connect().await;
            ecom_auth::service::accounts::create_admin(&mut conn, $email, $password.into())
                .await
                .expect("create admin")
                .id
        }
    };
}

/// A future creating a product through ecom-catalog's service, yielding its id. A macro
/// so that the test kit does not depend on ecom-catalog (the calling crate does):
/// `product!(conn, name, price, stock)` or
/// `product!(conn, name, description, price, stock, Some(category))`.
#[macro_export]
macro_rules! product {
    ($conn:expr, $name:expr, $price:expr, $stock:expr $(,)?) => {
        $crate::product!(
            $conn,
            $name,
            "",
            $price,
            $stock,
            ::std::option::Option::<&str>::None
        )
    };
    ($conn:expr, $name:expr, $description:expr, $price:expr, $stock:expr, $category:expr $(,)?) => {{
        let conn: &mut _ = &mut *$conn;
        let new = ecom_catalog::model::NewProduct {
            name: ::std::string::ToString::to_string(&$name),
            description: ::std::string::ToString::to_string(&$description),
            category: ::std::option::Option::map($category, |c| {
                ecom_catalog::model::CategoryChoice::Name(::std::string::ToString::to_string(&c))
            }),
            variants: ::std::vec![ecom_catalog::model::NewVariant::plain(
                $crate::fixtures::money($price),
                $stock,
            )],
        };
        async move {
            ecom_catalog::service::create_product(conn, new)
                .await
                .expect("create product")
                .row
                .id
        }
    }};
}

/// A fresh database, one connection to it and these `(name, price, stock)` products in
/// it, their ids in order: how most stock and order tests open. A macro for the same
/// reason as [`product!`](crate::product):
/// `let (db, mut conn, [mug, pot]) = stocked!(("Mug", "8.50", 10), ("Pot", "30.00", 2)).await;`
#[macro_export]
macro_rules! stocked {
    ($(($name:expr, $price:expr, $stock:expr)),+ $(,)?) => {
        async {
            let (db, mut conn) = $crate::TestDb::connected().await;
            let ids = [$($crate::product!(&mut conn, $name, $price, $stock).await),+];
            (db, conn, ids)
        }
    };
}

/// A page of `limit` rows from `offset`, for the service-level listings.
pub fn page_of(limit: i64, offset: i64) -> ecom_core::PageRequest {
    ecom_core::PageRequest { limit, offset }
}
