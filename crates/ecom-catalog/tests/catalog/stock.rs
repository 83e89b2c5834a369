use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use ecom_catalog::schema::products;
use ecom_catalog::service;
use ecom_catalog::{
    CatalogError, ItemRef, Shortage, StockLine, StockShortfall, reserve_stock, return_stock,
};
use ecom_core::db::{PoolOptions, build_pool};

use crate::support::{default_variant, money, stocked};
use ecom_testkit::TestDb;

fn line(product_id: i64, quantity: i32) -> StockLine {
    StockLine {
        item: ItemRef::Product(product_id),
        quantity,
    }
}

async fn stock_of(conn: &mut AsyncPgConnection, id: i64) -> i32 {
    products::table
        .find(id)
        .select(products::stock)
        .first(conn)
        .await
        .expect("product")
}

fn big_pool(db: &TestDb, size: usize) -> ecom_core::db::PgPool {
    let options = PoolOptions {
        max_size: size,
        wait_timeout: std::time::Duration::from_secs(60),
        statement_timeout: std::time::Duration::from_secs(60),
        application_name: "ecom-catalog-stock-test".into(),
    };
    build_pool(&db.url, &options).expect("pool")
}

#[actix_web::test]
async fn a_reservation_takes_stock_and_reports_name_and_price() {
    let (_db, mut conn, [mug, pot]) = stocked!(("Mug", "8.50", 10), ("Pot", "30.00", 2)).await;

    // Duplicate lines are merged; the answer is in product-id order.
    let reserved = conn
        .transaction(async |conn| {
            reserve_stock(conn, &[line(pot, 1), line(mug, 3), line(pot, 1)]).await
        })
        .await
        .expect("reserved");
    assert_eq!(reserved.len(), 2);
    assert_eq!(reserved[0].product_id, mug);
    assert_eq!(reserved[0].name, "Mug");
    assert_eq!(reserved[0].unit_price, money("8.50"));
    assert_eq!(reserved[0].quantity, 3);
    assert_eq!(reserved[1].product_id, pot);
    assert_eq!(reserved[1].quantity, 2);
    assert_eq!(stock_of(&mut conn, mug).await, 7);
    assert_eq!(stock_of(&mut conn, pot).await, 0);

    return_stock(&mut conn, &[line(pot, 2), line(mug, 1)])
        .await
        .expect("returned");
    assert_eq!(stock_of(&mut conn, mug).await, 8);
    assert_eq!(stock_of(&mut conn, pot).await, 2);
}

#[actix_web::test]
async fn a_refused_reservation_changes_nothing_and_says_why() {
    let (_db, mut conn, [mug, pot, gone]) = stocked!(
        ("Mug", "8.50", 10),
        ("Pot", "30.00", 2),
        ("Gone", "1.00", 100)
    )
    .await;
    service::delete_product(&mut conn, gone)
        .await
        .expect("deleted");
    let pot_variant = default_variant(&mut conn, pot).await;

    let err = reserve_stock(&mut conn, &[line(mug, 4), line(pot, 5)])
        .await
        .expect_err("pot lacks stock");
    let CatalogError::StockRejected(shortfall) = err else {
        panic!("unexpected error {err:?}")
    };
    assert_eq!(
        shortfall,
        StockShortfall {
            unknown_products: vec![],
            unknown_variants: vec![],
            insufficient: vec![Shortage {
                product_id: pot,
                variant_id: pot_variant,
                requested: 5,
                available: 2
            }],
        }
    );
    assert_eq!(stock_of(&mut conn, mug).await, 10, "all or nothing");

    let err = reserve_stock(
        &mut conn,
        &[line(mug, 1), line(gone, 1), line(424242, 1), line(pot, 3)],
    )
    .await
    .expect_err("unknown products");
    let CatalogError::StockRejected(shortfall) = err else {
        panic!("unexpected error {err:?}")
    };
    assert_eq!(shortfall.unknown_products, vec![gone, 424242]);
    assert_eq!(
        shortfall.insufficient,
        vec![Shortage {
            product_id: pot,
            variant_id: pot_variant,
            requested: 3,
            available: 2
        }]
    );
    let app_err = ecom_core::AppError::from(CatalogError::StockRejected(shortfall));
    assert_eq!(app_err.code(), "unknown_product");
    assert_eq!(app_err.status().as_u16(), 422);
    assert_eq!(stock_of(&mut conn, mug).await, 10);
    assert_eq!(stock_of(&mut conn, gone).await, 100);

    let app_err = ecom_core::AppError::from(
        reserve_stock(&mut conn, &[line(pot, 3)])
            .await
            .expect_err("short"),
    );
    assert_eq!(app_err.code(), "insufficient_stock");
    assert_eq!(app_err.status().as_u16(), 409);

    for bad in [vec![], vec![line(mug, 0)], vec![line(mug, -2)]] {
        assert!(matches!(
            reserve_stock(&mut conn, &bad).await,
            Err(CatalogError::Invalid(_))
        ));
    }
    assert!(matches!(
        return_stock(&mut conn, &[line(424242, 1)]).await,
        Err(CatalogError::StockRejected(_))
    ));
    assert_eq!(stock_of(&mut conn, mug).await, 10);
}

