//! Stock per variant: lines naming variants or products (their default variant), the
//! product's maintained summary, refusals, lock order under concurrency, and the listing
//! filters and sorts on variant prices.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use ecom_catalog::model::{ProductFilter, ProductSort};
use ecom_catalog::schema::{product_variants, products};
use ecom_catalog::{CatalogError, ItemRef, StockLine, reserve_stock, return_stock, service};
use ecom_testkit::fixtures::page_of;

use crate::support::{default_variant, money, stocked};

fn line(item: ItemRef, quantity: i32) -> StockLine {
    StockLine { item, quantity }
}

/// Adds a variant to a product (the variant endpoints' service is tested elsewhere; this is
/// the table as the stock interface sees it).
async fn add_variant(
    conn: &mut AsyncPgConnection,
    product_id: i64,
    price: &str,
    stock: i32,
    options: serde_json::Value,
) -> i64 {
    diesel::insert_into(product_variants::table)
        .values((
            product_variants::product_id.eq(product_id),
            product_variants::price.eq(money(price)),
            product_variants::stock.eq(stock),
            product_variants::options.eq(options),
        ))
        .returning(product_variants::id)
        .get_result(conn)
        .await
        .expect("variant")
}

async fn variant_stock(conn: &mut AsyncPgConnection, id: i64) -> i32 {
    product_variants::table
        .find(id)
        .select(product_variants::stock)
        .first(conn)
        .await
        .expect("variant")
}

/// What the product row keeps of its variants.
async fn summary(
    conn: &mut AsyncPgConnection,
    id: i64,
) -> (
    i32,
    ecom_core::Money,
    ecom_core::Money,
    bool,
    serde_json::Value,
) {
    products::table
        .find(id)
        .select((
            products::stock,
            products::min_price,
            products::max_price,
            products::in_stock,
            products::variants,
        ))
        .first(conn)
        .await
        .expect("product")
}

#[actix_web::test]
async fn lines_take_stock_per_variant_and_the_product_summary_follows() {
    let (_db, mut conn, [shirt]) = stocked!(("Shirt", "10.00", 5)).await;
    let medium = default_variant(&mut conn, shirt).await;
    diesel::update(product_variants::table.find(medium))
        .set(product_variants::options.eq(serde_json::json!({"Size": "M"})))
        .execute(&mut conn)
        .await
        .expect("options");
    let large = add_variant(
        &mut conn,
        shirt,
        "12.00",
        3,
        serde_json::json!({"Size": "L"}),
    )
    .await;
    let (stock, min, max, in_stock, variants) = summary(&mut conn, shirt).await;
    assert_eq!(
        (stock, min, max, in_stock),
        (5, money("10.00"), money("12.00"), true)
    );
    assert_eq!(variants.as_array().map(Vec::len), Some(2));
    assert_eq!(variants[1]["price"], "12.00");
    assert_eq!(variants[1]["options"]["Size"], "L");

    // The product's line and the line naming its default variant are one line.
    let reserved = conn
        .transaction(async |conn| {
            reserve_stock(
                conn,
                &[
                    line(ItemRef::Product(shirt), 2),
                    line(ItemRef::Variant(large), 3),
                    line(ItemRef::Variant(medium), 1),
                ],
            )
            .await
        })
        .await
        .expect("reserved");
    assert_eq!(reserved.len(), 2);
    assert_eq!((reserved[0].variant_id, reserved[0].quantity), (medium, 3));
    assert_eq!(
        reserved[0].options.get("Size").map(String::as_str),
        Some("M")
    );
    assert_eq!(reserved[0].unit_price, money("10.00"));
    assert_eq!((reserved[1].variant_id, reserved[1].quantity), (large, 3));
    assert_eq!(reserved[1].unit_price, money("12.00"));
    assert_eq!(reserved[1].name, "Shirt");
    assert_eq!(variant_stock(&mut conn, medium).await, 2);
    assert_eq!(variant_stock(&mut conn, large).await, 0);
    let (stock, _, _, in_stock, variants) = summary(&mut conn, shirt).await;
    assert_eq!(
        (stock, in_stock),
        (2, true),
        "the default's stock, some in stock"
    );
    assert_eq!(variants[1]["stock"], 0);

    reserve_stock(&mut conn, &[line(ItemRef::Variant(medium), 2)])
        .await
        .expect("the last ones");
    let (stock, _, _, in_stock, _) = summary(&mut conn, shirt).await;
    assert_eq!((stock, in_stock), (0, false), "sold out in every variant");

    return_stock(&mut conn, &[line(ItemRef::Variant(large), 1)])
        .await
        .expect("returned");
    let (stock, _, _, in_stock, _) = summary(&mut conn, shirt).await;
    assert_eq!(
        (stock, in_stock),
        (0, true),
        "a returned variant is back in stock"
    );
}

