//! A listing costs the same number of SQL statements whatever the page size.

use std::sync::atomic::Ordering;

use diesel_async::AsyncPgConnection;
use ecom_catalog::model::{ProductFilter, ProductSort};
use ecom_catalog::service;

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

async fn statements_for(
    conn: &mut AsyncPgConnection,
    filter: &ProductFilter,
    limit: i64,
) -> (usize, usize) {
    let count = count_statements(conn);
    let page = service::list_products(conn, filter, page_of(limit, 0))
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
        let (n, items) = statements_for(&mut conn, filter, 2).await;
        assert_eq!(items, 2);
        small.push(n);
    }
    fill(&mut conn, 2, 60).await;
    for (filter, expected) in filters.iter().zip(&small) {
        let (n, items) = statements_for(&mut conn, filter, 60).await;
        assert_eq!(items, 60);
        assert_eq!(
            n, *expected,
            "statements for 60 items vs 2 items ({filter:?})"
        );
        assert!(n <= 2, "a count and a page: {n}");
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
