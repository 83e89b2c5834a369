//! Order confirmations: an outbox consumer (`mail`) over `order.paid` events that queues a
//! confirmation to the order's owner in the cursor's transaction. Its Message-ID is derived
//! from the event id, so a replayed batch queues nothing new (the queue ignores a known
//! Message-ID) and a resend keeps the id.

use std::sync::Arc;

use ecom_core::AppError;
use ecom_core::db::PgConn;
use ecom_core::events::{Consumer, Event};
use ecom_core::mail::{self, OutgoingMail};
use serde::Deserialize;

/// The cursor's name in `event_cursors`.
pub const CONSUMER: &str = "mail";

/// What the confirmation needs from the sender's side.
#[derive(Debug, Clone)]
pub struct ConfirmationSettings {
    /// `MAIL_FROM`.
    pub from: String,
    /// `STORE_CURRENCY`.
    pub currency: String,
    /// `STOREFRONT_URL`, without a trailing slash.
    pub storefront_url: String,
}

/// The part of an `order.paid` event's `data.order` the mail shows.
#[derive(Deserialize)]
struct PaidOrder {
    id: i64,
    user_id: i64,
    total_price: serde_json::Value,
    #[serde(default)]
    items: Vec<PaidLine>,
}

#[derive(Deserialize)]
struct PaidLine {
    product_name: String,
    quantity: i64,
    unit_price: serde_json::Value,
    #[serde(default)]
    sku: Option<String>,
}

#[derive(Deserialize)]
struct PaidData {
    order: PaidOrder,
}

/// The consumer that queues order confirmations (batches of 100 events).
pub fn consumer(settings: ConfirmationSettings) -> Consumer {
    let settings = Arc::new(settings);
    Consumer::new(CONSUMER, 100, move |conn, events| {
        let settings = settings.clone();
        Box::pin(async move {
            for event in events.iter().filter(|e| e.event_type == "order.paid") {
                confirm(conn, &settings, event).await?;
            }
            Ok(())
        })
    })
}

/// Money as the events carry it (`"999.99"`) or a number, shown as text.
fn amount(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Queues the confirmation of one `order.paid` event (nothing when the owner's account is
/// gone or the event is not shaped as documented: logged, never blocking the cursor).
async fn confirm(
    conn: &mut PgConn,
    settings: &ConfirmationSettings,
    event: &Event,
) -> Result<(), AppError> {
    // Read from the event in place: the order's JSON is not copied.
    let order = match <PaidData as serde::Deserialize>::deserialize(&event.data) {
        Ok(data) => data.order,
        Err(e) => {
            tracing::warn!(event_id = event.id, error = %e, "order.paid without an order; no confirmation");
            return Ok(());
        }
    };
    let owner = match ecom_auth::service::accounts::find(conn, order.user_id).await {
        Ok(user) => user,
        Err(ecom_auth::AuthError::UserNotFound(_)) => {
            tracing::warn!(
                event_id = event.id,
                order_id = order.id,
                "the order's owner is gone; no confirmation"
            );
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let mut lines = String::new();
    for line in &order.items {
        let sku = line
            .sku
            .as_deref()
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        lines.push_str(&format!(
            "  {} × {}{} at {} {}\n",
            line.quantity,
            line.product_name,
            sku,
            amount(&line.unit_price),
            settings.currency
        ));
    }
    let greeting = match &owner.full_name {
        Some(name) => format!("Hello {name},"),
        None => "Hello,".to_string(),
    };
    let text_body = format!(
        "{greeting}\n\nThank you: we have received the payment for your order #{id}.\n\n\
         {lines}\nTotal: {total} {currency}\n\n\
         We will let you know when it ships. Your orders: {storefront}/orders/{id}\n",
        id = order.id,
        total = amount(&order.total_price),
        currency = settings.currency,
        storefront = settings.storefront_url,
    );
    mail::enqueue(
        conn,
        OutgoingMail {
            kind: "order_confirmation",
            from: settings.from.clone(),
            to: owner.email,
            subject: format!("Your order #{} is confirmed", order.id),
            text_body,
            message_id: mail::message_id(&settings.from, &format!("order-paid-{}", event.id)),
        },
    )
    .await?;
    Ok(())
}
