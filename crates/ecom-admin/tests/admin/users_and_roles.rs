use actix_web::http::Method;
use ecom_testkit::db_and_app;
use serde_json::json;

use crate::{PASSWORD, admin_context, root};

#[actix_web::test]
async fn users_are_listed_with_filters_and_never_with_hashes() {
    let (db, app) = db_and_app(admin_context).await;
    let (_, as_admin) = root!(&db, app);
    for email in ["ana@shop.example", "ben@shop.example", "cid@else.example"] {
        app.sign_up(email, PASSWORD).await;
    }
    let all = as_admin.get("/admin/users?limit=2").await;
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
    ecom_testkit::fixtures::assert_fields(
        &body["items"][0],
        &[
            "id",
            "email",
            "role",
            "is_active",
            "email_verified",
            "full_name",
            "created_at",
        ],
    );
    assert_eq!(
        as_admin
            .listed_total("/admin/users?search=SHOP.EXAMPLE")
            .await,
        2
    );
    let admins = as_admin.get("/admin/users?role=admin").await.json();
    assert_eq!(admins["total"], 1);
    assert_eq!(admins["items"][0]["email"], "root@example.com");
    assert_eq!(
        as_admin.listed_total("/admin/users?is_active=false").await,
        0
    );
    as_admin
        .assert_problems([
            ("/admin/users?limit=500", 422, "validation_failed"),
            ("/admin/users?is_active=maybe", 400, "invalid_query"),
        ])
        .await;
}

#[actix_web::test]
async fn role_changes_apply_on_the_next_request_and_never_to_oneself() {
    let (db, app) = db_and_app(admin_context).await;
    let (root, as_admin) = root!(&db, app);
    let (dana, as_dana_token) = app.signed_in("dana@example.com", PASSWORD).await;

    as_dana_token
        .get("/admin/users")
        .await
        .assert_problem(403, "forbidden");
    let changed = as_admin
        .patch(
            &format!("/admin/users/{dana}/role"),
            json!({"role": "admin"}),
        )
        .await;
    changed.assert_status(200);
    assert_eq!(changed.json()["role"], "admin");
    as_dana_token.get("/admin/users").await.assert_status(200);

    #[rustfmt::skip]
    let cases = [
        (format!("/admin/users/{root}/role"), json!({"role": "user"}), 409, "cannot_modify_self"),
        (format!("/admin/users/{dana}/role"), json!({"role": "wizard"}), 422, "validation_failed"),
        ("/admin/users/999999/role".into(), json!({"role": "user"}), 404, "not_found"),
        (format!("/admin/users/{dana}/role"), json!({"role": "user", "is_active": false}), 422, "validation_failed"),
    ];
    as_admin.assert_writes_refused(Method::PATCH, cases).await;
}

#[actix_web::test]
async fn ban_with_or_without_a_body_and_unban() {
    let (db, app) = db_and_app(admin_context).await;
    let (root, as_admin) = root!(&db, app);
    let (eli, _) = app.sign_up("eli@example.com", PASSWORD).await;
    let tokens = app.anonymous().log_in("eli@example.com", PASSWORD).await;
    let access = tokens.access_token.as_str();

    let ban = as_admin
        .send_request(actix_web::test::TestRequest::patch().uri(&format!("/admin/users/{eli}/ban")))
        .await;
    ban.assert_status(200);
    assert_eq!(ban.json()["is_active"], false);
    // The access token issued before the ban stops on the very next request.
    app.user(access)
        .me()
        .await
        .assert_problem(403, "account_banned");
    app.anonymous()
        .refresh(&tokens.refresh_token)
        .await
        .assert_problem(401, "invalid_refresh_token");

    assert_eq!(as_admin.set_banned(eli, false).await["is_active"], true);
    // The ban ended every login of the user: old tokens stay dead after the unban.
    app.user(access)
        .me()
        .await
        .assert_problem(401, "session_revoked");
    assert_eq!(as_admin.set_banned(eli, true).await["is_active"], false);

    as_admin
        .patch(&format!("/admin/users/{root}/ban"), json!({"banned": true}))
        .await
        .assert_problem(409, "cannot_modify_self");
    let text = actix_web::test::TestRequest::patch()
        .uri(&format!("/admin/users/{eli}/ban"))
        .insert_header(("content-type", "text/plain"))
        .set_payload("banned");
    as_admin
        .send_request(text)
        .await
        .assert_problem(415, "unsupported_media_type");
    as_admin
        .patch(&format!("/admin/users/{eli}/ban"), json!({"banned": "yes"}))
        .await
        .assert_problem(422, "validation_failed");
}

