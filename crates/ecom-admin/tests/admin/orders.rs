use ecom_testkit::{TestDb, test_app};
use serde_json::json;

use crate::{PASSWORD, admin_context, make_admin};

#[actix_web::test]
async fn orders_are_listed_filtered_and_moved_along_the_lifecycle() {
    let db = TestDb::new().await;
    let app = test_app(admin_context(&db)).await;
    let root = make_admin(&db, "root@example.com").await;
    let admin = app.login("root@example.com", PASSWORD).await;
    let (ann, ann_token) = app.sign_up("ann@example.com", PASSWORD).await;
    let (_, bob_token) = app.sign_up("bob@example.com", PASSWORD).await;
    let product = app
        .post(
            "/products",
            json!({"name": "Globe", "description": "", "price": "20.00", "stock": 10}),
            Some(&admin),
        )
        .await
        .json()["id"]
        .as_i64()
        .expect("product");
    let order = |token: String| {
        let app = &app;
        async move {
            let res = app
                .post(
                    "/orders",
                    json!({"items": [{"product_id": product, "quantity": 2}]}),
                    Some(&token),
                )
                .await;
            res.assert_status(201);
            res.json()["id"].as_i64().expect("order id")
        }
    };
    let first = order(ann_token.clone()).await;
    let second = order(bob_token.clone()).await;

    let all = app.get_as("/admin/orders", &admin).await.json();
    assert_eq!(all["total"], 2);
    assert_eq!(all["items"][0]["id"], second, "newest first");
    assert_eq!(all["items"][0]["items"][0]["product_name"], "Globe");
    let anns = app
        .get_as(&format!("/admin/orders?user_id={ann}"), &admin)
        .await
        .json();
    assert_eq!(
        (anns["total"].as_i64(), anns["items"][0]["id"].as_i64()),
        (Some(1), Some(first))
    );
    let today = chrono::Utc::now().date_naive();
    let dated = app
        .get_as(&format!("/admin/orders?from={today}&to={today}"), &admin)
        .await
        .json();
    assert_eq!(dated["total"], 2);
    let yesterday = today.pred_opt().expect("date");
    let before = app
        .get_as(&format!("/admin/orders?to={yesterday}"), &admin)
        .await
        .json();
    assert_eq!(before["total"], 0);
    app.get_as("/admin/orders?status=lost", &admin)
        .await
        .assert_problem(422, "validation_failed");

    for status in ["paid", "shipped", "delivered"] {
        let moved = app
            .patch(
                &format!("/admin/orders/{first}/status"),
                json!({"status": status}),
                Some(&admin),
            )
            .await;
        assert_eq!(moved.assert_status(200).json()["status"], status);
    }
    app.patch(
        &format!("/admin/orders/{first}/status"),
        json!({"status": "cancelled"}),
        Some(&admin),
    )
    .await
    .assert_problem(409, "invalid_status_transition");
    app.patch(
        &format!("/admin/orders/{second}/status"),
        json!({"status": "shipped"}),
        Some(&admin),
    )
    .await
    .assert_problem(409, "invalid_status_transition");
    app.patch(
        &format!("/admin/orders/{second}/status"),
        json!({"status": "lost"}),
        Some(&admin),
    )
    .await
    .assert_problem(422, "validation_failed");

    // Cancelling a paid order returns its stock once.
    app.patch(
        &format!("/admin/orders/{second}/status"),
        json!({"status": "paid"}),
        Some(&admin),
    )
    .await
    .assert_status(200);
    let stock_before = app.get(&format!("/products/{product}")).await.json()["stock"].as_i64();
    app.patch(
        &format!("/admin/orders/{second}/status"),
        json!({"status": "cancelled"}),
        Some(&admin),
    )
    .await
    .assert_status(200);
    let stock_after = app.get(&format!("/products/{product}")).await.json()["stock"].as_i64();
    assert_eq!(stock_after, stock_before.map(|s| s + 2));
    let paid = app
        .get_as("/admin/orders?status=cancelled", &admin)
        .await
        .json();
    assert_eq!(paid["total"], 1);

    let trail = app
        .get_as("/admin/audit?action=order.status_change", &admin)
        .await
        .json();
    assert_eq!(trail["total"], 5, "every admin status change is audited");
    assert_eq!(trail["items"][0]["actor_id"], root);
    assert_eq!(trail["items"][0]["after"]["status"], "cancelled");
}
