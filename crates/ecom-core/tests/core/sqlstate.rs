//! Failures provoked for real on PostgreSQL, classified by SQLSTATE: a deadlock, a lock
//! timeout, a statement timeout, NUL in text, a session cut for idling in a transaction;
//! and the conflict retry, which runs a deadlocked transaction again only when it owns it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use actix_web::http::StatusCode;
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Integer, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use ecom_core::AppError;
use ecom_core::db::{self, ConflictRetry, PgPool, PoolOptions, SessionTimeouts, retry_conflicts};
use ecom_core::error::{UNAVAILABLE_RETRY_AFTER_SECS, is_transaction_conflict, sqlstate_of};
use ecom_testkit::TestDb;

#[derive(QueryableByName)]
struct Value {
    #[diesel(sql_type = Text)]
    value: String,
}

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn pool(db: &TestDb, statement_timeout: Duration, timeouts: SessionTimeouts) -> PgPool {
    let options = PoolOptions {
        max_size: 4,
        wait_timeout: Duration::from_secs(10),
        statement_timeout,
        application_name: "ecom-sqlstate-test".into(),
    };
    db::build_pool_with(&db.url, &options, &timeouts).expect("pool")
}

fn timeouts(lock_ms: u64, idle_ms: u64) -> SessionTimeouts {
    SessionTimeouts {
        lock_timeout: Duration::from_millis(lock_ms),
        idle_in_transaction_timeout: Duration::from_millis(idle_ms),
    }
}

async fn show(conn: &mut AsyncPgConnection, setting: &str) -> String {
    let row: Value = diesel::sql_query(format!("SELECT current_setting('{setting}') AS value"))
        .get_result(conn)
        .await
        .expect("setting");
    row.value
}

/// Two rows to lock, `id` 1 and 2.
async fn rows_to_lock(conn: &mut AsyncPgConnection) {
    conn.batch_execute(
        "CREATE TABLE lockable (id int PRIMARY KEY, v int NOT NULL DEFAULT 0); \
         INSERT INTO lockable (id) VALUES (1), (2);",
    )
    .await
    .expect("table");
}

async fn lock_row(conn: &mut AsyncPgConnection, id: i32) -> diesel::QueryResult<usize> {
    diesel::sql_query("UPDATE lockable SET v = v + 1 WHERE id = $1")
        .bind::<Integer, _>(id)
        .execute(conn)
        .await
}

