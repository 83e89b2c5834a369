use ecom_testkit::TestDb;

use crate::open_shop;
use crate::support::{ids, product};

struct Catalog {
    keyboard: i64,
    wireless_keyboard: i64,
    mouse: i64,
    desk: i64,
    cable: i64,
}

async fn catalog(db: &TestDb) -> Catalog {
    let mut conn = db.connect().await;
    let c = &mut conn;
    Catalog {
        keyboard: product!(
            c,
            "Mechanical Keyboard",
            "Clicky switches, aluminium frame",
            "89.00",
            4,
            Some("Electronics"),
        )
        .await,
        wireless_keyboard: product!(
            c,
            "Wireless Keyboard",
            "Slim and silent",
            "49.00",
            9,
            Some("Electronics"),
        )
        .await,
        mouse: product!(
            c,
            "Ergonomic Mouse",
            "Pairs well with any keyboard",
            "29.00",
            0,
            Some("Electronics"),
        )
        .await,
        desk: product!(
            c,
            "Standing Desk",
            "Room for a monitor and a keyboard tray",
            "399.00",
            2,
            Some("Office"),
        )
        .await,
        cable: product!(
            c,
            "USB Cable",
            "Braided, two metres",
            "9.00",
            50,
            Some("Electronics"),
        )
        .await,
    }
}

#[actix_web::test]
async fn search_matches_name_and_description_and_ranks_names_first() {
    let (_db, c, app) = open_shop!(catalog).await;
    let res = app
        .get("/products?search=keyboard")
        .await
        .assert_status(200)
        .json();
    let found = ids(&res);
    assert_eq!(res["total"], 4);
    assert_eq!(found.len(), 4);
    assert!(!found.contains(&c.cable));
    // Relevance is the default with a search: the two with "keyboard" in the name first.
    let mut top = found[..2].to_vec();
    top.sort();
    let mut named = vec![c.keyboard, c.wireless_keyboard];
    named.sort();
    assert_eq!(top, named);
    let mut rest = found[2..].to_vec();
    rest.sort();
    let mut described = vec![c.mouse, c.desk];
    described.sort();
    assert_eq!(rest, described);

    // Stemming: "keyboards" finds the same products.
    assert_eq!(
        app.get("/products?search=keyboards").await.json()["total"],
        4
    );
    // Description only.
    assert_eq!(
        ids(&app.get("/products?search=braided").await.json()),
        vec![c.cable]
    );
    // Nothing.
    let none = app.get("/products?search=submarine").await.json();
    assert_eq!(none["total"], 0);
}

#[actix_web::test]
async fn name_is_an_alias_of_search() {
    let (_db, c, app) = open_shop!(catalog).await;
    let by_search = app.get("/products?search=mouse").await.json();
    let by_name = app.get("/products?name=mouse").await.json();
    assert_eq!(ids(&by_search), vec![c.mouse]);
    assert_eq!(ids(&by_name), ids(&by_search));
    // The same value twice is fine; two different ones are refused.
    app.get("/products?name=mouse&search=mouse")
        .await
        .assert_status(200);
    let res = app.get("/products?name=mouse&search=desk").await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.json()["errors"][0]["field"], "name");
    // A blank search is no search.
    assert_eq!(app.get("/products?search=%20").await.json()["total"], 5);
}

#[actix_web::test]
async fn prefixes_and_typos_still_find_products() {
    let (_db, c, app) = open_shop!(catalog).await;
    let prefix = ids(&app.get("/products?search=ergon").await.json());
    assert_eq!(prefix, vec![c.mouse]);
    let typo = ids(&app.get("/products?search=standng").await.json());
    assert_eq!(typo, vec![c.desk]);
    let typo = ids(&app.get("/products?search=mechanicl").await.json());
    assert_eq!(typo, vec![c.keyboard]);
}

#[actix_web::test]
async fn websearch_syntax_excludes_and_quotes() {
    let (_db, c, app) = open_shop!(catalog).await;
    let mut without = ids(&app
        .get("/products?search=keyboard%20-wireless")
        .await
        .json());
    without.sort();
    let mut expected = vec![c.keyboard, c.mouse, c.desk];
    expected.sort();
    assert_eq!(without, expected);
    let phrase = ids(&app
        .get("/products?search=%22standing%20desk%22")
        .await
        .json());
    assert_eq!(phrase, vec![c.desk]);
    let either = app.get("/products?search=mouse%20or%20cable").await.json();
    assert_eq!(either["total"], 2);
}

#[actix_web::test]
async fn search_combines_with_filters_and_other_sorts() {
    let (_db, c, app) = open_shop!(catalog).await;
    let by_price = ids(&app
        .get("/products?search=keyboard&sort=price_asc")
        .await
        .json());
    assert_eq!(
        by_price,
        vec![c.mouse, c.wireless_keyboard, c.keyboard, c.desk]
    );
    let in_stock = app
        .get("/products?search=keyboard&in_stock=true&max_price=100")
        .await
        .json();
    let mut found = ids(&in_stock);
    found.sort();
    let mut expected = vec![c.keyboard, c.wireless_keyboard];
    expected.sort();
    assert_eq!(found, expected);
    assert_eq!(in_stock["total"], 2);
    let paged = app
        .get("/products?search=keyboard&limit=1&offset=1")
        .await
        .json();
    assert_eq!(paged["total"], 4);
    assert_eq!(ids(&paged).len(), 1);
    app.get("/products?search=keyboard&sort=relevance")
        .await
        .assert_status(200);
    let long = "k".repeat(201);
    app.get(&format!("/products?search={long}"))
        .await
        .assert_problem(422, "validation_failed");
}
