//! Login throttling in PostgreSQL: counted before the password is checked, shared by
//! every app instance on the database, attributed to the right client address.

use actix_web::http::Method;
use std::time::Duration;

use ecom_testkit::{TestDb, db_and_app, http_client, spawn_server, test_app};
use futures_util::future::join_all;
use serde_json::json;

use crate::{PASSWORD, auth_context, auth_context_with, login_body, signed_up};

fn wrong(email: &str) -> serde_json::Value {
    json!({"email": email, "password": "definitely-wrong-99"})
}

#[actix_web::test]
async fn repeated_failures_for_one_email_answer_429_then_clear_with_the_window() {
    let db = TestDb::new().await;
    let app = test_app(auth_context_with(
        &db,
        &[
            ("LOGIN_MAX_FAILURES_PER_EMAIL", "3"),
            ("LOGIN_THROTTLE_WINDOW_SECONDS", "2"),
        ],
    ))
    .await;
    signed_up!(app, "lee@example.com");
    for _ in 0..3 {
        app.anonymous()
            .post("/auth/login", wrong("lee@example.com"))
            .await
            .assert_problem(401, "invalid_credentials");
    }
    let limited = app
        .anonymous()
        .try_log_in("LEE@example.com ", PASSWORD)
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
    app.anonymous()
        .try_log_in("lee@example.com", PASSWORD)
        .await
        .assert_status(200);
}

#[actix_web::test]
async fn a_success_clears_the_email_counter() {
    let (_db, app) = db_and_app(auth_context).await; // default: 5 per email
    signed_up!(app, "ned@example.com");
    let anonymous = app.anonymous();
    let login = |body| anonymous.post("/auth/login", body);
    let fail = async |times| {
        for _ in 0..times {
            login(wrong("ned@example.com")).await.assert_status(401);
        }
    };
    for _ in 0..2 {
        fail(4).await;
        login(login_body("ned@example.com"))
            .await
            .assert_status(200);
    }
    fail(5).await;
    login(login_body("ned@example.com"))
        .await
        .assert_problem(429, "rate_limited");
}

/// 100 wrong guesses for one email at once, over real sockets: each is counted before
/// its hash is checked, so exactly the limit are evaluated (401) and the rest get 429.
#[actix_web::test]
async fn of_a_hundred_concurrent_guesses_only_the_limit_are_evaluated() {
    let (db, app) = db_and_app(auth_context).await;
    signed_up!(app, "vic@example.com");
    drop(app);
    let server = spawn_server(auth_context_with(
        &db,
        &[("LOGIN_MAX_FAILURES_PER_ADDRESS", "1000")],
    ));
    let client = http_client();
    let answers = join_all((0..100).map(|_| {
        client
            .post(server.url("/auth/login"))
            .send_json(&wrong("vic@example.com"))
    }))
    .await;
    let mut statuses: Vec<u16> = answers
        .into_iter()
        .map(|r| r.expect("login answers").status().as_u16())
        .collect();
    statuses.sort_unstable();
    let evaluated = statuses.iter().filter(|s| **s == 401).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    eprintln!("100 concurrent wrong guesses: {evaluated} evaluated (401), {limited} refused (429)");
    assert_eq!((evaluated, limited), (5, 95), "{statuses:?}");
    // The right password is refused too while the email is locked.
    let res = client
        .post(server.url("/auth/login"))
        .send_json(&login_body("vic@example.com"))
        .await
        .expect("answers");
    assert_eq!(res.status().as_u16(), 429);
    server.stop().await;
}

/// Two app instances on one database (two replicas) share the counts.
#[actix_web::test]
async fn replicas_share_one_count() {
    let db = TestDb::new().await;
    let first = test_app(auth_context(&db)).await;
    let second = test_app(auth_context(&db)).await;
    signed_up!(first, "wes@example.com");
    let mut evaluated = 0;
    for i in 0..10 {
        let app = if i % 2 == 0 { &first } else { &second };
        let res = app
            .anonymous()
            .post("/auth/login", wrong("wes@example.com"))
            .await;
        if res.status.as_u16() == 401 {
            evaluated += 1;
        } else {
            res.assert_problem(429, "rate_limited");
        }
    }
    assert_eq!(evaluated, 5, "the limit holds across replicas");
}

#[actix_web::test]
async fn repeated_failures_from_one_address_answer_429_but_successes_do_not_count() {
    let db = TestDb::new().await;
    let settings = [("LOGIN_MAX_FAILURES_PER_ADDRESS", "4")];
    let app = test_app(auth_context_with(&db, &settings)).await;
    signed_up!(app, "xia@example.com");
    // Signing in, however often, never uses up the address's allowance.
    for _ in 0..10 {
        app.anonymous()
            .try_log_in("xia@example.com", PASSWORD)
            .await
            .assert_status(200);
    }
    for i in 0..4 {
        app.anonymous()
            .post("/auth/login", wrong(&format!("u{i}@example.com")))
            .await
            .assert_status(401);
    }
    #[rustfmt::skip]
    let cases = [
        ("/auth/login", wrong("fresh@example.com"), 429, "rate_limited"),
        ("/auth/login", login_body("xia@example.com"), 429, "rate_limited"),
    ];
    app.anonymous()
        .assert_writes_refused(Method::POST, cases)
        .await;
}