#[actix_web::test]
async fn deleted_variants_and_products_are_named_unknown_and_nothing_changes() {
    let (_db, mut conn, [mug, gone]) = stocked!(("Mug", "8.50", 10), ("Gone", "1.00", 10)).await;
    let mug_default = default_variant(&mut conn, mug).await;
    let retired = add_variant(
        &mut conn,
        mug,
        "9.00",
        10,
        serde_json::json!({"Colour": "Red"}),
    )
    .await;
    diesel::update(product_variants::table.find(retired))
        .set(product_variants::deleted_at.eq(diesel::dsl::now))
        .execute(&mut conn)
        .await
        .expect("variant deleted");
    let gone_default = default_variant(&mut conn, gone).await;
    service::delete_product(&mut conn, gone)
        .await
        .expect("deleted");

    let err = reserve_stock(
        &mut conn,
        &[
            line(ItemRef::Variant(mug_default), 1),
            line(ItemRef::Variant(retired), 1),
            line(ItemRef::Variant(gone_default), 1),
            line(ItemRef::Variant(987_654), 1),
        ],
    )
    .await
    .expect_err("unknown variants");
    let CatalogError::StockRejected(shortfall) = err else {
        panic!("unexpected error {err:?}")
    };
    let mut expected = vec![retired, gone_default, 987_654];
    expected.sort_unstable();
    assert_eq!(shortfall.unknown_variants, expected);
    assert!(shortfall.unknown_products.is_empty());
    let app_err = ecom_core::AppError::from(CatalogError::StockRejected(shortfall));
    assert_eq!(
        (app_err.code(), app_err.status().as_u16()),
        ("unknown_variant", 422)
    );

    let err = reserve_stock(&mut conn, &[line(ItemRef::Product(gone), 1)])
        .await
        .expect_err("unknown product");
    let CatalogError::StockRejected(shortfall) = err else {
        panic!("unexpected error {err:?}")
    };
    assert_eq!(shortfall.unknown_products, vec![gone]);
    assert_eq!(
        variant_stock(&mut conn, mug_default).await,
        10,
        "all or nothing"
    );
}

/// Variants of two products with interleaved ids (a1 < b1 < a2 < b2), reserved in every
/// order by many transactions at once: the variant-id lock order, then the trigger's
/// product-id order, never deadlock. Each reservation runs inside its caller's transaction,
/// where a deadlock is not retried but comes back as an error.
#[actix_web::test]
async fn interleaved_variants_of_two_products_never_deadlock() {
    let (db, mut conn, [a, b]) = stocked!(("A", "1.00", 100), ("B", "2.00", 100)).await;
    let a1 = default_variant(&mut conn, a).await;
    let b1 = default_variant(&mut conn, b).await;
    let a2 = add_variant(&mut conn, a, "1.50", 100, serde_json::json!({"Size": "L"})).await;
    let b2 = add_variant(&mut conn, b, "2.50", 100, serde_json::json!({"Size": "L"})).await;
    assert!(a1 < b1 && b1 < a2 && a2 < b2, "ids interleave");
    let orders = [
        vec![a1, b2],
        vec![b2, a1, a2],
        vec![b1, a2],
        vec![a2, b1, b2, a1],
    ];
    let mut tasks = Vec::new();
    for round in 0..24_usize {
        let url = db.url.clone();
        let lines: Vec<StockLine> = orders[round % orders.len()]
            .iter()
            .map(|&v| line(ItemRef::Variant(v), 1))
            .collect();
        tasks.push(tokio::spawn(async move {
            let mut conn = ecom_core::db::connect(&url).await.expect("connect");
            conn.transaction(async |conn| {
                reserve_stock(conn, &lines).await?;
                // Hold the locks a moment, as an order's insert would.
                diesel::sql_query("SELECT pg_sleep(0.01)")
                    .execute(conn)
                    .await?;
                Ok::<_, CatalogError>(())
            })
            .await
        }));
    }
    for task in tasks {
        task.await.expect("task").expect("no deadlock, no refusal");
    }
    // Each variant was taken once per round that named it.
    let taken = |v: i64| {
        let n = (0..24)
            .filter(|r| orders[r % orders.len()].contains(&v))
            .count();
        100 - i32::try_from(n).expect("small")
    };
    for v in [a1, b1, a2, b2] {
        assert_eq!(variant_stock(&mut conn, v).await, taken(v), "variant {v}");
    }
    let (stock, ..) = summary(&mut conn, a).await;
    assert_eq!(stock, taken(a1), "the product shows its default's stock");
}

