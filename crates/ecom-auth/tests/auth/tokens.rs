use ecom_core::access_token::{AUDIENCE, AccessClaims, ISSUER};
use ecom_testkit::{TEST_SECRET, db_and_app, served_openapi};
use jsonwebtoken::{Algorithm, EncodingKey, Header};

use crate::{auth_context, signed_up};

fn sign(claims: &AccessClaims, key: &str, alg: Algorithm) -> String {
    jsonwebtoken::encode(
        &Header::new(alg),
        claims,
        &EncodingKey::from_secret(key.as_bytes()),
    )
    .expect("sign")
}

/// The claims of a token the server issued (its payload, unverified).
pub fn claims_of(token: &str) -> AccessClaims {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("claims")
}

/// Claims for `user_id` on login `sid`, valid for ten minutes.
fn claims_for(user_id: i64, sid: i64) -> AccessClaims {
    let now = chrono::Utc::now().timestamp();
    AccessClaims {
        sub: user_id.to_string(),
        iat: now,
        exp: now + 600,
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        jti: "t".into(),
        typ: "access".into(),
        sid,
    }
}

#[actix_web::test]
async fn forged_and_misused_tokens_are_refused() {
    let (_db, app) = db_and_app(auth_context).await;
    let (id, pair) = signed_up!(app, "kim@example.com");
    let sid = claims_of(pair.access_token.as_str()).sid;
    let claims = |user_id: i64| claims_for(user_id, sid);

    let good = sign(&claims(id), TEST_SECRET, Algorithm::HS256);

    let as_good = app.user(&good);
    as_good.me().await.assert_status(200);

    let other_key = sign(
        &claims(id),
        "a-completely-different-secret-key-0000",
        Algorithm::HS256,
    );

    let as_other_key = app.user(&other_key);
    as_other_key.me().await.assert_problem(401, "invalid_token");

    let hs512 = sign(&claims(id), TEST_SECRET, Algorithm::HS512);

    let as_hs512 = app.user(&hs512);
    as_hs512.me().await.assert_problem(401, "invalid_token");

    let payload = good.split('.').nth(1).expect("payload");
    let alg_none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
    let as_alg_none = app.user(&alg_none);
    as_alg_none.me().await.assert_problem(401, "invalid_token");

    // Claims that are well signed but wrong in one way each.
    let expired = AccessClaims {
        iat: claims(id).iat - 7200,
        exp: chrono::Utc::now().timestamp() - 3600,
        ..claims(id)
    };
    let wrong_aud = AccessClaims {
        aud: "another-service".into(),
        ..claims(id)
    };
    let wrong_iss = AccessClaims {
        iss: "someone-else".into(),
        ..claims(id)
    };
    let not_access = AccessClaims {
        typ: "refresh".into(),
        ..claims(id)
    };
    for (bad, code) in [
        (expired, "token_expired"),
        (wrong_aud, "invalid_token"),
        (wrong_iss, "invalid_token"),
        (not_access, "invalid_token"),
    ] {
        app.user(sign(&bad, TEST_SECRET, Algorithm::HS256))
            .me()
            .await
            .assert_problem(401, code);
    }

    // The opaque refresh token can never pass for an access token, nor the reverse.
    let refresh = pair.refresh_token.as_str();
    app.user(refresh)
        .me()
        .await
        .assert_problem(401, "invalid_token");
    let access = pair.access_token.clone();
    app.anonymous()
        .post(
            "/auth/refresh",
            serde_json::json!({"refresh_token": access}),
        )
        .await
        .assert_problem(401, "invalid_refresh_token");
}

#[actix_web::test]
async fn the_document_lists_every_auth_endpoint() {
    let doc = served_openapi(auth_context).await;
    for (path, method, op) in [
        ("/auth/register", "post", "registerUser"),
        ("/auth/login", "post", "login"),
        ("/auth/refresh", "post", "refreshToken"),
        ("/auth/revoke", "post", "revokeToken"),
        ("/users/me", "get", "getCurrentUser"),
        ("/users/me", "put", "updateCurrentUser"),
        ("/users/me", "patch", "patchCurrentUser"),
        ("/users/{id}", "get", "getUser"),
        (
            "/auth/verify-email/request",
            "post",
            "requestEmailVerification",
        ),
        ("/auth/verify-email", "post", "verifyEmail"),
        ("/auth/password/forgot", "post", "forgotPassword"),
        ("/auth/password/reset", "post", "resetPassword"),
        ("/users/me/password", "post", "changePassword"),
    ] {
        assert_eq!(
            doc["paths"][path][method]["operationId"], op,
            "{method} {path}"
        );
    }
    let login = &doc["paths"]["/auth/login"]["post"]["requestBody"]["content"];
    assert!(login["application/json"].is_object());
    assert!(
        login["application/x-www-form-urlencoded"].is_object(),
        "password flow form documented"
    );
    assert!(doc["paths"]["/users/me"]["get"]["security"].is_array());
}

#[test]
fn debug_output_never_shows_passwords_tokens_or_emails() {
    use ecom_auth::api::{RegisterRequest, TokenPair};
    let pair = TokenPair {
        access_token: "access-secret-123".into(),
        refresh_token: "refresh-secret-456".into(),
        token_type: "bearer",
        expires_in: 1800,
    };
    let shown = format!("{pair:?}");
    assert!(!shown.contains("access-secret-123") && !shown.contains("refresh-secret-456"));
    let request: RegisterRequest = serde_json::from_value(serde_json::json!({
        "email": "secret.person@example.com", "password": "hunter2-hunter2"
    }))
    .expect("parse");
    let shown = format!("{request:?}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("secret.person"),
        "{shown}"
    );
    use ecom_auth::api::{ChangePasswordRequest, ForgotPasswordRequest, ResetPasswordRequest};
    let reset: ResetPasswordRequest = serde_json::from_value(serde_json::json!({
        "token": "mailed-token-789", "password": "hunter2-hunter2"
    }))
    .expect("parse");
    let forgot: ForgotPasswordRequest = serde_json::from_value(serde_json::json!({
        "email": "secret.person@example.com"
    }))
    .expect("parse");
    let change: ChangePasswordRequest = serde_json::from_value(serde_json::json!({
        "current_password": "hunter2-hunter2", "new_password": "hunter3-hunter3"
    }))
    .expect("parse");
    let mail = ecom_core::mail::OutgoingMail {
        kind: "verify_email",
        from: "shop <no-reply@shop.example>".into(),
        to: "secret.person@example.com".into(),
        subject: "Confirm".into(),
        text_body: "open https://shop.example/verify-email?token=mailed-token-789".into(),
        message_id: "<1@shop.example>".into(),
    };
    for shown in [
        format!("{reset:?}"),
        format!("{forgot:?}"),
        format!("{change:?}"),
        format!("{mail:?}"),
    ] {
        assert!(
            !shown.contains("hunter")
                && !shown.contains("secret.person")
                && !shown.contains("mailed-token"),
            "{shown}"
        );
    }
}
