//! Order lines per variant: `{variant_id, quantity}` or `{product_id, quantity}` (its
//! default variant), merged per variant, with the variant's SKU and options copied; stock
//! comes back to the variant on cancel; the migrations give old lines their variant.

use actix_web::test::TestRequest;
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use ecom_core::migrate::{self, Direction};
use ecom_testkit::TestDb;
use serde_json::{Value, json};

use crate::shop;
use crate::support::{SHOPPER, count, count_rows, revert_through, token};

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// A product's default variant.
async fn default_variant(conn: &mut AsyncPgConnection, product_id: i64) -> i64 {
    let row: Id =
        diesel::sql_query("SELECT id FROM product_variants WHERE product_id = $1 AND is_default")
            .bind::<BigInt, _>(product_id)
            .get_result(conn)
            .await
            .expect("default variant");
    row.id
}

/// Adds a variant with a SKU and a size (the catalog's own endpoints are tested there).
async fn add_size(conn: &mut AsyncPgConnection, product_id: i64, sku: &str, size: &str) -> i64 {
    let row: Id = diesel::sql_query(
        "INSERT INTO product_variants (product_id, sku, price, stock, options) \
         VALUES ($1, $2, 12.00, 5, jsonb_build_object('Size', $3::text)) RETURNING id",
    )
    .bind::<BigInt, _>(product_id)
    .bind::<Text, _>(sku)
    .bind::<Text, _>(size)
    .get_result(conn)
    .await
    .expect("variant");
    row.id
}

async fn variant_stock(conn: &mut AsyncPgConnection, id: i64) -> i64 {
    count(
        conn,
        &format!("SELECT stock::int8 AS n FROM product_variants WHERE id = {id}"),
    )
    .await
}

fn order(lines: Value) -> TestRequest {
    TestRequest::post()
        .uri("/orders")
        .insert_header(("authorization", format!("Bearer {}", token(SHOPPER))))
        .set_json(json!({ "items": lines }))
}

