//! GET /orders, GET /orders/{id} and the admin listing of every order.

use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::NaiveDate;
use diesel::sql_types::{BigInt, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use ecom_core::Page;
use ecom_orders::{AdminOrderFilter, Order, OrderStatus};
use ecom_testkit::fixtures::{count_statements, page_of};

use crate::support::{MANAGER, OTHER, SHOPPER, order, stocked};
use crate::{app, shop};

fn ids(body: &serde_json::Value) -> Vec<i64> {
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|o| o["id"].as_i64().expect("id"))
        .collect()
}

async fn set_created_at(conn: &mut AsyncPgConnection, id: i64, at: &str) {
    let at: chrono::DateTime<chrono::Utc> = at.parse().expect("timestamp");
    diesel::sql_query("UPDATE orders SET created_at = $2 WHERE id = $1")
        .bind::<BigInt, _>(id)
        .bind::<Timestamptz, _>(at)
        .execute(conn)
        .await
        .expect("set created_at");
}

/// The first hundred orders of the admin listing under `filter`.
async fn first_hundred(conn: &mut AsyncPgConnection, filter: AdminOrderFilter) -> Page<Order> {
    let first = page_of(100, 0);
    ecom_orders::list_orders(conn, &filter, first)
        .await
        .expect("admin listing")
}

#[actix_web::test]
async fn a_user_lists_only_their_orders_newest_first_with_a_status_filter() {
    let (db, mut conn, [mug]) = stocked!(("Mug", "8.50", 100)).await;
    let first = order(&mut conn, SHOPPER, &[(mug, 1)]).await.id;
    let second = order(&mut conn, SHOPPER, &[(mug, 2)]).await.id;
    let third = order(&mut conn, SHOPPER, &[(mug, 3)]).await.id;
    let theirs = order(&mut conn, OTHER, &[(mug, 1)]).await.id;
    crate::support::pay(&mut conn, second).await;
    let app = app!(&db);
    let as_shopper = app.fixed(SHOPPER);

    let page = as_shopper.get("/orders").await.assert_status(200).json();
    assert_eq!(ids(&page), vec![third, second, first]);
    assert_eq!(page["total"], 3);
    assert_eq!(page["limit"], 20);
    assert_eq!(page["offset"], 0);
    assert!(!ids(&page).contains(&theirs));
    assert_eq!(page["items"][0]["items"][0]["quantity"], 3);

    let paged = as_shopper
        .get("/orders?limit=1&skip=1")
        .await
        .assert_status(200)
        .json();
    assert_eq!(ids(&paged), vec![second]);
    assert_eq!(paged["total"], 3);

    let paid = as_shopper.get("/orders?status=paid").await.json();
    assert_eq!(ids(&paid), vec![second]);
    let pending = as_shopper.get("/orders?status=pending").await.json();
    assert_eq!(ids(&pending), vec![third, first]);

    as_shopper
        .assert_problems([
            ("/orders?status=lost", 422, "validation_failed"),
            ("/orders?status=", 422, "validation_failed"),
            ("/orders?limit=101", 422, "validation_failed"),
        ])
        .await;
    app.get("/orders")
        .await
        .assert_problem(401, "not_authenticated");
}

#[actix_web::test]
async fn another_users_order_is_404_unless_the_caller_manages_orders() {
    let (_db, mut conn, [mug], app) = shop!(("Mug", "8.50", 100)).await;
    let id = order(&mut conn, SHOPPER, &[(mug, 1)]).await.id;

    let own: serde_json::Value = app.fixed(SHOPPER).read(format!("/orders/{id}")).await;
    assert_eq!(own["id"], id);
    assert_eq!(own["items"][0]["product_name"], "Mug");

    let other = app.fixed(OTHER).get(&format!("/orders/{id}")).await;
    other.assert_problem(404, "not_found");
    let missing = app.fixed(OTHER).get("/orders/999999").await;
    missing.assert_problem(404, "not_found");
    // The two 404s are indistinguishable but for the id.
    assert_eq!(
        other.json()["detail"]
            .as_str()
            .map(|d| d.replace(&id.to_string(), "N")),
        missing.json()["detail"]
            .as_str()
            .map(|d| d.replace("999999", "N"))
    );

    app.fixed(MANAGER)
        .get(&format!("/orders/{id}"))
        .await
        .assert_status(200);
    app.fixed(SHOPPER)
        .get("/orders/abc")
        .await
        .assert_status(400);
}

#[actix_web::test]
async fn the_admin_listing_filters_and_costs_three_statements_per_page() {
    let (_db, mut conn, [mug, pot]) = stocked!(("Mug", "8.50", 1000), ("Pot", "30.00", 1000)).await;
    let mut placed = Vec::new();
    for i in 0..12 {
        let user = if i % 3 == 0 { OTHER } else { SHOPPER };
        let o = order(&mut conn, user, &[(mug, 1), (pot, i + 1)]).await;
        set_created_at(&mut conn, o.id, &format!("2026-03-{:02}T12:00:00Z", i + 1)).await;
        placed.push(o.id);
    }
    crate::support::pay(&mut conn, placed[4]).await;

    let all = ecom_orders::list_orders(&mut conn, &AdminOrderFilter::default(), page_of(100, 0))
        .await
        .expect("listing");
    assert_eq!(all.total, 12);
    let newest_first: Vec<i64> = placed.iter().rev().copied().collect();
    assert_eq!(
        all.items.iter().map(|o| o.id).collect::<Vec<_>>(),
        newest_first
    );
    assert!(
        all.items.iter().all(|o| o.items.len() == 2),
        "every order has its lines"
    );

    let theirs = first_hundred(
        &mut conn,
        AdminOrderFilter {
            user_id: Some(OTHER),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(theirs.total, 4);
    assert!(theirs.items.iter().all(|o| o.user_id == OTHER));

    let paid = first_hundred(
        &mut conn,
        AdminOrderFilter {
            status: Some(OrderStatus::Paid),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        paid.items.iter().map(|o| o.id).collect::<Vec<_>>(),
        vec![placed[4]]
    );

    // Dates are UTC days, both bounds inclusive: March 3rd to 5th.
    let range = first_hundred(
        &mut conn,
        AdminOrderFilter {
            created_from: NaiveDate::from_ymd_opt(2026, 3, 3),
            created_to: NaiveDate::from_ymd_opt(2026, 3, 5),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        range.items.iter().map(|o| o.id).collect::<Vec<_>>(),
        vec![placed[4], placed[3], placed[2]]
    );

    // Three statements (count, page, lines) for a page of 2 and a page of 12.
    for limit in [2, 12] {
        let statements = count_statements(&mut conn);
        let page =
            ecom_orders::list_orders(&mut conn, &AdminOrderFilter::default(), page_of(limit, 0))
                .await
                .expect("listing");
        assert_eq!(page.items.len() as i64, limit);
        assert_eq!(
            AtomicUsize::load(&statements, Ordering::SeqCst),
            3,
            "limit {limit}"
        );
    }
}
