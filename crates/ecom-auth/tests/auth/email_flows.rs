//! `user.registered`, email tokens and the flows that mail them: verification, forgotten
//! and reset passwords, password change. The mails are read from the queue they are
//! written to (`mail_outbox`); ecom-mail's tests deliver them to a real SMTP server.

use std::time::Duration;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use ecom_auth::schema::{email_tokens, login_throttle, refresh_families, users};
use ecom_core::events::events;
use ecom_core::mail::mail_outbox;
use ecom_testkit::{TestDb, db_and_app, http_client, spawn_server_with_workers};
use futures_util::future::join_all;
use serde_json::json;

use crate::{PASSWORD, auth_context, auth_context_with, signed_up};

const NEW_PASSWORD: &str = "lantern-quartz-meadow-77";

/// The token in the newest `kind` mail queued for `email` (as the link in it carries it).
async fn mailed_token(db: &TestDb, email: &str, kind: &str) -> String {
    let mut conn = db.connect().await;
    let body: String = mail_outbox::table
        .filter(mail_outbox::recipient.eq(email))
        .filter(mail_outbox::kind.eq(kind))
        .order(mail_outbox::id.desc())
        .select(mail_outbox::text_body)
        .first(&mut conn)
        .await
        .expect("a mail of that kind was queued");
    let start = body.find("?token=").expect("a link with a token") + "?token=".len();
    body[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .collect()
}

/// After a password change or reset: each `ended` login can neither refresh nor act
/// (`session_revoked`), [`PASSWORD`] no longer signs in, [`NEW_PASSWORD`] does (its tokens).
async fn only_the_new_password_signs_in<S: ecom_testkit::AppService>(
    app: &ecom_testkit::TestApp<S>,
    email: &str,
    ended: &[&ecom_testkit::client::Tokens],
) -> ecom_testkit::client::Tokens {
    for login in ended {
        app.anonymous()
            .refresh(&login.refresh_token)
            .await
            .assert_status(401);
        app.user(&login.access_token)
            .me()
            .await
            .assert_problem(401, "session_revoked");
    }
    app.anonymous()
        .try_log_in(email, PASSWORD)
        .await
        .assert_status(401);
    app.anonymous().log_in(email, NEW_PASSWORD).await
}

async fn mails_queued(db: &TestDb, email: &str, kind: &str) -> i64 {
    let mut conn = db.connect().await;
    mail_outbox::table
        .filter(mail_outbox::recipient.eq(email))
        .filter(mail_outbox::kind.eq(kind))
        .count()
        .get_result(&mut conn)
        .await
        .expect("count mails")
}

#[actix_web::test]
async fn register_records_user_registered_once_and_queues_the_verification_mail() {
    let (db, app) = db_and_app(auth_context).await;
    let res = app
        .anonymous()
        .post(
            "/auth/register",
            json!({"email": "Rita@Example.com", "password": PASSWORD, "full_name": "Rita"}),
        )
        .await;
    res.assert_status(201);
    let user = res.json();
    assert_eq!(user["email_verified"], false);
    let id = user["id"].as_i64().expect("id");

    let mut conn = db.connect().await;
    type Recorded = (String, i64, Option<i64>, Option<i64>, serde_json::Value);
    let recorded: Vec<Recorded> = events::table
        .filter(events::aggregate_type.eq("user"))
        .select((
            events::event_type,
            events::aggregate_id,
            events::sequence.nullable(),
            events::owner_id,
            events::data,
        ))
        .load(&mut conn)
        .await
        .expect("events");
    assert_eq!(recorded.len(), 1, "one event for one account");
    let (event_type, aggregate_id, sequence, owner_id, data) = &recorded[0];
    assert_eq!(
        // A user event has no owner: `GET /users/me/events` shows orders and payments only.
        (event_type.as_str(), *aggregate_id, *sequence, *owner_id),
        ("user.registered", id, Some(1), None)
    );
    // The user exactly as GET /users/me shows it.
    let me = app.login("rita@example.com", PASSWORD).await;
    assert_eq!(*data, json!({"user": app.user(&me).me().await.json()}));

    assert_eq!(
        mails_queued(&db, "rita@example.com", "verify_email").await,
        1
    );
    let token = mailed_token(&db, "rita@example.com", "verify_email").await;
    assert_eq!(token.len(), 43, "256 bits, URL-safe base64");
    let stored: Vec<u8> = email_tokens::table
        .select(email_tokens::token_hash)
        .first(&mut conn)
        .await
        .expect("a token row");
    assert_ne!(stored, token.as_bytes(), "only a hash is stored");

    // A refused registration records nothing and mails nothing.
    app.anonymous()
        .post(
            "/auth/register",
            json!({"email": "rita@example.com", "password": PASSWORD}),
        )
        .await
        .assert_problem(409, "email_taken");
    let count: i64 = events::table
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!(count, 1);
    assert_eq!(
        mails_queued(&db, "rita@example.com", "verify_email").await,
        1
    );
}

#[actix_web::test]
async fn administrators_made_by_command_or_at_start_are_registered_too() {
    let db = TestDb::new().await;
    let mut conn = db.connect().await;
    let boss =
        ecom_auth::service::accounts::create_admin(&mut conn, "boss@example.com", PASSWORD.into())
            .await
            .expect("created");
    // Promoting an existing account registers nobody.
    ecom_auth::service::accounts::create_admin(&mut conn, "boss@example.com", PASSWORD.into())
        .await
        .expect("promoted");
    assert!(
        !ecom_auth::service::accounts::ensure_development_admin(&mut conn)
            .await
            .expect("checked"),
        "an admin exists already"
    );
    let registered: Vec<(i64, Option<i64>)> = events::table
        .filter(events::event_type.eq("user.registered"))
        .select((events::aggregate_id, events::sequence.nullable()))
        .load(&mut conn)
        .await
        .expect("events");
    assert_eq!(registered, vec![(boss.id, Some(1))]);

    let fresh = TestDb::new().await;
    let mut conn = fresh.connect().await;
    assert!(
        ecom_auth::service::accounts::ensure_development_admin(&mut conn)
            .await
            .expect("created")
    );
    let count: i64 = events::table
        .filter(events::event_type.eq("user.registered"))
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!(count, 1);
}

#[actix_web::test]
async fn a_verification_link_works_once_and_only_while_it_is_the_newest_and_fresh() {
    let (db, app) = db_and_app(auth_context).await;
    let (_, tokens) = signed_up!(app, "vera@example.com");
    let me = app.user(&tokens.access_token);
    let first = mailed_token(&db, "vera@example.com", "verify_email").await;

    for body in [
        json!({"token": "not-a-token"}),
        json!({"token": first.to_uppercase()}),
    ] {
        app.anonymous()
            .post("/auth/verify-email", body)
            .await
            .assert_problem(400, "invalid_or_expired_token");
    }
    app.anonymous()
        .post("/auth/verify-email", json!({"token": first, "email": "x"}))
        .await
        .assert_problem(422, "validation_failed");

    // A requested mail voids the register mail's link.
    me.post("/auth/verify-email/request", json!({}))
        .await
        .assert_status(202);
    let second = mailed_token(&db, "vera@example.com", "verify_email").await;
    assert_ne!(first, second);
    app.anonymous()
        .post("/auth/verify-email", json!({"token": first}))
        .await
        .assert_problem(400, "invalid_or_expired_token");

    // An expired link is refused.
    let mut conn = db.connect().await;
    diesel::update(email_tokens::table.filter(email_tokens::used_at.is_null()))
        .set(email_tokens::expires_at.eq(chrono::Utc::now() - chrono::Duration::seconds(1)))
        .execute(&mut conn)
        .await
        .expect("expire");
    app.anonymous()
        .post("/auth/verify-email", json!({"token": second}))
        .await
        .assert_problem(400, "invalid_or_expired_token");
    diesel::update(email_tokens::table.filter(email_tokens::used_at.is_null()))
        .set(email_tokens::expires_at.eq(chrono::Utc::now() + chrono::Duration::hours(1)))
        .execute(&mut conn)
        .await
        .expect("unexpire");

    let res = app
        .anonymous()
        .post("/auth/verify-email", json!({"token": second}))
        .await;
    res.assert_status(204);
    assert_eq!(me.me().await.json()["email_verified"], true);
    app.anonymous()
        .post("/auth/verify-email", json!({"token": second}))
        .await
        .assert_problem(400, "invalid_or_expired_token");
    me.post("/auth/verify-email/request", json!({}))
        .await
        .assert_problem(409, "email_already_verified");
}

#[actix_web::test]
async fn verification_requests_are_one_a_minute_not_counting_the_register_mail() {
    let (db, app) = db_and_app(auth_context).await;
    let (id, tokens) = signed_up!(app, "rex@example.com");
    let me = app.user(&tokens.access_token);
    let res = me.post("/auth/verify-email/request", json!({})).await;
    res.assert_status(202);
    assert_eq!(res.json()["status"], "accepted");
    let again = me.post("/auth/verify-email/request", json!({})).await;
    again.assert_problem(429, "rate_limited");
    let retry_after: u64 = again
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((55..=61).contains(&retry_after), "{retry_after}");
    assert_eq!(
        mails_queued(&db, "rex@example.com", "verify_email").await,
        2
    );

    // A minute later it is allowed again.
    let mut conn = db.connect().await;
    diesel::update(users::table.find(id))
        .set(
            users::verification_requested_at.eq(chrono::Utc::now() - chrono::Duration::seconds(61)),
        )
        .execute(&mut conn)
        .await
        .expect("age the request");
    me.post("/auth/verify-email/request", json!({}))
        .await
        .assert_status(202);
    // Concurrent requests: one mail.
    diesel::update(users::table.find(id))
        .set(
            users::verification_requested_at.eq(chrono::Utc::now() - chrono::Duration::seconds(61)),
        )
        .execute(&mut conn)
        .await
        .expect("age the request");
    let answers = join_all((0..5).map(|_| me.post("/auth/verify-email/request", json!({})))).await;
    let accepted = answers.iter().filter(|r| r.status.as_u16() == 202).count();
    assert_eq!(accepted, 1);
    assert_eq!(
        mails_queued(&db, "rex@example.com", "verify_email").await,
        4
    );
    app.anonymous()
        .post("/auth/verify-email/request", json!({}))
        .await
        .assert_status(401);
}

/// Of concurrent uses of one token over real sockets, exactly one wins: verification and
/// reset alike.
#[actix_web::test]
async fn of_concurrent_uses_of_a_token_exactly_one_wins() {
    let (db, app) = db_and_app(auth_context).await;
    signed_up!(app, "cora@example.com");
    app.anonymous()
        .post(
            "/auth/password/forgot",
            json!({"email": "cora@example.com"}),
        )
        .await
        .assert_status(202);
    wait_for_mails(&db, "cora@example.com", "reset_password", 1).await;
    let verify = mailed_token(&db, "cora@example.com", "verify_email").await;
    let reset = mailed_token(&db, "cora@example.com", "reset_password").await;
    drop(app);
    let server = spawn_server_with_workers(auth_context(&db), 4);
    let client = http_client();

    let answers = join_all((0..12).map(|_| {
        client
            .post(server.url("/auth/verify-email"))
            .send_json(&json!({"token": verify}))
    }))
    .await;
    let mut statuses: Vec<u16> = answers
        .into_iter()
        .map(|r| r.expect("answers").status().as_u16())
        .collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [[204].as_slice(), &[400; 11]].concat());

    let answers = join_all((0..8).map(|i| {
        client
            .post(server.url("/auth/password/reset"))
            .send_json(&json!({"token": reset, "password": format!("{NEW_PASSWORD}-{i}")}))
    }))
    .await;
    let statuses: Vec<u16> = answers
        .into_iter()
        .map(|r| r.expect("answers").status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 204).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 400).count(),
        7,
        "{statuses:?}"
    );
    // The winner's password is the one that works.
    let winner = statuses.iter().position(|s| *s == 204).expect("a winner");
    let login = client
        .post(server.url("/auth/login"))
        .send_json(
            &json!({"email": "cora@example.com", "password": format!("{NEW_PASSWORD}-{winner}")}),
        )
        .await
        .expect("answers");
    assert_eq!(login.status().as_u16(), 200);
    server.stop().await;
}

