//! Accounts, an app macro and fixtures shared by the catalog tests.

use std::sync::Arc;

use diesel_async::AsyncPgConnection;
use ecom_catalog::model::{CategoryChoice, NewProduct, NewReview};
use ecom_catalog::service;
use ecom_core::{Money, Permission};
use ecom_testkit::FixedAccounts;

/// Holds every permission.
pub const ADMIN: i64 = 1;
/// A shopper: signed in, no permissions.
pub const SHOPPER: i64 = 2;
/// Another shopper.
pub const OTHER: i64 = 3;
/// Holds `create:product` only.
pub const CREATOR: i64 = 4;

pub fn accounts() -> Arc<FixedAccounts> {
    let accounts = FixedAccounts::new();
    accounts.set(ADMIN, "admin", &Permission::ALL, true);
    accounts.set(SHOPPER, "user", &[], true);
    accounts.set(OTHER, "user", &[], true);
    accounts.set(CREATOR, "merchant", &[Permission::CreateProduct], true);
    accounts
}

/// The catalog module alone, in process, with the accounts above.
#[macro_export]
macro_rules! app {
    ($db:expr) => {
        ecom_testkit::test_app(
            ecom_testkit::test_context($db, vec![ecom_catalog::module()], &[])
                .with_resolver($crate::support::accounts()),
        )
        .await
    };
}

pub fn money(s: &str) -> Money {
    s.parse().expect("valid money")
}

/// Creates a product through the service; returns its id.
pub async fn product(
    conn: &mut AsyncPgConnection,
    name: &str,
    description: &str,
    price: &str,
    stock: i32,
    category: Option<&str>,
) -> i64 {
    let new = NewProduct {
        name: name.into(),
        description: description.into(),
        price: money(price),
        stock,
        category: category.map(|c| CategoryChoice::Name(c.into())),
    };
    service::create_product(conn, new)
        .await
        .expect("create product")
        .row
        .id
}

pub async fn review(conn: &mut AsyncPgConnection, product_id: i64, user_id: i64, rating: i16) {
    service::create_review(
        conn,
        product_id,
        user_id,
        NewReview {
            rating,
            comment: None,
        },
    )
    .await
    .expect("create review");
}

/// The ids of a listing's items, in order.
pub fn ids(body: &serde_json::Value) -> Vec<i64> {
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| p["id"].as_i64().expect("id"))
        .collect()
}

/// Sets a product's creation time (to order `newest` listings deterministically).
pub async fn set_created_at(conn: &mut AsyncPgConnection, id: i64, days_ago: i32) {
    use diesel::sql_types::{BigInt, Integer};
    use diesel_async::RunQueryDsl;
    diesel::sql_query(
        "UPDATE products SET created_at = now() - make_interval(days => $2) WHERE id = $1",
    )
    .bind::<BigInt, _>(id)
    .bind::<Integer, _>(days_ago)
    .execute(conn)
    .await
    .expect("set created_at");
}
