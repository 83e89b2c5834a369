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
    admin_context_with_payments(db, std::sync::Arc::new(ecom_orders::NoPayments))
}

/// [`admin_context`] with `payments` as the orders' payments port.
pub fn admin_context_with_payments(
    db: &TestDb,
    payments: std::sync::Arc<dyn ecom_orders::PaymentsPort>,
) -> AppContext {
    let modules = vec![
        ecom_auth::module(),
        ecom_catalog::module(),
        ecom_orders::module_with_payments(payments),
        ecom_admin::module(),
    ];
    let ctx = test_context(db, modules, &[]);
    ctx.with_resolver(ecom_auth::resolver())
}

/// Creates an administrator with [`PASSWORD`]; returns its id.
pub async fn make_admin(db: &TestDb, email: &str) -> i64 {
    ecom_testkit::make_admin!(db, email, PASSWORD).await
}

/// `root@example.com` made an administrator: `(its id, a client logged in as it)`.
#[macro_export]
macro_rules! root {
    ($db:expr, $app:expr) => {{
        let id = $crate::make_admin($db, "root@example.com").await;
        let token = $app.login("root@example.com", $crate::PASSWORD).await;
        (id, $app.admin(token))
    }};
}
