use ecom_core::private_pg::{LaunchOptions, PrivatePostgres};
use ecom_testkit::{TestDb, test_app};

/// Start, reuse, `/ready` following the database down and back, stop.
#[actix_web::test]
async fn private_postgres_starts_is_reused_and_stops() {
    let dir = std::env::temp_dir().join(format!("ecom-pg-{}", uuid::Uuid::new_v4().simple()));
    let options = LaunchOptions {
        data_dir: dir.clone(),
        ephemeral: true,
    };
    let opts = options.clone();
    let pg = tokio::task::spawn_blocking(move || PrivatePostgres::start(&opts))
        .await
        .expect("task")
        .expect("private PostgreSQL starts");
    assert!(pg.started_here());

    let opts = options.clone();
    let again = tokio::task::spawn_blocking(move || PrivatePostgres::start(&opts))
        .await
        .expect("task")
        .expect("second start reuses");
    assert!(
        !again.started_here(),
        "a running cluster is reused, not started twice"
    );
    assert_eq!(again.port(), pg.port());

    // An app on it: ready, then 503 while the database is stopped, then ready again.
    let url = pg.url("postgres");
    let db = TestDb::new().await; // only for settings; the pool below points at the private cluster
    let mut ctx = ecom_testkit::test_context(&db, vec![], &[]);
    let options_pool = ecom_core::db::PoolOptions {
        max_size: 2,
        wait_timeout: std::time::Duration::from_secs(2),
        statement_timeout: std::time::Duration::from_secs(5),
        application_name: "t".into(),
    };
    ctx.pool =
        actix_web::web::Data::new(ecom_core::db::build_pool(&url, &options_pool).expect("pool"));
    let app = test_app(ctx).await;
    app.get("/ready").await.assert_status(200);

    let pg = std::sync::Arc::new(pg);
    let stopper = pg.clone();
    tokio::task::spawn_blocking(move || stopper.stop())
        .await
        .expect("task")
        .expect("stops");
    app.get("/ready")
        .await
        .assert_problem(503, "service_unavailable");

    let starter = pg.clone();
    tokio::task::spawn_blocking(move || starter.restart_stopped())
        .await
        .expect("task")
        .expect("restarts");
    let mut ready = app.get("/ready").await;
    for _ in 0..20 {
        if ready.status.as_u16() == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        ready = app.get("/ready").await;
    }
    ready.assert_status(200);

    let stopper = pg.clone();
    tokio::task::spawn_blocking(move || stopper.stop())
        .await
        .expect("task")
        .expect("stops");
    let mut conn = ecom_core::db::connect(&url).await;
    assert!(conn.is_err(), "stopped cluster refuses connections");
    drop(conn.as_mut());
    let _ = std::fs::remove_dir_all(dir);
}
