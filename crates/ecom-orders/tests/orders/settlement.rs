//! What payments does to orders (`service::settlement`): lock an order, mark it paid
//! exactly once, mark it refunded, lengthen its payment window.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use ecom_core::audit::{AuditFilter, list as audit_list};
use ecom_orders::{
    ActorKind, NoPayments, OrderStatus, OrdersError, PaidBy, PaidOutcome, StatusChangeRecord,
    extend_payment_window, lock_order, mark_paid, mark_refunded,
};
use ecom_testkit::fixtures::page_of;

use crate::support::{ADMIN, OTHER, SHOPPER, count, move_to, order, pay, stock_of, stocked};

async fn history(conn: &mut AsyncPgConnection, id: i64) -> Vec<StatusChangeRecord> {
    ecom_orders::status_history(conn, id)
        .await
        .expect("history")
}

async fn audit_entries(conn: &mut AsyncPgConnection) -> i64 {
    audit_list(conn, &AuditFilter::default(), page_of(10, 0))
        .await
        .expect("audit")
        .1
}

/// Moves a pending order's due time a minute into the past.
async fn make_overdue(conn: &mut AsyncPgConnection, id: i64) {
    diesel::sql_query(
        "UPDATE orders SET payment_due_at = now() - interval '1 minute' WHERE id = $1",
    )
    .bind::<BigInt, _>(id)
    .execute(conn)
    .await
    .expect("overdue");
}

