use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use ecom_auth::schema::users;
use ecom_auth::service::accounts;
use ecom_testkit::fixtures::count_rows;
use ecom_testkit::{TestDb, db_and_app};
use serde_json::json;

use crate::{PASSWORD, auth_context, signed_up};

#[actix_web::test]
async fn register_normalizes_email_and_never_returns_the_hash() {
    let (db, app) = db_and_app(auth_context).await;
    let res = app
        .anonymous()
        .post(
            "/auth/register",
            json!({"email": "  Ada@Example.COM ", "password": PASSWORD, "full_name": "Ada"}),
        )
        .await;
    res.assert_status(201);
    let body = res.json();
    assert_eq!(body["email"], "ada@example.com");
    assert_eq!(body["role"], "user");
    assert_eq!(body["is_active"], true);
    assert_eq!(body["full_name"], "Ada");
    assert!(body.get("password_hash").is_none() && body.get("password").is_none());

    let mut conn = db.connect().await;
    let hash: String = users::table
        .select(users::password_hash)
        .first(&mut conn)
        .await
        .expect("stored");
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "OWASP argon2id PHC string: {hash}"
    );

    let dup = app
        .anonymous()
        .post(
            "/auth/register",
            json!({"email": "ADA@example.com", "password": PASSWORD}),
        )
        .await;
    dup.assert_problem(409, "email_taken");
}

#[actix_web::test]
async fn register_refuses_bad_input() {
    let (db, app) = db_and_app(auth_context).await;
    let cases = [
        (
            json!({"email": "not-an-email", "password": PASSWORD}),
            "email",
        ),
        (
            json!({"email": "a@b.com", "password": "short1!"}),
            "password",
        ),
        (
            json!({"email": "a@b.com", "password": "x".repeat(129)}),
            "password",
        ),
        (
            json!({"email": "a@b.com", "password": "password123"}),
            "password",
        ),
        (
            json!({"email": "a@b.com", "password": "qwertyuiop"}),
            "password",
        ),
        (
            json!({"email": "a@b.com", "password": PASSWORD, "role": "admin"}),
            "role",
        ),
        (
            json!({"email": "a@b.com", "password": PASSWORD, "is_active": false}),
            "is_active",
        ),
        (json!({"email": "a@b.com"}), "password"),
    ];
    for (body, field) in cases {
        let res = app.anonymous().post("/auth/register", body.clone()).await;
        res.assert_problem(422, "validation_failed");
        let fields: Vec<String> = res.json()["errors"]
            .as_array()
            .expect("errors list")
            .iter()
            .map(|e| e["field"].as_str().unwrap_or_default().to_string())
            .collect();
        assert!(
            fields.contains(&field.to_string()),
            "{body} should name {field}: {}",
            res.json()
        );
    }
    let mut conn = db.connect().await;
    assert_eq!(
        count_rows(&mut conn, "users").await,
        0,
        "nothing was written"
    );
}

#[actix_web::test]
async fn profile_read_update_and_mass_assignment_refused() {
    let (_db, app) = db_and_app(auth_context).await;
    let (id, pair) = signed_up!(app, "bo@example.com");
    let token = pair.access_token.as_str();

    let me = app.user(token).me().await;
    me.assert_status(200);
    assert_eq!(me.json()["id"], id);
    assert_eq!(me.json()["email"], "bo@example.com");
    ecom_testkit::fixtures::assert_fields(
        &me.json(),
        &[
            "id",
            "email",
            "role",
            "is_active",
            "email_verified",
            "full_name",
            "bio",
            "created_at",
        ],
    );

    let put = app
        .user(token)
        .put(
            "/users/me",
            json!({"full_name": "Bo Diddley", "bio": "guitars"}),
        )
        .await;
    put.assert_status(200);
    assert_eq!(put.json()["full_name"], "Bo Diddley");

    let patch = app
        .user(token)
        .patch("/users/me", json!({"bio": null}))
        .await;
    patch.assert_status(200);
    assert_eq!(patch.json()["bio"], serde_json::Value::Null, "null clears");
    assert_eq!(patch.json()["full_name"], "Bo Diddley", "absent stays");

    for body in [
        json!({"role": "admin"}),
        json!({"is_active": false}),
        json!({"email": "x@y.com"}),
    ] {
        app.user(token)
            .put("/users/me", body)
            .await
            .assert_problem(422, "validation_failed");
    }
    let me = app.user(token).me().await.json();
    assert_eq!(me["role"], "user");
    assert_eq!(me["email"], "bo@example.com");

    app.user(token)
        .patch("/users/me", json!({"full_name": "x".repeat(101)}))
        .await
        .assert_problem(422, "validation_failed");
    app.anonymous()
        .put("/users/me", json!({"bio": "hi"}))
        .await
        .assert_problem(401, "not_authenticated");
}