/// Waits for the background task of `forgot` to queue `count` mails.
async fn wait_for_mails(db: &TestDb, email: &str, kind: &str, count: i64) {
    for _ in 0..200 {
        if mails_queued(db, email, kind).await >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{count} {kind} mail(s) for {email} were not queued");
}

#[actix_web::test]
async fn forgot_answers_alike_for_every_address_and_a_reset_revokes_every_login() {
    let (db, app) = db_and_app(auth_context).await;
    let (id, first_login) = signed_up!(app, "fay@example.com");
    let second_login = app.anonymous().log_in("fay@example.com", PASSWORD).await;

    let known = app
        .anonymous()
        .post(
            "/auth/password/forgot",
            json!({"email": " FAY@example.com"}),
        )
        .await;
    let unknown = app
        .anonymous()
        .post(
            "/auth/password/forgot",
            json!({"email": "nobody@example.com"}),
        )
        .await;
    known.assert_status(202);
    unknown.assert_status(202);
    assert_eq!(known.body, unknown.body, "the same body either way");
    app.anonymous()
        .post("/auth/password/forgot", json!({"email": "not an email"}))
        .await
        .assert_problem(422, "validation_failed");
    app.anonymous()
        .post(
            "/auth/password/forgot",
            json!({"email": "fay@example.com", "role": "admin"}),
        )
        .await
        .assert_problem(422, "validation_failed");
    wait_for_mails(&db, "fay@example.com", "reset_password", 1).await;
    assert_eq!(
        mails_queued(&db, "nobody@example.com", "reset_password").await,
        0
    );
    let token = mailed_token(&db, "fay@example.com", "reset_password").await;

    // A weak password is refused and the token is not spent.
    app.anonymous()
        .post(
            "/auth/password/reset",
            json!({"token": token, "password": "password123"}),
        )
        .await
        .assert_problem(422, "validation_failed");
    app.anonymous()
        .post(
            "/auth/password/reset",
            json!({"token": "forged", "password": NEW_PASSWORD}),
        )
        .await
        .assert_problem(400, "invalid_or_expired_token");
    app.anonymous()
        .post(
            "/auth/password/reset",
            json!({"token": token, "password": NEW_PASSWORD}),
        )
        .await
        .assert_status(204);

    let fresh =
        only_the_new_password_signs_in(&app, "fay@example.com", &[&first_login, &second_login])
            .await;
    assert_eq!(
        app.user(&fresh.access_token).me().await.json()["email_verified"],
        true,
        "a followed reset link proves the mailbox"
    );
    app.anonymous()
        .post(
            "/auth/password/reset",
            json!({"token": token, "password": "another-fine-passphrase-9"}),
        )
        .await
        .assert_problem(400, "invalid_or_expired_token");

    let mut conn = db.connect().await;
    let open: i64 = refresh_families::table
        .filter(refresh_families::user_id.eq(id))
        .filter(refresh_families::revoked_at.is_null())
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!(open, 1, "only the login made after the reset");
}

#[actix_web::test]
async fn forgot_mails_an_account_three_times_an_hour_and_limits_each_address_to_ten() {
    let (db, app) = db_and_app(auth_context).await;
    let (id, _) = signed_up!(app, "gus@example.com");
    for _ in 0..5 {
        app.anonymous()
            .post("/auth/password/forgot", json!({"email": "gus@example.com"}))
            .await
            .assert_status(202);
    }
    // Every request's background work has counted before the mails are counted.
    let mut conn = db.connect().await;
    for _ in 0..200 {
        let counted: Option<i32> = login_throttle::table
            .find(format!("reset_mail:{id}"))
            .select(login_throttle::attempts)
            .first(&mut conn)
            .await
            .optional()
            .expect("read");
        if counted == Some(5) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        mails_queued(&db, "gus@example.com", "reset_password").await,
        3
    );
    // Each reset mail voided the links of the ones before it.
    let bodies: Vec<String> = mail_outbox::table
        .filter(mail_outbox::kind.eq("reset_password"))
        .order(mail_outbox::id)
        .select(mail_outbox::text_body)
        .load(&mut conn)
        .await
        .expect("bodies");
    let tokens: Vec<String> = bodies
        .iter()
        .map(|b| {
            let start = b.find("?token=").expect("a link") + "?token=".len();
            b[start..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
                .collect()
        })
        .collect();
    for old in &tokens[..2] {
        app.anonymous()
            .post(
                "/auth/password/reset",
                json!({"token": old, "password": NEW_PASSWORD}),
            )
            .await
            .assert_problem(400, "invalid_or_expired_token");
    }
    app.anonymous()
        .post(
            "/auth/password/reset",
            json!({"token": tokens[2], "password": NEW_PASSWORD}),
        )
        .await
        .assert_status(204);

    for _ in 5..10 {
        app.anonymous()
            .post(
                "/auth/password/forgot",
                json!({"email": "else@example.com"}),
            )
            .await
            .assert_status(202);
    }
    let eleventh = app
        .anonymous()
        .post("/auth/password/forgot", json!({"email": "gus@example.com"}))
        .await;
    eleventh.assert_problem(429, "rate_limited");
    let retry_after: u64 = eleventh
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((3500..=3601).contains(&retry_after), "{retry_after}");
}

#[actix_web::test]
async fn changing_the_password_keeps_the_callers_login_and_ends_the_others() {
    let (_db, app) =
        db_and_app(|db| auth_context_with(db, &[("LOGIN_MAX_FAILURES_PER_EMAIL", "3")])).await;
    let (_, mine) = signed_up!(app, "hal@example.com");
    let other = app.anonymous().log_in("hal@example.com", PASSWORD).await;
    let me = app.user(&mine.access_token);

    me.post(
        "/users/me/password",
        json!({"current_password": "wrong-guess-123456", "new_password": NEW_PASSWORD}),
    )
    .await
    .assert_problem(403, "invalid_current_password");
    me.post(
        "/users/me/password",
        json!({"current_password": PASSWORD, "new_password": "password123"}),
    )
    .await
    .assert_problem(422, "validation_failed");
    me.post(
        "/users/me/password",
        json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD, "extra": 1}),
    )
    .await
    .assert_problem(422, "validation_failed");
    app.anonymous()
        .post(
            "/users/me/password",
            json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
        )
        .await
        .assert_status(401);

    me.post(
        "/users/me/password",
        json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
    )
    .await
    .assert_status(204);
    me.me().await.assert_status(200);
    app.anonymous()
        .refresh(&mine.refresh_token)
        .await
        .assert_status(200);
    let fresh = only_the_new_password_signs_in(&app, "hal@example.com", &[&other]).await;

    // Wrong current passwords count as failed logins: over the limit, 429 for both.
    let me = app.user(&fresh.access_token);
    for _ in 0..3 {
        me.post(
            "/users/me/password",
            json!({"current_password": "wrong-guess-123456", "new_password": PASSWORD}),
        )
        .await
        .assert_problem(403, "invalid_current_password");
    }
    me.post(
        "/users/me/password",
        json!({"current_password": NEW_PASSWORD, "new_password": PASSWORD}),
    )
    .await
    .assert_problem(429, "rate_limited");
    app.anonymous()
        .try_log_in("hal@example.com", NEW_PASSWORD)
        .await
        .assert_problem(429, "rate_limited");
}