#[actix_web::test]
async fn price_filters_and_sorts_read_the_variants_prices() {
    // Cheap and dear variants on one product; a single-price product in between.
    let (_db, mut conn, [range, middle]) =
        stocked!(("Range jacket", "5.00", 1), ("Middle jacket", "20.00", 0)).await;
    add_variant(
        &mut conn,
        range,
        "50.00",
        0,
        serde_json::json!({"Size": "XL"}),
    )
    .await;
    let listed = async |conn: &mut AsyncPgConnection, filter: ProductFilter| -> Vec<i64> {
        service::list_products(conn, &filter, page_of(20, 0))
            .await
            .expect("listing")
            .items
            .into_iter()
            .map(|p| p.row.id)
            .collect()
    };
    let priced = |min: Option<&str>, max: Option<&str>, search: Option<&str>| ProductFilter {
        min_price: min.map(money),
        max_price: max.map(money),
        search: search.map(str::to_string),
        sort: ProductSort::PriceAsc,
        ..ProductFilter::default()
    };
    for search in [None, Some("jacket")] {
        // min_price=a keeps products whose dearest variant costs ≥ a.
        assert_eq!(
            listed(&mut conn, priced(Some("40.00"), None, search)).await,
            vec![range]
        );
        // max_price=b keeps products whose cheapest variant costs ≤ b.
        assert_eq!(
            listed(&mut conn, priced(None, Some("10.00"), search)).await,
            vec![range]
        );
        assert_eq!(
            listed(&mut conn, priced(Some("15.00"), Some("25.00"), search)).await,
            vec![range, middle],
            "price_asc by the cheapest variant"
        );
        let mut desc = priced(None, None, search);
        desc.sort = ProductSort::PriceDesc;
        assert_eq!(
            listed(&mut conn, desc).await,
            vec![range, middle],
            "price_desc by the dearest variant"
        );
        let in_stock = ProductFilter {
            in_stock: Some(true),
            search: search.map(str::to_string),
            ..ProductFilter::default()
        };
        assert_eq!(listed(&mut conn, in_stock).await, vec![range]);
    }
    // Keyset pages follow the same keys.
    let first = service::list_products(&mut conn, &priced(None, None, None), page_of(1, 0))
        .await
        .expect("page 1");
    let after = first
        .next_after
        .as_deref()
        .and_then(ecom_catalog::model::ProductCursor::parse);
    let second = service::list_products_after(
        &mut conn,
        &priced(None, None, None),
        page_of(1, 0),
        after.as_ref(),
    )
    .await
    .expect("page 2");
    assert_eq!(first.items[0].row.id, range);
    assert_eq!(second.items[0].row.id, middle);
}

#[actix_web::test]
async fn one_statement_over_many_variants_keeps_every_products_summary() {
    let (_db, mut conn, [mug, pot, jug]) = stocked!(
        ("Mug", "8.50", 10),
        ("Pot", "30.00", 0),
        ("Jug", "12.00", 4)
    )
    .await;
    add_variant(&mut conn, pot, "35.00", 0, serde_json::json!({"Size": "L"})).await;
    // Stock only, every variant of three products in one statement (the trigger's
    // stock-only path, with many rows in its transition tables).
    diesel::update(product_variants::table)
        .set(product_variants::stock.eq(product_variants::stock + 5))
        .filter(product_variants::product_id.eq_any([mug, pot, jug]))
        .execute(&mut conn)
        .await
        .expect("bulk restock");
    assert_eq!(summary(&mut conn, mug).await.0, 15);
    let (stock, _, _, in_stock, variants) = summary(&mut conn, pot).await;
    assert_eq!((stock, in_stock), (5, true));
    assert_eq!(variants[1]["stock"], 5);
    assert_eq!(summary(&mut conn, jug).await.0, 9);

    // Stock for some rows and a price for one, in one statement: the full path for all.
    diesel::sql_query(
        "UPDATE product_variants SET stock = 0, \
         price = CASE WHEN product_id = $1 THEN 15.00 ELSE price END \
         WHERE product_id = ANY($2)",
    )
    .bind::<diesel::sql_types::BigInt, _>(jug)
    .bind::<diesel::sql_types::Array<diesel::sql_types::BigInt>, _>(vec![mug, jug])
    .execute(&mut conn)
    .await
    .expect("bulk write");
    let (stock, min, max, in_stock, _) = summary(&mut conn, jug).await;
    assert_eq!(
        (stock, min, max, in_stock),
        (0, money("15.00"), money("15.00"), false)
    );
    let (stock, min, _, in_stock, _) = summary(&mut conn, mug).await;
    assert_eq!((stock, min, in_stock), (0, money("8.50"), false));
}
