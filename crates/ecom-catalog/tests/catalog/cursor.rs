//! Keyset paging: walking a listing by `next_after` gives exactly the offset pages, for
//! every sort, with and without a search; bad cursors are refused.

use diesel_async::RunQueryDsl;
use ecom_catalog::model::{ProductCursor, ProductFilter, ProductSort};
use ecom_catalog::service;
use ecom_testkit::TestDb;

use crate::app;
use ecom_testkit::fixtures::{ids, page_of};

use serde_json::Value;

fn sorted(search: Option<&str>, sort: ProductSort) -> ProductFilter {
    ProductFilter {
        search: search.map(String::from),
        sort,
        ..ProductFilter::default()
    }
}

#[actix_web::test]
async fn cursor_pages_are_the_offset_pages() {
    let (_db, mut conn) = TestDb::connected().await;
    let conn = &mut conn;
    ecom_catalog::seed_demo(conn, 300, &[]).await.expect("seed");
    // Equal prices, ratings and creation times, so that ties are broken by id.
    for sql in [
        "UPDATE product_variants SET price = 10.00 WHERE product_id % 3 = 0",
        "UPDATE products SET created_at = '2026-01-01T00:00:00Z' WHERE id % 3 = 0",
    ] {
        diesel::sql_query(sql).execute(conn).await.expect("ties");
    }
    let cases = [
        sorted(None, ProductSort::Newest),
        sorted(None, ProductSort::PriceAsc),
        sorted(None, ProductSort::PriceDesc),
        sorted(None, ProductSort::Rating),
        sorted(Some("pro"), ProductSort::Relevance),
        sorted(Some("classic or modern"), ProductSort::Relevance),
        sorted(Some("classic or modern"), ProductSort::Rating),
        ProductFilter {
            min_price: Some(ecom_testkit::fixtures::money("20.00")),
            ..sorted(None, ProductSort::PriceAsc)
        },
    ];
    for filter in cases {
        let mut expected = Vec::new();
        let total = loop {
            let offset = i64::try_from(expected.len()).expect("small");
            let page = service::list_products(conn, &filter, page_of(100, offset))
                .await
                .expect("offset page");
            expected.extend(page.items.iter().map(|p| p.row.id));
            if page.items.is_empty() {
                break page.total;
            }
        };
        assert!(
            expected.len() > 14,
            "{filter:?}: the fixture pages several times"
        );
        let mut walked = Vec::new();
        let mut after: Option<ProductCursor> = None;
        loop {
            let page = service::list_products_after(conn, &filter, page_of(7, 0), after.as_ref())
                .await
                .expect("cursor page");
            assert_eq!(page.total, total, "{filter:?}: every page has the total");
            walked.extend(page.items.iter().map(|p| p.row.id));
            match page.next_after {
                Some(next) => after = Some(ProductCursor::parse(&next).expect("a cursor")),
                None => break,
            }
            assert!(walked.len() <= expected.len(), "{filter:?}: the walk ends");
        }
        assert_eq!(walked, expected, "{filter:?}");
    }
}

#[actix_web::test]
async fn next_after_is_served_and_bad_cursors_are_422() {
    let db = TestDb::new().await;
    let app = app!(&db);
    let mut conn = db.connect().await;
    ecom_catalog::seed_demo(&mut conn, 30, &[])
        .await
        .expect("seed");
    let first = app
        .anonymous()
        .read::<Value>("/products?limit=10&sort=price_asc")
        .await;
    let next = first["next_after"]
        .as_str()
        .expect("a full page has next_after");
    let second = app
        .anonymous()
        .read::<Value>(&format!("/products?limit=10&sort=price_asc&after={next}"))
        .await;
    let offset = app
        .anonymous()
        .read::<Value>("/products?limit=10&sort=price_asc&offset=10")
        .await;
    assert_eq!(ids(&second), ids(&offset));
    assert_eq!(second["total"], first["total"]);
    let last = app.anonymous().read::<Value>("/products?limit=100").await;
    // The last page has no cursor; an exact total says nothing more.
    assert_eq!(last.get("next_after"), None);
    assert_eq!(last.get("total_is_estimate"), None);

    app.anonymous()
        .assert_problems([
            (
                "/products?after=nonsense".to_string(),
                422,
                "validation_failed",
            ),
            (
                format!("/products?sort=newest&after={next}"),
                422,
                "validation_failed",
            ),
            (
                format!("/products?sort=price_asc&offset=10&after={next}"),
                422,
                "validation_failed",
            ),
            (
                "/products?sort=relevance&search=x&after=relevance.zz.1".to_string(),
                422,
                "validation_failed",
            ),
        ])
        .await;
}