#[actix_web::test]
async fn old_email_tokens_are_purged_in_bounded_batches() {
    let (db, app) = db_and_app(auth_context).await;
    for name in ["ida", "jon", "kim"] {
        signed_up!(app, &format!("{name}@example.com"));
    }
    let mut conn = db.connect().await;
    // Two tokens expired over a day ago, one expired just now (kept a day), one good.
    let ids: Vec<i64> = email_tokens::table
        .select(email_tokens::id)
        .order(email_tokens::id)
        .load(&mut conn)
        .await
        .expect("ids");
    diesel::update(email_tokens::table.filter(email_tokens::id.eq_any(&ids[..2])))
        .set(email_tokens::expires_at.eq(chrono::Utc::now() - chrono::Duration::days(2)))
        .execute(&mut conn)
        .await
        .expect("age");
    let chore = ecom_auth::chores()
        .into_iter()
        .find(|c| c.name == "email_tokens")
        .expect("the chore");
    assert_eq!(chore.run_once(&mut conn, 1).await.expect("runs"), 1);
    assert_eq!(chore.run_once(&mut conn, 10).await.expect("runs"), 1);
    assert_eq!(chore.run_once(&mut conn, 10).await.expect("runs"), 0);
    let left: Vec<i64> = email_tokens::table
        .select(email_tokens::id)
        .order(email_tokens::id)
        .load(&mut conn)
        .await
        .expect("ids");
    assert_eq!(left, ids[2..]);
}

