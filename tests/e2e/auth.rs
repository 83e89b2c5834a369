//! Identity through the whole store: the shopper's account lifecycle.

use ecom_testkit::{TestDb, db_and_app, signed_up_app, test_app};
use serde_json::json;

use crate::{PASSWORD, make_admin, store_context};

#[actix_web::test]
async fn a_shopper_registers_logs_in_refreshes_and_logs_out() {
    let (_db, app) = db_and_app(store_context).await;

    let id = app.anonymous().register("Una@Example.com", PASSWORD).await;

    let pair = app.anonymous().log_in("una@example.com", PASSWORD).await;
    let access = pair.access_token.as_str();

    let me = app.user(access).me().await;
    me.assert_status(200);
    assert_eq!(me.json()["id"], id);

    let updated = app
        .user(access)
        .patch("/users/me", json!({"bio": "hello"}))
        .await;
    assert_eq!(updated.assert_status(200).json()["bio"], "hello");
    let public = app.get(&format!("/users/{id}")).await.json();
    assert_eq!(public["bio"], "hello");
    assert!(public.get("email").is_none());

    let refreshed = app.anonymous().refresh(&pair.refresh_token).await;
    refreshed.assert_status(200);
    let new_refresh = refreshed.json()["refresh_token"].clone();
    app.anonymous()
        .revoke(&new_refresh)
        .await
        .assert_status(204);
    app.anonymous()
        .refresh(&new_refresh)
        .await
        .assert_problem(401, "invalid_refresh_token");
}

#[actix_web::test]
async fn a_banned_shopper_is_stopped_on_the_next_request() {
    let db = TestDb::new().await;
    make_admin(&db, "vic@example.com").await;
    let app = test_app(store_context(&db)).await;
    let (wes, access) = app.sign_up("wes@example.com", PASSWORD).await;
    app.user(&access).me().await.assert_status(200);

    let admin = app.admin(app.login("vic@example.com", PASSWORD).await);
    admin.set_banned(wes, true).await;
    app.user(&access)
        .me()
        .await
        .assert_problem(403, "account_banned");
}

/// PostgreSQL text cannot hold NUL: such input is a 422, never a 500 (found by schemathesis).
#[actix_web::test]
async fn nul_characters_in_text_are_refused_not_crashed_on() {
    let (_db, app, _, token) = signed_up_app(store_context, "nul@example.com", PASSWORD).await;
    let as_token = app.user(&token);
    as_token
        .put("/users/me", json!({"full_name": "a\u{0}b"}))
        .await
        .assert_problem(422, "validation_failed");
    let search = app.get("/products?search=a%00b").await;
    assert!(
        search.status.as_u16() < 500,
        "search with NUL: {}",
        search.text()
    );
    as_token.me().await.assert_status(200);
}
