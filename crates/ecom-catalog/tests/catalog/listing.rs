use ecom_testkit::TestDb;

use crate::open_shop;
use crate::support::{ids, product, review, set_created_at};

/// Six products with known prices, stock, categories, ages and ratings.
/// Returns (ids in creation order, tools category id).
struct Shop {
    /// Oldest first: hammer, screwdriver, drill, teapot, whisk, ladle.
    ids: [i64; 6],
    tools: i64,
}

/// [`Shop`] on `db`, through a connection of its own.
async fn shop(db: &TestDb) -> Shop {
    let conn = &mut db.connect().await;
    // name, price, stock, category
    let specs = [
        ("Hammer", "12.50", 10, "Tools"),
        ("Screwdriver", "5.00", 0, "Tools"),
        ("Drill", "89.99", 3, "Tools"),
        ("Teapot", "25.00", 7, "Kitchen"),
        ("Whisk", "5.00", 0, "Kitchen"),
        ("Ladle", "7.25", 2, "Kitchen"),
    ];
    let mut ids = Vec::new();
    for (i, (name, price, stock, cat)) in specs.iter().enumerate() {
        let id = product!(conn, name, "", price, *stock, Some(cat)).await;
        set_created_at(conn, id, 10 - i as i32).await;
        ids.push(id);
    }
    // Ratings: Drill 5,5 (5.0); Hammer 4,2 (3.0); Teapot 4 (4.0); others unrated.
    for (product, user, rating) in [(2, 1, 5), (2, 2, 5), (0, 1, 4), (0, 2, 2), (3, 3, 4)] {
        review(conn, ids[product], user, rating).await;
    }
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use ecom_catalog::schema::categories;
    let tools = categories::table
        .filter(categories::name.eq("Tools"))
        .select(categories::id)
        .first(conn)
        .await
        .expect("tools");
    Shop {
        ids: ids.try_into().expect("six products"),
        tools,
    }
}

#[actix_web::test]
async fn every_sort_orders_the_catalog() {
    let (_db, s, app) = open_shop!(shop).await;
    let [hammer, screwdriver, drill, teapot, whisk, ladle] = s.ids;

    let newest = app.get("/products").await.assert_status(200).json();
    assert_eq!(
        ids(&newest),
        vec![ladle, whisk, teapot, drill, screwdriver, hammer]
    );
    assert_eq!(newest["total"], 6);
    assert_eq!(newest["limit"], 20);
    assert_eq!(newest["offset"], 0);
    assert_eq!(
        ids(&app.get("/products?sort=newest").await.json()),
        ids(&newest)
    );

    // Equal prices fall back to id order (ascending for price_asc, descending for price_desc).
    let asc = app.get("/products?sort=price_asc").await.json();
    assert_eq!(
        ids(&asc),
        vec![screwdriver, whisk, ladle, hammer, teapot, drill]
    );
    let desc = app.get("/products?sort=price_desc").await.json();
    assert_eq!(
        ids(&desc),
        vec![drill, teapot, hammer, ladle, whisk, screwdriver]
    );

    let rating = app.get("/products?sort=rating").await.json();
    let rated = &ids(&rating)[..3];
    assert_eq!(rated, [drill, teapot, hammer]);
    assert_eq!(rating["items"][0]["avg_rating"], 5.0);
    assert_eq!(rating["items"][0]["review_count"], 2);
    assert_eq!(rating["items"][2]["avg_rating"], 3.0);
    for unrated in &rating["items"].as_array().expect("items")[3..] {
        assert_eq!(unrated["avg_rating"], serde_json::Value::Null);
        assert_eq!(unrated["review_count"], 0);
    }
}

