//! `payment_due_at` and the expiry of unpaid orders: placement sets it, transitions clear
//! it, the expiry cancels pending orders past it (stock back once, history `system` /
//! `payment_timeout`), also with several workers and owners racing it.

use std::sync::Arc;
use std::time::Duration;

use diesel::sql_types::{BigInt, Integer};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use ecom_orders::service::{EXPIRY_BATCH, PAYMENT_TIMEOUT};
use ecom_orders::{
    ActorKind, EveryOrderExpires, ExpiryGate, NoPayments, OrderStatus, OrdersError,
    expire_due_orders,
};
use ecom_testkit::TestDb;

use crate::support::{SHOPPER, count, lines, move_to, order, pay, stock_of, stocked};

/// Moves an order's payment deadline `seconds_ago` into the past, as if its window had
/// run out (instead of waiting half an hour).
async fn make_overdue(conn: &mut AsyncPgConnection, order_id: i64, seconds_ago: i32) {
    let updated = diesel::sql_query(
        "UPDATE orders SET payment_due_at = now() - make_interval(secs => $2) \
         WHERE id = $1 AND status = 'pending'",
    )
    .bind::<BigInt, _>(order_id)
    .bind::<Integer, _>(seconds_ago)
    .execute(conn)
    .await
    .expect("due time moved");
    assert_eq!(updated, 1, "order {order_id} is pending");
}

/// One order of one unit of `product` per entry, each that many seconds past due.
async fn overdue_by(conn: &mut AsyncPgConnection, product: i64, seconds_ago: &[i32]) -> Vec<i64> {
    let mut ids = Vec::new();
    for &seconds in seconds_ago {
        let id = order(conn, SHOPPER, &[(product, 1)]).await.id;
        make_overdue(conn, id, seconds).await;
        ids.push(id);
    }
    ids
}

async fn status_of(conn: &mut AsyncPgConnection, order_id: i64) -> OrderStatus {
    ecom_orders::get_order(conn, order_id)
        .await
        .expect("order")
        .status
}

/// Cancellations the history records for `order_id`.
async fn cancellations(conn: &mut AsyncPgConnection, order_id: i64) -> i64 {
    count(
        conn,
        &format!(
            "SELECT count(*) AS n FROM order_status_history \
             WHERE order_id = {order_id} AND to_status = 'cancelled'"
        ),
    )
    .await
}

#[actix_web::test]
async fn placing_sets_the_payment_due_time_and_every_transition_clears_it() {
    let (_db, mut conn, [mug]) = stocked!(("Mug", "8.50", 100)).await;
    let window = Duration::from_secs(90);
    let placed = ecom_orders::place_order(&mut conn, SHOPPER, &lines(&[(mug, 1)]), None, window)
        .await
        .expect("placed")
        .order;
    assert_eq!(
        placed.payment_due_at,
        Some(placed.created_at + chrono::Duration::seconds(90)),
        "due the window after placing"
    );
    let stored = ecom_orders::get_order(&mut conn, placed.id)
        .await
        .expect("order");
    assert_eq!(stored.payment_due_at, placed.payment_due_at);

    // Paid, then on along the lifecycle: never due again.
    let paid = pay(&mut conn, placed.id).await;
    assert_eq!(paid.before.payment_due_at, placed.payment_due_at);
    assert_eq!(paid.after.payment_due_at, None);
    let shipped = move_to(&mut conn, placed.id, OrderStatus::Shipped)
        .await
        .expect("shipped");
    assert_eq!(shipped.after.payment_due_at, None);

    // Cancelled by its owner or by an administrator: cleared too.
    let by_owner = order(&mut conn, SHOPPER, &[(mug, 1)]).await;
    assert!(by_owner.payment_due_at.is_some());
    let cancelled = ecom_orders::cancel_order(&mut conn, by_owner.id, SHOPPER, false, &NoPayments)
        .await
        .expect("cancelled");
    assert_eq!(cancelled.after.payment_due_at, None);
    let by_admin = order(&mut conn, SHOPPER, &[(mug, 1)]).await;
    let cancelled = move_to(&mut conn, by_admin.id, OrderStatus::Cancelled)
        .await
        .expect("cancelled");
    assert_eq!(cancelled.after.payment_due_at, None);

    // The database refuses a due time on an order that is not pending.
    let refused = diesel::sql_query("UPDATE orders SET payment_due_at = now() WHERE id = $1")
        .bind::<BigInt, _>(placed.id)
        .execute(&mut conn)
        .await;
    assert!(refused.is_err(), "a shipped order cannot be due");
}