async fn login_from(
    client: &awc::Client,
    url: &str,
    forwarded_for: &str,
    body: &serde_json::Value,
) -> u16 {
    client
        .post(url)
        .insert_header(("X-Forwarded-For", forwarded_for))
        .send_json(body)
        .await
        .expect("login answers")
        .status()
        .as_u16()
}

/// Behind a trusted proxy the client is the forwarded address: one shopper's bad guesses
/// lock out that shopper's address only. From an untrusted peer the header is ignored.
#[actix_web::test]
async fn the_client_address_comes_from_trusted_proxies_only() {
    let db = TestDb::new().await;
    let limits = [
        ("LOGIN_MAX_FAILURES_PER_ADDRESS", "3"),
        ("LOGIN_MAX_FAILURES_PER_EMAIL", "1000"),
    ];
    let mut behind_proxy = limits.to_vec();
    behind_proxy.push(("TRUSTED_PROXIES", "127.0.0.0/8, ::1"));
    let server = spawn_server(auth_context_with(&db, &behind_proxy));
    let client = http_client();
    let url = server.url("/auth/login");
    for _ in 0..3 {
        let status = login_from(&client, &url, "203.0.113.7", &wrong("a@example.com")).await;
        assert_eq!(status, 401);
    }
    // The attacker's address is locked, even when it spoofs an earlier hop...
    let spoofed = login_from(
        &client,
        &url,
        "198.51.100.1, 203.0.113.7",
        &wrong("a@example.com"),
    )
    .await;
    assert_eq!(spoofed, 429);
    // ...and everybody else behind the same proxy is not.
    let other = login_from(&client, &url, "203.0.113.8", &wrong("a@example.com")).await;
    assert_eq!(other, 401);
    server.stop().await;

    // Without trusted proxies the peer (127.0.0.1) is the client whatever the header says.
    let server = spawn_server(auth_context_with(&db, &limits));
    let url = server.url("/auth/login");
    let mut statuses = Vec::new();
    for i in 0..4 {
        let forged = format!("192.0.2.{i}");
        statuses.push(login_from(&client, &url, &forged, &wrong("b@example.com")).await);
    }
    assert_eq!(statuses, vec![401, 401, 401, 429]);
    server.stop().await;
}

/// The clean-up deletes only ended windows, in bounded batches, and two replicas
/// running it at once delete each row once and never fail.
#[actix_web::test]
async fn expired_throttle_rows_are_purged_in_bounded_batches_by_concurrent_replicas() {
    use diesel_async::SimpleAsyncConnection;
    use ecom_auth::service::throttle::purge_expired;
    let (db, mut conn) = TestDb::connected().await;
    conn.batch_execute(
        "INSERT INTO login_throttle (key, attempts, window_started_at, expires_at) \
         SELECT 'addr:10.0.' || g, 3, now() - interval '1 hour', now() - interval '10 minutes' \
         FROM generate_series(1, 2500) g; \
         INSERT INTO login_throttle (key, attempts, expires_at) VALUES ('email:live@example.com', 2, now() + interval '5 minutes');",
    )
    .await
    .expect("seed");
    let first = purge_expired(&mut conn, 1000).await.expect("purge");
    assert_eq!(first, 1000, "one call deletes one batch");
    let mut a = db.connect().await;
    let mut b = db.connect().await;
    let mut total = first;
    loop {
        let (x, y) = tokio::join!(purge_expired(&mut a, 300), purge_expired(&mut b, 300));
        let (x, y) = (x.expect("replica a"), y.expect("replica b"));
        total += x + y;
        if x + y == 0 {
            break;
        }
    }
    assert_eq!(total, 2500, "every expired row deleted exactly once");
    use diesel::QueryDsl;
    use diesel_async::RunQueryDsl;
    let left: i64 = ecom_auth::schema::login_throttle::table
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!(left, 1, "the live window stays");
}

/// Password hashing runs off the async workers: on a server with a single worker, a
/// client that keeps calling /health while 20 logins hash gets many answers in the
/// meantime (about 680 here). Were the hashes computed on the worker, it would get about
/// two per hash (37 measured with the hashing moved onto the worker).
/// The check counts answers, it sets no time limit.
#[actix_web::test]
async fn twenty_concurrent_logins_do_not_stall_other_requests() {
    use std::cell::Cell;
    let (db, app) = db_and_app(auth_context).await;
    signed_up!(app, "oz@example.com");
    drop(app);
    // Attempts count before they are evaluated, so 20 at once need a limit above 20.
    let settings = [("LOGIN_MAX_FAILURES_PER_EMAIL", "100")];
    let server = ecom_testkit::spawn_server_with_workers(auth_context_with(&db, &settings), 1);
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
            server.get(&client, "/health", &[]).await.assert_status(200);
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
