//! The outbox: ids in commit order, gap-free sequences, consumers' cursors, wake-ups,
//! retention.

use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, TransactionManager};
use ecom_core::events::{self, Consumer, EventFilter, NewEvent, TypePattern, Wakeups};
use ecom_testkit::TestDb;
use serde_json::json;

type Tm = <AsyncPgConnection as AsyncConnection>::TransactionManager;

fn product_event(id: i64) -> NewEvent<'static> {
    NewEvent {
        event_type: "product.updated",
        aggregate_type: "product",
        aggregate_id: id,
        owner_id: None,
        data: json!({"product": {"id": id}}),
    }
}

async fn all_events(conn: &mut AsyncPgConnection) -> Vec<events::Event> {
    events::list_after(conn, &EventFilter::default(), 10_000)
        .await
        .expect("events")
}

#[actix_web::test]
async fn an_event_that_commits_later_gets_the_larger_id() {
    let db = TestDb::new().await;
    let mut first = db.connect().await;
    let mut second = db.connect().await;
    // `first` records before `second`, but commits after it.
    Tm::begin_transaction(&mut first).await.expect("begin");
    events::record(&mut first, product_event(1))
        .await
        .expect("record");
    Tm::begin_transaction(&mut second).await.expect("begin");
    events::record(&mut second, product_event(2))
        .await
        .expect("record");
    Tm::commit_transaction(&mut second).await.expect("commit");
    // A reader now sees only the committed one, with a real id.
    let mut reader = db.connect().await;
    let seen = all_events(&mut reader).await;
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].aggregate_id, 2);
    assert!(seen[0].id > 0);
    Tm::commit_transaction(&mut first).await.expect("commit");
    let seen = all_events(&mut reader).await;
    let order: Vec<i64> = seen.iter().map(|e| e.aggregate_id).collect();
    assert_eq!(order, vec![2, 1], "ids follow commit order");
    // A cursor at the first reader's position does not skip the late one.
    let after = events::list_after(
        &mut reader,
        &EventFilter {
            after: Some(seen[0].id),
            ..EventFilter::default()
        },
        10,
    )
    .await
    .expect("after");
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].aggregate_id, 1);
}

#[actix_web::test]
async fn sequences_count_per_aggregate_without_gaps_under_concurrency() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let mut writers = Vec::new();
    for i in 0..24i64 {
        let pool = pool.clone();
        writers.push(tokio::spawn(async move {
            let mut conn = pool.get().await.expect("connection");
            let result: Result<(), diesel::result::Error> = conn
                .transaction(async |conn| {
                    events::record(conn, product_event(i % 2)).await?;
                    events::record(conn, product_event(i % 2)).await?;
                    // Every third one rolls back: its events must leave no gap.
                    if i % 3 == 0 {
                        return Err(diesel::result::Error::RollbackTransaction);
                    }
                    Ok(())
                })
                .await;
            result.is_ok()
        }));
    }
    let mut committed = 0;
    for w in writers {
        if w.await.expect("writer") {
            committed += 1;
        }
    }
    assert_eq!(committed, 16);
    let mut conn = db.connect().await;
    let seen = all_events(&mut conn).await;
    assert_eq!(seen.len(), 32);
    for aggregate in [0, 1] {
        let sequences: Vec<i64> = seen
            .iter()
            .filter(|e| e.aggregate_id == aggregate)
            .map(|e| e.sequence.expect("sequence set at commit"))
            .collect();
        assert_eq!(
            sequences,
            (1..=16).collect::<Vec<i64>>(),
            "in id order, no gaps"
        );
    }
}