#[actix_web::test]
async fn lines_name_variants_or_products_and_merge_per_variant() {
    let (_db, mut conn, [shirt], app) = shop!(("Shirt", "10.00", 8)).await;
    let default = default_variant(&mut conn, shirt).await;
    let large = add_size(&mut conn, shirt, "SHIRT-L", "L").await;

    let res = app
        .send(order(json!([
            {"variant_id": large, "quantity": 2},
            {"product_id": shirt, "quantity": 1},
            {"variant_id": default, "quantity": 2},
        ])))
        .await;
    let placed = res.assert_created("/orders");
    assert_eq!(placed["total_price"], "54.00");
    let items = placed["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "one line per variant: {placed}");
    assert_eq!(items[0]["variant_id"], default);
    assert_eq!(
        items[0]["quantity"], 3,
        "the product's line and its default's merged"
    );
    assert_eq!(items[0]["sku"], Value::Null);
    assert_eq!(items[0]["options"], json!({}));
    assert_eq!(items[1]["variant_id"], large);
    assert_eq!(items[1]["product_id"], shirt);
    assert_eq!(items[1]["product_name"], "Shirt");
    assert_eq!(items[1]["sku"], "SHIRT-L");
    assert_eq!(items[1]["options"], json!({"Size": "L"}));
    assert_eq!(items[1]["unit_price"], "12.00");
    assert_eq!(variant_stock(&mut conn, default).await, 5);
    assert_eq!(variant_stock(&mut conn, large).await, 3);

    // What is stored is what is read back.
    let id = placed["id"].as_i64().expect("id");
    let read = app
        .send(
            TestRequest::get()
                .uri(&format!("/orders/{id}"))
                .insert_header(("authorization", format!("Bearer {}", token(SHOPPER)))),
        )
        .await;
    assert_eq!(read.json()["items"], placed["items"]);

    // Cancelling puts each variant's units back.
    let cancelled = app
        .send(
            TestRequest::post()
                .uri(&format!("/orders/{id}/cancel"))
                .insert_header(("authorization", format!("Bearer {}", token(SHOPPER)))),
        )
        .await;
    cancelled.assert_status(200);
    assert_eq!(variant_stock(&mut conn, default).await, 8);
    assert_eq!(variant_stock(&mut conn, large).await, 5);
}

#[actix_web::test]
async fn a_line_names_one_thing_and_unknown_variants_are_refused() {
    let (_db, mut conn, [shirt], app) = shop!(("Shirt", "10.00", 8)).await;
    let default = default_variant(&mut conn, shirt).await;
    let retired = add_size(&mut conn, shirt, "SHIRT-XL", "XL").await;
    conn.batch_execute(&format!(
        "UPDATE product_variants SET deleted_at = now() WHERE id = {retired}"
    ))
    .await
    .expect("retired");

    for lines in [
        json!([{"product_id": shirt, "variant_id": default, "quantity": 1}]),
        json!([{"quantity": 1}]),
    ] {
        let res = app.send(order(lines.clone())).await;
        res.assert_problem(422, "validation_failed");
        assert_eq!(res.json()["errors"][0]["field"], "items[0]", "{lines}");
    }
    for missing in [retired, 987_654] {
        let res = app
            .send(order(json!([
                {"variant_id": default, "quantity": 1},
                {"variant_id": missing, "quantity": 1},
            ])))
            .await;
        res.assert_problem(422, "unknown_variant");
        let detail = res.json()["detail"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(detail.contains(&missing.to_string()), "{detail}");
    }
    // A product line and a variant line of one variant count together against the limit
    // (checked once the default is known; here with stock enough for both).
    conn.batch_execute(&format!(
        "UPDATE product_variants SET stock = 5000 WHERE id = {default}"
    ))
    .await
    .expect("restocked");
    let res = app
        .send(order(json!([
            {"variant_id": default, "quantity": 600},
            {"product_id": shirt, "quantity": 600},
        ])))
        .await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(
        variant_stock(&mut conn, default).await,
        5000,
        "nothing taken"
    );
    assert_eq!(count_rows(&mut conn, "orders").await, 0);
}

#[actix_web::test]
async fn products_and_lines_from_before_variants_get_their_variant_and_it_reverts() {
    let db = TestDb::new().await;
    revert_through(&db, "20261207000100").await;
    let mut conn = db.connect().await;
    conn.batch_execute(
        "INSERT INTO products (id, name, price, stock) VALUES (41, 'Kettle', 20.00, 3), \
             (42, 'Teapot', 15.00, 0); \
         INSERT INTO orders (id, user_id, status, total_price) VALUES (1, 10, 'paid', 40.00); \
         INSERT INTO order_lines (order_id, product_id, product_name, unit_price, quantity, line_total) \
             VALUES (1, 41, 'Kettle', 20.00, 2, 40.00);",
    )
    .await
    .expect("old rows");

    migrate::migrate(&db.url, Direction::Up).await.expect("up");
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM product_variants v JOIN products p ON p.id = v.product_id \
             WHERE v.id = p.id AND v.is_default AND v.price = p.price AND v.stock = p.stock \
               AND v.sku IS NULL AND v.options = '{}'"
        )
        .await,
        2,
        "each product has one default variant with its own id, price and stock"
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM products WHERE id = 42 AND NOT in_stock \
               AND min_price = 15.00 AND max_price = 15.00 \
               AND variants::jsonb = '[{\"id\": 42, \"sku\": null, \"price\": \"15.00\", \"stock\": 0, \
                                 \"options\": {}, \"is_default\": true}]'::jsonb \
               AND options::jsonb = '[]'::jsonb"
        )
        .await,
        1,
        "the product keeps its variant summary"
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM order_lines \
             WHERE variant_id = 41 AND sku IS NULL AND options = '{}'"
        )
        .await,
        1,
        "an old line names its product's variant"
    );
    // New variants do not collide with the ids given to old products.
    let added = add_size(&mut conn, 41, "KETTLE-XL", "XL").await;
    assert!(added > 42, "{added}");

    revert_through(&db, "20261207000100").await;
    assert_eq!(count_rows(&mut conn, "order_lines").await, 1);
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM information_schema.columns \
             WHERE (table_name = 'order_lines' AND column_name IN ('variant_id', 'sku', 'options')) \
                OR (table_name = 'products' AND column_name IN ('min_price', 'variants'))"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT stock::int8 AS n FROM products WHERE id = 41"
        )
        .await,
        3
    );
    migrate::migrate(&db.url, Direction::Up)
        .await
        .expect("up again");
}
