//! Products sold as variants: the product's shape, `POST /products` with variants, the
//! variant endpoints and their rules, and variant writes racing checkouts.

use std::sync::atomic::{AtomicUsize, Ordering};

use actix_web::http::Method;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use ecom_catalog::model::{NewProduct, NewVariant, ProductFilter, VariantChanges, VariantOptions};
use ecom_catalog::schema::product_variants;
use ecom_catalog::service::{self, CategoryNames, MatchSource::Fresh};
use ecom_catalog::{CatalogError, ItemRef, StockLine, reserve_stock};
use ecom_testkit::TestDb;
use ecom_testkit::fixtures::{count, count_statements, page_of};
use serde_json::{Value, json};

use crate::open_shop;
use crate::support::{ADMIN, CREATOR, SHOPPER, default_variant, money, product};

/// A T-shirt in three variants, the second (M, Black) the default.
fn tee() -> Value {
    json!({"name": "Tee", "description": "Cotton", "variants": [
        {"sku": "TEE-S-BLK", "price": "19.99", "stock": 0, "options": {"Size": "S", "Colour": "Black"}},
        {"sku": "TEE-M-BLK", "price": "21.00", "stock": 5, "options": {"Size": "M", "Colour": "Black"}, "is_default": true},
        {"price": 19.99, "stock": 0, "options": {"Size": " S ", "Colour": "Navy"}},
    ]})
}

