//! Guest carts and who holds a cart.

use diesel::sql_types::{BigInt, Bytea};
use diesel_async::RunQueryDsl;
use serde_json::json;
use sha2::Digest;

use crate::shop;
use crate::support::{
    As, OTHER, SHOPPER, get_cart, guest_cart, post_cart, put_item, token, user_cart, variant_of,
};

#[actix_web::test]
async fn a_guest_cart_is_held_by_its_token_and_nobody_else() {
    let (_db, _conn, [mug], app) = shop!(("Mug", "8.50", 10)).await;
    let variant = variant_of(&app, mug).await;
    let created = post_cart(&app, As::anonymous()).await;
    created.assert_status(201);
    let body = created.json();
    let id = body["id"].as_i64().expect("id");
    let token_text = body["token"]
        .as_str()
        .expect("a guest cart shows its token");
    assert_eq!(token_text.len(), 64, "256 bits, hex");
    assert!(token_text.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(body["status"], "active");
    assert_eq!(body["items"], json!([]));
    assert_eq!(body["subtotal"], "0.00");
    assert_eq!(
        created.header("location"),
        Some(format!("/carts/{id}").as_str())
    );

    let read = get_cart(&app, id, As::guest(token_text)).await;
    read.assert_status(200);
    assert_eq!(read.json()["id"], id);

    // Without the token, with another token, or as a signed-in user: not found.
    get_cart(&app, id, As::anonymous())
        .await
        .assert_problem(404, "not_found");
    let (_, other_token) = guest_cart(&app).await;
    get_cart(&app, id, As::guest(&other_token))
        .await
        .assert_problem(404, "not_found");
    get_cart(&app, id, As::user(&token(SHOPPER)))
        .await
        .assert_problem(404, "not_found");
    put_item(&app, id, variant, 1, As::anonymous())
        .await
        .assert_problem(404, "not_found");
    put_item(&app, id, variant, 1, As::guest(&other_token))
        .await
        .assert_problem(404, "not_found");

    // The token works for writes, and for a signed-in caller that sends it.
    put_item(&app, id, variant, 2, As::guest(token_text))
        .await
        .assert_status(200);
    let both = As {
        bearer: Some(&token(SHOPPER)),
        cart_token: Some(token_text),
        idempotency_key: None,
    };
    let read = get_cart(&app, id, both).await;
    read.assert_status(200);
    assert_eq!(read.json()["items"][0]["quantity"], 2);
}

#[actix_web::test]
async fn only_the_tokens_hash_is_stored() {
    let (db, app) = ecom_testkit::db_and_app(|db| {
        ecom_testkit::fixtures::context(db, crate::support::modules())
    })
    .await;
    let (id, token_text) = guest_cart(&app).await;
    let mut conn = db.connect().await;
    #[derive(diesel::QueryableByName)]
    struct Stored {
        #[diesel(sql_type = Bytea)]
        token_hash: Vec<u8>,
    }
    let stored: Stored = diesel::sql_query("SELECT token_hash FROM carts WHERE id = $1")
        .bind::<BigInt, _>(id)
        .get_result(&mut conn)
        .await
        .expect("the cart row");
    assert_eq!(
        stored.token_hash,
        sha2::Sha256::digest(token_text.as_bytes()).to_vec()
    );
    assert_eq!(
        stored.token_hash.len(),
        32,
        "a SHA-256, not the 64-character token"
    );
}

#[actix_web::test]
async fn a_users_cart_is_theirs_alone() {
    let (_db, app) = ecom_testkit::db_and_app(|db| {
        ecom_testkit::fixtures::context(db, crate::support::modules())
    })
    .await;
    let first = post_cart(&app, As::user(&token(SHOPPER))).await;
    first.assert_status(201);
    let body = first.json();
    assert!(
        body.get("token").is_none(),
        "a user's cart has no token: {body}"
    );
    let id = body["id"].as_i64().expect("id");
    let again = post_cart(&app, As::user(&token(SHOPPER))).await;
    again.assert_status(200);
    assert_eq!(again.json()["id"], id, "the active cart again");
    get_cart(&app, id, As::user(&token(SHOPPER)))
        .await
        .assert_status(200);
    get_cart(&app, id, As::user(&token(OTHER)))
        .await
        .assert_problem(404, "not_found");
    get_cart(&app, id, As::anonymous())
        .await
        .assert_problem(404, "not_found");
    assert_ne!(
        user_cart(&app, &token(OTHER)).await,
        id,
        "another user gets a cart of their own"
    );
    // A bad bearer token is refused, not taken for a guest.
    post_cart(&app, As::user("not-a-token"))
        .await
        .assert_status(401);
}
