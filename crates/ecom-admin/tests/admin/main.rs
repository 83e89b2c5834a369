//! ecom-admin's tests through the real modules and the real PostgreSQL.

mod audit;
mod orders;
mod permissions;
mod reports;
mod users_and_roles;

use ecom_core::AppContext;
use ecom_testkit::{TestDb, test_context};

pub const PASSWORD: &str = "harbor-violet-engine-5";

/// Identity, catalog, orders and admin mounted together, with the real resolver.
pub fn admin_context(db: &TestDb) -> AppContext {
    let modules = vec![
        ecom_auth::module(),
        ecom_catalog::module(),
        ecom_orders::module(),
        ecom_admin::module(),
    ];
    let ctx = test_context(db, modules, &[]);
    let pool = ctx.pool.get_ref().clone();
    ctx.with_resolver(ecom_auth::resolver(pool))
}

/// Creates an administrator with [`PASSWORD`]; returns its id.
pub async fn make_admin(db: &TestDb, email: &str) -> i64 {
    ecom_testkit::make_admin!(db, email, PASSWORD).await
}
