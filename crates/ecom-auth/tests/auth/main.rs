//! ecom-auth's tests, against the real PostgreSQL (one database per test).

mod accounts;
mod admin_services;
mod sessions;
mod throttle;
mod tokens;

use ecom_core::AppContext;
use ecom_testkit::{TestDb, test_context};
use serde_json::{Value, json};

/// A strong password for test accounts.
pub const PASSWORD: &str = "plum-orbit-candle-42";

/// The auth module on a fresh database, with its resolver installed.
pub fn auth_context(db: &TestDb) -> AppContext {
    let ctx = test_context(db, vec![ecom_auth::module()], &[]);
    let pool = ctx.pool.get_ref().clone();
    ctx.with_resolver(ecom_auth::resolver(pool))
}

/// Same, with the given login throttle.
pub fn auth_context_with(db: &TestDb, limits: ecom_auth::ThrottleLimits) -> AppContext {
    let module = ecom_auth::module_with_throttle(std::sync::Arc::new(
        ecom_auth::MemoryThrottle::new(limits),
    ));
    let ctx = test_context(db, vec![module], &[]);
    let pool = ctx.pool.get_ref().clone();
    ctx.with_resolver(ecom_auth::resolver(pool))
}

pub fn login_body(email: &str) -> Value {
    json!({"email": email, "password": PASSWORD})
}

/// Registers `email` and logs in; returns (user id, token pair).
#[macro_export]
macro_rules! signed_up {
    ($app:expr, $email:expr) => {{
        let reg = $app
            .post("/auth/register", serde_json::json!({"email": $email, "password": $crate::PASSWORD}), None)
            .await;
        reg.assert_status(201);
        let id = reg.json()["id"].as_i64().expect("id");
        let login = $app.post("/auth/login", $crate::login_body($email), None).await;
        login.assert_status(200);
        (id, login.json())
    }};
}
