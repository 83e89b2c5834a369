//! Every cancellation asks payments first ([`PaymentsPort::before_cancel`]), inside the
//! cancelling transaction, with the order locked and before its status changes; a
//! provider failure changes nothing (502 `payment_provider_error`, or, in the expiry
//! task, the order waits for the next round).

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use ecom_orders::{
    EveryOrderExpires, NoPayments, Order, OrderStatus, OrdersError, PaymentsPort,
    expire_due_orders, lock_order,
};
use ecom_testkit::TestDb;

use crate::support::{MANAGER, SHOPPER, order, pay, stock_of, stocked};

/// The catalog and orders modules in process with `payments` installed.
macro_rules! app_with {
    ($db:expr, $payments:expr) => {
        ecom_testkit::test_app(ecom_testkit::fixtures::context(
            $db,
            vec![
                ecom_catalog::module(),
                ecom_orders::module_with_payments($payments),
            ],
        ))
        .await
    };
}

/// A provider that is down for the orders in `failing` (every order when empty).
struct ProviderDown {
    failing: Vec<i64>,
}

#[async_trait]
impl PaymentsPort for ProviderDown {
    async fn before_cancel(
        &self,
        _conn: &mut AsyncPgConnection,
        order: &Order,
    ) -> Result<(), OrdersError> {
        if self.failing.is_empty() || self.failing.contains(&order.id) {
            return Err(OrdersError::PaymentProvider(
                "stripe: connection refused (secret-looking detail sk_test_123)".into(),
            ));
        }
        Ok(())
    }
}

/// What the port saw on one call.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Call {
    order_id: i64,
    /// The status the order had when it was called, as passed in.
    passed: OrderStatus,
    /// The status stored at that moment, read on the cancelling connection.
    stored: OrderStatus,
    /// Whether another connection's `lock_order` had to give up waiting for it.
    locked: bool,
}

/// Records every call, checking on the side that the order row is locked.
struct Recorder {
    url: String,
    calls: Mutex<Vec<Call>>,
}

impl Recorder {
    fn new(db: &TestDb) -> Arc<Self> {
        Arc::new(Self {
            url: db.url.clone(),
            calls: Mutex::new(Vec::new()),
        })
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("calls").clone()
    }
}

/// Whether `lock_order` on another connection gives up after waiting 300 ms for the row.
async fn held_elsewhere(url: &str, order_id: i64) -> bool {
    let mut other = AsyncPgConnection::establish(url).await.expect("connect");
    let attempt = other
        .transaction(async |conn| {
            conn.batch_execute("SET LOCAL lock_timeout = '300ms'")
                .await?;
            lock_order(conn, order_id, None).await
        })
        .await;
    match attempt {
        Ok(_) => false,
        // lock_not_available: the lock timeout ran out.
        Err(OrdersError::Database(e)) => ecom_core::error::sqlstate_of(&e) == Some("55P03"),
        Err(e) => panic!("unexpected: {e}"),
    }
}

#[async_trait]
impl PaymentsPort for Recorder {
    async fn before_cancel(
        &self,
        conn: &mut AsyncPgConnection,
        order: &Order,
    ) -> Result<(), OrdersError> {
        let stored = ecom_orders::get_order(conn, order.id).await?.status;
        let locked = held_elsewhere(&self.url, order.id).await;
        self.calls.lock().expect("calls").push(Call {
            order_id: order.id,
            passed: order.status,
            stored,
            locked,
        });
        Ok(())
    }
}

#[actix_web::test]
async fn a_provider_failure_cancels_nothing_and_answers_502() {
    let (db, mut conn, [mug]) = stocked!(("Mug", "8.50", 10)).await;
    let app = app_with!(
        &db,
        Arc::new(ProviderDown {
            failing: Vec::new()
        })
    );
    let pending = order(&mut conn, SHOPPER, &[(mug, 2)]).await;
    let paid = order(&mut conn, SHOPPER, &[(mug, 3)]).await.id;
    pay(&mut conn, paid).await;
    let paid = ecom_orders::get_order(&mut conn, paid)
        .await
        .expect("order");
    let history = async |conn: &mut AsyncPgConnection, id| {
        ecom_orders::status_history(conn, id)
            .await
            .expect("history")
    };
    let before = (
        history(&mut conn, pending.id).await,
        history(&mut conn, paid.id).await,
    );

    for (who, id) in [
        (SHOPPER, pending.id),
        (MANAGER, pending.id),
        (MANAGER, paid.id),
    ] {
        let res = app.fixed(who).cancel_order(id).await;
        res.assert_problem(502, "payment_provider_error");
        let body = res.text();
        assert!(!body.contains("sk_test"), "no provider detail: {body}");
        assert!(body.contains("nothing was changed"), "{body}");
    }
    assert_eq!(
        ecom_orders::get_order(&mut conn, pending.id)
            .await
            .expect("order"),
        pending,
        "still pending, due as before"
    );
    assert_eq!(
        ecom_orders::get_order(&mut conn, paid.id)
            .await
            .expect("order"),
        paid
    );
    assert_eq!(stock_of(&mut conn, mug).await, 5, "no stock came back");
    assert_eq!(
        (
            history(&mut conn, pending.id).await,
            history(&mut conn, paid.id).await
        ),
        before
    );
    let (_, audited) = ecom_core::audit::list(
        &mut conn,
        &ecom_core::audit::AuditFilter::default(),
        ecom_testkit::fixtures::page_of(10, 0),
    )
    .await
    .expect("audit");
    assert_eq!(audited, 0, "a refused cancellation is not audited");
}