#[actix_web::test]
async fn orders_past_due_are_cancelled_with_their_stock_and_nothing_else_is_touched() {
    let (_db, mut conn, [mug, pot]) = stocked!(("Mug", "8.50", 10), ("Pot", "30.00", 5)).await;
    let overdue = order(&mut conn, SHOPPER, &[(mug, 2), (pot, 1)]).await.id;
    let just_overdue = order(&mut conn, SHOPPER, &[(mug, 1)]).await.id;
    let not_yet_due = order(&mut conn, SHOPPER, &[(mug, 3)]).await.id;
    let paid = order(&mut conn, SHOPPER, &[(pot, 2)]).await.id;
    make_overdue(&mut conn, overdue, 60).await;
    make_overdue(&mut conn, just_overdue, 0).await;
    // Paid: no longer pending (nor due), so it stays.
    pay(&mut conn, paid).await;
    assert_eq!(stock_of(&mut conn, mug).await, 4);
    assert_eq!(stock_of(&mut conn, pot).await, 2);

    let cancelled = expire_due_orders(&mut conn, &EveryOrderExpires, &NoPayments, EXPIRY_BATCH)
        .await
        .expect("expiry runs");
    assert_eq!(cancelled, 2);
    for id in [overdue, just_overdue] {
        let expired = ecom_orders::get_order(&mut conn, id).await.expect("order");
        assert_eq!(expired.status, OrderStatus::Cancelled, "order {id}");
        assert_eq!(expired.payment_due_at, None);
        let history = ecom_orders::status_history(&mut conn, id)
            .await
            .expect("history");
        let last = history.last().expect("entries");
        assert_eq!(history.len(), 2);
        assert_eq!(last.from_status, Some(OrderStatus::Pending));
        assert_eq!(last.to_status, OrderStatus::Cancelled);
        assert_eq!(last.actor, ActorKind::System);
        assert_eq!(last.actor_id, None);
        assert_eq!(last.reason.as_deref(), Some(PAYMENT_TIMEOUT));
    }
    assert_eq!(stock_of(&mut conn, mug).await, 7, "2 + 1 mugs back");
    assert_eq!(stock_of(&mut conn, pot).await, 3, "1 pot back");
    assert_eq!(
        status_of(&mut conn, not_yet_due).await,
        OrderStatus::Pending
    );
    assert_eq!(status_of(&mut conn, paid).await, OrderStatus::Paid);

    // A second run finds nothing; the stock is not returned twice.
    let again = expire_due_orders(&mut conn, &EveryOrderExpires, &NoPayments, EXPIRY_BATCH)
        .await
        .expect("expiry runs");
    assert_eq!(again, 0);
    assert_eq!(stock_of(&mut conn, mug).await, 7);
    assert_eq!(stock_of(&mut conn, pot).await, 3);
    // The owner can no longer cancel it.
    assert!(matches!(
        ecom_orders::cancel_order(&mut conn, overdue, SHOPPER, false, &NoPayments).await,
        Err(OrdersError::InvalidTransition { .. })
    ));
}

#[actix_web::test]
async fn one_call_cancels_at_most_a_batch_longest_overdue_first() {
    let (_db, mut conn, [mug]) = stocked!(("Mug", "8.50", 10)).await;
    let ids = overdue_by(&mut conn, mug, &[10, 30, 20]).await;
    let cancelled = expire_due_orders(&mut conn, &EveryOrderExpires, &NoPayments, 2)
        .await
        .expect("expiry runs");
    assert_eq!(cancelled, 2);
    assert_eq!(status_of(&mut conn, ids[0]).await, OrderStatus::Pending);
    assert_eq!(status_of(&mut conn, ids[1]).await, OrderStatus::Cancelled);
    assert_eq!(status_of(&mut conn, ids[2]).await, OrderStatus::Cancelled);
    assert_eq!(stock_of(&mut conn, mug).await, 9);
}

/// A gate holding one order open, as payments will for an authorized payment.
struct HoldOpen(i64);

#[async_trait::async_trait]
impl ExpiryGate for HoldOpen {
    async fn may_expire(
        &self,
        _conn: &mut AsyncPgConnection,
        order_id: i64,
    ) -> Result<bool, OrdersError> {
        Ok(order_id != self.0)
    }
}

#[actix_web::test]
async fn an_order_the_gate_holds_open_stays_pending_and_the_others_still_expire() {
    let (_db, mut conn, [mug]) = stocked!(("Mug", "8.50", 10)).await;
    let ids = overdue_by(&mut conn, mug, &[30, 20, 10]).await;
    // The longest-overdue order is held: the call goes past it to the others.
    let cancelled = expire_due_orders(&mut conn, &HoldOpen(ids[0]), &NoPayments, EXPIRY_BATCH)
        .await
        .expect("expiry runs");
    assert_eq!(cancelled, 2);
    assert_eq!(status_of(&mut conn, ids[0]).await, OrderStatus::Pending);
    assert_eq!(status_of(&mut conn, ids[1]).await, OrderStatus::Cancelled);
    assert_eq!(status_of(&mut conn, ids[2]).await, OrderStatus::Cancelled);
    assert_eq!(stock_of(&mut conn, mug).await, 9);
}

