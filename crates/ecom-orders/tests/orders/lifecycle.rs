//! The lifecycle service and POST /orders/{id}/cancel.

use diesel_async::AsyncPgConnection;
use ecom_core::audit::{AuditFilter, AuditRecord, list as audit_list};
use ecom_orders::{ActorKind, NoPayments, OrderStatus, OrdersError};
use ecom_testkit::fixtures::page_of;

use crate::shop;
use crate::support::{ADMIN, MANAGER, OTHER, SHOPPER, move_to, order, pay, stock_of, stocked};

/// The first ten audit entries, newest first, and how many there are.
async fn audit_trail(conn: &mut AsyncPgConnection) -> (Vec<AuditRecord>, i64) {
    let first_ten = page_of(10, 0);
    audit_list(conn, &AuditFilter::default(), first_ten)
        .await
        .expect("audit")
}

/// The order status an audit entry records before and after the change.
fn statuses(entry: &AuditRecord) -> (Option<serde_json::Value>, Option<serde_json::Value>) {
    let status = |v: &Option<serde_json::Value>| v.as_ref().map(|v| v["status"].clone());
    (status(&entry.before), status(&entry.after))
}

#[actix_web::test]
async fn cancelling_returns_stock_exactly_once() {
    let (_db, mut conn, [mug, pot], app) = shop!(("Mug", "8.50", 10), ("Pot", "30.00", 5)).await;
    let id = order(&mut conn, SHOPPER, &[(mug, 3), (pot, 2)]).await.id;
    assert_eq!(stock_of(&mut conn, mug).await, 7);
    let as_shopper = app.fixed(SHOPPER);

    // Someone else cannot even see it.
    app.fixed(OTHER)
        .post(&format!("/orders/{id}/cancel"), serde_json::json!({}))
        .await
        .assert_problem(404, "not_found");
    assert_eq!(stock_of(&mut conn, mug).await, 7);

    let cancelled = as_shopper.cancel_order(id).await.assert_status(200).json();
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["id"], id);
    assert_eq!(stock_of(&mut conn, mug).await, 10);
    assert_eq!(stock_of(&mut conn, pot).await, 5);

    as_shopper
        .cancel_order(id)
        .await
        .assert_problem(409, "invalid_status_transition");
    assert_eq!(stock_of(&mut conn, mug).await, 10, "not returned twice");
    assert_eq!(stock_of(&mut conn, pot).await, 5);

    let history = ecom_orders::status_history(&mut conn, id)
        .await
        .expect("history");
    let steps: Vec<_> = history
        .iter()
        .map(|h| {
            (
                h.from_status,
                h.to_status,
                h.actor,
                h.actor_id,
                h.reason.clone(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        vec![
            (
                None,
                OrderStatus::Pending,
                ActorKind::User,
                Some(SHOPPER),
                None
            ),
            (
                Some(OrderStatus::Pending),
                OrderStatus::Cancelled,
                ActorKind::User,
                Some(SHOPPER),
                None
            ),
        ]
    );
    // The owner cancelling their own order is not an administrative action.
    let (audit, _) = audit_trail(&mut conn).await;
    assert!(audit.is_empty());

    as_shopper
        .cancel_order(999999)
        .await
        .assert_problem(404, "not_found");
}

#[actix_web::test]
async fn only_a_manager_cancels_a_paid_order_and_that_is_audited() {
    let (_db, mut conn, [mug], app) = shop!(("Mug", "8.50", 10)).await;
    let id = order(&mut conn, SHOPPER, &[(mug, 4)]).await.id;
    pay(&mut conn, id).await;
    let shipped = order(&mut conn, SHOPPER, &[(mug, 1)]).await.id;
    pay(&mut conn, shipped).await;
    move_to(&mut conn, shipped, OrderStatus::Shipped)
        .await
        .expect("shipped");

    // The owner cannot cancel a paid order; shipped orders cannot be cancelled, not
    // even by a manager. Neither refusal returns stock.
    for (who, refused) in [(SHOPPER, id), (MANAGER, shipped)] {
        app.fixed(who)
            .cancel_order(refused)
            .await
            .assert_problem(409, "invalid_status_transition");
        assert_eq!(stock_of(&mut conn, mug).await, 5, "{who} on {refused}");
    }

    let cancelled = app
        .fixed(MANAGER)
        .cancel_order(id)
        .await
        .assert_status(200)
        .json();
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(stock_of(&mut conn, mug).await, 9);

    let (audit, total) = audit_trail(&mut conn).await;
    assert_eq!(total, 1);
    assert_eq!(audit[0].actor_id, MANAGER);
    assert_eq!(audit[0].action, "order.status_change");
    assert_eq!(audit[0].target_type, "order");
    assert_eq!(audit[0].target_id, id.to_string());
    assert_eq!(
        statuses(&audit[0]),
        (Some("paid".into()), Some("cancelled".into()))
    );
}

#[actix_web::test]
async fn the_lifecycle_moves_forward_only_and_records_every_step() {
    let (_db, mut conn, [mug]) = stocked!(("Mug", "8.50", 10)).await;
    let id = order(&mut conn, SHOPPER, &[(mug, 2)]).await.id;

    // Illegal jumps from pending are refused, and so are `paid` and `refunded`, which
    // only payments set; then each legal step in turn, paid through a payment.
    let mut expected = vec![(None, OrderStatus::Pending)];
    for (to, legal) in [
        (OrderStatus::Shipped, false),
        (OrderStatus::Delivered, false),
        (OrderStatus::Pending, false),
        (OrderStatus::Paid, false),
        (OrderStatus::Refunded, false),
        (OrderStatus::Paid, true),
        (OrderStatus::Shipped, true),
        (OrderStatus::Delivered, true),
    ] {
        let result = if to == OrderStatus::Paid && legal {
            Ok(pay(&mut conn, id).await)
        } else {
            move_to(&mut conn, id, to).await
        };
        if !legal {
            let err = result.expect_err("illegal");
            assert!(
                matches!(err, OrdersError::InvalidTransition { from: OrderStatus::Pending, to: t, .. } if t == to),
                "{err:?}"
            );
            continue;
        }
        let change = result.expect("legal");
        assert_eq!(change.after.status, to);
        assert_ne!(change.before.status, to);
        assert_eq!(change.before.id, id);
        assert_eq!(change.after.items, change.before.items);
        assert!(change.after.updated_at >= change.before.updated_at);
        expected.push((Some(change.before.status), to));
    }
    // Delivered is final for an administrator (only a refund moves it on).
    for &to in OrderStatus::ALL {
        assert!(move_to(&mut conn, id, to).await.is_err());
    }
    let history = ecom_orders::status_history(&mut conn, id)
        .await
        .expect("history");
    assert_eq!(
        history
            .iter()
            .map(|h| (h.from_status, h.to_status))
            .collect::<Vec<_>>(),
        expected
    );
    assert_eq!(
        (
            history[1].actor,
            history[1].actor_id,
            history[1].reason.as_deref()
        ),
        (ActorKind::System, None, Some("payment_captured"))
    );
    assert!(
        history[2..]
            .iter()
            .all(|h| h.actor_id == Some(ADMIN) && h.actor == ActorKind::Admin)
    );
    assert_eq!(
        stock_of(&mut conn, mug).await,
        8,
        "delivery returns nothing"
    );

    // Cancelled is final too, and the stock came back once.
    let other = order(&mut conn, SHOPPER, &[(mug, 5)]).await.id;
    move_to(&mut conn, other, OrderStatus::Cancelled)
        .await
        .expect("cancelled");
    assert_eq!(stock_of(&mut conn, mug).await, 8);
    for &to in OrderStatus::ALL {
        assert!(matches!(
            move_to(&mut conn, other, to).await,
            Err(OrdersError::InvalidTransition { .. })
        ));
    }
    assert_eq!(stock_of(&mut conn, mug).await, 8);

    assert!(matches!(
        move_to(&mut conn, 999_999, OrderStatus::Shipped).await,
        Err(OrdersError::OrderNotFound(999_999))
    ));
}

#[actix_web::test]
async fn the_audited_change_writes_before_and_after_in_the_same_transaction() {
    let (_db, mut conn, [mug]) = stocked!(("Mug", "8.50", 10)).await;
    let id = order(&mut conn, SHOPPER, &[(mug, 2)]).await.id;

    pay(&mut conn, id).await;
    let change =
        ecom_orders::change_status_audited(&mut conn, id, OrderStatus::Shipped, ADMIN, &NoPayments)
            .await
            .expect("shipped");
    assert_eq!(change.before.status, OrderStatus::Paid);
    assert_eq!(change.after.status, OrderStatus::Shipped);
    // A refused change leaves no audit entry: an illegal jump, or a status only payments set.
    for to in [
        OrderStatus::Pending,
        OrderStatus::Paid,
        OrderStatus::Refunded,
    ] {
        assert!(
            ecom_orders::change_status_audited(&mut conn, id, to, ADMIN, &NoPayments)
                .await
                .is_err()
        );
    }
    let (audit, total) = audit_trail(&mut conn).await;
    assert_eq!(total, 1);
    assert_eq!(audit[0].action, "order.status_change");
    assert_eq!(
        statuses(&audit[0]),
        (Some("paid".into()), Some("shipped".into()))
    );
}