#[actix_web::test]
async fn every_filter_filters_and_total_counts_the_matches() {
    let (_db, s, app) = open_shop!(shop).await;
    let [hammer, screwdriver, drill, teapot, whisk, ladle] = s.ids;

    let tools = app
        .get(&format!("/products?category_id={}", s.tools))
        .await
        .json();
    assert_eq!(ids(&tools), vec![drill, screwdriver, hammer]);
    assert_eq!(tools["total"], 3);
    assert!(
        tools["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|p| p["category"]["name"] == "Tools")
    );

    let in_stock = app.get("/products?in_stock=true").await.json();
    assert_eq!(ids(&in_stock), vec![ladle, teapot, drill, hammer]);
    assert_eq!(in_stock["total"], 4);
    let sold_out = app.get("/products?in_stock=false").await.json();
    assert_eq!(ids(&sold_out), vec![whisk, screwdriver]);

    // Price bounds are inclusive.
    let band = app
        .get("/products?min_price=7.25&max_price=25")
        .await
        .json();
    assert_eq!(ids(&band), vec![ladle, teapot, hammer]);
    assert_eq!(band["total"], 3);
    let cheap = app.get("/products?max_price=5.00").await.json();
    assert_eq!(ids(&cheap), vec![whisk, screwdriver]);
    let dear = app.get("/products?min_price=50").await.json();
    assert_eq!(ids(&dear), vec![drill]);

    let combined = app
        .get(&format!(
            "/products?category_id={}&in_stock=true&max_price=20&sort=price_desc",
            s.tools
        ))
        .await
        .json();
    assert_eq!(ids(&combined), vec![hammer]);
    assert_eq!(combined["total"], 1);

    let none = app.get("/products?category_id=999999").await.json();
    assert_eq!(none["total"], 0);
    assert_eq!(ids(&none), Vec::<i64>::new());
}

#[actix_web::test]
async fn pages_and_their_bounds() {
    let (_db, s, app) = open_shop!(shop).await;
    let all = ids(&app.get("/products?sort=price_asc").await.json());
    assert_eq!(all.len(), s.ids.len());

    let page = app
        .get("/products?sort=price_asc&limit=2&offset=2")
        .await
        .json();
    assert_eq!(ids(&page), all[2..4].to_vec());
    assert_eq!(page["total"], 6);
    assert_eq!(page["limit"], 2);
    assert_eq!(page["offset"], 2);
    let skip = app
        .get("/products?sort=price_asc&limit=2&skip=4")
        .await
        .json();
    assert_eq!(ids(&skip), all[4..6].to_vec());
    let past = app.get("/products?offset=100").await.json();
    assert_eq!(past["total"], 6);
    assert!(ids(&past).is_empty());
    app.get("/products?limit=100").await.assert_status(200);
    app.get("/products?limit=1").await.assert_status(200);

    for bad in ["limit=0", "limit=101", "offset=-1", "skip=-5"] {
        app.get(&format!("/products?{bad}"))
            .await
            .assert_problem(422, "validation_failed");
    }
    for bad in ["limit=abc", "category_id=tools", "in_stock=maybe"] {
        app.get(&format!("/products?{bad}"))
            .await
            .assert_problem(400, "invalid_query");
    }
    for (bad, field) in [
        ("min_price=abc", "min_price"),
        ("max_price=1.005", "max_price"),
        ("min_price=-1", "min_price"),
        ("min_price=20&max_price=10", "max_price"),
        ("sort=cheapest", "sort"),
        ("sort=", "sort"),
        ("sort=relevance", "sort"),
    ] {
        let res = app.get(&format!("/products?{bad}")).await;
        res.assert_problem(422, "validation_failed");
        assert_eq!(res.json()["errors"][0]["field"], field, "{bad}");
    }
    // Reviews and categories are paged the same way.
    #[rustfmt::skip]
    let cases = [
        ("/categories?limit=0".into(), 422, "validation_failed"),
        (format!("/products/{}/reviews?limit=101", s.ids[0]), 422, "validation_failed"),
    ];
    app.anonymous().assert_problems(cases).await;
}
