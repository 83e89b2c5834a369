//! Anonymous catalog reads carry an `ETag` derived from what they show, and answer 304
//! while the client's copy is current; a stock change (shown on the page) renews it.

use actix_web::test::TestRequest;
use diesel_async::RunQueryDsl;
use ecom_testkit::fixtures::{SHOPPER, token};
use ecom_testkit::{TestDb, TestResponse};

use crate::app;
use crate::support::product;

/// A conditional GET of `path` naming `validator`.
fn if_none_match(path: &str, validator: &str) -> TestRequest {
    TestRequest::get()
        .uri(path)
        .insert_header(("if-none-match", validator))
}

fn etag(response: &TestResponse) -> String {
    response
        .headers
        .get("etag")
        .expect("an ETag")
        .to_str()
        .expect("ascii")
        .to_string()
}

fn cache_control(response: &TestResponse) -> &str {
    response
        .headers
        .get("cache-control")
        .expect("Cache-Control")
        .to_str()
        .expect("ascii")
}

#[actix_web::test]
async fn catalog_reads_revalidate_with_etags() {
    let db = TestDb::new().await;
    let app = app!(&db);
    let mut conn = db.connect().await;
    let id = product!(
        &mut conn,
        "Teapot",
        "Cast iron",
        "25.00",
        4,
        Some("Kitchen")
    )
    .await;
    let anonymous = app.anonymous();
    let reads = [
        format!("/products/{id}"),
        "/products?limit=5".to_string(),
        "/products?search=teapot".to_string(),
        "/categories".to_string(),
        format!("/products/{id}/reviews"),
    ];
    let mut first_tags = Vec::new();
    for path in &reads {
        let first = anonymous.get(path).await;
        assert_eq!(first.status, 200, "{path}");
        assert_eq!(cache_control(&first), "public, no-cache", "{path}");
        let tag = etag(&first);
        assert!(
            tag.starts_with('"') && tag.len() == 34,
            "{path}: a strong validator {tag}"
        );
        // The same bytes give the same validator.
        assert_eq!(etag(&anonymous.get(path).await), tag, "{path}");
        for validator in [
            tag.clone(),
            format!("W/{tag}"),
            format!("\"other\", {tag}"),
            "*".into(),
        ] {
            let revalidated = anonymous
                .send_request(if_none_match(path, validator.as_str()))
                .await;
            assert_eq!(revalidated.status, 304, "{path} with {validator}");
            assert!(revalidated.body.is_empty(), "{path}: 304 has no body");
            assert_eq!(etag(&revalidated), tag, "{path}");
        }
        let stale = anonymous
            .send_request(if_none_match(path, "\"stale\""))
            .await;
        assert_eq!(stale.status, 200, "{path}: another validator gets the body");
        first_tags.push(tag);
    }

    // An order takes stock: the pages that show the product change validator, the review
    // page (which shows no stock) keeps its own.
    diesel::sql_query(format!(
        "UPDATE product_variants SET stock = stock - 1 WHERE product_id = {id}"
    ))
    .execute(&mut conn)
    .await
    .expect("take stock");
    for (path, before) in reads.iter().zip(&first_tags) {
        let after = anonymous
            .send_request(if_none_match(path, before.as_str()))
            .await;
        let shows_stock = !path.ends_with("/reviews") && path != "/categories";
        if shows_stock {
            assert_eq!(after.status, 200, "{path}: the stock changed");
            assert_ne!(&etag(&after), before, "{path}");
        } else {
            assert_eq!(after.status, 304, "{path}: nothing it shows changed");
        }
    }

    // With credentials the copy stays private.
    let signed_in = app
        .shopper(token(SHOPPER))
        .get(format!("/products/{id}"))
        .await;
    assert_eq!(cache_control(&signed_in), "private, no-cache");
}
