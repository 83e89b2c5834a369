use ecom_testkit::{TestDb, test_app};
use serde_json::json;

use crate::{PASSWORD, admin_context, make_admin};

#[actix_web::test]
async fn admin_actions_and_product_writes_are_audited_with_request_ids() {
    let db = TestDb::new().await;
    let app = test_app(admin_context(&db)).await;
    let root = make_admin(&db, "root@example.com").await;
    let admin = app.login("root@example.com", PASSWORD).await;
    let (gil, _) = app.sign_up("gil@example.com", PASSWORD).await;

    let req = actix_web::test::TestRequest::patch()
        .uri(&format!("/admin/users/{gil}/role"))
        .insert_header(("authorization", format!("Bearer {admin}")))
        .insert_header(("x-request-id", "audit-req-1"))
        .set_json(json!({"role": "admin"}));
    app.send(req).await.assert_status(200);
    app.patch(
        &format!("/admin/users/{gil}/ban"),
        json!({"banned": true}),
        Some(&admin),
    )
    .await
    .assert_status(200);
    app.put(
        "/admin/roles/analyst",
        json!({"permissions": ["view:reports"]}),
        Some(&admin),
    )
    .await
    .assert_status(200);
    let created = app
        .post(
            "/products",
            json!({"name": "Vase", "description": "", "price": 30, "stock": 2}),
            Some(&admin),
        )
        .await;
    let product = created.assert_status(201).json()["id"]
        .as_i64()
        .expect("id");
    app.patch(
        &format!("/products/{product}"),
        json!({"price": "35.00"}),
        Some(&admin),
    )
    .await
    .assert_status(200);
    app.delete(&format!("/products/{product}"), Some(&admin))
        .await
        .assert_status(204);
    // A refused action leaves no trace.
    app.patch(
        &format!("/admin/users/{root}/ban"),
        json!({"banned": true}),
        Some(&admin),
    )
    .await
    .assert_status(409);

    let trail = app.get_as("/admin/audit", &admin).await.json();
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

    let products = app
        .get_as("/admin/audit?target_type=product", &admin)
        .await
        .json();
    assert_eq!(products["total"], 3);
    let bans = app
        .get_as("/admin/audit?action=user.ban", &admin)
        .await
        .json();
    assert_eq!(bans["total"], 1);
    let mine = app
        .get_as(&format!("/admin/audit?actor_id={root}&limit=1"), &admin)
        .await
        .json();
    assert_eq!(
        (
            mine["total"].as_i64(),
            mine["items"].as_array().map(Vec::len)
        ),
        (Some(6), Some(1))
    );
    let today = chrono::Utc::now().date_naive();
    let dated = app
        .get_as(&format!("/admin/audit?from={today}&to={today}"), &admin)
        .await
        .json();
    assert_eq!(dated["total"], 6);
    let yesterday = today.pred_opt().expect("date");
    let none = app
        .get_as(
            &format!("/admin/audit?from={yesterday}&to={yesterday}"),
            &admin,
        )
        .await
        .json();
    assert_eq!(none["total"], 0);
    app.get_as(&format!("/admin/audit?from={today}&to={yesterday}"), &admin)
        .await
        .assert_problem(422, "validation_failed");
    app.get_as("/admin/audit?from=yesterday", &admin)
        .await
        .assert_problem(400, "invalid_query");
}
