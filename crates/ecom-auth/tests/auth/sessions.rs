use actix_web::http::Method;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use ecom_auth::schema::refresh_tokens;
use ecom_auth::service::roles;
use ecom_testkit::{FORM, db_and_app};
use serde_json::json;

use crate::{PASSWORD, auth_context, login_body, signed_up};

#[actix_web::test]
async fn login_with_json_and_with_the_oauth2_form() {
    let (_db, app) = db_and_app(auth_context).await;
    signed_up!(app, "dee@example.com");

    let res = app
        .anonymous()
        .try_log_in("DEE@example.com ", PASSWORD)
        .await;
    res.assert_status(200);
    assert_eq!(res.header("cache-control"), Some("no-store"));
    let pair = res.json();
    assert_eq!(pair["token_type"], "bearer");
    assert_eq!(pair["expires_in"], 1800);
    assert!(
        pair["refresh_token"]
            .as_str()
            .is_some_and(|t| t.len() >= 43),
        "256-bit token"
    );

    let form = format!("grant_type=password&username=dee%40example.com&password={PASSWORD}&scope=");
    let res = app.post_raw("/auth/login", FORM, form).await;
    res.assert_status(200);
    let token = res.json()["access_token"]
        .as_str()
        .expect("token")
        .to_string();
    let as_token = app.user(&token);
    as_token.me().await.assert_status(200);

    let bad_grant =
        format!("grant_type=client_credentials&username=dee%40example.com&password={PASSWORD}");
    for (content_type, payload, status, code) in [
        (FORM, bad_grant, 422, "validation_failed"),
        (
            "text/plain",
            format!("dee@example.com {PASSWORD}"),
            415,
            "unsupported_media_type",
        ),
    ] {
        app.post_raw("/auth/login", content_type, payload)
            .await
            .assert_problem(status, code);
    }
}

#[actix_web::test]
async fn unknown_email_and_wrong_password_look_the_same() {
    let (_db, app) = db_and_app(auth_context).await;
    signed_up!(app, "eve@example.com");
    let wrong = app
        .anonymous()
        .try_log_in("eve@example.com", "not-the-password-1")
        .await;
    let unknown = app
        .anonymous()
        .try_log_in("nobody@example.com", PASSWORD)
        .await;
    wrong.assert_problem(401, "invalid_credentials");
    unknown.assert_problem(401, "invalid_credentials");
    assert_eq!(wrong.json()["detail"], unknown.json()["detail"]);
    assert_eq!(wrong.header("www-authenticate"), Some("Bearer"));
}

#[actix_web::test]
async fn refresh_rotates_and_reuse_revokes_the_whole_family() {
    let (_db, app) = db_and_app(auth_context).await;
    let (_, pair) = signed_up!(app, "fay@example.com");
    let first = pair.refresh_token.clone();

    let rotated = app
        .anonymous()
        .post("/auth/refresh", json!({"refresh_token": first}))
        .await;
    rotated.assert_status(200);
    let second = rotated.json()["refresh_token"]
        .as_str()
        .expect("rt")
        .to_string();
    assert_ne!(first, second);
    let access = rotated.json()["access_token"]
        .as_str()
        .expect("at")
        .to_string();
    let as_access = app.user(&access);
    as_access.me().await.assert_status(200);

    // The old token again: theft. 401, and the legitimate new token dies with it.
    #[rustfmt::skip]
    let cases = [
        ("/auth/refresh", json!({"refresh_token": first}), 401, "refresh_token_reused"),
        ("/auth/refresh", json!({"refresh_token": second}), 401, "invalid_refresh_token"),
    ];
    app.anonymous()
        .assert_writes_refused(Method::POST, cases)
        .await;
    // Access tokens of the revoked family end on their next request.
    as_access.me().await.assert_problem(401, "session_revoked");
    app.user(pair.access_token.as_str())
        .me()
        .await
        .assert_problem(401, "session_revoked");

    // Another login is another family, untouched.
    let other = app.anonymous().log_in("fay@example.com", PASSWORD).await;
    app.user(&other.access_token).me().await.assert_status(200);
    app.anonymous()
        .refresh(&other.refresh_token)
        .await
        .assert_status(200);
}

#[actix_web::test]
async fn revoke_logs_out_and_tokens_are_stored_hashed() {
    let (db, app) = db_and_app(auth_context).await;
    let (_, pair) = signed_up!(app, "gus@example.com");
    let rt = pair.refresh_token.clone();

    let mut conn = db.connect().await;
    let hashes: Vec<Vec<u8>> = refresh_tokens::table
        .select(refresh_tokens::token_hash)
        .load(&mut conn)
        .await
        .expect("rows");
    assert_eq!(hashes.len(), 1);
    assert_ne!(hashes[0], rt.as_bytes(), "only a hash is stored");
    assert_eq!(hashes[0].len(), 32, "SHA-256");

    let access = pair.access_token.as_str();
    app.user(access).me().await.assert_status(200);
    app.anonymous().revoke(&rt).await.assert_status(204);
    app.anonymous()
        .refresh(&rt)
        .await
        .assert_problem(401, "invalid_refresh_token");
    app.user(access)
        .me()
        .await
        .assert_problem(401, "session_revoked");
    app.anonymous()
        .revoke("never-issued")
        .await
        .assert_status(204);
    #[rustfmt::skip]
    let cases = [
        ("/auth/refresh", json!({"refresh_token": "never-issued"}), 401, "invalid_refresh_token"),
        ("/auth/refresh", json!({"token": "x"}), 422, "validation_failed"),
    ];
    app.anonymous()
        .assert_writes_refused(Method::POST, cases)
        .await;
}

