use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;
use ecom_catalog::model::{ProductFilter, ProductSort};
use ecom_catalog::{SeedSummary, seed_demo, service};
use ecom_testkit::TestDb;
use ecom_testkit::fixtures::page_of;

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn scalar(conn: &mut diesel_async::AsyncPgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql)
        .get_result::<N>(conn)
        .await
        .expect(sql)
        .n
}

#[actix_web::test]
async fn the_demo_catalog_is_varied_and_consistent() {
    let (_db, mut conn) = TestDb::connected().await;
    let reviewers = [101_i64, 102, 103, 104];
    let summary = seed_demo(&mut conn, 600, &reviewers).await.expect("seed");
    assert_eq!(summary.categories, 12);
    assert_eq!(summary.products, 600);
    assert!(
        summary.reviews > 600,
        "about 2.5 reviews per product: {summary:?}"
    );

    let c = &mut conn;
    assert_eq!(scalar(c, "SELECT count(*) AS n FROM products").await, 600);
    assert_eq!(
        scalar(c, "SELECT count(*) AS n FROM reviews").await,
        summary.reviews
    );
    assert_eq!(
        scalar(
            c,
            "SELECT count(*) AS n FROM products WHERE category_id IS NULL"
        )
        .await,
        0
    );
    assert_eq!(
        scalar(c, "SELECT count(DISTINCT category_id) AS n FROM products").await,
        12
    );
    assert!(scalar(c, "SELECT count(DISTINCT name) AS n FROM products").await > 500);
    assert!(scalar(c, "SELECT count(DISTINCT price) AS n FROM products").await > 300);
    assert!(scalar(c, "SELECT count(*) AS n FROM products WHERE stock = 0").await > 20);
    assert!(scalar(c, "SELECT count(*) AS n FROM products WHERE stock > 100").await > 300);
    assert!(
        scalar(
            c,
            "SELECT count(DISTINCT created_at::date) AS n FROM products"
        )
        .await
            > 100
    );
    assert_eq!(
        scalar(
            c,
            "SELECT count(*) AS n FROM reviews WHERE user_id NOT IN (101, 102, 103, 104)"
        )
        .await,
        0
    );
    // The aggregates match the reviews exactly.
    assert_eq!(
        scalar(
            c,
            "SELECT count(*) AS n FROM products p LEFT JOIN \
             (SELECT product_id, count(*) AS k, sum(rating) AS s FROM reviews GROUP BY product_id) r \
             ON r.product_id = p.id \
             WHERE p.review_count <> coalesce(r.k, 0) OR p.rating_sum <> coalesce(r.s, 0)"
        )
        .await,
        0
    );

    // Apparel comes in sizes and colours, shoes in sizes, the rest in one variant; each
    // product has one default and its summary matches its variants.
    let several = scalar(
        c,
        "SELECT count(*) AS n FROM products WHERE json_array_length(variants) > 1",
    )
    .await;
    assert!(
        (10..150).contains(&several),
        "{several} products with variants"
    );
    for (sql, expected) in [
        (
            "SELECT count(*) AS n FROM products WHERE name LIKE '% T-Shirt %' AND (json_array_length(variants) <> 8           OR options::jsonb <> '[{\"name\": \"Colour\", \"values\": [\"Black\", \"Navy\"]}, {\"name\": \"Size\", \"values\": [\"S\", \"M\", \"L\", \"XL\"]}]'::jsonb           OR max_price <> min_price + 2)",
            0,
        ),
        (
            "SELECT count(*) AS n FROM products WHERE name LIKE '% Sneakers %' AND (json_array_length(variants) <> 6           OR options -> 0 ->> 'name' <> 'Size')",
            0,
        ),
        (
            "SELECT count(*) AS n FROM products p WHERE (SELECT count(*) FROM product_variants v           WHERE v.product_id = p.id AND v.is_default) <> 1",
            0,
        ),
        (
            "SELECT count(*) AS n FROM products p JOIN product_variants v ON v.product_id = p.id           AND v.is_default WHERE (p.price, p.stock) <> (v.price, v.stock)           OR p.in_stock <> EXISTS (SELECT FROM product_variants w WHERE w.product_id = p.id AND w.stock > 0)",
            0,
        ),
    ] {
        assert_eq!(scalar(c, sql).await, expected, "{sql}");
    }
    assert!(
        scalar(
            c,
            "SELECT count(*) AS n FROM products WHERE name LIKE '% T-Shirt %'"
        )
        .await
            > 0,
        "some T-shirts"
    );

    // It is searchable and sortable like any catalog.
    let filter = ProductFilter {
        search: Some("keyboard".into()),
        sort: ProductSort::Relevance,
        ..ProductFilter::default()
    };
    let found = service::list_products(c, &filter, page_of(5, 0))
        .await
        .expect("search");
    assert!(found.total > 0);
    assert!(found.items.iter().all(|p| p.row.name.contains("Keyboard")));

    // Seeding again keeps the categories and adds products; no reviewers, no reviews.
    let again = seed_demo(c, 50, &[]).await.expect("seed again");
    assert_eq!(
        again,
        SeedSummary {
            categories: 0,
            products: 50,
            reviews: 0
        }
    );
    assert_eq!(scalar(c, "SELECT count(*) AS n FROM categories").await, 12);
}