/// The answer to `forgot` never waits on the work only an existing account causes: with the
/// account's row locked by another transaction (so issuing its token must wait), the
/// request still answers at once; the mail follows when the lock goes.
#[actix_web::test]
async fn forgot_answers_without_waiting_for_the_accounts_mail() {
    use diesel_async::AsyncConnection;
    let (db, app) = db_and_app(auth_context).await;
    let (id, _) = signed_up!(app, "lou@example.com");
    let mut holder = db.connect().await;
    let (locked_tx, locked_rx) = tokio::sync::oneshot::channel();
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let holding = tokio::spawn(async move {
        holder
            .transaction::<_, diesel::result::Error, _>(async |conn| {
                users::table
                    .find(id)
                    .select(users::id)
                    .for_update()
                    .get_result::<i64>(conn)
                    .await?;
                let _ = locked_tx.send(());
                let _ = release_rx.await;
                Ok(())
            })
            .await
            .expect("the lock is held and released");
    });
    locked_rx.await.expect("the row is locked");

    let started = std::time::Instant::now();
    let res = app
        .anonymous()
        .post("/auth/password/forgot", json!({"email": "lou@example.com"}))
        .await;
    res.assert_status(202);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered in {:?} while the account was locked",
        started.elapsed()
    );
    assert_eq!(
        mails_queued(&db, "lou@example.com", "reset_password").await,
        0,
        "the mail waits for the lock, the answer did not"
    );
    release_tx.send(()).expect("release");
    holding.await.expect("holder ends");
    wait_for_mails(&db, "lou@example.com", "reset_password", 1).await;
}
