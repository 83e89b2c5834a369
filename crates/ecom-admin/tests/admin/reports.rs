use diesel_async::SimpleAsyncConnection;
use ecom_testkit::{TestDb, test_app};

use crate::{admin_context, root};

/// Orders across four days and every status, with lines, inserted as they would have
/// been placed; the expected figures below are computed by hand from this list.
const FIXTURE: &str = "
INSERT INTO orders (id, user_id, status, total_price, created_at) VALUES
  (1, 1, 'paid',      30.00,  '2026-03-01 10:00:00+00'),
  (2, 2, 'delivered',  5.50,  '2026-03-01 23:59:59+00'),
  (3, 2, 'cancelled', 100.00, '2026-03-02 12:00:00+00'),
  (4, 3, 'pending',   40.00,  '2026-03-04 00:00:00+00'),
  (5, 1, 'paid',      999.00, '2026-03-05 00:00:00+00'),
  (6, 4, 'shipped',   77.00,  '2026-02-28 23:59:59+00'),
  (7, 5, 'refunded',  30.00,  '2026-03-03 09:00:00+00');
INSERT INTO order_lines (order_id, product_id, variant_id, product_name, unit_price, quantity, line_total) VALUES
  (1, 100, 100, 'Kettle', 10.00, 2, 20.00),
  (1, 200, 200, 'Mug',    10.00, 1, 10.00),
  (2, 200, 200, 'Mug',     5.50, 1,  5.50),
  (3, 300, 300, 'Lamp',  100.00, 1, 100.00),
  (4, 100, 100, 'Kettle', 10.00, 4, 40.00),
  (5, 300, 300, 'Lamp',  999.00, 1, 999.00),
  (6, 300, 300, 'Lamp',   77.00, 1, 77.00),
  (7, 100, 100, 'Kettle', 10.00, 3, 30.00);
";

#[actix_web::test]
async fn the_sales_report_matches_hand_computed_figures() {
    let db = TestDb::new().await;
    db.connect()
        .await
        .batch_execute(FIXTURE)
        .await
        .expect("fixture");
    let app = test_app(admin_context(&db)).await;
    let (_, as_admin) = root!(&db, app);

    let res = as_admin
        .get("/admin/reports/sales?from=2026-03-01&to=2026-03-04&top=5")
        .await;
    res.assert_status(200);
    let r = res.json();
    assert_eq!(r["from"], "2026-03-01");
    assert_eq!(r["to"], "2026-03-04");
    // Orders 1, 2 and 4: the cancelled order 3, the refunded order 7 and the out-of-range
    // 5 and 6 are left out (7's kettles too).
    assert_eq!(r["total_orders"], 3);
    assert_eq!(r["total_revenue"], "75.50");
    assert_eq!(r["average_order_value"], "25.17");
    assert_eq!(
        r["orders_by_status"],
        serde_json::json!({"pending": 1, "paid": 1, "shipped": 0, "delivered": 1, "cancelled": 1, "refunded": 1})
    );
    assert_eq!(
        r["top_products"],
        serde_json::json!([
            {"product_id": 100, "name": "Kettle", "units_sold": 6, "revenue": "60.00"},
            {"product_id": 200, "name": "Mug", "units_sold": 2, "revenue": "15.50"}
        ])
    );
    assert_eq!(
        r["daily"],
        serde_json::json!([
            {"date": "2026-03-01", "orders": 2, "revenue": "35.50"},
            {"date": "2026-03-02", "orders": 0, "revenue": "0.00"},
            {"date": "2026-03-03", "orders": 0, "revenue": "0.00"},
            {"date": "2026-03-04", "orders": 1, "revenue": "40.00"}
        ])
    );
    assert_eq!(
        r["active_customers"], 4,
        "users 1, 2, 3 and 5 (refunded) ordered in the period"
    );
    assert_eq!(r["new_users"], 0, "no account was created in March");

    let top1 = as_admin
        .get("/admin/reports/sales?from=2026-03-01&to=2026-03-04&top=1")
        .await
        .json();
    assert_eq!(top1["top_products"].as_array().map(Vec::len), Some(1));

    // The default period is the last 30 days, ending today: the accounts made here count.
    let recent = as_admin.get("/admin/reports/sales").await.json();
    assert_eq!(recent["daily"].as_array().map(Vec::len), Some(30));
    assert_eq!(recent["new_users"], 1);
    assert_eq!(recent["total_orders"], 0);
    assert_eq!(recent["total_revenue"], "0.00");

    for bad in [
        "from=2026-03-05&to=2026-03-01",
        "top=0",
        "top=51",
        "from=2020-01-01&to=2026-03-01",
    ] {
        as_admin
            .get(&format!("/admin/reports/sales?{bad}"))
            .await
            .assert_problem(422, "validation_failed");
    }
    as_admin
        .get("/admin/reports/sales?from=March")
        .await
        .assert_problem(400, "invalid_query");
}
