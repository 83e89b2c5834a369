use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use ecom_core::migrate::{self, Direction, MIGRATIONS};
use ecom_testkit::TestDb;
use ecom_testkit::fixtures::page_of;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Setting {
    #[diesel(sql_type = Text)]
    value: String,
}

async fn applied(db: &TestDb) -> i64 {
    let mut conn = db.connect().await;
    let row: Count = diesel::sql_query("SELECT count(*) AS n FROM __diesel_schema_migrations")
        .get_result(&mut conn)
        .await
        .expect("migration table");
    row.n
}

#[actix_web::test]
async fn migrations_go_up_down_and_up_again() {
    use diesel::migration::MigrationSource;
    let total = MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS)
        .expect("embedded")
        .len() as i64;
    assert!(total >= 1);
    let db = TestDb::empty().await;
    let up = migrate::migrate(&db.url, Direction::Up).await.expect("up");
    assert_eq!(up.len() as i64, total);
    assert_eq!(applied(&db).await, total);
    assert!(
        migrate::migrate(&db.url, Direction::Up)
            .await
            .expect("idempotent")
            .is_empty()
    );

    let down = migrate::migrate(&db.url, Direction::RevertAll)
        .await
        .expect("down");
    assert_eq!(down.len() as i64, total);
    assert_eq!(applied(&db).await, 0);

    migrate::migrate(&db.url, Direction::Up)
        .await
        .expect("up again");
    assert_eq!(applied(&db).await, total);
    let last = migrate::migrate(&db.url, Direction::RevertLast)
        .await
        .expect("revert one");
    assert_eq!(last.len(), 1);
    assert_eq!(applied(&db).await, total - 1);
}

#[actix_web::test]
async fn concurrent_migrations_serialize_on_the_advisory_lock() {
    let db = TestDb::empty().await;
    let (a, b) = tokio::join!(
        migrate::migrate(&db.url, Direction::Up),
        migrate::migrate(&db.url, Direction::Up)
    );
    let (a, b) = (a.expect("first"), b.expect("second"));
    assert!(
        a.is_empty() != b.is_empty(),
        "exactly one replica applies the migrations"
    );
}

#[actix_web::test]
async fn parallel_tests_do_not_see_each_other() {
    let (one, two) = tokio::join!(TestDb::new(), TestDb::new());
    assert_ne!(one.name, two.name);
    let mut c1 = one.connect().await;
    c1.batch_execute("CREATE TABLE scratch (v int); INSERT INTO scratch VALUES (1)")
        .await
        .expect("write in one");
    let mut c2 = two.connect().await;
    let seen = diesel::sql_query("SELECT count(*) AS n FROM scratch")
        .get_result::<Count>(&mut c2)
        .await;
    assert!(seen.is_err(), "the other database has no such table");
}

#[actix_web::test]
async fn pooled_connections_carry_timeouts_and_name() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let mut conn = pool.get().await.expect("conn");
    let timeout: Setting =
        diesel::sql_query("SELECT current_setting('statement_timeout') AS value")
            .get_result(&mut conn)
            .await
            .expect("setting");
    assert_eq!(timeout.value, "30s");
    let name: Setting = diesel::sql_query("SELECT current_setting('application_name') AS value")
        .get_result(&mut conn)
        .await
        .expect("setting");
    assert_eq!(name.value, "ecom-test");
    for (setting, expected) in [("TimeZone", "UTC"), ("jit", "off")] {
        let value: Setting =
            diesel::sql_query(format!("SELECT current_setting('{setting}') AS value"))
                .get_result(&mut conn)
                .await
                .expect("setting");
        assert_eq!(value.value, expected, "{setting}");
    }
}

#[actix_web::test]
async fn audit_records_are_listed_newest_first_and_cannot_be_changed() {
    use ecom_core::audit::{self, AuditEntry, AuditFilter};
    let (_db, mut conn) = TestDb::connected().await;
    for (actor, action) in [(1, "user.ban"), (2, "role.put"), (1, "user.role_change")] {
        audit::record(
            &mut conn,
            AuditEntry {
                actor_id: actor,
                action,
                target_type: "user",
                target_id: "7".into(),
                before: Some(serde_json::json!({"is_active": true})),
                after: Some(serde_json::json!({"is_active": false})),
            },
        )
        .await
        .expect("record");
    }
    let page = page_of(10, 0);
    let (all, total) = audit::list(&mut conn, &AuditFilter::default(), page)
        .await
        .expect("list");
    assert_eq!(total, 3);
    assert_eq!(all[0].action, "user.role_change", "newest first");
    let by_actor = AuditFilter {
        actor_id: Some(1),
        ..Default::default()
    };
    assert_eq!(audit_total(&mut conn, &by_actor).await, 2);
    let by_action = AuditFilter {
        action: Some("role.put".into()),
        ..Default::default()
    };
    assert_eq!(audit_total(&mut conn, &by_action).await, 1);
    let future = AuditFilter {
        from: Some(chrono::Utc::now() + chrono::Duration::hours(1)),
        ..Default::default()
    };
    assert_eq!(audit_total(&mut conn, &future).await, 0);

    let tamper = conn
        .batch_execute("UPDATE audit_log SET action = 'nothing'")
        .await;
    assert!(tamper.is_err(), "append-only");
    let erase = conn.batch_execute("DELETE FROM audit_log").await;
    assert!(erase.is_err(), "append-only");
}

/// How many audit entries `filter` matches.
async fn audit_total(
    conn: &mut diesel_async::AsyncPgConnection,
    filter: &ecom_core::audit::AuditFilter,
) -> i64 {
    let (_, total) = ecom_core::audit::list(conn, filter, page_of(10, 0))
        .await
        .expect("list");
    total
}
