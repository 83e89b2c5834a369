//! Request and response bodies of /admin/webhooks.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::model::{Delivery, DeliveryStatus, Endpoint};

// ---------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------

/// A webhook endpoint (its secret is shown only once, when it is created).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookOut {
    pub id: i64,
    #[schema(example = "https://erp.example.com/hooks/ecom")]
    pub url: String,
    /// Subscription patterns: event types (`order.created`), prefixes (`order.*`) or `*`.
    #[schema(example = json!(["order.*", "payment.updated"]))]
    pub events: Vec<String>,
    pub description: Option<String>,
    /// False while disabled: it then gets no deliveries (its pending ones wait).
    pub is_active: bool,
    /// `too_many_failures` when the store disabled it after `WEBHOOK_DISABLE_AFTER_FAILURES`
    /// failed deliveries in a row; null when active or disabled by an administrator.
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Endpoint> for WebhookOut {
    fn from(e: Endpoint) -> Self {
        Self {
            events: e.patterns(),
            id: e.id,
            url: e.url,
            description: e.description,
            is_active: e.is_active,
            disabled_reason: e.disabled_reason,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// A new endpoint with its signing secret, shown this once.
#[derive(Serialize, ToSchema)]
pub struct WebhookCreated {
    #[serde(flatten)]
    pub webhook: WebhookOut,
    /// `whsec_<base64>`: the Standard Webhooks signing key (the part after `whsec_`,
    /// base64-decoded, keys the HMAC-SHA256). The store cannot show it again.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: String,
}

ecom_core::debug_showing!(WebhookCreated { webhook });

/// One delivery of one event to one endpoint.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeliveryOut {
    pub id: i64,
    /// The event's id, also sent as `webhook-id`: receivers drop duplicates by it.
    pub event_id: i64,
    pub event_type: String,
    pub status: DeliveryStatus,
    /// Attempts made since the delivery was (re)queued.
    pub attempts: i32,
    /// The HTTP status of the last answer, if any.
    pub response_code: Option<i32>,
    /// Why the last attempt failed: `timeout`, `destination_not_allowed`, a network error,
    /// or `http_<status>`.
    pub last_error: Option<String>,
    /// While `pending`: when the next attempt is due; null once settled.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<Delivery> for DeliveryOut {
    fn from(d: Delivery) -> Self {
        let status = d.status.parse().unwrap_or(DeliveryStatus::Pending);
        Self {
            id: d.id,
            event_id: d.event_id,
            event_type: d.event_type,
            next_attempt_at: (status == DeliveryStatus::Pending).then_some(d.next_attempt_at),
            status,
            attempts: d.attempts,
            response_code: d.response_code,
            last_error: d.last_error,
            created_at: d.created_at,
        }
    }
}

/// A test delivery on its way: a `webhook.test` event is in the outbox, and its delivery
/// to this endpoint shows in the delivery log as soon as the fan-out has passed it
/// (normally within milliseconds of this answer).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TestQueued {
    pub endpoint_id: i64,
    /// Always `webhook.test`.
    #[schema(example = "webhook.test")]
    pub event_type: String,
}

ecom_core::named_page!(WebhookPage, WebhookOut, "One page of webhook endpoints");
ecom_core::named_page!(
    DeliveryPage,
    DeliveryOut,
    "One page of an endpoint's deliveries, newest first"
);

// ---------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------

/// A new endpoint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://erp.example.com/hooks/ecom", "events": ["order.*"], "description": "ERP"}))]
pub struct CreateWebhookRequest {
    /// `http://` or `https://`, at most 2048 characters. A host on a private, loopback,
    /// link-local, unspecified or multicast address is refused unless
    /// `WEBHOOK_ALLOW_PRIVATE` (host names are resolved to check).
    pub url: String,
    /// 1..=50 patterns: a type (`order.created`), `<prefix>.*` or `*`.
    #[schema(min_items = 1, max_items = 50)]
    pub events: Vec<String>,
    /// At most 500 characters.
    pub description: Option<String>,
}

/// A partial update; fields left out stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"is_active": true}))]
pub struct UpdateWebhookRequest {
    /// Checked as on create.
    pub url: Option<String>,
    /// Checked as on create.
    #[schema(min_items = 1, max_items = 50)]
    pub events: Option<Vec<String>>,
    /// At most 500 characters; an empty string clears it.
    pub description: Option<String>,
    /// `true` re-enables a disabled endpoint (and forgets its failures); `false` disables it.
    pub is_active: Option<bool>,
}

/// Filters of the delivery log.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// Only deliveries in this status.
    #[param(value_type = Option<DeliveryStatus>)]
    pub status: Option<String>,
    #[serde(flatten)]
    #[param(ignore)]
    pub page: ecom_core::PageQuery,
}

impl DeliveryQuery {
    /// The status filter; 422 naming `status` when it is not a delivery status.
    pub fn status(&self) -> Result<Option<DeliveryStatus>, crate::WebhooksError> {
        self.status
            .as_deref()
            .map(|s| {
                s.parse().map_err(|_| {
                    crate::WebhooksError::invalid("status", "must be pending, succeeded or failed")
                })
            })
            .transpose()
    }
}

/// An endpoint that needs `manage:webhooks`. Declared once; core gives each error its
/// `Problem` body.
#[derive(utoipa::IntoResponses)]
pub enum NeedsManageWebhooks {
    /// `forbidden`: needs `manage:webhooks`
    #[response(status = 403)]
    Forbidden,
}