#[actix_web::test]
async fn public_profile_never_shows_the_email() {
    let (_db, app) = db_and_app(auth_context).await;
    let (id, _) = signed_up!(app, "cy@example.com");
    let res = app.get(&format!("/users/{id}")).await;
    res.assert_status(200);
    let body = res.json();
    assert_eq!(body["id"], id);
    assert!(body.get("email").is_none(), "{body}");
    assert!(!res.text().contains("cy@example.com"));
    app.get("/users/999999")
        .await
        .assert_problem(404, "not_found");
}

#[actix_web::test]
async fn development_admin_and_create_admin() {
    let (db, app) = db_and_app(auth_context).await;
    let mut conn = db.connect().await;
    assert!(
        accounts::ensure_development_admin(&mut conn)
            .await
            .expect("created")
    );
    assert!(
        !accounts::ensure_development_admin(&mut conn)
            .await
            .expect("only once")
    );
    let login = app
        .anonymous()
        .try_log_in("admin@example.com", "admin123")
        .await;
    login.assert_status(200);
    let me = app
        .user(login.json()["access_token"].as_str().expect("token"))
        .get("/users/me")
        .await;
    assert_eq!(me.json()["role"], "admin");

    let weak = accounts::create_admin(&mut conn, "boss@example.com", "admin123".into()).await;
    assert!(weak.is_err(), "create-admin enforces the password policy");
    let boss = accounts::create_admin(&mut conn, "Boss@Example.com", PASSWORD.into())
        .await
        .expect("created");
    assert_eq!(boss.role, "admin");
    assert_eq!(boss.email, "boss@example.com");

    let (id, _) = signed_up!(app, "promote@example.com");
    let promoted = accounts::create_admin(
        &mut conn,
        "promote@example.com",
        "another-plum-orbit-77".into(),
    )
    .await
    .expect("promoted");
    assert_eq!(promoted.id, id);
    assert_eq!(promoted.role, "admin");
}

/// Several processes starting at once on one database all pass the development-admin
/// step: exactly one creates the account, none fails.
#[actix_web::test]
async fn concurrent_starts_create_the_development_admin_once() {
    let db = TestDb::new().await;
    let mut conns = Vec::new();
    for _ in 0..6 {
        conns.push(db.connect().await);
    }
    let results =
        futures_util::future::join_all(conns.iter_mut().map(accounts::ensure_development_admin))
            .await;
    let created = results
        .into_iter()
        .map(|r| r.expect("no start fails"))
        .filter(|created| *created)
        .count();
    assert_eq!(created, 1);
}

/// Registration hashes before it takes a connection: with one pooled connection and a
/// short pool wait, a burst of sign-ups all succeed. Were the connection held while
/// argon2 runs (tens of ms each, at most one hash per CPU), requests would queue for it
/// past the wait and answer 503.
#[actix_web::test]
async fn a_burst_of_sign_ups_does_not_exhaust_the_pool() {
    let db = TestDb::new().await;
    let settings = [
        ("DATABASE_POOL_SIZE", "1"),
        ("DATABASE_POOL_TIMEOUT_MS", "400"),
    ];
    // A pool built from those settings (the test kit's default pool is larger).
    let settings = ecom_testkit::test_settings(&db, &settings);
    let pool = ecom_core::db::build_pool(
        &db.url,
        &ecom_core::db::PoolOptions::from_settings(&settings),
    )
    .expect("pool");
    let ctx = ecom_core::AppContext::new(
        settings,
        pool.clone(),
        &ecom_core::settings::SecretString::new(ecom_testkit::TEST_SECRET),
        vec![ecom_auth::module()],
    )
    .expect("context")
    .with_resolver(ecom_auth::resolver());
    let server = ecom_testkit::spawn_server(ctx);
    let client = ecom_testkit::http_client();
    let answers = futures_util::future::join_all((0..32).map(|i| {
        client
            .post(server.url("/auth/register"))
            .send_json(&json!({"email": format!("burst{i}@example.com"), "password": PASSWORD}))
    }))
    .await;
    let statuses: Vec<u16> = answers
        .into_iter()
        .map(|r| r.expect("answers").status().as_u16())
        .collect();
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    server.stop().await;
}
