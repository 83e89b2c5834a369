//! What the payments tables enforce by themselves, against the real PostgreSQL: the amount
//! order, one open payment per order, one payment per provider reference, each provider
//! event once; and the migration reverts cleanly.

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use ecom_core::Money;
use ecom_payments::model::NewPayment;
use ecom_payments::schema::{payments, payments_provider_events, payments_refunds};
use ecom_payments::{Payment, PaymentStatus, Provider};
use ecom_testkit::TestDb;

fn money(s: &str) -> Money {
    s.parse().expect("money")
}

async fn new_payment(conn: &mut AsyncPgConnection, order_id: i64, amount: &str) -> Payment {
    diesel::insert_into(payments::table)
        .values(NewPayment {
            order_id,
            user_id: 5,
            provider: Provider::Stripe,
            amount: money(amount),
            currency: "usd",
        })
        .returning(Payment::as_returning())
        .get_result(conn)
        .await
        .expect("a payment")
}

fn is_check_violation(err: &DieselError) -> bool {
    matches!(
        err,
        DieselError::DatabaseError(DatabaseErrorKind::CheckViolation, _)
    )
}

fn is_unique_violation(err: &DieselError) -> bool {
    matches!(
        err,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
    )
}

#[tokio::test]
async fn amounts_stay_ordered_refunded_captured_authorized_amount() {
    let (_db, mut conn) = TestDb::connected().await;
    let p = new_payment(&mut conn, 1, "10.00").await;
    assert_eq!(p.status, PaymentStatus::Pending);
    assert_eq!(
        (p.authorized, p.captured, p.refunded),
        (Money::ZERO, Money::ZERO, Money::ZERO)
    );
    let set = |a: &str, c: &str, r: &str| {
        (
            payments::authorized.eq(money(a)),
            payments::captured.eq(money(c)),
            payments::refunded.eq(money(r)),
        )
    };
    for (a, c, r) in [
        ("0", "5.00", "0"),        // captured without authorization
        ("10.01", "0", "0"),       // authorized beyond the amount
        ("10.00", "4.00", "5.00"), // refunded beyond the capture
    ] {
        let err = diesel::update(payments::table.find(p.id))
            .set(set(a, c, r))
            .execute(&mut conn)
            .await
            .expect_err("refused");
        assert!(is_check_violation(&err), "{a}/{c}/{r}: {err:?}");
    }
    // `pending → captured` directly: authorized = captured.
    for (a, c, r) in [("10.00", "10.00", "0"), ("10.00", "10.00", "10.00")] {
        diesel::update(payments::table.find(p.id))
            .set(set(a, c, r))
            .execute(&mut conn)
            .await
            .expect("in order");
    }
    let err = diesel::update(payments::table.find(p.id))
        .set(payments::status.eq("paid"))
        .execute(&mut conn)
        .await
        .expect_err("not a payment status");
    assert!(is_check_violation(&err), "{err:?}");
}

#[tokio::test]
async fn an_order_has_one_open_payment_at_a_time() {
    let (_db, mut conn) = TestDb::connected().await;
    let first = new_payment(&mut conn, 7, "20.00").await;
    let err = diesel::insert_into(payments::table)
        .values(NewPayment {
            order_id: 7,
            user_id: 5,
            provider: Provider::Manual,
            amount: money("20.00"),
            currency: "usd",
        })
        .execute(&mut conn)
        .await
        .expect_err("a second open payment");
    assert!(is_unique_violation(&err), "{err:?}");
    // Another order is not affected; once the first is closed, a new one may open.
    new_payment(&mut conn, 8, "20.00").await;
    diesel::update(payments::table.find(first.id))
        .set(payments::status.eq(PaymentStatus::Authorized))
        .execute(&mut conn)
        .await
        .expect("still one open");
    diesel::update(payments::table.find(first.id))
        .set(payments::status.eq(PaymentStatus::Cancelled))
        .execute(&mut conn)
        .await
        .expect("closed");
    new_payment(&mut conn, 7, "20.00").await;
}

#[tokio::test]
async fn a_provider_reference_names_one_payment_and_an_event_is_kept_once() {
    let (_db, mut conn) = TestDb::connected().await;
    let a = new_payment(&mut conn, 1, "1.00").await;
    let b = new_payment(&mut conn, 2, "1.00").await;
    diesel::update(payments::table.find(a.id))
        .set(payments::reference.eq("pi_same"))
        .execute(&mut conn)
        .await
        .expect("a reference");
    let err = diesel::update(payments::table.find(b.id))
        .set(payments::reference.eq("pi_same"))
        .execute(&mut conn)
        .await
        .expect_err("taken");
    assert!(is_unique_violation(&err), "{err:?}");

    let record = |id: &'static str| {
        diesel::insert_into(payments_provider_events::table)
            .values((
                payments_provider_events::event_id.eq(id),
                payments_provider_events::provider.eq(Provider::Stripe),
                payments_provider_events::event_type.eq("payment_intent.succeeded"),
                payments_provider_events::payment_id.eq(Some(a.id)),
            ))
            .on_conflict_do_nothing()
    };
    assert_eq!(record("evt_1").execute(&mut conn).await.expect("kept"), 1);
    assert_eq!(record("evt_1").execute(&mut conn).await.expect("seen"), 0);
    assert_eq!(record("evt_2").execute(&mut conn).await.expect("kept"), 1);

    // Refunds: positive amounts, a provider refund id once.
    let refund = |amount: &str, provider_id: &'static str| {
        diesel::insert_into(payments_refunds::table).values((
            payments_refunds::payment_id.eq(a.id),
            payments_refunds::amount.eq(money(amount)),
            payments_refunds::provider_refund_id.eq(Some(provider_id)),
        ))
    };
    refund("0.50", "re_1")
        .execute(&mut conn)
        .await
        .expect("a refund");
    let err = refund("0.50", "re_1")
        .execute(&mut conn)
        .await
        .expect_err("twice");
    assert!(is_unique_violation(&err), "{err:?}");
    let err = refund("0", "re_2")
        .execute(&mut conn)
        .await
        .expect_err("nothing");
    assert!(is_check_violation(&err), "{err:?}");
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

async fn payment_tables(db: &TestDb) -> i64 {
    let mut conn = db.connect().await;
    diesel::sql_query(
        "SELECT count(*) AS n FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_name LIKE 'payments%'",
    )
    .get_result::<Count>(&mut conn)
    .await
    .expect("count")
    .n
}

#[tokio::test]
async fn the_migration_reverts_and_applies_again() {
    use ecom_core::migrate::{self, Direction};
    let db = TestDb::new().await;
    assert_eq!(payment_tables(&db).await, 4);
    let mut reverted_ours = false;
    for _ in 0..100 {
        let reverted = migrate::migrate(&db.url, Direction::RevertLast)
            .await
            .expect("revert");
        if reverted
            .iter()
            .any(|v| v.replace('-', "").starts_with("20261208000200"))
        {
            reverted_ours = true;
            break;
        }
    }
    assert!(reverted_ours, "the payments migration was reverted");
    assert_eq!(payment_tables(&db).await, 0);
    migrate::migrate(&db.url, Direction::Up)
        .await
        .expect("apply again");
    assert_eq!(payment_tables(&db).await, 4);
}