fn options(pairs: &[(&str, &str)]) -> VariantOptions {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn variant(price: &str, stock: i32, pairs: &[(&str, &str)]) -> NewVariant {
    NewVariant {
        sku: None,
        price: money(price),
        stock,
        options: options(pairs),
        is_default: false,
    }
}

/// A product made through the service with these variants (the first is the default).
async fn product_with(
    conn: &mut AsyncPgConnection,
    name: &str,
    mut variants: Vec<NewVariant>,
) -> i64 {
    variants[0].is_default = true;
    let new = NewProduct {
        name: name.into(),
        description: String::new(),
        category: None,
        variants,
    };
    service::create_product(conn, new)
        .await
        .expect("create product")
        .row
        .id
}

/// The ids of a product's live variants, in order.
async fn live_variants(conn: &mut AsyncPgConnection, product_id: i64) -> Vec<i64> {
    product_variants::table
        .filter(product_variants::product_id.eq(product_id))
        .filter(product_variants::deleted_at.is_null())
        .order(product_variants::id)
        .select(product_variants::id)
        .load(conn)
        .await
        .expect("variants")
}

fn variant_ids(product: &Value) -> Vec<i64> {
    product["variants"]
        .as_array()
        .expect("variants")
        .iter()
        .map(|v| v["id"].as_i64().expect("variant id"))
        .collect()
}

fn default_of(product: &Value) -> i64 {
    let defaults: Vec<&Value> = product["variants"]
        .as_array()
        .expect("variants")
        .iter()
        .filter(|v| v["is_default"] == true)
        .collect();
    assert_eq!(defaults.len(), 1, "exactly one default: {product}");
    defaults[0]["id"].as_i64().expect("id")
}

#[actix_web::test]
async fn a_product_with_variants_shows_them_its_options_and_price_range() {
    let (_db, app) = open_shop!().await;
    let as_admin = app.fixed(ADMIN);
    let created = as_admin
        .post("/products", tee())
        .await
        .assert_created("/products");
    let ids = variant_ids(&created);
    assert_eq!(ids.len(), 3);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in id order: {ids:?}");
    assert_eq!(default_of(&created), ids[1]);
    // The product's price and stock are the default's; the range and stock cover all.
    assert_eq!(created["price"], "21.00");
    assert_eq!(created["stock"], 5);
    assert_eq!(created["min_price"], "19.99");
    assert_eq!(created["max_price"], "21.00");
    assert_eq!(created["in_stock"], true);
    // By name; values in order of first use; trimmed.
    assert_eq!(
        created["options"],
        json!([{"name": "Colour", "values": ["Black", "Navy"]}, {"name": "Size", "values": ["S", "M"]}])
    );
    assert_eq!(
        created["variants"][0],
        json!({"id": ids[0], "sku": "TEE-S-BLK", "price": "19.99", "stock": 0,
               "options": {"Size": "S", "Colour": "Black"}, "is_default": false})
    );
    assert_eq!(created["variants"][2]["sku"], Value::Null);
    assert_eq!(created["variants"][2]["options"]["Size"], "S");

    // The product page and the listing show the same product.
    let id = created["id"].as_i64().expect("id");
    let got = app
        .get(format!("/products/{id}"))
        .await
        .assert_status(200)
        .json();
    assert_eq!(got, created);
    let listed = app.get("/products").await.assert_status(200).json();
    assert_eq!(listed["items"][0], created);

    // `price` and `stock`: one default variant without SKU or options.
    let plain = as_admin
        .post(
            "/products",
            json!({"name": "Mug", "price": "8.50", "stock": 0}),
        )
        .await
        .assert_created("/products");
    assert_eq!(plain["options"], json!([]));
    assert_eq!(plain["in_stock"], false);
    assert_eq!(plain["min_price"], "8.50");
    assert_eq!(plain["max_price"], "8.50");
    let only = &plain["variants"][0];
    assert_eq!(plain["variants"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        (&only["sku"], &only["options"], &only["is_default"]),
        (&Value::Null, &json!({}), &json!(true))
    );

    // Without `is_default`, the first is the default.
    let first = as_admin
        .post(
            "/products",
            json!({"name": "Cap", "variants": [
                {"price": "5", "stock": 1, "options": {"Colour": "Red"}},
                {"price": "6", "stock": 1, "options": {"Colour": "Blue"}},
            ]}),
        )
        .await
        .assert_created("/products");
    assert_eq!(default_of(&first), variant_ids(&first)[0]);

    // `PUT /products/{id}` price and stock are the default variant's.
    let updated = as_admin
        .put(
            format!("/products/{id}"),
            json!({"price": "25.00", "stock": 0}),
        )
        .await
        .assert_status(200)
        .json();
    assert_eq!(updated["variants"][1]["price"], "25.00");
    assert_eq!(updated["max_price"], "25.00");
    assert_eq!(updated["in_stock"], false);
    assert_eq!(updated["variants"][0], created["variants"][0]);
}

#[actix_web::test]
async fn invalid_product_variants_are_refused_and_nothing_is_written() {
    let (_db, app) = open_shop!().await;
    let as_admin = app.fixed(ADMIN);
    let one = json!({"price": "5", "stock": 1, "options": {}});
    let hundred_one: Vec<Value> = (0..101)
        .map(|i| json!({"price": "5", "stock": 1, "options": {"N": i.to_string()}}))
        .collect();
    let with = |variants: Value| json!({"name": "Thing", "variants": variants});
    let mut both = with(json!([one.clone()]));
    both["price"] = json!("5");
    let mut stock_too = with(json!([one.clone()]));
    stock_too["stock"] = json!(1);
    let long_option = json!({"price": "5", "stock": 1, "options": {"x".repeat(51): "a"}});
    #[rustfmt::skip]
    let cases = [
        (both, "variants"),
        (stock_too, "variants"),
        (with(json!([])), "variants"),
        (with(json!(hundred_one)), "variants"),
        (with(json!([{"price": "5", "stock": 1, "is_default": true}, {"price": "6", "stock": 1, "options": {"A": "b"}, "is_default": true}])), "variants"),
        (with(json!([{"sku": "bad sku", "price": "5", "stock": 1}])), "variants[0].sku"),
        (with(json!([{"sku": "", "price": "5", "stock": 1}])), "variants[0].sku"),
        (with(json!([{"sku": "x".repeat(65), "price": "5", "stock": 1}])), "variants[0].sku"),
        (with(json!([one.clone(), {"price": "0", "stock": 1}])), "variants[1].price"),
        (with(json!([{"price": "5", "stock": -1}])), "variants[0].stock"),
        (with(json!([{"price": "5", "stock": 1, "options": {"A": "1", "B": "1", "C": "1", "D": "1"}}])), "variants[0].options"),
        (with(json!([{"price": "5", "stock": 1, "options": {"  ": "1"}}])), "variants[0].options"),
        (with(json!([{"price": "5", "stock": 1, "options": {"Size": "  "}}])), "variants[0].options.Size"),
        (with(json!([{"price": "5", "stock": 1, "options": {"Size": "x".repeat(101)}}])), "variants[0].options.Size"),
        (with(json!([long_option])), "variants[0].options"),
        (with(json!([{"price": "5", "stock": 1, "options": {"Size": "M", " Size": "L"}}])), "variants[0].options"),
        (json!({"name": "Thing", "price": "5"}), "stock"),
        (json!({"name": "Thing", "stock": 5}), "price"),
    ];
    for (body, field) in cases {
        let res = as_admin.post("/products", body.clone()).await;
        res.assert_problem(422, "validation_failed");
        let fields: Vec<Value> = res.json()["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .map(|e| e["field"].clone())
            .collect();
        assert!(
            fields.contains(&json!(field)),
            "{field} in {fields:?} for {body}"
        );
    }
    #[rustfmt::skip]
    let conflicts = [
        ("/products", with(json!([{"price": "5", "stock": 1, "options": {"Size": "M"}}, {"price": "5", "stock": 1, "options": {"Colour": "Red"}}])), 422, "option_mismatch"),
        ("/products", with(json!([{"sku": "A-1", "price": "5", "stock": 1, "options": {"Size": "M"}}, {"sku": "A-1", "price": "5", "stock": 1, "options": {"Size": "L"}}])), 409, "sku_taken"),
        ("/products", with(json!([{"price": "5", "stock": 1, "options": {"Size": "M"}}, {"price": "6", "stock": 1, "options": {"Size": " M"}}])), 409, "duplicate_variant"),
        ("/products", with(json!([{"price": "5", "stock": 1, "colour": "red"}])), 422, "validation_failed"),
    ];
    as_admin
        .assert_writes_refused(Method::POST, conflicts)
        .await;
    assert_eq!(app.anonymous().listed_total("/products").await, 0);
}

#[actix_web::test]
async fn variants_are_added_changed_and_removed_by_their_rules() {
    let (db, app) = open_shop!().await;
    let as_admin = app.fixed(ADMIN);
    let made = as_admin
        .post(
            "/products",
            json!({"name": "Shoe", "price": "50.00", "stock": 2}),
        )
        .await
        .assert_created("/products");
    let id = made["id"].as_i64().expect("id");
    let first = variant_ids(&made)[0];
    let variants = format!("/products/{id}/variants");
    let one = |variant: i64| format!("/products/{id}/variants/{variant}");

    // A product's only variant may change its option names; others may not differ.
    as_admin
        .post(
            &variants,
            json!({"price": "55", "stock": 1, "options": {"Size": "43"}}),
        )
        .await
        .assert_problem(422, "option_mismatch");
    let changed = as_admin
        .patch(
            one(first),
            json!({"options": {"Size": "42"}, "sku": "SHOE-42"}),
        )
        .await
        .assert_status(200)
        .json();
    assert_eq!(
        changed,
        json!({"id": first, "sku": "SHOE-42", "price": "50.00", "stock": 2,
               "options": {"Size": "42"}, "is_default": true})
    );
    let second = as_admin
        .post(
            &variants,
            json!({"sku": "SHOE-43", "price": "55", "stock": 1, "options": {"Size": "43"}}),
        )
        .await
        .assert_created(&variants);
    let second_id = second["id"].as_i64().expect("id");
    assert_eq!(second["is_default"], false);
    assert_eq!(second["price"], "55.00");

    #[rustfmt::skip]
    let refused = [
        (variants.clone(), json!({"price": "55", "stock": 1, "options": {"Size": "43"}}), 409, "duplicate_variant"),
        (variants.clone(), json!({"sku": "SHOE-43", "price": "55", "stock": 1, "options": {"Size": "44"}}), 409, "sku_taken"),
        (variants.clone(), json!({"price": "55", "stock": 1, "options": {"Colour": "Red"}}), 422, "option_mismatch"),
        (variants.clone(), json!({"price": "55", "stock": 1, "options": {"Size": "44", "Colour": "Red"}}), 422, "option_mismatch"),
        (variants.clone(), json!({"price": "55", "stock": 1, "options": {"Size": "44"}, "id": 7}), 422, "validation_failed"),
        ("/products/424242/variants".to_string(), json!({"price": "55", "stock": 1}), 404, "not_found"),
    ];
    as_admin.assert_writes_refused(Method::POST, refused).await;
    #[rustfmt::skip]
    let refused = [
        (one(second_id), json!({"options": {"Colour": "Red"}}), 422, "option_mismatch"),
        (one(second_id), json!({"options": {"Size": "42"}}), 409, "duplicate_variant"),
        (one(second_id), json!({"sku": "SHOE-42"}), 409, "sku_taken"),
        (one(second_id), json!({"is_default": false}), 422, "validation_failed"),
        (one(second_id), json!({"price": "0"}), 422, "validation_failed"),
        (one(424242), json!({"price": "1"}), 404, "not_found"),
    ];
    as_admin.assert_writes_refused(Method::PATCH, refused).await;

    // `is_default: true` takes the flag from the old default; PUT is PATCH.
    let promoted = as_admin
        .put(one(second_id), json!({"is_default": true, "sku": null}))
        .await
        .assert_status(200)
        .json();
    assert_eq!(
        (&promoted["is_default"], &promoted["sku"]),
        (&json!(true), &Value::Null)
    );
    let product = app.get(format!("/products/{id}")).await.json();
    assert_eq!(default_of(&product), second_id);
    assert_eq!(
        (&product["price"], &product["stock"]),
        (&json!("55.00"), &json!(1))
    );
    assert_eq!(
        (&product["min_price"], &product["max_price"]),
        (&json!("50.00"), &json!("55.00"))
    );
    assert_eq!(
        product["options"],
        json!([{"name": "Size", "values": ["42", "43"]}])
    );

    // Deleting the default makes the lowest-id variant left the default.
    let third = as_admin
        .post(
            &variants,
            json!({"price": "60", "stock": 0, "options": {"Size": "44"}, "is_default": true}),
        )
        .await
        .assert_created(&variants)["id"]
        .as_i64()
        .expect("id");
    let product = app.get(format!("/products/{id}")).await.json();
    assert_eq!(default_of(&product), third);
    as_admin.delete(one(third)).await.assert_status(204);
    let product = app.get(format!("/products/{id}")).await.json();
    assert_eq!(variant_ids(&product), vec![first, second_id]);
    assert_eq!(default_of(&product), first);
    assert_eq!(product["price"], "50.00");
    // A deleted variant is gone for every endpoint; its options and SKU are free again.
    for (method, body) in [
        (Method::PATCH, Some(json!({"stock": 1}))),
        (Method::DELETE, None),
    ] {
        as_admin
            .send(method, &one(third), body)
            .await
            .assert_problem(404, "not_found");
    }
    as_admin
        .post(
            &variants,
            json!({"sku": "SHOE-44", "price": "60", "stock": 3, "options": {"Size": "44"}}),
        )
        .await
        .assert_status(201);

    // A variant under another product is 404.
    let other = as_admin
        .post(
            "/products",
            json!({"name": "Sock", "price": "3", "stock": 1}),
        )
        .await
        .json();
    let foreign = variant_ids(&other)[0];
    as_admin
        .patch(one(foreign), json!({"stock": 9}))
        .await
        .assert_problem(404, "not_found");
    as_admin
        .delete(one(foreign))
        .await
        .assert_problem(404, "not_found");

    // The last variant stays; a deleted product's variants are 404.
    let sock = other["id"].as_i64().expect("id");
    as_admin
        .delete(format!("/products/{sock}/variants/{foreign}"))
        .await
        .assert_problem(409, "last_variant");
    as_admin.delete_product(sock).await.assert_status(204);
    as_admin
        .patch(
            format!("/products/{sock}/variants/{foreign}"),
            json!({"stock": 9}),
        )
        .await
        .assert_problem(404, "not_found");
    as_admin
        .post(
            format!("/products/{sock}/variants"),
            json!({"price": "3", "stock": 1}),
        )
        .await
        .assert_problem(404, "not_found");

    // Each variant write is in the audit trail, a no-op is not.
    as_admin
        .patch(one(first), json!({}))
        .await
        .assert_status(200);
    let mut conn = db.connect().await;
    let audited = |action: &str| {
        format!(
            "SELECT count(*) AS n FROM audit_log WHERE action = '{action}' AND actor_id = {ADMIN} AND target_type = 'variant'"
        )
    };
    assert_eq!(count(&mut conn, &audited("variant.create")).await, 3);
    assert_eq!(count(&mut conn, &audited("variant.update")).await, 2);
    assert_eq!(count(&mut conn, &audited("variant.delete")).await, 1);
}

#[actix_web::test]
async fn variant_writes_need_their_permission() {
    let (db, app) = open_shop!().await;
    let mut conn = db.connect().await;
    let id = product!(&mut conn, "Lamp", "20.00", 3).await;
    let variant = live_variants(&mut conn, id).await[0];
    let add = json!({"price": "21", "stock": 1, "options": {}});
    let posted = format!("/products/{id}/variants");
    let one = format!("/products/{id}/variants/{variant}");
    let calls = || {
        [
            (Method::POST, posted.as_str(), Some(add.clone())),
            (Method::PATCH, one.as_str(), Some(json!({"stock": 1}))),
            (Method::PUT, one.as_str(), Some(json!({"stock": 1}))),
            (Method::DELETE, one.as_str(), None),
        ]
    };
    app.anonymous()
        .assert_refused(401, "not_authenticated", calls())
        .await;
    app.fixed(SHOPPER)
        .assert_refused(403, "forbidden", calls())
        .await;
    // `create:product` may add a variant, not change or remove one.
    let creator = app.fixed(CREATOR);
    creator
        .assert_refused(403, "forbidden", calls().into_iter().skip(1))
        .await;
    creator
        .post(&posted, json!({"price": "21", "stock": 1, "options": {}}))
        .await
        .assert_problem(409, "duplicate_variant");
}

#[actix_web::test]
async fn a_product_has_at_most_100_variants() {
    let (db, app) = open_shop!().await;
    let mut conn = db.connect().await;
    let sizes: Vec<NewVariant> = (0..100)
        .map(|i| variant("9.99", 1, &[("Size", &i.to_string())]))
        .collect();
    let id = product_with(&mut conn, "Bolt", sizes).await;
    let as_admin = app.fixed(ADMIN);
    let posted = format!("/products/{id}/variants");
    as_admin
        .post(
            &posted,
            json!({"price": "5", "stock": 1, "options": {"Size": "100"}}),
        )
        .await
        .assert_problem(422, "too_many_variants");
    let product = app.get(format!("/products/{id}")).await.json();
    assert_eq!(product["variants"].as_array().map(Vec::len), Some(100));
    let last = variant_ids(&product)[99];
    as_admin
        .delete(format!("/products/{id}/variants/{last}"))
        .await
        .assert_status(204);
    as_admin
        .post(
            &posted,
            json!({"price": "5", "stock": 1, "options": {"Size": "100"}}),
        )
        .await
        .assert_status(201);
}

/// Statements of one listing page of `limit` products, and the page.
async fn listing_statements(
    conn: &mut AsyncPgConnection,
    names: &CategoryNames,
    limit: i64,
) -> (usize, Vec<ecom_catalog::model::Product>) {
    let count = count_statements(conn);
    let page = service::list_products_reusing(
        conn,
        &ProductFilter::default(),
        page_of(limit, 0),
        None,
        Fresh,
        names,
    )
    .await
    .expect("listing");
    (AtomicUsize::load(&count, Ordering::SeqCst), page.items)
}

#[actix_web::test]
async fn listings_show_variants_without_a_query_per_product() {
    let (_db, mut conn) = TestDb::connected().await;
    let names = CategoryNames::default();
    product_with(&mut conn, "Plain", vec![variant("3.00", 1, &[])]).await;
    let (few, items) = listing_statements(&mut conn, &names, 50).await;
    assert_eq!(items.len(), 1);
    for i in 0..20 {
        let shapes: Vec<NewVariant> = (0..5)
            .map(|n| {
                variant(
                    "4.00",
                    n,
                    &[("Size", &n.to_string()), ("Fit", &format!("F{i}"))],
                )
            })
            .collect();
        product_with(&mut conn, &format!("Many {i}"), shapes).await;
    }
    let (many, items) = listing_statements(&mut conn, &names, 50).await;
    assert_eq!(items.len(), 21);
    assert_eq!(many, few, "no statement per product or per variant");
    for product in &items {
        let shown: Value = serde_json::from_str(product.row.variants.get()).expect("variants");
        let expected = if product.row.name == "Plain" { 1 } else { 5 };
        assert_eq!(
            shown.as_array().map(Vec::len),
            Some(expected),
            "{}",
            product.row.name
        );
        let one = service::get_product(&mut conn, product.row.id)
            .await
            .expect("product");
        assert_eq!(one.row.variants.get(), product.row.variants.get());
        assert_eq!(one.row.options.get(), product.row.options.get());
    }
}

#[actix_web::test]
async fn of_concurrent_variants_with_the_same_options_one_is_created() {
    let (db, app) = open_shop!().await;
    let mut conn = db.connect().await;
    let id = product_with(
        &mut conn,
        "Hat",
        vec![variant("10.00", 1, &[("Size", "S")])],
    )
    .await;
    let as_admin = app.fixed(ADMIN);
    let path = format!("/products/{id}/variants");
    let body = json!({"price": "11", "stock": 1, "options": {"Size": "M"}});
    let answers =
        futures_util::future::join_all((0..6).map(|_| as_admin.post(&path, body.clone()))).await;
    let mut statuses: Vec<u16> = answers.iter().map(|r| r.status.as_u16()).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, vec![201, 409, 409, 409, 409, 409]);
    for conflict in answers.iter().filter(|r| r.status.as_u16() == 409) {
        conflict.assert_problem(409, "duplicate_variant");
    }
    let product = app.get(format!("/products/{id}")).await.json();
    assert_eq!(product["variants"].as_array().map(Vec::len), Some(2));
}

/// Admin variant writes (moving the default, prices, adding and removing variants) race
/// checkouts that reserve those variants and another product's in their own transactions:
/// nothing deadlocks (a reservation inside a caller's transaction is not retried, so a
/// deadlock would surface) and the stock taken is exactly what was reserved.
///
/// A fifth checkout names the shirt by its product (its default variant, which the admins
/// keep moving): when the default moves between the reservation's look-up and its lock,
/// the reservation ends as a serialization conflict for its transaction's owner to run
/// again (never a deadlock, never the wrong variant).
#[actix_web::test]
async fn variant_writes_racing_checkouts_never_deadlock() {
    let (db, mut conn) = TestDb::connected().await;
    let sizes: Vec<NewVariant> = (0..4)
        .map(|n| variant("20.00", 1000, &[("Size", &n.to_string())]))
        .collect();
    let shirt = product_with(&mut conn, "Shirt", sizes).await;
    let socks = product_with(&mut conn, "Socks", vec![variant("5.00", 1000, &[])]).await;
    let shirt_variants = live_variants(&mut conn, shirt).await;
    let sock = live_variants(&mut conn, socks).await[0];
    let pool = db.pool();

    let checkouts = (0..4_i64).map(|worker| {
        let (pool, variants) = (pool.clone(), shirt_variants.clone());
        tokio::spawn(async move {
            let mut conn = pool.get().await.expect("conn");
            for round in 0..15_usize {
                let pick = variants[(round + worker as usize) % variants.len()];
                // The other product's variant has the highest id: locked last, its product
                // (also the highest id) too.
                let lines = [
                    StockLine {
                        item: ItemRef::Variant(sock),
                        quantity: 1,
                    },
                    StockLine {
                        item: ItemRef::Variant(pick),
                        quantity: 1,
                    },
                    StockLine {
                        item: ItemRef::Variant(variants[(round + 1) % variants.len()]),
                        quantity: 1,
                    },
                ];
                conn.transaction(async |conn| reserve_stock(conn, &lines).await)
                    .await
                    .expect("a checkout never deadlocks");
            }
        })
    });
    let admins = (0..2_usize).map(|worker| {
        let (pool, variants) = (pool.clone(), shirt_variants.clone());
        tokio::spawn(async move {
            let mut conn = pool.get().await.expect("conn");
            for round in 0..10_usize {
                let target = variants[(round + worker) % variants.len()];
                let changes = VariantChanges {
                    make_default: true,
                    price: Some(money(&format!("{}.00", 20 + round))),
                    ..VariantChanges::default()
                };
                service::update_variant_audited(&mut conn, ADMIN, shirt, target, changes)
                    .await
                    .expect("a default move never deadlocks");
                let extra = variant("30.00", 5, &[("Size", &format!("extra-{worker}"))]);
                let added = service::create_variant_audited(&mut conn, ADMIN, shirt, extra)
                    .await
                    .expect("an added variant never deadlocks");
                service::delete_variant_audited(&mut conn, ADMIN, shirt, added.id)
                    .await
                    .expect("a removed variant never deadlocks");
            }
        })
    });
    let by_product = {
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut conn = pool.get().await.expect("conn");
            let mut placed = 0_i64;
            for _ in 0..15 {
                let lines = [StockLine {
                    item: ItemRef::Product(shirt),
                    quantity: 1,
                }];
                match conn
                    .transaction(async |conn| reserve_stock(conn, &lines).await)
                    .await
                {
                    Ok(reserved) => {
                        assert!(
                            reserved[0].options.contains_key("Size"),
                            "a shirt variant: {reserved:?}"
                        );
                        placed += 1;
                    }
                    Err(CatalogError::Database(e))
                        if e.to_string().contains("default variant moved") => {}
                    Err(e) => panic!("a checkout by product never deadlocks: {e:?}"),
                }
            }
            placed
        })
    };
    let tasks: Vec<_> = checkouts.chain(admins).collect();
    for task in futures_util::future::join_all(tasks).await {
        task.expect("no task panicked");
    }
    let by_product = by_product.await.expect("no task panicked");
    assert!(by_product > 0, "some checkouts by product went through");

    // 4 workers × 15 rounds: one sock and two shirts each.
    let sold = |product: i64| {
        format!(
            "SELECT sum(stock)::int8 AS n FROM product_variants WHERE product_id = {product} AND deleted_at IS NULL"
        )
    };
    assert_eq!(count(&mut conn, &sold(socks)).await, 1000 - 60);
    assert_eq!(
        count(&mut conn, &sold(shirt)).await,
        4000 - 120 - by_product
    );
    let product = service::get_product(&mut conn, shirt).await.expect("shirt");
    let shown: Value = serde_json::from_str(product.row.variants.get()).expect("variants");
    assert_eq!(shown.as_array().map(Vec::len), Some(4));
    let missing = service::update_variant(
        &mut conn,
        socks,
        shirt_variants[0],
        VariantChanges::default(),
    )
    .await;
    assert!(matches!(missing, Err(CatalogError::VariantNotFound { .. })));
}