#[actix_web::test]
async fn type_patterns_name_known_types_only() {
    assert_eq!(TypePattern::parse("*"), Some(TypePattern::Any));
    assert!(
        TypePattern::parse("order.*")
            .expect("prefix")
            .matches("order.paid")
    );
    assert!(
        !TypePattern::parse("order.*")
            .expect("prefix")
            .matches("payment.updated")
    );
    assert!(
        TypePattern::parse("order.paid")
            .expect("type")
            .matches("order.paid")
    );
    assert_eq!(TypePattern::parse("orders.*"), None);
    assert_eq!(TypePattern::parse("order.shipped"), None);
    assert_eq!(TypePattern::parse(""), None);
    // And in SQL: the filter's patterns pick the same events.
    let db = TestDb::new().await;
    let mut conn = db.connect().await;
    conn.transaction::<_, diesel::result::Error, _>(async |conn| {
        for (t, a) in [
            ("order.paid", "order"),
            ("payment.updated", "payment"),
            ("product.created", "product"),
        ] {
            events::record(
                conn,
                NewEvent {
                    event_type: t,
                    aggregate_type: a,
                    aggregate_id: 1,
                    owner_id: Some(7),
                    data: json!({}),
                },
            )
            .await?;
        }
        Ok(())
    })
    .await
    .expect("record");
    let types = |patterns: &[&str]| EventFilter {
        types: patterns
            .iter()
            .map(|p| TypePattern::parse(p).expect("pattern"))
            .collect(),
        ..EventFilter::default()
    };
    let names =
        |events: Vec<events::Event>| events.into_iter().map(|e| e.event_type).collect::<Vec<_>>();
    assert_eq!(
        names(
            events::list_after(&mut conn, &types(&["order.*", "product.created"]), 10)
                .await
                .expect("list")
        ),
        vec!["order.paid", "product.created"]
    );
    assert_eq!(
        names(
            events::list_after(&mut conn, &types(&["*"]), 10)
                .await
                .expect("list")
        )
        .len(),
        3
    );
    let (page, total) = events::list_page(
        &mut conn,
        &types(&["payment.updated"]),
        ecom_core::PageRequest {
            limit: 10,
            offset: 0,
        },
    )
    .await
    .expect("page");
    assert_eq!(
        (names(page), total),
        (vec!["payment.updated".to_string()], 1)
    );
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[actix_web::test]
async fn a_consumer_handles_each_event_once_and_one_replica_at_a_time() {
    let db = TestDb::new().await;
    let mut conn = db.connect().await;
    conn.transaction::<_, diesel::result::Error, _>(async |conn| {
        for i in 0..5 {
            events::record(conn, product_event(i)).await?;
        }
        Ok(())
    })
    .await
    .expect("record");
    diesel::sql_query("CREATE TABLE handled (event_id BIGINT PRIMARY KEY)")
        .execute(&mut conn)
        .await
        .expect("table");
    let consumer = Consumer::new("test", 2, |conn, batch| {
        Box::pin(async move {
            for e in batch {
                diesel::sql_query("INSERT INTO handled VALUES ($1)")
                    .bind::<BigInt, _>(e.id)
                    .execute(conn)
                    .await?;
            }
            Ok(())
        })
    });
    // While one replica holds the cursor, another's step gets nothing.
    let mut holder = db.connect().await;
    consumer.step(&mut holder).await.expect("create the cursor");
    Tm::begin_transaction(&mut holder).await.expect("begin");
    diesel::sql_query("SELECT 1 FROM event_cursors WHERE consumer = 'test' FOR UPDATE")
        .execute(&mut holder)
        .await
        .expect("lock");
    assert_eq!(consumer.step(&mut conn).await.expect("step"), None);
    Tm::rollback_transaction(&mut holder)
        .await
        .expect("release");
    // Two steps from the first (2 were done above) finish the five; then nothing is left.
    assert_eq!(consumer.step(&mut conn).await.expect("step"), Some(2));
    assert_eq!(consumer.step(&mut conn).await.expect("step"), Some(1));
    assert_eq!(consumer.step(&mut conn).await.expect("step"), Some(0));
    let n: Count = diesel::sql_query("SELECT count(DISTINCT event_id) AS n FROM handled")
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!(n.n, 5);
}

#[actix_web::test]
async fn a_failing_batch_leaves_the_cursor_where_it_was() {
    let db = TestDb::new().await;
    let mut conn = db.connect().await;
    conn.transaction::<_, diesel::result::Error, _>(async |conn| {
        events::record(conn, product_event(1)).await
    })
    .await
    .expect("record");
    let failing = Consumer::new("flaky", 10, |_, _| {
        Box::pin(async { Err(ecom_core::AppError::unavailable("receiver down")) })
    });
    assert!(failing.step(&mut conn).await.is_err());
    let working = Consumer::new("flaky", 10, |_, _| Box::pin(async { Ok(()) }));
    assert_eq!(working.step(&mut conn).await.expect("step"), Some(1));
}

#[actix_web::test]
async fn a_commit_with_events_wakes_the_listeners() {
    let db = TestDb::new().await;
    let wakeups = Wakeups::listen(db.pool());
    let mut woken = wakeups.subscribe();
    // The listener connects in the background; its connect is itself a wake-up.
    tokio::time::timeout(Duration::from_secs(10), woken.changed())
        .await
        .expect("listener connected")
        .expect("open");
    let mut conn = db.connect().await;
    conn.transaction::<_, diesel::result::Error, _>(async |conn| {
        events::record(conn, product_event(1)).await
    })
    .await
    .expect("record");
    tokio::time::timeout(Duration::from_secs(10), woken.changed())
        .await
        .expect("woken by the commit")
        .expect("open");
}

#[actix_web::test]
async fn retention_keeps_each_aggregates_newest_event() {
    let db = TestDb::new().await;
    let mut conn = db.connect().await;
    conn.transaction::<_, diesel::result::Error, _>(async |conn| {
        for id in [1, 1, 1, 2] {
            events::record(conn, product_event(id)).await?;
        }
        Ok(())
    })
    .await
    .expect("record");
    diesel::sql_query("UPDATE events SET occurred_at = now() - interval '40 days'")
        .execute(&mut conn)
        .await
        .expect("age");
    assert_eq!(
        events::delete_expired(&mut conn, 30, 100)
            .await
            .expect("delete"),
        2
    );
    let left: Vec<(i64, Option<i64>)> = all_events(&mut conn)
        .await
        .into_iter()
        .map(|e| (e.aggregate_id, e.sequence))
        .collect();
    assert_eq!(left, vec![(1, Some(3)), (2, Some(1))]);
    // The next event of aggregate 1 continues its count.
    conn.transaction::<_, diesel::result::Error, _>(async |conn| {
        events::record(conn, product_event(1)).await
    })
    .await
    .expect("record");
    assert_eq!(
        all_events(&mut conn).await.last().and_then(|e| e.sequence),
        Some(4)
    );
}