#[actix_web::test]
async fn concurrent_refreshes_of_one_token_have_exactly_one_winner() {
    let (_db, app) = db_and_app(auth_context).await;
    let (_, pair) = signed_up!(app, "hal@example.com");
    let rt = pair.refresh_token.clone();
    let anonymous = app.anonymous();
    let attempts = (0..10).map(|_| anonymous.post("/auth/refresh", json!({"refresh_token": rt})));
    let results = futures_util::future::join_all(attempts).await;
    let wins = results.iter().filter(|r| r.status.as_u16() == 200).count();
    assert_eq!(wins, 1, "exactly one rotation wins");
    for r in results.iter().filter(|r| r.status.as_u16() != 200) {
        assert_eq!(r.status.as_u16(), 401, "losers get 401: {}", r.text());
    }
}

#[actix_web::test]
async fn a_ban_stops_issued_tokens_at_once_and_revokes_logins() {
    let (db, app) = db_and_app(auth_context).await;
    let (admin_id, _) = signed_up!(app, "ida@example.com");
    let (id, pair) = signed_up!(app, "jon@example.com");
    let access = pair.access_token.as_str();
    app.user(access).me().await.assert_status(200);

    let mut conn = db.connect().await;
    let (before, after) = roles::set_active(&mut conn, &crate::full_admin(admin_id), id, false)
        .await
        .expect("ban");
    assert!(before.is_active && !after.is_active);

    app.user(access)
        .me()
        .await
        .assert_problem(403, "account_banned");
    #[rustfmt::skip]
    let cases = [
        ("/auth/refresh", json!({"refresh_token": &pair.refresh_token}), 401, "invalid_refresh_token"),
        ("/auth/login", login_body("jon@example.com"), 403, "account_banned"),
    ];
    app.anonymous()
        .assert_writes_refused(Method::POST, cases)
        .await;

    roles::set_active(&mut conn, &crate::full_admin(admin_id), id, true)
        .await
        .expect("unban");
    // The ban ended every login: tokens from before it stay dead after the unban.
    app.user(access)
        .me()
        .await
        .assert_problem(401, "session_revoked");
    let fresh = app.anonymous().log_in("jon@example.com", PASSWORD).await;
    app.user(&fresh.access_token).me().await.assert_status(200);

    assert!(matches!(
        roles::set_active(&mut conn, &crate::full_admin(admin_id), admin_id, false).await,
        Err(ecom_auth::AuthError::CannotModifySelf)
    ));
    let _ = PASSWORD;
}

/// The periodic clean-up deletes refresh tokens expired over a day ago and the logins
/// left without tokens or revoked over a day ago; a live login and its chain stay, and
/// deleting an old parent never takes its live child with it.
#[actix_web::test]
async fn old_refresh_tokens_and_ended_logins_are_purged() {
    use diesel_async::SimpleAsyncConnection;
    use ecom_auth::schema::refresh_families;
    let (db, app) = db_and_app(auth_context).await;
    let (_, pair) = signed_up!(app, "hal@example.com");
    let rotated = app
        .anonymous()
        .post(
            "/auth/refresh",
            json!({"refresh_token": &pair.refresh_token}),
        )
        .await
        .json();
    let (_, ended) = signed_up!(app, "ivy@example.com");
    app.anonymous()
        .revoke(&ended.refresh_token)
        .await
        .assert_status(204);
    let mut conn = db.connect().await;
    // Age things: hal's first (used) token expired two days ago; ivy's login was
    // revoked two days ago; one more login whose only token expired long ago.
    conn.batch_execute(
        "UPDATE refresh_tokens SET expires_at = now() - interval '2 days' WHERE used_at IS NOT NULL; \
         UPDATE refresh_families SET revoked_at = now() - interval '2 days' WHERE revoked_at IS NOT NULL; \
         WITH f AS (INSERT INTO refresh_families (user_id, created_at) SELECT id, now() - interval '9 days' FROM users LIMIT 1 RETURNING id) \
         INSERT INTO refresh_tokens (family_id, token_hash, expires_at) SELECT id, '\\x00ff', now() - interval '2 days' FROM f;",
    )
    .await
    .expect("age rows");
    let families_before: i64 = refresh_families::table
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!(families_before, 3);
    let deleted = ecom_auth::service::sessions::purge_expired(&mut conn, 1000)
        .await
        .expect("purge");
    // hal's used token + the stale login's token, the stale login, ivy's revoked login.
    assert_eq!(deleted, 4);
    let families_after: i64 = refresh_families::table
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!(families_after, 1, "only hal's live login is left");
    // hal's live token (the child of the deleted one) still refreshes.
    app.anonymous()
        .refresh(&rotated["refresh_token"])
        .await
        .assert_status(200);
    app.user(rotated["access_token"].as_str().expect("at"))
        .get("/users/me")
        .await
        .assert_status(200);
    assert_eq!(
        ecom_auth::service::sessions::purge_expired(&mut conn, 1000)
            .await
            .expect("purge"),
        0,
        "nothing left to delete"
    );
}
