//! Endpoints: who may manage them, what is checked, what is shown, what is audited.

use base64::Engine;
use ecom_testkit::fixtures::{ADMIN, MANAGER, count};
use serde_json::json;

use crate::support::app_on;

#[actix_web::test]
async fn endpoints_are_created_listed_updated_deleted_and_audited() {
    let (db, app) = app_on(&[]).await;
    let admin = app.fixed(ADMIN);
    let res = admin
        .post(
            "/admin/webhooks",
            json!({"url": "http://127.0.0.1:9/hook", "events": ["order.*", "payment.updated", "order.*"], "description": "ERP"}),
        )
        .await;
    res.assert_status(201);
    let created = res.json();
    let id = created["id"].as_i64().expect("id");
    assert_eq!(
        res.header("location"),
        Some(format!("/admin/webhooks/{id}").as_str())
    );
    assert_eq!(
        created["events"],
        json!(["order.*", "payment.updated"]),
        "duplicates dropped"
    );
    assert_eq!(created["is_active"], true);
    assert_eq!(created["disabled_reason"], serde_json::Value::Null);
    let secret = created["secret"].as_str().expect("secret shown once");
    let key = secret.strip_prefix("whsec_").expect("whsec_ prefix");
    let key = base64::engine::general_purpose::STANDARD
        .decode(key)
        .expect("base64 key");
    assert!(key.len() >= 24, "24+ random bytes");

    // Never shown again.
    let listed = admin.get("/admin/webhooks").await;
    listed.assert_status(200);
    assert_eq!(listed.json()["total"], 1);
    assert!(!listed.text().contains(secret));
    assert!(listed.json()["items"][0].get("secret").is_none());
    let one = admin.get(format!("/admin/webhooks/{id}")).await;
    one.assert_status(200);
    assert!(one.json().get("secret").is_none());

    let patched = admin
        .patch(
            format!("/admin/webhooks/{id}"),
            json!({"events": ["*"], "description": "", "url": "https://127.0.0.1:8443/x"}),
        )
        .await;
    patched.assert_status(200);
    assert_eq!(patched.json()["events"], json!(["*"]));
    assert_eq!(patched.json()["description"], serde_json::Value::Null);
    assert_eq!(patched.json()["url"], "https://127.0.0.1:8443/x");

    admin
        .delete(format!("/admin/webhooks/{id}"))
        .await
        .assert_status(204);
    admin
        .get(format!("/admin/webhooks/{id}"))
        .await
        .assert_problem(404, "not_found");
    admin
        .delete(format!("/admin/webhooks/{id}"))
        .await
        .assert_problem(404, "not_found");

    let mut conn = db.connect().await;
    for action in ["webhook.create", "webhook.update", "webhook.delete"] {
        assert_eq!(
            count(
                &mut conn,
                &format!(
                    "SELECT count(*) AS n FROM audit_log WHERE action = '{action}' \
                     AND actor_id = {ADMIN} AND target_type = 'webhook' AND target_id = '{id}'"
                ),
            )
            .await,
            1,
            "{action} audited"
        );
    }
    assert_eq!(
        count(
            &mut conn,
            &format!("SELECT count(*) AS n FROM audit_log WHERE before::text LIKE '%{key_b64}%' OR after::text LIKE '%{key_b64}%'",
                key_b64 = &secret[6..20]),
        )
        .await,
        0,
        "the secret stays out of the audit trail"
    );
}

