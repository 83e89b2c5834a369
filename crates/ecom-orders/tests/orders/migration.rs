//! The migration that adds `payment_due_at` and the history's actors: it fills them for
//! orders placed before it, and its `down.sql` undoes it.

use diesel::QueryableByName;
use diesel::sql_types::{Bool, Nullable, Text};
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use ecom_core::migrate::{self, Direction};
use ecom_testkit::TestDb;

use crate::support::{count, count_rows};

const VERSION: &str = "20261206000300";

/// Reverts migrations newest first until this one is undone.
async fn revert_through_this_one(db: &TestDb) {
    crate::support::revert_through(db, VERSION).await;
}

#[derive(QueryableByName)]
struct Entry {
    #[diesel(sql_type = Text)]
    actor: String,
    #[diesel(sql_type = Nullable<Text>)]
    reason: Option<String>,
}

#[derive(QueryableByName)]
struct Due {
    #[diesel(sql_type = Bool)]
    in_the_window: bool,
}

#[actix_web::test]
async fn existing_orders_get_actors_and_a_fresh_window_and_it_reverts() {
    let db = TestDb::new().await;
    revert_through_this_one(&db).await;
    let mut conn = db.connect().await;
    // Orders as the store kept them before: user 10 placed both, admin 99 moved one.
    conn.batch_execute(
        "INSERT INTO orders (id, user_id, status, total_price) VALUES \
             (1, 10, 'pending', 5.00), (2, 10, 'paid', 7.00); \
         INSERT INTO order_status_history (order_id, from_status, to_status, actor_id) VALUES \
             (1, NULL, 'pending', 10), (2, NULL, 'pending', 10), (2, 'pending', 'paid', 99);",
    )
    .await
    .expect("old rows");

    migrate::migrate(&db.url, Direction::Up).await.expect("up");
    let actors: Vec<Entry> =
        diesel::sql_query("SELECT actor, reason FROM order_status_history ORDER BY id")
            .load(&mut conn)
            .await
            .expect("history");
    let actors: Vec<(&str, Option<&str>)> = actors
        .iter()
        .map(|e| (e.actor.as_str(), e.reason.as_deref()))
        .collect();
    assert_eq!(actors, [("user", None), ("user", None), ("admin", None)]);
    let due: Due = diesel::sql_query(
        "SELECT payment_due_at BETWEEN now() + interval '29 minutes' \
                AND now() + interval '31 minutes' AS in_the_window FROM orders WHERE id = 1",
    )
    .get_result(&mut conn)
    .await
    .expect("due");
    assert!(
        due.in_the_window,
        "a pending order gets the default window from now"
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM orders WHERE id = 2 AND payment_due_at IS NULL"
        )
        .await,
        1
    );

    // An expired order's entry, then back down: the old schema cannot name the system.
    conn.batch_execute(
        "UPDATE orders SET status = 'cancelled', payment_due_at = NULL WHERE id = 1; \
         INSERT INTO order_status_history (order_id, from_status, to_status, actor, reason) \
             VALUES (1, 'pending', 'cancelled', 'system', 'payment_timeout');",
    )
    .await
    .expect("expired");
    revert_through_this_one(&db).await;
    assert_eq!(count_rows(&mut conn, "order_status_history").await, 3);
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM information_schema.columns \
             WHERE column_name IN ('payment_due_at', 'actor', 'reason') \
               AND table_name IN ('orders', 'order_status_history')"
        )
        .await,
        0
    );
    migrate::migrate(&db.url, Direction::Up)
        .await
        .expect("up again");
}

/// The `orders_refunded` migration: `refunded` is a status of orders and of both ends of
/// a history entry; reverted, refunded orders become `cancelled` (no money kept either
/// way) with their history, and the old CHECKs are back.
#[actix_web::test]
async fn refunded_is_a_status_and_reverts_to_cancelled() {
    let db = TestDb::new().await;
    let mut conn = db.connect().await;
    conn.batch_execute(
        "INSERT INTO orders (id, user_id, status, total_price) VALUES \
             (1, 10, 'refunded', 5.00), (2, 10, 'shipped', 7.00); \
         INSERT INTO order_status_history (order_id, from_status, to_status, actor, actor_id, reason) VALUES \
             (1, NULL, 'pending', 'user', 10, NULL), \
             (1, 'pending', 'paid', 'system', NULL, 'payment_captured'), \
             (1, 'paid', 'refunded', 'system', NULL, 'refunded');",
    )
    .await
    .expect("a refunded order is stored");

    crate::support::revert_through(&db, "20261208000100").await;
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM orders WHERE (id, status) IN ((1, 'cancelled'), (2, 'shipped'))"
        )
        .await,
        2
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM order_status_history \
             WHERE order_id = 1 AND from_status = 'paid' AND to_status = 'cancelled' AND reason = 'refunded'"
        )
        .await,
        1
    );
    for refused in [
        "UPDATE orders SET status = 'refunded' WHERE id = 2",
        "INSERT INTO order_status_history (order_id, from_status, to_status, actor) \
         VALUES (2, 'refunded', 'shipped', 'system')",
        "INSERT INTO order_status_history (order_id, to_status, actor) VALUES (2, 'refunded', 'system')",
    ] {
        assert!(conn.batch_execute(refused).await.is_err(), "{refused}");
    }

    migrate::migrate(&db.url, Direction::Up)
        .await
        .expect("up again");
    conn.batch_execute("UPDATE orders SET status = 'refunded' WHERE id = 2")
        .await
        .expect("refunded again");
}