/// Waits (bounded) until some session of this database waits for a row lock.
async fn until_a_session_waits_for_a_lock(observer: &mut AsyncPgConnection) {
    for _ in 0..200 {
        let row: N = diesel::sql_query(
            "SELECT count(*) AS n FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .get_result(observer)
        .await
        .expect("pg_stat_activity");
        if row.n > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no session started waiting for a lock");
}

fn assert_unavailable(err: diesel::result::Error) {
    let e = AppError::from(err);
    assert_eq!(
        (e.status(), e.code(), e.retry_after_secs()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            Some(UNAVAILABLE_RETRY_AFTER_SECS)
        )
    );
}

#[actix_web::test]
async fn a_real_deadlock_is_40p01_a_conflict_and_a_503() {
    let db = TestDb::new().await;
    let mut a = db.connect().await;
    let mut b = db.connect().await;
    rows_to_lock(&mut a).await;
    a.batch_execute("BEGIN").await.expect("begin a");
    b.batch_execute("BEGIN").await.expect("begin b");
    lock_row(&mut a, 1).await.expect("a locks 1");
    lock_row(&mut b, 2).await.expect("b locks 2");
    // Opposite order: each waits for the other; PostgreSQL aborts one of them.
    let (ra, rb) = tokio::join!(lock_row(&mut a, 2), lock_row(&mut b, 1));
    let err = match (ra, rb) {
        (Err(e), Ok(_)) | (Ok(_), Err(e)) => e,
        other => panic!("exactly one side must lose the deadlock: {other:?}"),
    };
    assert_eq!(sqlstate_of(&err), Some("40P01"), "{err}");
    assert!(is_transaction_conflict(&err));
    assert_unavailable(err);
}

#[actix_web::test]
async fn a_lock_wait_past_lock_timeout_is_55p03_and_a_503() {
    let db = TestDb::new().await;
    let mut holder = db.connect().await;
    rows_to_lock(&mut holder).await;
    let pool = pool(&db, Duration::from_secs(60), timeouts(200, 30_000));
    let mut conn = pool.get().await.expect("pooled connection");
    assert_eq!(show(&mut conn, "lock_timeout").await, "200ms");

    holder.batch_execute("BEGIN").await.expect("begin");
    lock_row(&mut holder, 1).await.expect("holder locks 1");
    // Without lock_timeout this would wait for the holder (the statement timeout is 60 s).
    let err = tokio::time::timeout(Duration::from_secs(30), lock_row(&mut conn, 1))
        .await
        .expect("lock_timeout ends the wait")
        .expect_err("the row is held");
    assert_eq!(sqlstate_of(&err), Some("55P03"), "{err}");
    assert!(
        !is_transaction_conflict(&err),
        "a lock timeout is not retried"
    );
    assert_unavailable(err);
    holder.batch_execute("ROLLBACK").await.expect("rollback");
}

#[actix_web::test]
async fn a_statement_timeout_is_57014_and_a_503() {
    let db = TestDb::new().await;
    let pool = pool(&db, Duration::from_millis(100), SessionTimeouts::default());
    let mut conn = pool.get().await.expect("pooled connection");
    let err = diesel::sql_query("SELECT pg_sleep(30)")
        .execute(&mut conn)
        .await
        .expect_err("statement timeout");
    assert_eq!(sqlstate_of(&err), Some("57014"), "{err}");
    assert_unavailable(err);
}

#[actix_web::test]
async fn nul_in_text_is_22021_and_a_422() {
    let (_db, mut conn) = TestDb::connected().await;
    let err = diesel::sql_query("SELECT $1::text AS value")
        .bind::<Text, _>("a\u{0}b")
        .get_result::<Value>(&mut conn)
        .await
        .err()
        .expect("text cannot hold NUL");
    assert_eq!(sqlstate_of(&err), Some("22021"), "{err}");
    let e = AppError::from(err);
    assert_eq!(
        (e.status(), e.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
    );
}

#[actix_web::test]
async fn a_connection_idle_in_a_transaction_is_cut_by_the_server() {
    let db = TestDb::new().await;
    let mut observer = db.connect().await;
    let pool = pool(&db, Duration::from_secs(60), timeouts(5000, 300));
    let mut conn = pool.get().await.expect("pooled connection");
    assert_eq!(
        show(&mut conn, "idle_in_transaction_session_timeout").await,
        "300ms"
    );
    conn.batch_execute("BEGIN").await.expect("begin");
    let pid: N = diesel::sql_query("SELECT pg_backend_pid()::bigint AS n")
        .get_result(&mut *conn)
        .await
        .expect("pid");

    // The server ends the session by itself: its backend leaves pg_stat_activity.
    let mut gone = false;
    for _ in 0..200 {
        let row: N = diesel::sql_query("SELECT count(*) AS n FROM pg_stat_activity WHERE pid = $1")
            .bind::<Integer, _>(i32::try_from(pid.n).expect("pid fits"))
            .get_result(&mut observer)
            .await
            .expect("pg_stat_activity");
        if row.n == 0 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "the idle transaction's session was not terminated");
    let err = diesel::sql_query("SELECT 1")
        .execute(&mut *conn)
        .await
        .expect_err("the session is gone");
    // The server's 25P03 notice arrives as the closing of the connection: no SQLSTATE.
    assert_unavailable(err);
}

/// One run: a transaction locking row 1, then row 2.
async fn lock_both(conn: &mut AsyncPgConnection, runs: &AtomicU32) -> diesel::QueryResult<()> {
    runs.fetch_add(1, Ordering::SeqCst);
    conn.transaction(async |conn| {
        lock_row(conn, 1).await?;
        lock_row(conn, 2).await?;
        Ok(())
    })
    .await
}

/// [`lock_both`] under the loop form of the retry, which may run inside another transaction.
async fn lock_both_under_conflict_retry(
    conn: &mut AsyncPgConnection,
    runs: &AtomicU32,
) -> diesel::QueryResult<()> {
    let mut retry = ConflictRetry::new(conn);
    loop {
        match lock_both(conn, runs).await {
            Err(e) if retry.again(&e).await => {}
            outcome => return outcome,
        }
    }
}

/// Runs the retry around a transaction that locks row 1 then row 2, while a
/// competitor holding row 2 asks for row 1: a real deadlock. The competitor waits long
/// before checking for deadlocks, so PostgreSQL aborts the retried side. Returns the
/// outcome and how many runs the operation made.
async fn deadlock_against_competitor(
    db: &TestDb,
    conn: &mut AsyncPgConnection,
    open_outer_transaction: bool,
) -> (diesel::QueryResult<()>, u32) {
    let mut competitor = db.connect().await;
    let mut observer = db.connect().await;
    competitor
        .batch_execute("SET deadlock_timeout = '60s'; BEGIN;")
        .await
        .expect("competitor begins");
    lock_row(&mut competitor, 2)
        .await
        .expect("competitor locks 2");

    let runs = AtomicU32::new(0);
    let operation = async {
        if open_outer_transaction {
            conn.transaction(async |conn| lock_both_under_conflict_retry(conn, &runs).await)
                .await
        } else {
            retry_conflicts(conn, async |conn| lock_both(conn, &runs).await).await
        }
    };
    let competition = async {
        until_a_session_waits_for_a_lock(&mut observer).await;
        // Waits for row 1 until PostgreSQL aborts the other side's run.
        lock_row(&mut competitor, 1)
            .await
            .expect("competitor gets row 1");
        competitor.batch_execute("COMMIT").await.expect("commit");
    };
    let (outcome, ()) = tokio::join!(operation, competition);
    (outcome, AtomicU32::load(&runs, Ordering::SeqCst))
}

#[actix_web::test]
async fn a_deadlocked_transaction_is_run_again_and_commits() {
    let (db, mut conn) = TestDb::connected().await;
    rows_to_lock(&mut conn).await;
    let (outcome, runs) = deadlock_against_competitor(&db, &mut conn, false).await;
    outcome.expect("the second run commits");
    assert_eq!(runs, 2, "one deadlocked run, one that committed");
    let row: N = diesel::sql_query("SELECT sum(v)::bigint AS n FROM lockable")
        .get_result(&mut conn)
        .await
        .expect("sum");
    // The competitor's two updates and one committed run's two: the aborted run left nothing.
    assert_eq!(row.n, 4);
}

#[actix_web::test]
async fn inside_a_callers_transaction_a_conflict_is_returned_not_retried() {
    let (db, mut conn) = TestDb::connected().await;
    rows_to_lock(&mut conn).await;
    let (outcome, runs) = deadlock_against_competitor(&db, &mut conn, true).await;
    let err = outcome.expect_err("the owner of the transaction gets the conflict");
    assert_eq!(sqlstate_of(&err), Some("40P01"), "{err}");
    assert_eq!(runs, 1, "a savepoint is never run again");
    let row: N = diesel::sql_query("SELECT sum(v)::bigint AS n FROM lockable")
        .get_result(&mut conn)
        .await
        .expect("sum");
    assert_eq!(row.n, 2, "only the competitor's updates committed");
}