/// The product's `updated_at`, read from the row.
async fn updated_at(
    conn: &mut AsyncPgConnection,
    product_id: i64,
) -> chrono::DateTime<chrono::Utc> {
    ecom_catalog::schema::products::table
        .find(product_id)
        .select(ecom_catalog::schema::products::updated_at)
        .get_result(conn)
        .await
        .expect("product")
}

#[actix_web::test]
async fn a_variant_write_moves_the_products_updated_at_and_a_sale_does_not() {
    let (_db, mut conn) = TestDb::connected().await;
    let id = product_with(
        &mut conn,
        "Scarf",
        vec![variant("20.00", 5, &[("Colour", "Red")])],
    )
    .await;
    let mut seen = updated_at(&mut conn, id).await;
    // Each write is its own transaction, so `now()` moves between them.
    let mut moved = async |conn: &mut AsyncPgConnection, what: &str| {
        let now = updated_at(conn, id).await;
        assert!(now > seen, "{what}: updated_at stayed at {seen}");
        seen = now;
    };

    let blue = service::create_variant(&mut conn, id, variant("22.00", 3, &[("Colour", "Blue")]))
        .await
        .expect("create")
        .id;
    moved(&mut conn, "a variant added").await;
    let cheaper = VariantChanges {
        price: Some(money("21.00")),
        ..VariantChanges::default()
    };
    service::update_variant(&mut conn, id, blue, cheaper.clone())
        .await
        .expect("update");
    moved(&mut conn, "a variant's price changed").await;
    service::delete_variant(&mut conn, id, blue)
        .await
        .expect("delete");
    moved(&mut conn, "a variant removed").await;

    // A change to what it already is, and stock taken by a sale, are not changes of the product.
    let red = default_variant(&mut conn, id).await;
    let same = VariantChanges {
        price: Some(money("20.00")),
        ..VariantChanges::default()
    };
    service::update_variant(&mut conn, id, red, same)
        .await
        .expect("no-op update");
    reserve_stock(
        &mut conn,
        &[StockLine {
            item: ItemRef::Variant(red),
            quantity: 2,
        }],
    )
    .await
    .expect("sale");
    assert_eq!(updated_at(&mut conn, id).await, seen);
}
