use ecom_testkit::{TestDb, test_app};
use serde_json::json;

use crate::{PASSWORD, admin_context, make_admin};

#[actix_web::test]
async fn users_are_listed_with_filters_and_never_with_hashes() {
    let db = TestDb::new().await;
    let app = test_app(admin_context(&db)).await;
    make_admin(&db, "root@example.com").await;
    let admin = app.login("root@example.com", PASSWORD).await;
    for email in ["ana@shop.example", "ben@shop.example", "cid@else.example"] {
        app.sign_up(email, PASSWORD).await;
    }
    let all = app.get_as("/admin/users?limit=2", &admin).await;
    all.assert_status(200);
    let body = all.json();
    assert_eq!(
        (
            body["total"].as_i64(),
            body["limit"].as_i64(),
            body["offset"].as_i64()
        ),
        (Some(4), Some(2), Some(0))
    );
    assert_eq!(body["items"].as_array().map(Vec::len), Some(2));
    assert!(!all.text().contains("argon2"), "no password hashes");
    for key in [
        "id",
        "email",
        "role",
        "is_active",
        "full_name",
        "created_at",
    ] {
        assert!(body["items"][0].get(key).is_some(), "{key}");
    }
    let shop = app
        .get_as("/admin/users?search=SHOP.EXAMPLE", &admin)
        .await
        .json();
    assert_eq!(shop["total"], 2);
    let admins = app.get_as("/admin/users?role=admin", &admin).await.json();
    assert_eq!(admins["total"], 1);
    assert_eq!(admins["items"][0]["email"], "root@example.com");
    let inactive = app
        .get_as("/admin/users?is_active=false", &admin)
        .await
        .json();
    assert_eq!(inactive["total"], 0);
    app.get_as("/admin/users?limit=500", &admin)
        .await
        .assert_problem(422, "validation_failed");
    app.get_as("/admin/users?is_active=maybe", &admin)
        .await
        .assert_problem(400, "invalid_query");
}

#[actix_web::test]
async fn role_changes_apply_on_the_next_request_and_never_to_oneself() {
    let db = TestDb::new().await;
    let app = test_app(admin_context(&db)).await;
    let root = make_admin(&db, "root@example.com").await;
    let admin = app.login("root@example.com", PASSWORD).await;
    let (dana, dana_token) = app.sign_up("dana@example.com", PASSWORD).await;

    app.get_as("/admin/users", &dana_token)
        .await
        .assert_problem(403, "forbidden");
    let changed = app
        .patch(
            &format!("/admin/users/{dana}/role"),
            json!({"role": "admin"}),
            Some(&admin),
        )
        .await;
    changed.assert_status(200);
    assert_eq!(changed.json()["role"], "admin");
    app.get_as("/admin/users", &dana_token)
        .await
        .assert_status(200);

    app.patch(
        &format!("/admin/users/{root}/role"),
        json!({"role": "user"}),
        Some(&admin),
    )
    .await
    .assert_problem(409, "cannot_modify_self");
    app.patch(
        &format!("/admin/users/{dana}/role"),
        json!({"role": "wizard"}),
        Some(&admin),
    )
    .await
    .assert_problem(422, "validation_failed");
    app.patch(
        "/admin/users/999999/role",
        json!({"role": "user"}),
        Some(&admin),
    )
    .await
    .assert_problem(404, "not_found");
    app.patch(
        &format!("/admin/users/{dana}/role"),
        json!({"role": "user", "is_active": false}),
        Some(&admin),
    )
    .await
    .assert_problem(422, "validation_failed");
}

