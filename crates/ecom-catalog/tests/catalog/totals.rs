//! The restructured listing finds, orders and counts exactly what the original
//! single-statement query did (with variants, its price and stock conditions read the
//! product's variant summary, which for a one-variant product is its price and stock);
//! totals past the cap are estimates; the maintained per-category counts stay exact under
//! concurrent product writes.

use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use ecom_catalog::model::{ProductFilter, ProductSort};
use ecom_catalog::service;
use ecom_catalog::service::search::SearchTerms;
use ecom_testkit::TestDb;
use ecom_testkit::fixtures::{count, money, page_of};

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// A SQL string literal (test-controlled values only).
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The `WHERE` of the listing as it was before the restructure: one statement, the text
/// match, prefix and trigram conditions beside the filters.
fn original_where(filter: &ProductFilter) -> String {
    let mut sql = String::from("products.deleted_at IS NULL");
    if let Some(search) = &filter.search {
        let (prefix, fuzzy) = plain_terms(search);
        sql += &format!(
            " AND (products.search_vector @@ websearch_to_tsquery('english', {}) \
             OR products.search_vector @@ to_tsquery('english', {prefix}) OR {fuzzy} <% products.name)",
            literal(search)
        );
    }
    if let Some(id) = filter.category_id {
        sql += &format!(" AND products.category_id = {id}");
    }
    if let Some(min) = filter.min_price {
        sql += &format!(" AND products.max_price >= {min}");
    }
    if let Some(max) = filter.max_price {
        sql += &format!(" AND products.min_price <= {max}");
    }
    match filter.in_stock {
        Some(true) => sql += " AND products.in_stock",
        Some(false) => sql += " AND NOT products.in_stock",
        None => {}
    }
    sql
}

/// The prefix and fuzzy terms of a query as SQL literals (NULL for websearch syntax): the
/// term parsing is unchanged, only the statement around it.
fn plain_terms(search: &str) -> (String, String) {
    let terms = SearchTerms::new(search);
    let sql = |term: Option<String>| term.map_or_else(|| "NULL".to_string(), |t| literal(&t));
    (sql(terms.prefix), sql(terms.fuzzy))
}

fn original_order(filter: &ProductFilter) -> String {
    match (filter.sort, &filter.search) {
        (ProductSort::Relevance, Some(search)) => {
            let (prefix, fuzzy) = plain_terms(search);
            format!(
                "(2 * ts_rank_cd(products.search_vector, websearch_to_tsquery('english', {})) \
                 + coalesce(ts_rank_cd(products.search_vector, to_tsquery('english', {prefix})), 0) \
                 + coalesce(word_similarity({fuzzy}, products.name), 0)) DESC, products.id DESC",
                literal(search)
            )
        }
        (ProductSort::Relevance | ProductSort::Newest, _) => {
            "products.created_at DESC, products.id DESC".into()
        }
        (ProductSort::PriceAsc, _) => "products.min_price ASC, products.id ASC".into(),
        (ProductSort::PriceDesc, _) => "products.max_price DESC, products.id DESC".into(),
        (ProductSort::Rating, _) => "products.avg_rating DESC NULLS LAST, products.id DESC".into(),
    }
}

/// The ids and total the original query gives for one page.
async fn original(
    conn: &mut AsyncPgConnection,
    filter: &ProductFilter,
    limit: i64,
    offset: i64,
) -> (Vec<i64>, i64) {
    let condition = original_where(filter);
    let total = count(
        conn,
        &format!("SELECT count(*) AS n FROM products WHERE {condition}"),
    )
    .await;
    let rows: Vec<Id> = diesel::sql_query(format!(
        "SELECT products.id FROM products LEFT JOIN categories ON categories.id = products.category_id \
         WHERE {condition} ORDER BY {} LIMIT {limit} OFFSET {offset}",
        original_order(filter)
    ))
    .load(conn)
    .await
    .expect("original listing");
    (rows.into_iter().map(|r| r.id).collect(), total)
}

