use ecom_core::Permission;
use ecom_core::access_token::AccessTokens;
use ecom_core::settings::SecretString;
use ecom_testkit::{
    FixedAccounts, TEST_SECRET, TestDb, access_token as token, test_app, test_context,
};

use crate::support;

/// The test routes, with `accounts` as the principal resolver.
fn guarded_context(db: &TestDb, accounts: std::sync::Arc<FixedAccounts>) -> ecom_core::AppContext {
    test_context(db, vec![support::module()], &[]).with_resolver(accounts)
}

/// Accounts of which the one, user 1, is an active shopper.
fn one_shopper() -> std::sync::Arc<FixedAccounts> {
    let accounts = FixedAccounts::new();
    accounts.set(1, "user", &[], true);
    accounts
}

#[actix_web::test]
async fn guard_allows_refuses_and_follows_current_state() {
    let db = TestDb::new().await;
    let accounts = FixedAccounts::new();
    accounts.set(1, "staff", &[Permission::ManageOrders], true);
    accounts.set(2, "user", &[], true);
    let app = test_app(guarded_context(&db, accounts.clone())).await;

    let staff = token(1);

    let as_staff = app.user(&staff);
    let shopper = token(2);
    let as_shopper = app.shopper(&shopper);
    assert_eq!(
        as_staff.get("/t/guarded").await.assert_status(200).json()["user_id"],
        1
    );
    as_shopper
        .get("/t/guarded")
        .await
        .assert_problem(403, "forbidden");
    as_shopper.get("/t/whoami").await.assert_status(200);

    // A ban applies to a token issued before it, on the very next request.
    accounts.set(2, "user", &[], false);
    as_shopper
        .get("/t/whoami")
        .await
        .assert_problem(403, "account_banned");

    // A role change too.
    accounts.set(1, "user", &[], true);
    as_staff
        .get("/t/guarded")
        .await
        .assert_problem(403, "forbidden");

    // A user that no longer exists.
    app.fixed(99)
        .get("/t/whoami")
        .await
        .assert_problem(401, "invalid_token");
}

#[actix_web::test]
async fn missing_or_forged_tokens_are_401_with_www_authenticate() {
    let db = TestDb::new().await;
    let app = test_app(guarded_context(&db, one_shopper())).await;

    let res = app.get("/t/whoami").await;
    res.assert_problem(401, "not_authenticated");
    assert_eq!(res.header("www-authenticate"), Some("Bearer"));

    let other_key = AccessTokens::new(
        &SecretString::new("another-secret-key-of-enough-length-000"),
        30,
    )
    .issue(1, 0)
    .expect("sign")
    .token;

    // alg:none with the same claims.
    let valid = token(1);
    let payload = valid.split('.').nth(1).expect("payload");
    let none_header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"; // {"alg":"none","typ":"JWT"}
    let unsigned = format!("{none_header}.{payload}.");

    let expired = AccessTokens::new(&SecretString::new(TEST_SECRET), -1)
        .issue(1, 0)
        .expect("sign")
        .token;

    for (bearer, code) in [
        (other_key, "invalid_token"),
        ("not-a-jwt".to_string(), "invalid_token"),
        (unsigned, "invalid_token"),
        (expired, "token_expired"),
    ] {
        app.user(&bearer)
            .get("/t/whoami")
            .await
            .assert_problem(401, code);
    }
}

#[test]
fn permissions_round_trip_their_names() {
    for &p in Permission::ALL {
        assert_eq!(p.as_str().parse::<Permission>(), Ok(p));
        assert_eq!(
            serde_json::to_value(p).expect("ser"),
            serde_json::json!(p.as_str())
        );
    }
    assert!("root:everything".parse::<Permission>().is_err());
}

#[actix_web::test]
async fn a_bodiless_request_resolves_and_runs_on_one_connection() {
    let db = TestDb::new().await;
    let app = test_app(guarded_context(&db, one_shopper())).await;
    let caller = token(1);
    let client = app.user(&caller);
    // Warm: the pool has made its one connection.
    client.get("/t/connections").await.assert_status(200);
    let read = client.get("/t/connections").await.assert_status(200).json();
    assert_eq!(
        (read["idle_before"].as_u64(), read["open"].as_u64()),
        (Some(0), Some(1)),
        "the principal's connection is the handler's: none idle, none new"
    );
    // With a body to read, the connection goes back to the pool before the body is read.
    let write = client
        .post("/t/connections", serde_json::json!({}))
        .await
        .assert_status(200)
        .json();
    assert_eq!(
        (write["idle_before"].as_u64(), write["open"].as_u64()),
        (Some(1), Some(1)),
        "a request with a body holds no connection while it is read"
    );
}