#[actix_web::test]
async fn roles_are_listed_created_replaced_and_admin_keeps_everything() {
    let (db, app) = db_and_app(admin_context).await;
    let (_, as_admin) = root!(&db, app);
    let (fay, as_fay_token) = app.signed_in("fay@example.com", PASSWORD).await;

    let roles = as_admin.get("/admin/roles").await.json();
    let admin_role = roles
        .as_array()
        .expect("list")
        .iter()
        .find(|r| r["name"] == "admin")
        .cloned()
        .expect("admin");
    assert_eq!(
        admin_role["permissions"].as_array().map(Vec::len),
        Some(ecom_core::Permission::ALL.len())
    );

    let put = as_admin
        .put(
            "/admin/roles/catalog-editor",
            json!({"permissions": ["edit:product", "create:product"]}),
        )
        .await;
    put.assert_status(200);
    assert_eq!(
        put.json()["permissions"],
        json!(["create:product", "edit:product"])
    );
    as_admin.assign_role(fay, "catalog-editor").await;
    let product = json!({"name": "Lamp", "description": "", "price": "12.00", "stock": 3});
    as_fay_token
        .post("/products", product.clone())
        .await
        .assert_status(201);

    // Replacing the set applies to holders on their next request.
    as_admin.put_role("catalog-editor", &["edit:product"]).await;
    as_fay_token
        .post("/products", product)
        .await
        .assert_problem(403, "forbidden");

    #[rustfmt::skip]
    let cases = [
        ("/admin/roles/catalog-editor", json!({"permissions": ["launch:rockets"]}), 422, "validation_failed"),
        ("/admin/roles/Bad%20Name", json!({"permissions": []}), 422, "validation_failed"),
    ];
    as_admin.assert_writes_refused(Method::PUT, cases).await;
    // An administrator cannot edit the role they hold...
    as_admin
        .put("/admin/roles/admin", json!({"permissions": []}))
        .await
        .assert_problem(409, "cannot_modify_self");
    // ...and whoever may edit `admin` cannot take anything from it.
    let every: Vec<&str> = admin_role["permissions"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    as_admin
        .put("/admin/roles/owner", json!({"permissions": every}))
        .await
        .assert_status(200);
    let (olga, _) = app.sign_up("olga@example.com", PASSWORD).await;
    as_admin.assign_role(olga, "owner").await;
    let owner = app.login("olga@example.com", PASSWORD).await;
    let as_owner = app.user(&owner);
    let kept = as_owner
        .put("/admin/roles/admin", json!({"permissions": []}))
        .await;
    assert_eq!(
        kept.assert_status(200).json()["permissions"]
            .as_array()
            .map(Vec::len),
        Some(ecom_core::Permission::ALL.len())
    );
    as_admin.get("/admin/users").await.assert_status(200);
}

/// The attack of issue 10: a user whose role holds only `manage:users` must not widen
/// its own role, grant or take away what it lacks, promote anyone to `admin`, or act on
/// users whose role holds more than it does.
#[actix_web::test]
async fn a_user_manager_cannot_hand_out_powers_it_does_not_hold() {
    let (db, app) = db_and_app(admin_context).await;
    let (_, as_root) = root!(&db, app);
    for (role, permissions) in [
        ("user-manager", json!(["manage:users"])),
        ("support", json!(["manage:users", "manage:orders"])),
        ("analyst", json!(["view:reports"])),
    ] {
        as_root
            .put(
                &format!("/admin/roles/{role}"),
                json!({"permissions": permissions}),
            )
            .await
            .assert_status(200);
    }
    let (mia, _) = app.sign_up("mia@example.com", PASSWORD).await;
    let (ned, _) = app.sign_up("ned@example.com", PASSWORD).await;
    let (ola, _) = app.sign_up("ola@example.com", PASSWORD).await;
    let (pia, _) = app.sign_up("pia@example.com", PASSWORD).await;
    for (id, role) in [
        (mia, "user-manager"),
        (ola, "analyst"),
        (pia, "user-manager"),
    ] {
        as_root
            .patch(&format!("/admin/users/{id}/role"), json!({"role": role}))
            .await
            .assert_status(200);
    }
    let mia_token = app.login("mia@example.com", PASSWORD).await;
    let as_mia_token = app.user(&mia_token);
    let as_mia_put = |role: &'static str, permissions: serde_json::Value| {
        let as_mia = app.user(&mia_token);
        async move {
            as_mia
                .put(
                    &format!("/admin/roles/{role}"),
                    json!({"permissions": permissions}),
                )
                .await
        }
    };

    // Its own role: 409, whatever is asked.
    as_mia_put("user-manager", json!(["manage:users", "view:reports"]))
        .await
        .assert_problem(409, "cannot_modify_self");
    // Adding or removing a permission it lacks: 403 naming it.
    let widened = as_mia_put(
        "support",
        json!(["manage:users", "manage:orders", "delete:product"]),
    )
    .await;
    widened.assert_problem(403, "permission_not_held");
    assert!(
        widened.json()["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("delete:product")
    );
    as_mia_put("support", json!(["manage:users"]))
        .await
        .assert_problem(403, "permission_not_held");
    as_mia_put("brand-new", json!(["view:reports"]))
        .await
        .assert_problem(403, "permission_not_held");
    // One it lacks may stay untouched while it changes what it holds.
    let narrowed = as_mia_put("support", json!(["manage:orders"])).await;
    narrowed.assert_status(200);
    assert_eq!(narrowed.json()["permissions"], json!(["manage:orders"]));
    as_mia_put("brand-new", json!(["manage:users"]))
        .await
        .assert_status(200);

    // Roles: never `admin`, never a role with more, never away from a role with more.
    #[rustfmt::skip]
    let cases = [
        (format!("/admin/users/{ned}/role"), json!({"role": "admin"}), 403, "permission_not_held"),
        (format!("/admin/users/{ned}/role"), json!({"role": "analyst"}), 403, "permission_not_held"),
        (format!("/admin/users/{ola}/role"), json!({"role": "user"}), 403, "permission_not_held"),
    ];
    as_mia_token
        .assert_writes_refused(Method::PATCH, cases)
        .await;
    as_mia_token.assign_role(ned, "brand-new").await;
    // Bans: not of a user whose role holds more (the analyst, the administrator).
    let root_id = as_root.me().await.json()["id"].as_i64().expect("id");
    for target in [ola, root_id] {
        as_mia_token
            .patch(
                &format!("/admin/users/{target}/ban"),
                json!({"banned": true}),
            )
            .await
            .assert_problem(403, "permission_not_held");
    }
    as_mia_token
        .patch(&format!("/admin/users/{pia}/ban"), json!({"banned": true}))
        .await
        .assert_status(200);
    // Nothing the refused calls asked for happened.
    let ola_now = as_root.get("/admin/users?search=ola@").await.json();
    assert_eq!(ola_now["items"][0]["role"], "analyst");
    assert_eq!(ola_now["items"][0]["is_active"], true);
}