fn filters(category: i64) -> Vec<ProductFilter> {
    let searches = [
        None,
        Some("backpack"),
        Some("bakpack"),
        Some("chef knife"),
        Some("\"cast iron\""),
        Some("kettle -electric"),
        Some("pro"),
        Some("wireless or organic"),
    ];
    let prices: [(Option<&str>, Option<&str>); 3] = [
        (None, None),
        (Some("10.00"), Some("100.00")),
        (None, Some("25.50")),
    ];
    let mut all = Vec::new();
    for search in searches {
        for (min, max) in prices {
            for (category_id, in_stock) in [
                (None, None),
                (Some(category), Some(true)),
                (None, Some(false)),
            ] {
                for sort in [
                    ProductSort::Relevance,
                    ProductSort::Newest,
                    ProductSort::PriceAsc,
                    ProductSort::PriceDesc,
                    ProductSort::Rating,
                ] {
                    if sort == ProductSort::Relevance && search.is_none() {
                        continue;
                    }
                    all.push(ProductFilter {
                        search: search.map(String::from),
                        category_id,
                        min_price: min.map(money),
                        max_price: max.map(money),
                        in_stock,
                        sort,
                    });
                }
            }
        }
    }
    all
}

#[actix_web::test]
async fn results_and_totals_match_the_original_query() {
    let (_db, mut conn) = TestDb::connected().await;
    let conn = &mut conn;
    ecom_catalog::seed_demo(conn, 3000, &[])
        .await
        .expect("seed");
    // Some sold out, some without a category, some deleted: every filter has work to do.
    for sql in [
        "UPDATE product_variants SET stock = 0 WHERE product_id % 7 = 0",
        "UPDATE products SET category_id = NULL WHERE id % 11 = 0",
        "UPDATE products SET deleted_at = now() WHERE id % 13 = 0",
    ] {
        diesel::sql_query(sql).execute(conn).await.expect(sql);
    }
    let category = count(conn, "SELECT min(id) AS n FROM categories").await;
    let mut compared = 0;
    for filter in filters(category) {
        for (limit, offset) in [(20, 0), (7, 13), (100, 40)] {
            let expected = original(conn, &filter, limit, offset).await;
            let page = service::list_products(conn, &filter, page_of(limit, offset))
                .await
                .expect("listing");
            let got: Vec<i64> = page.items.iter().map(|p| p.row.id).collect();
            assert_eq!(
                (got, page.total),
                expected,
                "{filter:?} limit {limit} offset {offset}"
            );
            assert!(
                !page.total_is_estimate,
                "{filter:?}: below the cap, totals are counts"
            );
            compared += 1;
        }
    }
    assert!(compared > 300, "{compared} listings compared");
}

#[actix_web::test]
async fn totals_past_the_cap_are_estimates() {
    let (_db, mut conn) = TestDb::connected().await;
    let conn = &mut conn;
    ecom_catalog::seed_demo(conn, 400, &[]).await.expect("seed");
    diesel::sql_query("ANALYZE products")
        .execute(conn)
        .await
        .expect("analyze");
    let cap = 50;
    let search = |search: &str| ProductFilter {
        search: Some(search.into()),
        sort: ProductSort::Relevance,
        ..ProductFilter::default()
    };
    let priced = ProductFilter {
        min_price: Some(money("0.01")),
        ..ProductFilter::default()
    };
    for filter in [
        search("classic or modern or premium or smart or eco or pro"),
        priced,
    ] {
        let exact = service::list_products(conn, &filter, page_of(20, 0))
            .await
            .expect("listing");
        assert!(exact.total > cap && !exact.total_is_estimate, "{filter:?}");
        let capped = service::search::list_products_capped(
            conn,
            &filter,
            page_of(20, 0),
            None,
            cap,
            service::MatchSource::Fresh,
            &service::CategoryNames::default(),
        )
        .await
        .expect("capped listing");
        assert!(capped.total_is_estimate, "{filter:?}");
        assert!(
            capped.total > cap,
            "{filter:?}: an estimate past the cap says so"
        );
        assert_eq!(capped.items.len(), 20, "{filter:?}: the page is still full");
    }
    // Under the cap nothing changes.
    let narrow = search("backpack");
    let capped = service::search::list_products_capped(
        conn,
        &narrow,
        page_of(20, 0),
        None,
        cap,
        service::MatchSource::Fresh,
        &service::CategoryNames::default(),
    )
    .await;
    let exact = service::list_products(conn, &narrow, page_of(20, 0)).await;
    let (capped, exact) = (capped.expect("capped"), exact.expect("exact"));
    assert!(
        exact.total <= cap,
        "the fixture keeps `backpack` under the cap"
    );
    assert_eq!(capped.total, exact.total);
    assert!(!capped.total_is_estimate);
}

