//! Expired carts read as missing, and the housekeeping chore deletes them.

use diesel_async::SimpleAsyncConnection;

use crate::shop;
use crate::support::{
    As, SHOPPER, count, get_cart, guest_cart, post_cart, put_item, token, user_cart, variant_of,
};

#[actix_web::test]
async fn an_expired_cart_is_gone_and_cleaned_up() {
    let (db, mut conn, [mug], app) = shop!(("Mug", "8.50", 10)).await;
    let mug = variant_of(&app, mug).await;
    let (guest, guest_token) = guest_cart(&app).await;
    put_item(&app, guest, mug, 1, As::guest(&guest_token))
        .await
        .assert_status(200);
    let shopper = token(SHOPPER);
    let own = user_cart(&app, &shopper).await;
    let (kept, kept_token) = guest_cart(&app).await;

    // A write moves expires_at to CART_TTL_DAYS (30 by default) from now.
    let cart = get_cart(&app, kept, As::guest(&kept_token))
        .await
        .assert_status(200)
        .json();
    let expires: chrono::DateTime<chrono::Utc> = cart["expires_at"]
        .as_str()
        .expect("expires_at")
        .parse()
        .expect("RFC 3339");
    let days = (expires - chrono::Utc::now()).num_hours() as f64 / 24.0;
    assert!((29.9..=30.0).contains(&days), "{days} days");

    conn.batch_execute(&format!(
        "UPDATE carts SET expires_at = now() - interval '1 second' WHERE id IN ({guest}, {own})"
    ))
    .await
    .expect("age the carts");
    get_cart(&app, guest, As::guest(&guest_token))
        .await
        .assert_problem(404, "not_found");
    put_item(&app, guest, mug, 2, As::guest(&guest_token))
        .await
        .assert_problem(404, "not_found");
    get_cart(&app, own, As::user(&shopper))
        .await
        .assert_problem(404, "not_found");

    let chores = ecom_carts::chores();
    let pool = db.pool();
    let done = ecom_core::housekeeping::run_round(&pool, &chores, 1).await;
    assert_eq!(
        done,
        vec![("expired_carts", 2)],
        "one cart per batch, until none is left"
    );
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM carts").await,
        1,
        "only the live cart stays"
    );
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM cart_lines").await,
        0
    );
    get_cart(&app, kept, As::guest(&kept_token))
        .await
        .assert_status(200);
    // The user's expired cart no longer stands in the way of a new one.
    let fresh = post_cart(&app, As::user(&shopper)).await;
    fresh.assert_status(201);
    assert_ne!(fresh.json()["id"], own);
    let _ = db;
}

#[actix_web::test]
async fn an_expired_user_cart_is_replaced_at_once() {
    let (_db, mut conn) = ecom_testkit::TestDb::connected().await;
    let app = crate::app!(&_db);
    let shopper = token(SHOPPER);
    let old = user_cart(&app, &shopper).await;
    conn.batch_execute("UPDATE carts SET expires_at = now() - interval '1 second'")
        .await
        .expect("age the cart");
    let fresh = post_cart(&app, As::user(&shopper)).await;
    fresh.assert_status(201);
    assert_ne!(fresh.json()["id"], old);
}

#[actix_web::test]
async fn carts_live_cart_ttl_days_after_their_last_write() {
    let db = ecom_testkit::TestDb::new().await;
    let ctx = ecom_testkit::test_context(&db, crate::support::modules(), &[("CART_TTL_DAYS", "2")])
        .with_resolver(crate::support::accounts());
    let app = ecom_testkit::test_app(ctx).await;
    let created = post_cart(&app, As::anonymous())
        .await
        .assert_status(201)
        .json();
    let expires: chrono::DateTime<chrono::Utc> = created["expires_at"]
        .as_str()
        .expect("expires_at")
        .parse()
        .expect("RFC 3339");
    let updated: chrono::DateTime<chrono::Utc> = created["updated_at"]
        .as_str()
        .expect("updated_at")
        .parse()
        .expect("RFC 3339");
    assert_eq!(expires - updated, chrono::Duration::days(2));
}