#[actix_web::test]
async fn the_reservation_rolls_back_with_the_callers_transaction() {
    let (_db, mut conn, [mug]) = stocked!(("Mug", "8.50", 10)).await;
    let outcome: Result<(), CatalogError> = conn
        .transaction(async |conn| {
            reserve_stock(conn, &[line(mug, 4)]).await?;
            // The order fails after taking stock, e.g. on its own insert.
            Err(CatalogError::Database(
                diesel::result::Error::RollbackTransaction,
            ))
        })
        .await;
    assert!(outcome.is_err());
    assert_eq!(stock_of(&mut conn, mug).await, 10);

    // A refused reservation inside a transaction leaves the transaction usable.
    conn.transaction(async |conn| {
        assert!(reserve_stock(conn, &[line(mug, 11)]).await.is_err());
        reserve_stock(conn, &[line(mug, 10)]).await.map(|_| ())
    })
    .await
    .expect("second attempt in the same transaction");
    assert_eq!(stock_of(&mut conn, mug).await, 0);
}

#[actix_web::test]
async fn concurrent_reservations_never_oversell() {
    let (db, mut conn, [item]) = stocked!(("Limited Edition", "99.00", 50)).await;
    let pool = big_pool(&db, 40);
    let tasks = (0..200).map(|_| {
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut conn = pool.get().await.expect("conn");
            conn.transaction(async |conn| reserve_stock(conn, &[line(item, 1)]).await)
                .await
        })
    });
    let results = futures_util::future::join_all(tasks).await;
    let mut ok = 0;
    for r in results {
        match r.expect("task") {
            Ok(lines) => {
                assert_eq!(lines[0].quantity, 1);
                ok += 1;
            }
            Err(CatalogError::StockRejected(s)) => {
                assert_eq!(s.insufficient.len(), 1);
                assert_eq!(s.insufficient[0].available, 0);
            }
            Err(e) => panic!("unexpected failure: {e:?}"),
        }
    }
    assert_eq!(ok, 50);
    assert_eq!(stock_of(&mut conn, item).await, 0);
}

#[actix_web::test]
async fn opposite_orders_never_deadlock() {
    let (db, mut conn, [a, b, c]) = stocked!(
        ("Left", "1.00", 10_000),
        ("Right", "2.00", 10_000),
        ("Middle", "3.00", 10_000)
    )
    .await;
    let pool = big_pool(&db, 30);
    let tasks = (0..300).map(|i| {
        let pool = pool.clone();
        let lines = match i % 3 {
            0 => vec![line(a, 1), line(b, 2), line(c, 3)],
            1 => vec![line(c, 3), line(b, 2), line(a, 1)],
            _ => vec![line(b, 2), line(a, 1), line(c, 3)],
        };
        tokio::spawn(async move {
            let mut conn = pool.get().await.expect("conn");
            conn.transaction(async |conn| {
                let reserved = reserve_stock(conn, &lines).await?;
                // Hold the locks a moment, as an order inserting its lines would.
                diesel::sql_query("SELECT pg_sleep(0.002)")
                    .execute(conn)
                    .await?;
                if i % 10 == 0 {
                    let back: Vec<StockLine> = lines.iter().rev().copied().collect();
                    return_stock(conn, &back).await?;
                }
                Ok::<_, CatalogError>(reserved)
            })
            .await
        })
    });
    let mut committed = 0;
    for r in futures_util::future::join_all(tasks).await {
        match r.expect("task") {
            Ok(_) => committed += 1,
            Err(e) => panic!("a reservation failed (deadlock?): {e:?}"),
        }
    }
    assert_eq!(committed, 300);
    // 30 of the 300 returned what they took.
    assert_eq!(stock_of(&mut conn, a).await, 10_000 - 270);
    assert_eq!(stock_of(&mut conn, b).await, 10_000 - 2 * 270);
    assert_eq!(stock_of(&mut conn, c).await, 10_000 - 3 * 270);
}
