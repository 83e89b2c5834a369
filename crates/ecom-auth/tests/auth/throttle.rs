use std::time::{Duration, Instant};

use ecom_auth::ThrottleLimits;
use ecom_auth::service::throttle::Limit;
use ecom_testkit::{TestDb, http_client, spawn_server, test_app};
use serde_json::json;

use crate::{PASSWORD, auth_context, auth_context_with, login_body, signed_up};

fn wrong(email: &str) -> serde_json::Value {
    json!({"email": email, "password": "definitely-wrong-99"})
}

#[actix_web::test]
async fn repeated_failures_for_one_email_answer_429_then_clear_with_the_window() {
    let db = TestDb::new().await;
    let limits = ThrottleLimits {
        per_email: Limit {
            max_failures: 3,
            window: Duration::from_secs(2),
        },
        per_address: Limit {
            max_failures: 100,
            window: Duration::from_secs(2),
        },
    };
    let app = test_app(auth_context_with(&db, limits)).await;
    signed_up!(app, "lee@example.com");
    for _ in 0..3 {
        app.post("/auth/login", wrong("lee@example.com"), None)
            .await
            .assert_problem(401, "invalid_credentials");
    }
    let limited = app
        .post("/auth/login", login_body("lee@example.com"), None)
        .await;
    limited.assert_problem(429, "rate_limited");
    let retry: u64 = limited
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!(
        (1..=3).contains(&retry),
        "never longer than the window: {retry}"
    );

    // Other accounts are not affected.
    signed_up!(app, "max@example.com");

    // The owner gets back in once the window has passed.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    app.post("/auth/login", login_body("lee@example.com"), None)
        .await
        .assert_status(200);
}

#[actix_web::test]
async fn a_success_clears_the_email_counter() {
    let db = TestDb::new().await;
    let app = test_app(auth_context(&db)).await; // default: 5 per email
    signed_up!(app, "ned@example.com");
    for _ in 0..4 {
        app.post("/auth/login", wrong("ned@example.com"), None)
            .await
            .assert_status(401);
    }
    app.post("/auth/login", login_body("ned@example.com"), None)
        .await
        .assert_status(200);
    for _ in 0..4 {
        app.post("/auth/login", wrong("ned@example.com"), None)
            .await
            .assert_status(401);
    }
    app.post("/auth/login", login_body("ned@example.com"), None)
        .await
        .assert_status(200);
    for _ in 0..5 {
        app.post("/auth/login", wrong("ned@example.com"), None)
            .await
            .assert_status(401);
    }
    app.post("/auth/login", login_body("ned@example.com"), None)
        .await
        .assert_problem(429, "rate_limited");
}

#[actix_web::test]
async fn repeated_failures_from_one_address_answer_429() {
    let db = TestDb::new().await;
    let limits = ThrottleLimits {
        per_email: Limit {
            max_failures: 100,
            window: Duration::from_secs(60),
        },
        per_address: Limit {
            max_failures: 4,
            window: Duration::from_secs(60),
        },
    };
    let app = test_app(auth_context_with(&db, limits)).await;
    for i in 0..4 {
        app.post("/auth/login", wrong(&format!("u{i}@example.com")), None)
            .await
            .assert_status(401);
    }
    app.post("/auth/login", wrong("fresh@example.com"), None)
        .await
        .assert_problem(429, "rate_limited");
}

/// Password hashing runs on the blocking pool: while 20 logins hash, the server's
/// workers keep answering. Compared with the storm's own duration, not a fixed time.
#[actix_web::test]
async fn twenty_concurrent_logins_do_not_stall_other_requests() {
    let db = TestDb::new().await;
    let app = test_app(auth_context(&db)).await;
    signed_up!(app, "oz@example.com");
    drop(app);
    let server = spawn_server(auth_context(&db));
    let client = http_client();

    let started = Instant::now();
    let logins = futures_util::future::join_all((0..20).map(|_| {
        client
            .post(server.url("/auth/login"))
            .send_json(&json!({"email": "oz@example.com", "password": PASSWORD}))
    }));
    let probe = async {
        let mut worst = Duration::ZERO;
        let mut probes = 0;
        tokio::time::sleep(Duration::from_millis(20)).await;
        while started.elapsed() < Duration::from_secs(30) && probes < 15 {
            let t = Instant::now();
            let res = client
                .get(server.url("/health"))
                .send()
                .await
                .expect("health answers");
            assert_eq!(res.status().as_u16(), 200);
            worst = worst.max(t.elapsed());
            probes += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        worst
    };
    let (results, worst_health) = tokio::join!(logins, probe);
    let storm = started.elapsed();
    for r in results {
        assert_eq!(r.expect("login answers").status().as_u16(), 200);
    }
    assert!(
        worst_health * 4 < storm,
        "health waited {worst_health:?} during a {storm:?} login storm: hashing must not block the workers"
    );
    server.stop().await;
}