/// Live products per category key (0: none; -1: the whole catalog), as the maintained counts
/// say and as counted.
async fn counts_agree(conn: &mut AsyncPgConnection) {
    let disagreeing = count(
        conn,
        "WITH counted AS ( \
           SELECT coalesce(category_id, 0) AS key, count(*) AS n FROM products \
           WHERE deleted_at IS NULL GROUP BY 1 \
           UNION ALL SELECT -1, count(*) FROM products WHERE deleted_at IS NULL), \
         kept AS (SELECT category_key AS key, sum(live)::int8 AS n FROM product_counts GROUP BY 1) \
         SELECT count(*) AS n FROM ( \
           (SELECT key, n FROM kept WHERE n <> 0 EXCEPT SELECT key, n FROM counted WHERE n <> 0) \
           UNION ALL \
           (SELECT key, n FROM counted WHERE n <> 0 EXCEPT SELECT key, n FROM kept)) AS d",
    )
    .await;
    assert_eq!(disagreeing, 0, "maintained counts differ from the catalog");
}

#[actix_web::test]
async fn maintained_counts_follow_concurrent_writes() {
    let db = TestDb::new().await;
    let mut conn = db.connect().await;
    ecom_catalog::seed_demo(&mut conn, 200, &[])
        .await
        .expect("seed");
    counts_agree(&mut conn).await;
    // Eight writers at once: each creates products, moves them between categories and
    // deletes some, so the same slots and keys are written concurrently.
    let mut writers = Vec::new();
    for writer in 0..8_i64 {
        let url = db.url.clone();
        writers.push(tokio::spawn(async move {
            let mut conn = ecom_core::db::connect(&url).await.expect("connect");
            for round in 0..10_i64 {
                let sql = format!(
                    "WITH made AS (INSERT INTO products \
                       (name, price, stock, min_price, max_price, category_id) \
                       SELECT 'Writer {writer} item ' || n, 9.99, 1, 9.99, 9.99, \
                              (SELECT id FROM categories ORDER BY id OFFSET {} LIMIT 1) \
                       FROM generate_series(1, 3) AS n RETURNING id) \
                     SELECT 1",
                    (writer + round) % 12
                );
                diesel::sql_query(sql).execute(&mut conn).await.expect("insert");
                for sql in [
                    format!(
                        "UPDATE products SET category_id = (SELECT id FROM categories ORDER BY id \
                         OFFSET {} LIMIT 1) WHERE name LIKE 'Writer {writer} item %' AND id % 2 = 0",
                        (writer * 5 + round) % 12
                    ),
                    format!(
                        "UPDATE products SET deleted_at = now() WHERE name = 'Writer {writer} item 3' \
                         AND deleted_at IS NULL"
                    ),
                    format!("UPDATE products SET category_id = NULL WHERE name = 'Writer {writer} item 1'"),
                ] {
                    diesel::sql_query(sql).execute(&mut conn).await.expect("update");
                }
            }
        }));
    }
    for writer in writers {
        writer.await.expect("writer");
    }
    counts_agree(&mut conn).await;
    // The unfiltered and per-category totals are the maintained counts.
    let all = service::list_products(&mut conn, &ProductFilter::default(), page_of(1, 0))
        .await
        .expect("listing");
    let live = count(
        &mut conn,
        "SELECT count(*) AS n FROM products WHERE deleted_at IS NULL",
    )
    .await;
    assert_eq!(all.total, live);
    let category = count(&mut conn, "SELECT min(id) AS n FROM categories").await;
    let in_category = service::list_products(
        &mut conn,
        &ProductFilter {
            category_id: Some(category),
            ..ProductFilter::default()
        },
        page_of(1, 0),
    )
    .await
    .expect("category listing");
    let counted = count(
        &mut conn,
        &format!("SELECT count(*) AS n FROM products WHERE deleted_at IS NULL AND category_id = {category}"),
    )
    .await;
    assert_eq!(in_category.total, counted);
}