#[actix_web::test]
async fn ban_with_or_without_a_body_and_unban() {
    let db = TestDb::new().await;
    let app = test_app(admin_context(&db)).await;
    let root = make_admin(&db, "root@example.com").await;
    let admin = app.login("root@example.com", PASSWORD).await;
    let (eli, _) = app.sign_up("eli@example.com", PASSWORD).await;
    let login = app
        .post(
            "/auth/login",
            json!({"email": "eli@example.com", "password": PASSWORD}),
            None,
        )
        .await
        .json();
    let access = login["access_token"].as_str().expect("access");

    let ban = app
        .send(
            actix_web::test::TestRequest::patch()
                .uri(&format!("/admin/users/{eli}/ban"))
                .insert_header(("authorization", format!("Bearer {admin}"))),
        )
        .await;
    ban.assert_status(200);
    assert_eq!(ban.json()["is_active"], false);
    // The access token issued before the ban stops on the very next request.
    app.get_as("/users/me", access)
        .await
        .assert_problem(403, "account_banned");
    app.post(
        "/auth/refresh",
        json!({"refresh_token": login["refresh_token"]}),
        None,
    )
    .await
    .assert_problem(401, "invalid_refresh_token");

    let unban = app
        .patch(
            &format!("/admin/users/{eli}/ban"),
            json!({"banned": false}),
            Some(&admin),
        )
        .await;
    assert_eq!(unban.assert_status(200).json()["is_active"], true);
    app.get_as("/users/me", access).await.assert_status(200);
    let again = app
        .patch(
            &format!("/admin/users/{eli}/ban"),
            json!({"banned": true}),
            Some(&admin),
        )
        .await;
    assert_eq!(again.assert_status(200).json()["is_active"], false);

    app.patch(
        &format!("/admin/users/{root}/ban"),
        json!({"banned": true}),
        Some(&admin),
    )
    .await
    .assert_problem(409, "cannot_modify_self");
    let text = actix_web::test::TestRequest::patch()
        .uri(&format!("/admin/users/{eli}/ban"))
        .insert_header(("authorization", format!("Bearer {admin}")))
        .insert_header(("content-type", "text/plain"))
        .set_payload("banned");
    app.send(text)
        .await
        .assert_problem(415, "unsupported_media_type");
    app.patch(
        &format!("/admin/users/{eli}/ban"),
        json!({"banned": "yes"}),
        Some(&admin),
    )
    .await
    .assert_problem(422, "validation_failed");
}

#[actix_web::test]
async fn roles_are_listed_created_replaced_and_admin_keeps_everything() {
    let db = TestDb::new().await;
    let app = test_app(admin_context(&db)).await;
    make_admin(&db, "root@example.com").await;
    let admin = app.login("root@example.com", PASSWORD).await;
    let (fay, fay_token) = app.sign_up("fay@example.com", PASSWORD).await;

    let roles = app.get_as("/admin/roles", &admin).await.json();
    let admin_role = roles
        .as_array()
        .expect("list")
        .iter()
        .find(|r| r["name"] == "admin")
        .cloned()
        .expect("admin");
    assert_eq!(admin_role["permissions"].as_array().map(Vec::len), Some(7));

    let put = app
        .put(
            "/admin/roles/catalog-editor",
            json!({"permissions": ["edit:product", "create:product"]}),
            Some(&admin),
        )
        .await;
    put.assert_status(200);
    assert_eq!(
        put.json()["permissions"],
        json!(["create:product", "edit:product"])
    );
    app.patch(
        &format!("/admin/users/{fay}/role"),
        json!({"role": "catalog-editor"}),
        Some(&admin),
    )
    .await
    .assert_status(200);
    let product = json!({"name": "Lamp", "description": "", "price": "12.00", "stock": 3});
    app.post("/products", product.clone(), Some(&fay_token))
        .await
        .assert_status(201);

    // Replacing the set applies to holders on their next request.
    app.put(
        "/admin/roles/catalog-editor",
        json!({"permissions": ["edit:product"]}),
        Some(&admin),
    )
    .await
    .assert_status(200);
    app.post("/products", product, Some(&fay_token))
        .await
        .assert_problem(403, "forbidden");

    app.put(
        "/admin/roles/catalog-editor",
        json!({"permissions": ["launch:rockets"]}),
        Some(&admin),
    )
    .await
    .assert_problem(422, "validation_failed");
    app.put(
        "/admin/roles/Bad%20Name",
        json!({"permissions": []}),
        Some(&admin),
    )
    .await
    .assert_problem(422, "validation_failed");
    let kept = app
        .put(
            "/admin/roles/admin",
            json!({"permissions": []}),
            Some(&admin),
        )
        .await;
    assert_eq!(
        kept.assert_status(200).json()["permissions"]
            .as_array()
            .map(Vec::len),
        Some(7)
    );
    app.get_as("/admin/users", &admin).await.assert_status(200);
}
