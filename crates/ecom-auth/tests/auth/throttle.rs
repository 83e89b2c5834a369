use std::time::Duration;

use ecom_auth::ThrottleLimits;
use ecom_auth::service::throttle::Limit;
use ecom_testkit::{TestDb, http_client, test_app};
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

/// Password hashing runs off the async workers: on a server with a single worker, a
/// client that keeps calling /health while 20 logins hash gets many answers in the
/// meantime (about 680 here). Were the hashes computed on the worker, it would get about
/// two per hash (37 measured with the hashing moved onto the worker).
/// The check counts answers, it sets no time limit.
#[actix_web::test]
async fn twenty_concurrent_logins_do_not_stall_other_requests() {
    use std::cell::Cell;
    let db = TestDb::new().await;
    let app = test_app(auth_context(&db)).await;
    signed_up!(app, "oz@example.com");
    drop(app);
    let server = ecom_testkit::spawn_server_with_workers(auth_context(&db), 1);
    let client = http_client();
    let storm_over = Cell::new(false);

    let logins = async {
        let results = futures_util::future::join_all((0..20).map(|_| {
            client
                .post(server.url("/auth/login"))
                .send_json(&json!({"email": "oz@example.com", "password": PASSWORD}))
        }))
        .await;
        storm_over.set(true);
        results
    };
    let probe = async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let mut answered = 0;
        while !storm_over.get() {
            let res = client
                .get(server.url("/health"))
                .send()
                .await
                .expect("health answers");
            assert_eq!(res.status().as_u16(), 200);
            answered += 1;
        }
        answered
    };
    let (results, answered) = tokio::join!(logins, probe);
    for r in results {
        assert_eq!(r.expect("login answers").status().as_u16(), 200);
    }
    assert!(
        answered >= 150,
        "only {answered} health checks were answered during 20 logins: hashing must not block the worker"
    );
    server.stop().await;
}

/// The same property without HTTP: while a password is verified, other tasks of the
/// same single-threaded runtime keep running.
#[tokio::test(flavor = "current_thread")]
async fn verifying_a_password_leaves_the_runtime_free() {
    use ecom_auth::service::password;
    let phc = password::hash(PASSWORD.to_string()).await.expect("hash");
    let ticks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = ticks.clone();
    let ticker = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(1)).await;
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    tokio::task::yield_now().await;
    assert!(password::verify(PASSWORD.to_string(), Some(phc)).await);
    let during = ticks.load(std::sync::atomic::Ordering::Relaxed);
    ticker.abort();
    assert!(
        during >= 3,
        "the runtime ran other tasks only {during} times while hashing"
    );
}
