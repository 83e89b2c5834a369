//! End-to-end tests of the whole `ecom` app (every domain module, as the binary wires
//! them) over HTTP, against the real PostgreSQL.

mod auth;
mod binary;
mod catalog;
mod cluster;
mod contract;
mod drills;
mod events;
mod legacy;
mod load;
mod ops;
mod orders;
mod schema_files;
mod webhook_drill;

use ecom_core::settings::SecretString;
use ecom_testkit::{TEST_SECRET, TestDb, test_settings};

/// The app context exactly as `ecom serve` builds it, on a fresh test database.
pub fn store_context(db: &TestDb) -> ecom_core::AppContext {
    ecom_api::app_context(
        test_settings(db, &[]),
        db.pool(),
        &SecretString::new(TEST_SECRET),
    )
    .expect("the store's context builds")
}

/// A strong password for the accounts the end-to-end tests create.
pub const PASSWORD: &str = "lantern-mosaic-river-8";

/// Makes `email` an administrator (as `ecom create-admin` would) and returns its id.
pub async fn make_admin(db: &TestDb, email: &str) -> i64 {
    ecom_testkit::make_admin!(db, email, PASSWORD).await
}

/// An acting administrator holding every permission, as the principal extractor builds it.
pub fn acting_admin(user_id: i64) -> ecom_core::Principal {
    ecom_core::Principal {
        user_id,
        role: "admin".into(),
        permissions: ecom_core::Permission::ALL.iter().copied().collect(),
        token_id: "e2e".into(),
        session_id: 0,
    }
}

/// Asserts that a command exited 0, showing `what` and its stderr when it did not.
#[track_caller]
pub fn assert_ran(output: &std::process::Output, what: &str) {
    assert!(
        output.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