/// `n` orders of 1..=3 units spread over `products`, all past due; returns their ids.
async fn overdue_orders(conn: &mut AsyncPgConnection, products: &[i64], n: usize) -> Vec<i64> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let first = products[i % products.len()];
        let second = products[(i + 1) % products.len()];
        let units = (i % 3 + 1) as i64;
        let id = order(conn, SHOPPER, &[(first, units), (second, 1)])
            .await
            .id;
        make_overdue(conn, id, 5).await;
        ids.push(id);
    }
    ids
}

/// Calls the expiry in small batches until a call finds nothing; returns how many it cancelled.
async fn expiry_worker(db: &TestDb) -> usize {
    let mut conn = db.connect().await;
    let mut total = 0;
    loop {
        let n = expire_due_orders(&mut conn, &EveryOrderExpires, &NoPayments, 7)
            .await
            .expect("expiry runs");
        if n == 0 {
            return total;
        }
        total += n;
    }
}

/// Each order is cancelled once, has one cancellation in its history, and the stock of
/// every product is back where it started.
async fn assert_cancelled_once(
    conn: &mut AsyncPgConnection,
    ids: &[i64],
    products: &[i64],
    initial_stock: i32,
) {
    for &id in ids {
        assert_eq!(
            status_of(conn, id).await,
            OrderStatus::Cancelled,
            "order {id}"
        );
        assert_eq!(cancellations(conn, id).await, 1, "order {id}");
    }
    let mut total = 0;
    for &product in products {
        let stock = stock_of(conn, product).await;
        assert_eq!(stock, initial_stock, "product {product}");
        total += stock;
    }
    assert_eq!(total, initial_stock * products.len() as i32);
}

#[actix_web::test]
async fn two_workers_over_the_same_backlog_cancel_each_order_exactly_once() {
    let (db, mut conn, products) = stocked!(
        ("Mug", "8.50", 500),
        ("Pot", "30.00", 500),
        ("Cup", "4.00", 500),
        ("Jug", "12.00", 500)
    )
    .await;
    let ids = overdue_orders(&mut conn, &products, 60).await;
    assert!(stock_of(&mut conn, products[0]).await < 500);

    let (first, second) = futures_util::future::join(expiry_worker(&db), expiry_worker(&db)).await;
    assert_eq!(
        first + second,
        ids.len(),
        "{first} + {second} cancellations"
    );
    assert_cancelled_once(&mut conn, &ids, &products, 500).await;
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM order_status_history \
             WHERE actor = 'system' AND actor_id IS NULL AND reason = 'payment_timeout'"
        )
        .await,
        ids.len() as i64
    );
}

#[actix_web::test]
async fn an_owner_cancelling_while_the_expiry_runs_cancels_once() {
    let (db, mut conn, products) = stocked!(("Mug", "8.50", 300), ("Pot", "30.00", 300)).await;
    let ids = overdue_orders(&mut conn, &products, 40).await;

    let owner = async {
        let mut conn = db.connect().await;
        let mut cancelled = 0;
        // From the newest, so the owner and the expiry meet in the middle.
        for &id in ids.iter().rev() {
            match ecom_orders::cancel_order(&mut conn, id, SHOPPER, false, &NoPayments).await {
                Ok(_) => cancelled += 1,
                Err(OrdersError::InvalidTransition {
                    from: OrderStatus::Cancelled,
                    ..
                }) => {}
                Err(e) => panic!("cancel {id}: {e}"),
            }
        }
        cancelled
    };
    let (by_owner, by_expiry) = futures_util::future::join(owner, expiry_worker(&db)).await;
    assert_eq!(by_owner + by_expiry, ids.len(), "{by_owner} + {by_expiry}");
    assert_cancelled_once(&mut conn, &ids, &products, 300).await;
    let by_system = count(
        &mut conn,
        "SELECT count(*) AS n FROM order_status_history WHERE actor = 'system'",
    )
    .await;
    assert_eq!(by_system, by_expiry as i64);
}

#[actix_web::test]
async fn the_background_task_cancels_an_overdue_order_on_its_own() {
    let (db, mut conn, [mug]) = stocked!(("Mug", "8.50", 10)).await;
    let id = order(&mut conn, SHOPPER, &[(mug, 4)]).await.id;
    make_overdue(&mut conn, id, 1).await;
    let schedule = ecom_core::housekeeping::Schedule {
        every: Duration::from_millis(100),
        ..ecom_orders::expiry_schedule()
    };
    let task = ecom_core::housekeeping::spawn_on(
        db.pool(),
        vec![ecom_orders::expiry_chore(
            Arc::new(EveryOrderExpires),
            Arc::new(NoPayments),
        )],
        schedule,
    );
    // Generous: the point is that nobody but the task cancels it.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while status_of(&mut conn, id).await == OrderStatus::Pending {
        assert!(std::time::Instant::now() < deadline, "not expired in time");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    task.abort();
    assert_eq!(status_of(&mut conn, id).await, OrderStatus::Cancelled);
    assert_eq!(stock_of(&mut conn, mug).await, 10);
    assert_eq!(cancellations(&mut conn, id).await, 1);
}
