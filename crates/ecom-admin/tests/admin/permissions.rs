use actix_web::http::Method;
use ecom_testkit::db_and_app;
use serde_json::json;

use crate::{PASSWORD, admin_context, make_admin, root};

/// Every admin endpoint: 401 without a token, 403 for a shopper, allowed for an admin.
#[actix_web::test]
async fn every_admin_endpoint_checks_its_permission() {
    let (db, app) = db_and_app(admin_context).await;
    make_admin(&db, "root@example.com").await;
    let admin = app.login("root@example.com", PASSWORD).await;
    let (target, shopper) = app.sign_up("shopper@example.com", PASSWORD).await;
    let (other, _) = app.sign_up("other@example.com", PASSWORD).await;

    let endpoints: Vec<(Method, String, Option<serde_json::Value>)> = vec![
        (Method::GET, "/admin/users".into(), None),
        (
            Method::PATCH,
            format!("/admin/users/{other}/role"),
            Some(json!({"role": "user"})),
        ),
        (
            Method::PATCH,
            format!("/admin/users/{other}/ban"),
            Some(json!({"banned": false})),
        ),
        (Method::GET, "/admin/roles".into(), None),
        (
            Method::PUT,
            "/admin/roles/helper".into(),
            Some(json!({"permissions": []})),
        ),
        (Method::GET, "/admin/audit".into(), None),
        (Method::GET, "/admin/orders".into(), None),
        (
            Method::PATCH,
            "/admin/orders/999999/status".into(),
            Some(json!({"status": "shipped"})),
        ),
        (Method::GET, "/admin/reports/sales".into(), None),
    ];
    for (method, path, body) in &endpoints {
        let anonymous = app.request(method.clone(), path, body.clone(), None).await;
        anonymous.assert_problem(401, "not_authenticated");
        let refused = app
            .request(method.clone(), path, body.clone(), Some(&shopper))
            .await;
        refused.assert_problem(403, "forbidden");
        let allowed = app
            .request(method.clone(), path, body.clone(), Some(&admin))
            .await;
        // Past the permission check: 200, or 404 for the order that does not exist.
        assert!(
            matches!(allowed.status.as_u16(), 200 | 404),
            "{method} {path} as admin: {}",
            allowed.text()
        );
    }
    let _ = target;
}

/// A custom role holding only `view:reports` reads the report and nothing else.
#[actix_web::test]
async fn a_reports_only_role_reads_reports_but_cannot_write_the_catalog() {
    let (db, app) = db_and_app(admin_context).await;
    let (_, as_admin) = root!(&db, app);
    let (analyst, as_token) = app.signed_in("analyst@example.com", PASSWORD).await;
    as_admin.put_role("analyst", &["view:reports"]).await;
    as_admin.assign_role(analyst, "analyst").await;

    as_token
        .get("/admin/reports/sales")
        .await
        .assert_status(200);
    let product = json!({"name": "Desk", "description": "", "price": "99.00", "stock": 1});
    as_token
        .post("/products", product)
        .await
        .assert_problem(403, "forbidden");
    as_token
        .assert_problems([
            ("/admin/orders", 403, "forbidden"),
            ("/admin/users", 403, "forbidden"),
        ])
        .await;
}
