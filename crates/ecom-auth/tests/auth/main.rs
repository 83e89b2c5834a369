//! ecom-auth's tests, against the real PostgreSQL (one database per test).

mod accounts;
mod admin_services;
mod email_flows;
mod hashing;
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
    auth_context_with(db, &[])
}

/// Same, with settings (`LOGIN_MAX_FAILURES_PER_EMAIL`, `TRUSTED_PROXIES`, …).
pub fn auth_context_with(db: &TestDb, settings: &[(&str, &str)]) -> AppContext {
    let ctx = test_context(db, vec![ecom_auth::module()], settings);
    ctx.with_resolver(ecom_auth::resolver())
}

/// An acting administrator as the principal extractor would build it.
pub fn actor(
    user_id: i64,
    role: &str,
    permissions: &[ecom_core::Permission],
) -> ecom_core::Principal {
    ecom_core::Principal {
        user_id,
        role: role.to_string(),
        permissions: permissions.iter().copied().collect(),
        token_id: "test".into(),
        session_id: 0,
    }
}

/// A principal holding every permission, in the `admin` role.
pub fn full_admin(user_id: i64) -> ecom_core::Principal {
    actor(user_id, "admin", ecom_core::Permission::ALL)
}

pub fn login_body(email: &str) -> Value {
    json!({"email": email, "password": PASSWORD})
}

/// Registers `email` with [`PASSWORD`] and logs in; returns (user id, token pair).
#[macro_export]
macro_rules! signed_up {
    ($app:expr, $email:expr) => {{
        let account = $app.anonymous().sign_up($email, $crate::PASSWORD).await;
        (account.id, account.tokens)
    }};
}