/// How many sessions of this database wait for a lock.
async fn lock_waiters(conn: &mut AsyncPgConnection) -> i64 {
    count(
        conn,
        "SELECT count(*) AS n FROM pg_stat_activity \
         WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    .await
}

/// Polls until `n` sessions wait for a lock (60 s at most).
async fn until_waiting(conn: &mut AsyncPgConnection, n: i64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while lock_waiters(conn).await < n {
        assert!(
            std::time::Instant::now() < deadline,
            "{n} waiters never came"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn a_capture_pays_a_pending_order_once_as_the_system() {
    let (_db, mut conn, [mug]) = stocked!(("Mug", "8.50", 10)).await;
    let placed = order(&mut conn, SHOPPER, &[(mug, 2)]).await;
    let outcome = mark_paid(&mut conn, placed.id, PaidBy::Captured)
        .await
        .expect("mark_paid");
    let PaidOutcome::Paid(change) = outcome else {
        panic!("not paid: {outcome:?}");
    };
    assert_eq!(change.before.status, OrderStatus::Pending);
    assert_eq!(change.after.status, OrderStatus::Paid);
    assert_eq!(change.after.payment_due_at, None, "the window is over");
    assert_eq!(change.after.items, placed.items);
    let entries = history(&mut conn, placed.id).await;
    let last = entries.last().expect("entries");
    assert_eq!(entries.len(), 2);
    assert_eq!(
        (last.from_status, last.to_status, last.actor, last.actor_id),
        (
            Some(OrderStatus::Pending),
            OrderStatus::Paid,
            ActorKind::System,
            None
        )
    );
    assert_eq!(last.reason.as_deref(), Some("payment_captured"));
    assert_eq!(
        audit_entries(&mut conn).await,
        0,
        "a capture is not audited"
    );
    assert_eq!(stock_of(&mut conn, mug).await, 8, "paying moves no stock");

    // Paid already: the second capture changes nothing.
    let again = mark_paid(&mut conn, placed.id, PaidBy::Captured)
        .await
        .expect("mark_paid");
    assert!(matches!(
        again,
        PaidOutcome::NotPayable {
            status: OrderStatus::Paid
        }
    ));
    assert_eq!(history(&mut conn, placed.id).await.len(), 2);
}

#[actix_web::test]
async fn a_manual_payment_names_the_admin_and_is_audited() {
    let (_db, mut conn, [mug]) = stocked!(("Mug", "8.50", 10)).await;
    let id = order(&mut conn, SHOPPER, &[(mug, 1)]).await.id;
    let outcome = mark_paid(&mut conn, id, PaidBy::Manual { admin_id: ADMIN })
        .await
        .expect("mark_paid");
    assert!(matches!(outcome, PaidOutcome::Paid(_)), "{outcome:?}");
    let entries = history(&mut conn, id).await;
    let last = entries.last().expect("entries");
    assert_eq!(
        (last.actor, last.actor_id, last.reason.as_deref()),
        (ActorKind::Admin, Some(ADMIN), Some("manual_payment"))
    );
    let (audit, total) = audit_list(&mut conn, &AuditFilter::default(), page_of(10, 0))
        .await
        .expect("audit");
    assert_eq!(total, 1);
    assert_eq!(
        (
            audit[0].actor_id,
            audit[0].action.as_str(),
            audit[0].target_type.as_str(),
            audit[0].target_id.clone()
        ),
        (ADMIN, "order.status_change", "order", id.to_string())
    );
    let status = |v: &Option<serde_json::Value>| v.as_ref().map(|v| v["status"].clone());
    assert_eq!(
        (status(&audit[0].before), status(&audit[0].after)),
        (Some("pending".into()), Some("paid".into()))
    );
}

/// The order row as it is stored: status, due time, last update, history length.
async fn snapshot(
    conn: &mut AsyncPgConnection,
    id: i64,
) -> (OrderStatus, Option<DateTime<Utc>>, DateTime<Utc>, usize) {
    let o = ecom_orders::get_order(conn, id).await.expect("order");
    let entries = history(conn, id).await.len();
    (o.status, o.payment_due_at, o.updated_at, entries)
}

#[actix_web::test]
async fn an_order_that_cannot_take_the_money_is_left_as_it_is() {
    let (_db, mut conn, [mug]) = stocked!(("Mug", "8.50", 10)).await;
    let cancelled = order(&mut conn, SHOPPER, &[(mug, 1)]).await.id;
    move_to(&mut conn, cancelled, OrderStatus::Cancelled)
        .await
        .expect("cancelled");
    let past_due = order(&mut conn, SHOPPER, &[(mug, 1)]).await.id;
    make_overdue(&mut conn, past_due).await;
    let expired = order(&mut conn, SHOPPER, &[(mug, 1)]).await.id;
    make_overdue(&mut conn, expired).await;
    ecom_orders::expire_due_orders(&mut conn, &ecom_orders::EveryOrderExpires, &NoPayments, 1)
        .await
        .expect("expiry");
    let shipped = order(&mut conn, SHOPPER, &[(mug, 1)]).await.id;
    pay(&mut conn, shipped).await;
    move_to(&mut conn, shipped, OrderStatus::Shipped)
        .await
        .expect("shipped");
    // The expiry took the longest-overdue one; `expired` or `past_due`, whichever.
    let (gone, waiting) = if snapshot(&mut conn, expired).await.0 == OrderStatus::Cancelled {
        (expired, past_due)
    } else {
        (past_due, expired)
    };
    let stock = stock_of(&mut conn, mug).await;

    for (id, status) in [
        (cancelled, OrderStatus::Cancelled),
        (gone, OrderStatus::Cancelled),
        (waiting, OrderStatus::Pending),
        (shipped, OrderStatus::Shipped),
    ] {
        let before = snapshot(&mut conn, id).await;
        for by in [PaidBy::Captured, PaidBy::Manual { admin_id: ADMIN }] {
            let outcome = mark_paid(&mut conn, id, by).await.expect("mark_paid");
            assert!(
                matches!(outcome, PaidOutcome::NotPayable { status: s } if s == status),
                "order {id}: {outcome:?}"
            );
        }
        assert_eq!(
            snapshot(&mut conn, id).await,
            before,
            "order {id} unchanged"
        );
    }
    assert_eq!(stock_of(&mut conn, mug).await, stock);
    assert_eq!(audit_entries(&mut conn).await, 0);
    assert!(matches!(
        mark_paid(&mut conn, 999_999, PaidBy::Captured).await,
        Err(OrdersError::OrderNotFound(999_999))
    ));
}

/// Eight captures of one order at once, each on its own connection, all queued on the
/// order's row lock before it is released: exactly one pays it.
#[actix_web::test]
async fn eight_concurrent_captures_pay_an_order_exactly_once() {
    let (db, mut conn, [mug]) = stocked!(("Mug", "8.50", 10)).await;
    let id = order(&mut conn, SHOPPER, &[(mug, 1)]).await.id;
    let mut holder = db.connect().await;
    let mut watcher = db.connect().await;
    let mut payers = Vec::new();
    for _ in 0..8 {
        payers.push(db.connect().await);
    }
    // Hold the order first, release it once all eight wait on it: they truly race for it.
    holder.batch_execute("BEGIN").await.expect("begin");
    lock_order(&mut holder, id, None).await.expect("held");
    let captures =
        futures_util::future::join_all(payers.iter_mut().enumerate().map(|(i, conn)| async move {
            let by = if i % 2 == 0 {
                PaidBy::Captured
            } else {
                PaidBy::Manual { admin_id: ADMIN }
            };
            mark_paid(conn, id, by).await.expect("mark_paid")
        }));
    let release = async {
        until_waiting(&mut watcher, 8).await;
        holder.batch_execute("COMMIT").await.expect("released");
    };
    let (outcomes, ()) = futures_util::future::join(captures, release).await;

    let paid = outcomes
        .iter()
        .filter(|o| matches!(o, PaidOutcome::Paid(_)))
        .count();
    let refused = outcomes
        .iter()
        .filter(|o| {
            matches!(
                o,
                PaidOutcome::NotPayable {
                    status: OrderStatus::Paid
                }
            )
        })
        .count();
    assert_eq!((paid, refused), (1, 7), "{outcomes:?}");
    let to_paid = count(
        &mut conn,
        &format!(
            "SELECT count(*) AS n FROM order_status_history WHERE order_id = {id} AND to_status = 'paid'"
        ),
    )
    .await;
    assert_eq!(to_paid, 1, "one history entry");
    assert_eq!(
        ecom_orders::get_order(&mut conn, id)
            .await
            .expect("order")
            .status,
        OrderStatus::Paid
    );
}

#[actix_web::test]
async fn refunds_end_paid_shipped_and_delivered_orders_and_leave_the_rest() {
    let (_db, mut conn, [mug]) = stocked!(("Mug", "8.50", 20)).await;
    let mut refundable = Vec::new();
    for path in [
        &[][..],
        &[OrderStatus::Shipped][..],
        &[OrderStatus::Shipped, OrderStatus::Delivered][..],
    ] {
        let id = order(&mut conn, SHOPPER, &[(mug, 2)]).await.id;
        pay(&mut conn, id).await;
        for &to in path {
            move_to(&mut conn, id, to).await.expect("moved");
        }
        refundable.push(id);
    }
    let stock = stock_of(&mut conn, mug).await;
    assert_eq!(stock, 14);
    for id in refundable {
        let from = snapshot(&mut conn, id).await.0;
        let change = mark_refunded(&mut conn, id)
            .await
            .expect("mark_refunded")
            .expect("refunded");
        assert_eq!(
            (change.before.status, change.after.status),
            (from, OrderStatus::Refunded)
        );
        let entries = history(&mut conn, id).await;
        let last = entries.last().expect("entries");
        assert_eq!(
            (
                last.from_status,
                last.to_status,
                last.actor,
                last.actor_id,
                last.reason.as_deref()
            ),
            (
                Some(from),
                OrderStatus::Refunded,
                ActorKind::System,
                None,
                Some("refunded")
            )
        );
        // Refunded is final: a second refund, or an administrator, moves it nowhere.
        assert!(mark_refunded(&mut conn, id).await.expect("runs").is_none());
        for &to in OrderStatus::ALL {
            assert!(move_to(&mut conn, id, to).await.is_err(), "{from} → {to}");
        }
    }
    assert_eq!(
        stock_of(&mut conn, mug).await,
        stock,
        "a refund returns no stock"
    );

    // Cancelled (and pending) orders are left alone.
    let cancelled = order(&mut conn, SHOPPER, &[(mug, 1)]).await.id;
    pay(&mut conn, cancelled).await;
    move_to(&mut conn, cancelled, OrderStatus::Cancelled)
        .await
        .expect("cancelled");
    let pending = order(&mut conn, SHOPPER, &[(mug, 1)]).await.id;
    for id in [cancelled, pending] {
        let before = snapshot(&mut conn, id).await;
        assert!(mark_refunded(&mut conn, id).await.expect("runs").is_none());
        assert_eq!(
            snapshot(&mut conn, id).await,
            before,
            "order {id} unchanged"
        );
    }
    assert!(matches!(
        mark_refunded(&mut conn, 999_999).await,
        Err(OrdersError::OrderNotFound(999_999))
    ));
}

#[actix_web::test]
async fn lock_order_finds_only_the_owners_order() {
    let (_db, mut conn, [mug]) = stocked!(("Mug", "8.50", 10)).await;
    let placed = order(&mut conn, SHOPPER, &[(mug, 3)]).await;
    let id = placed.id;
    let locked = conn
        .transaction(async |conn| {
            let mine = lock_order(conn, id, Some(SHOPPER)).await?;
            let any = lock_order(conn, id, None).await?;
            assert_eq!(mine, any, "a re-lock by the holder does not wait");
            let theirs = lock_order(conn, id, Some(OTHER)).await;
            assert!(matches!(theirs, Err(OrdersError::OrderNotFound(i)) if i == id));
            let missing = lock_order(conn, 999_999, None).await;
            assert!(matches!(missing, Err(OrdersError::OrderNotFound(999_999))));
            Ok::<_, OrdersError>(mine)
        })
        .await
        .expect("locked");
    assert_eq!(locked, placed);
}

#[actix_web::test]
async fn a_held_order_keeps_others_waiting_until_its_transaction_ends() {
    let (db, mut conn, [mug]) = stocked!(("Mug", "8.50", 10)).await;
    let id = order(&mut conn, SHOPPER, &[(mug, 1)]).await.id;
    let mut waiter = db.connect().await;
    let mut watcher = db.connect().await;
    conn.batch_execute("BEGIN").await.expect("begin");
    lock_order(&mut conn, id, None).await.expect("held");
    let released = std::sync::atomic::AtomicBool::new(false);
    let release = async {
        until_waiting(&mut watcher, 1).await;
        released.store(true, std::sync::atomic::Ordering::SeqCst);
        conn.batch_execute("COMMIT").await.expect("released");
    };
    let wait = async {
        waiter
            .transaction(async |conn| lock_order(conn, id, None).await)
            .await
            .expect("locked after the holder");
        std::sync::atomic::AtomicBool::load(&released, std::sync::atomic::Ordering::SeqCst)
    };
    let ((), got_it_after_release) = futures_util::future::join(release, wait).await;
    assert!(got_it_after_release, "the second lock waited for the first");
}

#[actix_web::test]
async fn choosing_a_manual_payment_lengthens_a_payable_orders_window() {
    let (_db, mut conn, [mug]) = stocked!(("Mug", "8.50", 10)).await;
    let placed = order(&mut conn, SHOPPER, &[(mug, 1)]).await;
    extend_payment_window(&mut conn, placed.id, 72)
        .await
        .expect("extended");
    let due = count(
        &mut conn,
        &format!(
            "SELECT count(*) AS n FROM orders WHERE id = {} \
             AND payment_due_at BETWEEN now() + interval '71 hours 59 minutes' \
                                    AND now() + interval '72 hours'",
            placed.id
        ),
    )
    .await;
    assert_eq!(due, 1, "due 72 hours from now");
    let extended = ecom_orders::get_order(&mut conn, placed.id)
        .await
        .expect("order");
    assert_eq!(extended.status, OrderStatus::Pending);
    assert!(extended.payment_due_at > placed.payment_due_at);

    // Past due, paid or cancelled: refused, nothing changed.
    let past_due = order(&mut conn, SHOPPER, &[(mug, 1)]).await.id;
    make_overdue(&mut conn, past_due).await;
    let paid = order(&mut conn, SHOPPER, &[(mug, 1)]).await.id;
    pay(&mut conn, paid).await;
    let cancelled = order(&mut conn, SHOPPER, &[(mug, 1)]).await.id;
    move_to(&mut conn, cancelled, OrderStatus::Cancelled)
        .await
        .expect("cancelled");
    for id in [past_due, paid, cancelled] {
        let before = snapshot(&mut conn, id).await;
        assert!(matches!(
            extend_payment_window(&mut conn, id, 72).await,
            Err(OrdersError::NotPayable(i)) if i == id
        ));
        assert_eq!(
            snapshot(&mut conn, id).await,
            before,
            "order {id} unchanged"
        );
    }
    assert!(matches!(
        extend_payment_window(&mut conn, placed.id, 0).await,
        Err(OrdersError::Invalid(_))
    ));
}

#[actix_web::test]
async fn is_payable_means_pending_and_not_past_due() {
    let (_db, mut conn, [mug]) = stocked!(("Mug", "8.50", 10)).await;
    let placed = order(&mut conn, SHOPPER, &[(mug, 1)]).await;
    let due = placed.payment_due_at.expect("due");
    assert!(placed.is_payable(due - chrono::Duration::seconds(1)));
    assert!(!placed.is_payable(due));
    let paid = pay(&mut conn, placed.id).await.after;
    assert!(!paid.is_payable(due - chrono::Duration::seconds(1)));
}