#[actix_web::test]
async fn managing_webhooks_needs_the_permission() {
    let (_db, app) = app_on(&[]).await;
    let (id, _) = crate::support::create_endpoint(&app, "http://127.0.0.1:9/", &["*"]).await;
    let manager = app.fixed(MANAGER);
    let body = json!({"url": "http://127.0.0.1:9/", "events": ["*"]});
    for res in [
        manager.post("/admin/webhooks", body.clone()).await,
        manager.get("/admin/webhooks").await,
        manager.get(format!("/admin/webhooks/{id}")).await,
        manager
            .patch(format!("/admin/webhooks/{id}"), json!({"is_active": false}))
            .await,
        manager.delete(format!("/admin/webhooks/{id}")).await,
        manager
            .post(format!("/admin/webhooks/{id}/test"), json!({}))
            .await,
        manager
            .get(format!("/admin/webhooks/{id}/deliveries"))
            .await,
        manager
            .post(
                format!("/admin/webhooks/{id}/deliveries/1/retry"),
                json!({}),
            )
            .await,
    ] {
        res.assert_problem(403, "forbidden");
    }
    app.anonymous()
        .get("/admin/webhooks")
        .await
        .assert_status(401);
}

#[actix_web::test]
async fn urls_and_patterns_are_checked() {
    let (_db, app) = app_on(&[]).await;
    let admin = app.fixed(ADMIN);
    for (body, field) in [
        (json!({"url": "ftp://127.0.0.1/x", "events": ["*"]}), "url"),
        (json!({"url": "not a url", "events": ["*"]}), "url"),
        (json!({"url": "http://127.0.0.1/", "events": []}), "events"),
        (
            json!({"url": "http://127.0.0.1/", "events": ["order.shipped_to_mars"]}),
            "events[0]",
        ),
        (
            json!({"url": "http://127.0.0.1/", "events": ["*", "nothing.*"]}),
            "events[1]",
        ),
        (
            json!({"url": "http://127.0.0.1/", "events": ["*"], "description": "x".repeat(501)}),
            "description",
        ),
    ] {
        let res = admin.post("/admin/webhooks", body).await;
        res.assert_problem(422, "validation_failed");
        assert_eq!(res.json()["errors"][0]["field"], field);
    }
    admin
        .post(
            "/admin/webhooks",
            json!({"url": "http://127.0.0.1/", "events": ["*"], "secret": "mine"}),
        )
        .await
        .assert_problem(422, "validation_failed");
    let (id, _) = crate::support::create_endpoint(&app, "http://127.0.0.1:9/", &["*"]).await;
    admin
        .patch(
            format!("/admin/webhooks/{id}"),
            json!({"url": "gopher://x"}),
        )
        .await
        .assert_problem(422, "validation_failed");
    admin
        .patch(
            format!("/admin/webhooks/{id}"),
            json!({"events": ["bogus"]}),
        )
        .await
        .assert_problem(422, "validation_failed");
    admin
        .get(format!("/admin/webhooks/{id}/deliveries?status=lost"))
        .await
        .assert_problem(422, "validation_failed");
}

#[actix_web::test]
async fn private_destinations_are_refused_unless_allowed() {
    let (_db, app) = app_on(&[("WEBHOOK_ALLOW_PRIVATE", "false")]).await;
    let admin = app.fixed(ADMIN);
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://172.20.0.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
        "http://[::1]/hook",
        "http://[fd00::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        // A name is resolved to check it.
        "http://localhost:8080/hook",
    ] {
        admin
            .post("/admin/webhooks", json!({"url": url, "events": ["*"]}))
            .await
            .assert_problem(422, "url_not_allowed");
    }
    // A public address is fine (nothing is sent at creation).
    let res = admin
        .post(
            "/admin/webhooks",
            json!({"url": "https://93.184.216.34/hook", "events": ["*"]}),
        )
        .await;
    res.assert_status(201);
    let id = res.json()["id"].as_i64().expect("id");
    admin
        .patch(
            format!("/admin/webhooks/{id}"),
            json!({"url": "http://127.0.0.1:9/"}),
        )
        .await
        .assert_problem(422, "url_not_allowed");

    let (_db, allowed) = app_on(&[("WEBHOOK_ALLOW_PRIVATE", "true")]).await;
    allowed
        .fixed(ADMIN)
        .post(
            "/admin/webhooks",
            json!({"url": "http://localhost:8080/hook", "events": ["*"]}),
        )
        .await
        .assert_status(201);
}
