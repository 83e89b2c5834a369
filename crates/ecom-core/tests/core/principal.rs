use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use ecom_core::access_token::AccessTokens;
use ecom_core::principal::{Account, PrincipalResolver, SharedResolver};
use ecom_core::settings::SecretString;
use ecom_core::{AppError, Permission};
use ecom_testkit::{TEST_SECRET, TestDb, test_app, test_context};

use crate::support;

/// Accounts kept in memory, changeable while the test runs.
#[derive(Default)]
struct Accounts(Mutex<HashMap<i64, Account>>);

#[async_trait::async_trait]
impl PrincipalResolver for Accounts {
    async fn resolve(&self, user_id: i64) -> Result<Option<Account>, AppError> {
        Ok(self.0.lock().expect("lock").get(&user_id).cloned())
    }
}

fn account(user_id: i64, permissions: &[Permission], is_active: bool) -> Account {
    Account {
        user_id,
        role: if permissions.is_empty() {
            "user"
        } else {
            "staff"
        }
        .into(),
        permissions: permissions.iter().copied().collect::<BTreeSet<_>>(),
        is_active,
    }
}

fn token(user_id: i64) -> String {
    AccessTokens::new(&SecretString::new(TEST_SECRET), 30)
        .issue(user_id)
        .expect("sign")
        .token
}

#[actix_web::test]
async fn guard_allows_refuses_and_follows_current_state() {
    let db = TestDb::new().await;
    let accounts = Arc::new(Accounts::default());
    accounts
        .0
        .lock()
        .expect("lock")
        .insert(1, account(1, &[Permission::ManageOrders], true));
    accounts
        .0
        .lock()
        .expect("lock")
        .insert(2, account(2, &[], true));
    let resolver: SharedResolver = accounts.clone();
    let app =
        test_app(test_context(&db, vec![support::module()], &[]).with_resolver(resolver)).await;

    let staff = token(1);
    let shopper = token(2);
    assert_eq!(
        app.get_as("/t/guarded", &staff)
            .await
            .assert_status(200)
            .json()["user_id"],
        1
    );
    app.get_as("/t/guarded", &shopper)
        .await
        .assert_problem(403, "forbidden");
    app.get_as("/t/whoami", &shopper).await.assert_status(200);

    // A ban applies to a token issued before it, on the very next request.
    accounts
        .0
        .lock()
        .expect("lock")
        .insert(2, account(2, &[], false));
    app.get_as("/t/whoami", &shopper)
        .await
        .assert_problem(403, "account_banned");

    // A role change too.
    accounts
        .0
        .lock()
        .expect("lock")
        .insert(1, account(1, &[], true));
    app.get_as("/t/guarded", &staff)
        .await
        .assert_problem(403, "forbidden");

    // A user that no longer exists.
    app.get_as("/t/whoami", &token(99))
        .await
        .assert_problem(401, "invalid_token");
}

#[actix_web::test]
async fn missing_or_forged_tokens_are_401_with_www_authenticate() {
    let db = TestDb::new().await;
    let accounts = Arc::new(Accounts::default());
    accounts
        .0
        .lock()
        .expect("lock")
        .insert(1, account(1, &[], true));
    let app =
        test_app(test_context(&db, vec![support::module()], &[]).with_resolver(accounts)).await;

    let res = app.get("/t/whoami").await;
    res.assert_problem(401, "not_authenticated");
    assert_eq!(res.header("www-authenticate"), Some("Bearer"));

    let other_key = AccessTokens::new(
        &SecretString::new("another-secret-key-of-enough-length-000"),
        30,
    )
    .issue(1)
    .expect("sign")
    .token;
    app.get_as("/t/whoami", &other_key)
        .await
        .assert_problem(401, "invalid_token");
    app.get_as("/t/whoami", "not-a-jwt")
        .await
        .assert_problem(401, "invalid_token");

    // alg:none with the same claims.
    let valid = token(1);
    let payload = valid.split('.').nth(1).expect("payload");
    let none_header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"; // {"alg":"none","typ":"JWT"}
    let unsigned = format!("{none_header}.{payload}.");
    app.get_as("/t/whoami", &unsigned)
        .await
        .assert_problem(401, "invalid_token");

    let expired = AccessTokens::new(&SecretString::new(TEST_SECRET), -1)
        .issue(1)
        .expect("sign")
        .token;
    app.get_as("/t/whoami", &expired)
        .await
        .assert_problem(401, "token_expired");
}

#[test]
fn permissions_round_trip_their_names() {
    for p in Permission::ALL {
        assert_eq!(p.as_str().parse::<Permission>(), Ok(p));
        assert_eq!(
            serde_json::to_value(p).expect("ser"),
            serde_json::json!(p.as_str())
        );
    }
    assert!("root:everything".parse::<Permission>().is_err());
}
