//! The catalog tests' own fixtures; the shared ones come from `ecom_testkit::fixtures`.

use diesel_async::AsyncPgConnection;
use ecom_catalog::model::NewReview;
use ecom_catalog::service;
pub use ecom_testkit::fixtures::{ADMIN, CREATOR, OTHER, SHOPPER, ids, money};
pub use ecom_testkit::{product, stocked};

/// The catalog module alone, in process, with the shared fixed accounts.
#[macro_export]
macro_rules! app {
    ($db:expr) => {
        ecom_testkit::test_app(ecom_testkit::fixtures::context(
            $db,
            vec![ecom_catalog::module()],
        ))
        .await
    };
}

/// A fresh database, what `seed` (an `async fn(&TestDb) -> T`, if any) put in it, and
/// the catalog app on it: how the HTTP catalog tests open.
/// `let (db, app) = open_shop!().await;`, `let (db, c, app) = open_shop!(catalog).await;`
#[macro_export]
macro_rules! open_shop {
    () => {
        async {
            let db = ecom_testkit::TestDb::new().await;
            let app = $crate::app!(&db);
            (db, app)
        }
    };
    ($seed:expr) => {
        async {
            let db = ecom_testkit::TestDb::new().await;
            let seeded = $seed(&db).await;
            let app = $crate::app!(&db);
            (db, seeded, app)
        }
    };
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

/// The default variant of a product.
pub async fn default_variant(conn: &mut AsyncPgConnection, product_id: i64) -> i64 {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use ecom_catalog::schema::product_variants;
    product_variants::table
        .filter(product_variants::product_id.eq(product_id))
        .filter(product_variants::is_default)
        .select(product_variants::id)
        .first(conn)
        .await
        .expect("default variant")
}