#[actix_web::test]
async fn the_expiry_leaves_an_order_whose_provider_fails_for_the_next_round() {
    let (_db, mut conn, [mug]) = stocked!(("Mug", "8.50", 10)).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let id = order(&mut conn, SHOPPER, &[(mug, 1)]).await.id;
        diesel_async::RunQueryDsl::execute(
            diesel::sql_query(format!(
                "UPDATE orders SET payment_due_at = now() - interval '1 minute' WHERE id = {id}"
            )),
            &mut conn,
        )
        .await
        .expect("overdue");
        ids.push(id);
    }
    let down = ProviderDown {
        failing: vec![ids[0]],
    };
    let cancelled = expire_due_orders(&mut conn, &EveryOrderExpires, &down, 10)
        .await
        .expect("the round completes");
    assert_eq!(cancelled, 2, "the others still expire");
    let status = async |conn: &mut AsyncPgConnection, id| {
        ecom_orders::get_order(conn, id)
            .await
            .expect("order")
            .status
    };
    assert_eq!(status(&mut conn, ids[0]).await, OrderStatus::Pending);
    assert_eq!(
        ecom_orders::status_history(&mut conn, ids[0])
            .await
            .expect("history")
            .len(),
        1
    );
    assert_eq!(stock_of(&mut conn, mug).await, 9, "two orders' mugs back");

    // The provider answers again: the next round cancels it.
    let next = expire_due_orders(&mut conn, &EveryOrderExpires, &NoPayments, 10)
        .await
        .expect("next round");
    assert_eq!(next, 1);
    assert_eq!(status(&mut conn, ids[0]).await, OrderStatus::Cancelled);
    assert_eq!(stock_of(&mut conn, mug).await, 10);
}

#[actix_web::test]
async fn every_cancellation_asks_payments_once_with_the_order_locked() {
    let (db, mut conn, [mug]) = stocked!(("Mug", "8.50", 20)).await;
    let recorder = Recorder::new(&db);
    let app = app_with!(&db, recorder.clone());
    let by_owner = order(&mut conn, SHOPPER, &[(mug, 1)]).await.id;
    let paid = order(&mut conn, SHOPPER, &[(mug, 2)]).await.id;
    pay(&mut conn, paid).await;
    let shipped = order(&mut conn, SHOPPER, &[(mug, 1)]).await.id;
    pay(&mut conn, shipped).await;
    crate::support::move_to(&mut conn, shipped, OrderStatus::Shipped)
        .await
        .expect("shipped");
    let expiring = order(&mut conn, SHOPPER, &[(mug, 3)]).await.id;
    diesel_async::RunQueryDsl::execute(
        diesel::sql_query(format!(
            "UPDATE orders SET payment_due_at = now() - interval '1 minute' WHERE id = {expiring}"
        )),
        &mut conn,
    )
    .await
    .expect("overdue");

    app.fixed(SHOPPER)
        .cancel_order(by_owner)
        .await
        .assert_status(200);
    app.fixed(MANAGER)
        .cancel_order(paid)
        .await
        .assert_status(200);
    // Refused cancellations never reach payments: already cancelled, or shipped.
    app.fixed(SHOPPER)
        .cancel_order(by_owner)
        .await
        .assert_problem(409, "invalid_status_transition");
    app.fixed(MANAGER)
        .cancel_order(shipped)
        .await
        .assert_problem(409, "invalid_status_transition");
    let expired = expire_due_orders(&mut conn, &EveryOrderExpires, recorder.as_ref(), 10)
        .await
        .expect("expiry");
    assert_eq!(expired, 1);

    let call = |order_id, status| Call {
        order_id,
        passed: status,
        stored: status,
        locked: true,
    };
    assert_eq!(
        recorder.calls(),
        vec![
            call(by_owner, OrderStatus::Pending),
            call(paid, OrderStatus::Paid),
            call(expiring, OrderStatus::Pending),
        ]
    );
    assert_eq!(stock_of(&mut conn, mug).await, 19, "shipped mug only");
}
