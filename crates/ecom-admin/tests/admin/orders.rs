use ecom_testkit::{NewProduct, db_and_app};
use serde_json::json;

use crate::{PASSWORD, admin_context, root};

/// `admin_id` records a manual payment of a pending order (audited, like a status
/// change): how an order becomes paid now that the status PATCH no longer sets `paid`.
pub async fn pay_by_hand(conn: &mut diesel_async::AsyncPgConnection, order_id: i64, admin_id: i64) {
    let outcome = ecom_orders::mark_paid(conn, order_id, ecom_orders::PaidBy::Manual { admin_id })
        .await
        .expect("mark_paid");
    assert!(
        matches!(outcome, ecom_orders::PaidOutcome::Paid(_)),
        "{outcome:?}"
    );
}

#[actix_web::test]
async fn orders_are_listed_filtered_and_moved_along_the_lifecycle() {
    let (db, app) = db_and_app(admin_context).await;
    let (root, as_admin) = root!(&db, app);
    let (ann, ann_token) = app.sign_up("ann@example.com", PASSWORD).await;
    let (_, bob_token) = app.sign_up("bob@example.com", PASSWORD).await;
    let product = as_admin
        .create_product(&NewProduct::new("Globe", "20.00", 10))
        .await
        .id;
    let order = |token: String| {
        let app = &app;
        async move { app.shopper(token).place_order(&[(product, 2)]).await.id }
    };
    let first = order(ann_token.clone()).await;
    let second = order(bob_token.clone()).await;

    let all = as_admin.get("/admin/orders").await.json();
    assert_eq!(all["total"], 2);
    assert_eq!(all["items"][0]["id"], second, "newest first");
    assert_eq!(all["items"][0]["items"][0]["product_name"], "Globe");
    let anns = as_admin
        .get(&format!("/admin/orders?user_id={ann}"))
        .await
        .json();
    assert_eq!(
        (anns["total"].as_i64(), anns["items"][0]["id"].as_i64()),
        (Some(1), Some(first))
    );
    let today = chrono::Utc::now().date_naive();
    let yesterday = today.pred_opt().expect("date");
    as_admin
        .assert_totals([
            (format!("/admin/orders?from={today}&to={today}"), 2),
            (format!("/admin/orders?to={yesterday}"), 0),
        ])
        .await;
    as_admin
        .get("/admin/orders?status=lost")
        .await
        .assert_problem(422, "validation_failed");

    let set_status = |id: i64, status: &str| {
        as_admin.patch(
            format!("/admin/orders/{id}/status"),
            json!({ "status": status }),
        )
    };
    // `paid` and `refunded` come from payments only (and nothing leads back to `pending`):
    // refused like an illegal jump, the order untouched.
    for status in ["paid", "refunded", "pending"] {
        set_status(first, status)
            .await
            .assert_problem(409, "invalid_status_transition");
    }
    let untouched = as_admin.get(&format!("/orders/{first}")).await.json();
    assert_eq!(untouched["status"], "pending");
    assert!(untouched["payment_due_at"].is_string());
    let mut conn = db.connect().await;
    pay_by_hand(&mut conn, first, root).await;
    for status in ["shipped", "delivered"] {
        let moved = set_status(first, status).await;
        assert_eq!(moved.assert_status(200).json()["status"], status);
    }
    for (id, status, code, problem) in [
        (first, "cancelled", 409, "invalid_status_transition"),
        (first, "refunded", 409, "invalid_status_transition"),
        (second, "shipped", 409, "invalid_status_transition"),
        (second, "lost", 422, "validation_failed"),
    ] {
        set_status(id, status).await.assert_problem(code, problem);
    }

    // Cancelling a paid order returns its stock once.
    pay_by_hand(&mut conn, second, root).await;
    let stock = async || app.get(&format!("/products/{product}")).await.json()["stock"].as_i64();
    let stock_before = stock().await;
    set_status(second, "cancelled").await.assert_status(200);
    assert_eq!(stock().await, stock_before.map(|s| s + 2));
    assert_eq!(
        as_admin
            .listed_total("/admin/orders?status=cancelled")
            .await,
        1
    );

    let trail = as_admin
        .get("/admin/audit?action=order.status_change")
        .await
        .json();
    assert_eq!(trail["total"], 5, "every admin status change is audited");
    assert_eq!(trail["items"][0]["actor_id"], root);
    assert_eq!(trail["items"][0]["after"]["status"], "cancelled");
}
