//! The original service's clients: its token paths (deprecated aliases of the current
//! ones, same rules and rotation) and its trailing-slash collection paths.

use actix_web::http::Method;
use actix_web::test::TestRequest;
use ecom_testkit::{FORM, TestDb, TestResponse, served_openapi, signed_up_app, test_app};
use serde_json::json;

use crate::{PASSWORD, make_admin, store_context};

/// The `field` token of a token answer, which must be a 200 that is never cached.
fn issued(answer: &TestResponse, field: &str) -> String {
    answer.assert_status(200);
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    answer.json()[field].as_str().expect(field).to_string()
}

/// Its only client script: the OAuth2 form at `/auth/token`, then `POST /products/`.
#[actix_web::test]
async fn the_old_client_script_logs_in_with_the_form_and_creates_a_product() {
    let db = TestDb::new().await;
    make_admin(&db, "root@example.com").await;
    let app = test_app(store_context(&db)).await;
    let form = format!("username=root%40example.com&password={PASSWORD}");
    let login = app.post_raw("/auth/token", FORM, form).await;
    let token = issued(&login, "access_token");
    let product =
        json!({"name": "Old client lamp", "description": "", "price": "9.50", "stock": 3});
    let created = app.post("/products/", product, Some(&token)).await;
    created.assert_status(201);
    assert_eq!(created.json()["name"], "Old client lamp");
    let wrong = "username=root%40example.com&password=wrong-password-1";
    app.post_raw("/auth/token", FORM, wrong)
        .await
        .assert_problem(401, "invalid_credentials");
}

#[actix_web::test]
async fn a_trailing_slash_answers_like_the_path_without_it() {
    let (_db, app, id, token) = signed_up_app(store_context, "slash@example.com", PASSWORD).await;
    for path in ["/products", "/categories", "/health"] {
        let plain = app.get(path).await;
        let slashed = app.get(&format!("{path}/")).await;
        assert_eq!(plain.status, slashed.status, "{path}");
        assert_eq!(plain.json(), slashed.json(), "{path}/ answers like {path}");
    }
    app.get_as("/orders/", &token).await.assert_status(200);
    let me = app.get_as("/users/me/", &token).await;
    assert_eq!(me.assert_status(200).json()["id"], id);
    app.get("/orders/")
        .await
        .assert_problem(401, "not_authenticated");
    app.get("/nowhere/").await.assert_problem(404, "not_found");
    let res = app
        .send(
            TestRequest::default()
                .method(Method::DELETE)
                .uri("/products/"),
        )
        .await;
    assert_eq!(res.status.as_u16(), 405, "{}", res.text());
    // Swagger UI keeps its page and its redirect.
    app.get("/docs/").await.assert_status(200);
    let docs = app.get("/docs").await;
    docs.assert_status(308);
    assert_eq!(docs.header("location"), Some("/docs/"));
}

fn query(path: &str, refresh: &str) -> TestRequest {
    TestRequest::post().uri(&format!("{path}?refresh_token={refresh}"))
}

#[actix_web::test]
async fn the_old_refresh_and_logout_rotate_and_revoke_like_the_current_ones() {
    let (_db, app, _, _) = signed_up_app(store_context, "legacy@example.com", PASSWORD).await;
    let login = app.tokens("legacy@example.com", PASSWORD).await;
    let first = login["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_string();

    // Query parameter, as the original clients send it: the token rotates.
    let rotated = app.send(query("/auth/token/refresh", &first)).await;
    let second = issued(&rotated, "refresh_token");
    assert_ne!(first, second);
    let me = app
        .get_as(
            "/users/me",
            rotated.json()["access_token"].as_str().expect("access"),
        )
        .await;
    me.assert_status(200);

    // The JSON body is accepted too; reusing the first token revokes the login.
    let third = app
        .post(
            "/auth/token/refresh",
            json!({"refresh_token": second}),
            None,
        )
        .await;
    let third = third.assert_status(200).json()["refresh_token"]
        .as_str()
        .expect("rotated again")
        .to_string();
    app.send(query("/auth/token/refresh", &first))
        .await
        .assert_problem(401, "refresh_token_reused");
    app.post("/auth/refresh", json!({"refresh_token": third}), None)
        .await
        .assert_problem(401, "invalid_refresh_token");

    // Logout by query and by body: the token can no longer refresh.
    for by_query in [true, false] {
        let pair = app.tokens("legacy@example.com", PASSWORD).await;
        let refresh = pair["refresh_token"].as_str().expect("refresh").to_string();
        let out = if by_query {
            app.send(query("/auth/logout", &refresh)).await
        } else {
            app.post("/auth/logout", json!({"refresh_token": refresh}), None)
                .await
        };
        out.assert_status(204);
        app.post("/auth/refresh", json!({"refresh_token": refresh}), None)
            .await
            .assert_problem(401, "invalid_refresh_token");
    }
    app.send(TestRequest::post().uri("/auth/logout"))
        .await
        .assert_problem(422, "validation_failed");
    app.post("/auth/logout", json!({"token": "x"}), None)
        .await
        .assert_problem(422, "validation_failed");
    // A body beside the query is still checked (schemathesis sent an unknown field).
    let both = r#"{"refresh_token": "x", "unexpected": 42}"#;
    app.post_raw("/auth/logout?refresh_token=x", "application/json", both)
        .await
        .assert_problem(422, "validation_failed");
}

#[actix_web::test]
async fn the_aliases_are_documented_as_deprecated() {
    let doc = served_openapi(store_context).await;
    for (path, current) in [
        ("/auth/token", "/auth/login"),
        ("/auth/token/refresh", "/auth/refresh"),
        ("/auth/logout", "/auth/revoke"),
    ] {
        let op = &doc["paths"][path]["post"];
        assert_eq!(op["deprecated"], true, "{path}");
        assert!(
            doc["paths"][current]["post"]["deprecated"].is_null(),
            "{current}"
        );
        let statuses = |o: &serde_json::Value| {
            o["responses"]
                .as_object()
                .map(|r| r.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
        };
        assert_eq!(
            statuses(op),
            statuses(&doc["paths"][current]["post"]),
            "{path}"
        );
    }
    let params = doc["paths"]["/auth/logout"]["post"]["parameters"].to_string();
    assert!(params.contains("refresh_token"), "{params}");
}
