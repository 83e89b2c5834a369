//! A replica reuses a search's text matches for `SEARCH_CACHE_SECONDS`: what a page shows
//! of each product is read at the time, a product written through the replica clears the
//! matches, and with 0 every search reads its matches anew.

use diesel_async::RunQueryDsl;
use ecom_testkit::client::NewProduct;
use ecom_testkit::fixtures::{ADMIN, token};
use ecom_testkit::{TestDb, test_app, test_context};
use serde_json::Value;

use crate::app;
use crate::support::{ids, product};

async fn set(conn: &mut diesel_async::AsyncPgConnection, sql: &str) {
    diesel::sql_query(sql)
        .execute(conn)
        .await
        .expect("write behind the app's back");
}

#[actix_web::test]
async fn a_reused_search_shows_each_product_as_it_is_now() {
    let db = TestDb::new().await;
    let mut conn = db.connect().await;
    let brass = product!(&mut conn, "Brass Lantern", "20.00", 5).await;
    let paper = product!(&mut conn, "Paper Lantern", "8.00", 3).await;
    let app = app!(&db);
    let shopper = app.anonymous();
    let first: Value = shopper.read("/products?search=lantern").await;
    assert_eq!(first["total"], 2);

    // Written behind the replica's back (another replica, or SQL): the matches are reused,
    // so the new product is not found yet...
    let camping = product!(&mut conn, "Camping Lantern", "30.00", 1).await;
    set(
        &mut conn,
        &format!("UPDATE product_variants SET price = 25.00, stock = 0 WHERE product_id = {brass}"),
    )
    .await;
    let reused: Value = shopper.read("/products?search=lantern").await;
    assert_eq!(reused["total"], 2, "{reused}");
    assert_eq!(ids(&reused), [paper, brass]);
    // ...but what is shown is current: the new price and stock.
    let shown = &reused["items"][1];
    assert_eq!(
        (shown["price"].as_str(), shown["stock"].as_i64()),
        (Some("25.00"), Some(0))
    );
    // A product that no longer passes a filter is left off, whatever the matches say.
    let cheap: Value = shopper.read("/products?search=lantern&max_price=21").await;
    assert_eq!(ids(&cheap), [paper], "{cheap}");
    let stocked: Value = shopper.read("/products?search=lantern&in_stock=true").await;
    assert_eq!(ids(&stocked), [paper], "{stocked}");
    // A deleted product is gone at once.
    set(
        &mut conn,
        &format!("UPDATE products SET deleted_at = now() WHERE id = {paper}"),
    )
    .await;
    assert_eq!(
        ids(&shopper.read::<Value>("/products?search=lantern").await),
        [brass]
    );

    // A product written through this replica clears the matches: all is found again.
    let admin = app.admin(token(ADMIN));
    let storm = admin
        .create_product(&NewProduct::new("Storm Lantern", "12.00", 4))
        .await
        .id;
    let fresh: Value = shopper.read("/products?search=lantern").await;
    assert_eq!(fresh["total"], 3, "{fresh}");
    let mut found = ids(&fresh);
    found.sort_unstable();
    assert_eq!(found, [brass, camping, storm]);
}

/// The catalog app with `SEARCH_CACHE_SECONDS` set to `seconds`.
fn reusing_for(db: &TestDb, seconds: &str) -> ecom_core::AppContext {
    test_context(
        db,
        vec![ecom_catalog::module()],
        &[("SEARCH_CACHE_SECONDS", seconds)],
    )
    .with_resolver(ecom_testkit::fixtures::accounts())
}

/// A lantern searched for (and its matches read), then another lantern added behind the
/// app's back.
async fn one_lantern_then_two<S: ecom_testkit::AppService>(
    conn: &mut diesel_async::AsyncPgConnection,
    shopper: &ecom_testkit::client::Client<'_, S>,
) {
    product!(conn, "Brass Lantern", "20.00", 5).await;
    assert_eq!(shopper.listed_total("/products?search=lantern").await, 1);
    product!(conn, "Paper Lantern", "8.00", 3).await;
}

#[actix_web::test]
async fn with_no_reuse_every_search_reads_its_matches() {
    let db = TestDb::new().await;
    let mut conn = db.connect().await;
    let app = test_app(reusing_for(&db, "0")).await;
    let shopper = app.anonymous();
    one_lantern_then_two(&mut conn, &shopper).await;
    assert_eq!(shopper.listed_total("/products?search=lantern").await, 2);
}

#[actix_web::test]
async fn concurrent_searches_share_one_read_of_the_matches() {
    use diesel_async::SimpleAsyncConnection;
    let db = TestDb::new().await;
    let mut conn = db.connect().await;
    for i in 0..30 {
        product!(&mut conn, format!("Lantern {i}"), "10.00", 1).await;
    }
    let app = app!(&db);
    let shopper = app.anonymous();
    // The catalog locked: the searches that read their matches wait where we can count them.
    conn.batch_execute("BEGIN; LOCK TABLE products IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock the catalog");
    let searches = futures_util::future::join_all(
        (0..16).map(|_| shopper.listed_total("/products?search=lantern")),
    );
    let watch = async {
        let mut seen = Vec::new();
        for _ in 0..10 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            seen.push(waiting_match_reads(&mut conn).await);
        }
        conn.batch_execute("ROLLBACK").await.expect("unlock");
        seen
    };
    let (totals, seen) = tokio::join!(searches, watch);
    assert!(totals.iter().all(|&t| t == 30), "{totals:?}");
    assert_eq!(
        seen.last(),
        Some(&1),
        "one read of the matches at a time: {seen:?}"
    );
    assert!(seen.iter().all(|&n| n <= 1), "{seen:?}");
}

/// Sessions waiting for the catalog lock in a search's text match.
async fn waiting_match_reads(conn: &mut diesel_async::AsyncPgConnection) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Waiting {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query(
        "SELECT count(*) AS n FROM pg_stat_activity \
         WHERE datname = current_database() AND wait_event_type = 'Lock' \
           AND query LIKE '%websearch_to_tsquery%'",
    )
    .get_result::<Waiting>(conn)
    .await
    .expect("sessions")
    .n
}

#[actix_web::test]
async fn while_one_search_reads_again_the_others_use_the_previous_read() {
    let db = TestDb::new().await;
    let mut conn = db.connect().await;
    let app = test_app(reusing_for(&db, "1")).await;
    let shopper = app.anonymous();
    one_lantern_then_two(&mut conn, &shopper).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    // Connections for every search below, so none of them waits for one.
    let warm = (0..6).map(|_| shopper.listed_total("/products?limit=1"));
    futures_util::future::join_all(warm).await;
    // The matches are over a second old: the first search reads them again; the others,
    // started while it reads, answer from the previous read instead of waiting for it.
    let searches = (0..6).map(|_| shopper.listed_total("/products?search=lantern"));
    let totals = futures_util::future::join_all(searches).await;
    assert!(totals.contains(&1), "the previous read used: {totals:?}");
    assert!(totals.contains(&2), "the read again: {totals:?}");
    assert_eq!(shopper.listed_total("/products?search=lantern").await, 2);
}
