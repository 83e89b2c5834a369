//! A listing costs the same number of SQL statements whatever the page size.

use std::sync::atomic::Ordering;

use diesel_async::AsyncPgConnection;
use ecom_catalog::model::{ProductFilter, ProductSort};
use ecom_catalog::service::{self, CategoryNames, MatchSource::Fresh};

use ecom_testkit::TestDb;
use ecom_testkit::fixtures::{count_statements, page_of};

use crate::support::{product, review};

async fn fill(conn: &mut AsyncPgConnection, from: usize, to: usize) {
    for i in from..to {
        let category = format!("Category {}", i % 4);
        let id = product!(
            conn,
            &format!("Gadget {i}"),
            "A useful gadget",
            "10.00",
            5,
            Some(&category),
        )
        .await;
        review(conn, id, 1, (i % 5 + 1) as i16).await;
    }
}

/// Statements of one listing, and its items: `names` are the app's category names (which
/// a warm app already holds, so listings then read no names).
async fn statements_for(
    conn: &mut AsyncPgConnection,
    filter: &ProductFilter,
    limit: i64,
    names: &CategoryNames,
) -> (usize, usize) {
    let count = count_statements(conn);
    let page = service::list_products_reusing(conn, filter, page_of(limit, 0), None, Fresh, names)
        .await
        .expect("listing");
    (count.load(Ordering::SeqCst), page.items.len())
}

#[actix_web::test]
async fn listing_statements_do_not_grow_with_the_page() {
    let (_db, mut conn) = TestDb::connected().await;
    fill(&mut conn, 0, 2).await;
    let filters = [
        ProductFilter::default(),
        ProductFilter {
            search: Some("gadget".into()),
            sort: ProductSort::Relevance,
            ..ProductFilter::default()
        },
        ProductFilter {
            sort: ProductSort::Rating,
            in_stock: Some(true),
            ..ProductFilter::default()
        },
    ];
    let mut small = Vec::new();
    for filter in &filters {
        let warm = CategoryNames::default();
        let (cold, items) = statements_for(&mut conn, filter, 2, &warm).await;
        assert_eq!(items, 2);
        let (n, _) = statements_for(&mut conn, filter, 2, &warm).await;
        assert_eq!(cold, n + 1, "names unseen are read once, in one statement");
        small.push(n);
    }
    fill(&mut conn, 2, 60).await;
    for (filter, expected) in filters.iter().zip(&small) {
        let warm = CategoryNames::default();
        let (cold, items) = statements_for(&mut conn, filter, 60, &warm).await;
        assert_eq!(items, 60);
        assert_eq!(
            cold,
            expected + 1,
            "one statement for four categories' names"
        );
        let (n, _) = statements_for(&mut conn, filter, 60, &warm).await;
        assert_eq!(
            n, *expected,
            "statements for 60 items vs 2 items ({filter:?})"
        );
        assert!(n <= 2, "a count and a page: {n}");
    }

    // Names kept from the first listings name the products of categories made since
    // (read once, then kept) correctly: "Gadget {i}" is in "Category {i % 4}".
    let names = CategoryNames::default();
    let filter = ProductFilter::default();
    let first = page_of(2, 0);
    service::list_products_reusing(&mut conn, &filter, first, None, Fresh, &names)
        .await
        .expect("listing");
    let page =
        service::list_products_reusing(&mut conn, &filter, page_of(60, 0), None, Fresh, &names)
            .await
            .expect("listing");
    for product in &page.items {
        let i: usize = product.row.name["Gadget ".len()..]
            .parse()
            .expect("gadget number");
        let category = product.category.as_ref().expect("a category");
        assert_eq!(
            category.name,
            format!("Category {}", i % 4),
            "{}",
            product.row.name
        );
        assert_eq!(Some(category.id), product.row.category_id);
    }

    // Reviews and categories too.
    let count = count_statements(&mut conn);
    let reviews = service::list_reviews(&mut conn, 1, page_of(100, 0))
        .await
        .expect("reviews");
    assert_eq!(reviews.items.len(), 1);
    assert!(count.load(Ordering::SeqCst) <= 3);
    let count = count_statements(&mut conn);
    let cats = service::list_categories(&mut conn, page_of(100, 0))
        .await
        .expect("categories");
    assert_eq!(cats.items.len(), 4);
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

/// Prepared statements of this connection whose text starts with `prefix`.
async fn prepared(conn: &mut AsyncPgConnection, prefix: &str) -> i64 {
    ecom_testkit::fixtures::count(
        conn,
        &format!(
            "SELECT count(*) AS n FROM pg_prepared_statements WHERE statement LIKE '{prefix}%'"
        ),
    )
    .await
}

/// Stock changes and listings are prepared once per connection and reused, not parsed at
/// every run (`sql_query` runs unnamed statements, which PostgreSQL does not keep).
#[actix_web::test]
async fn stock_changes_and_listings_are_prepared_once_per_connection() {
    let (_db, mut conn) = TestDb::connected().await;
    fill(&mut conn, 0, 3).await;
    let id = service::list_products(&mut conn, &ProductFilter::default(), page_of(1, 0))
        .await
        .expect("listing")
        .items[0]
        .row
        .id;
    let line = [ecom_catalog::StockLine {
        item: ecom_catalog::ItemRef::Product(id),
        quantity: 1,
    }];
    for _ in 0..3 {
        ecom_catalog::reserve_stock(&mut conn, &line)
            .await
            .expect("take");
        ecom_catalog::return_stock(&mut conn, &line)
            .await
            .expect("put back");
        let search = ProductFilter {
            search: Some("gadget".into()),
            sort: ProductSort::Relevance,
            ..ProductFilter::default()
        };
        for filter in [ProductFilter::default(), search] {
            service::list_products(&mut conn, &filter, page_of(2, 0))
                .await
                .expect("listing");
        }
    }
    for (prefix, expected) in [
        (
            "UPDATE product_variants SET stock = product_variants.stock - ",
            1,
        ),
        (
            "UPDATE product_variants SET stock = product_variants.stock + ",
            1,
        ),
        ("SELECT p.id, p.name", 1),
        ("WITH terms AS MATERIALIZED", 1),
    ] {
        assert_eq!(prepared(&mut conn, prefix).await, expected, "{prefix}");
    }
}
