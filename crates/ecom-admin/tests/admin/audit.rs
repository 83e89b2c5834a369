use ecom_testkit::db_and_app;
use serde_json::json;

use crate::{PASSWORD, admin_context, root};

#[actix_web::test]
async fn admin_actions_and_product_writes_are_audited_with_request_ids() {
    let (db, app) = db_and_app(admin_context).await;
    let (root, as_admin) = root!(&db, app);
    let (gil, _) = app.sign_up("gil@example.com", PASSWORD).await;

    let req = actix_web::test::TestRequest::patch()
        .uri(&format!("/admin/users/{gil}/role"))
        .insert_header(("x-request-id", "audit-req-1"))
        .set_json(json!({"role": "admin"}));
    as_admin.send_request(req).await.assert_status(200);
    as_admin.set_banned(gil, true).await;
    as_admin.put_role("analyst", &["view:reports"]).await;
    let created = as_admin
        .post(
            "/products",
            json!({"name": "Vase", "description": "", "price": 30, "stock": 2}),
        )
        .await;
    let product = created.assert_status(201).json()["id"]
        .as_i64()
        .expect("id");
    as_admin
        .patch(&format!("/products/{product}"), json!({"price": "35.00"}))
        .await
        .assert_status(200);
    as_admin.delete_product(product).await.assert_status(204);
    // A refused action leaves no trace.
    as_admin
        .patch(&format!("/admin/users/{root}/ban"), json!({"banned": true}))
        .await
        .assert_status(409);

    let trail = as_admin.get("/admin/audit").await.json();
    assert_eq!(trail["total"], 6, "{trail}");
    let actions: Vec<&str> = trail["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["action"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        actions,
        [
            "product.delete",
            "product.update",
            "product.create",
            "role.put",
            "user.ban",
            "user.role_change"
        ]
    );
    let role_change = &trail["items"][5];
    assert_eq!(role_change["actor_id"], root);
    assert_eq!(role_change["target_type"], "user");
    assert_eq!(role_change["target_id"], gil.to_string());
    assert_eq!(role_change["before"], json!({"role": "user"}));
    assert_eq!(role_change["after"], json!({"role": "admin"}));
    assert_eq!(role_change["request_id"], "audit-req-1");
    let update = &trail["items"][1];
    assert_eq!(update["before"]["price"], "30.00");
    assert_eq!(update["after"]["price"], "35.00");

    let today = chrono::Utc::now().date_naive();
    let yesterday = today.pred_opt().expect("date");
    as_admin
        .assert_totals([
            ("/admin/audit?target_type=product".to_string(), 3),
            ("/admin/audit?action=user.ban".to_string(), 1),
            (format!("/admin/audit?from={today}&to={today}"), 6),
            (format!("/admin/audit?from={yesterday}&to={yesterday}"), 0),
        ])
        .await;
    let mine = as_admin
        .get(&format!("/admin/audit?actor_id={root}&limit=1"))
        .await
        .json();
    assert_eq!(
        (
            mine["total"].as_i64(),
            mine["items"].as_array().map(Vec::len)
        ),
        (Some(6), Some(1))
    );
    #[rustfmt::skip]
    let cases = [
        (format!("/admin/audit?from={today}&to={yesterday}"), 422, "validation_failed"),
        ("/admin/audit?from=yesterday".into(), 400, "invalid_query"),
    ];
    as_admin.assert_problems(cases).await;
}
