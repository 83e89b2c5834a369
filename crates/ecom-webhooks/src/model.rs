//! Webhook endpoints and their deliveries, as stored.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::schema::{webhook_deliveries, webhook_endpoints};

ecom_core::string_enum! {
    /// Where a delivery stands: `pending` until a 2xx (`succeeded`) or until it is given up
    /// (`failed`: a status that is not retried, or no attempts left).
    #[serde(rename_all = "snake_case")]
    #[strum(serialize_all = "snake_case")]
    pub enum DeliveryStatus {
        Pending,
        Succeeded,
        Failed,
    }
}

/// Why the store disabled an endpoint.
pub const TOO_MANY_FAILURES: &str = "too_many_failures";

/// An endpoint row. Its `secret` signs deliveries and is never logged (see `Debug`).
#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = webhook_endpoints, check_for_backend(diesel::pg::Pg))]
pub struct Endpoint {
    pub id: i64,
    pub url: String,
    pub events: Vec<Option<String>>,
    pub description: Option<String>,
    pub secret: String,
    pub is_active: bool,
    pub disabled_reason: Option<String>,
    pub consecutive_failures: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

ecom_core::debug_showing!(Endpoint {
    id,
    is_active,
    disabled_reason,
    consecutive_failures
});

impl Endpoint {
    /// The subscription patterns, as written.
    pub fn patterns(&self) -> Vec<String> {
        self.events.iter().flatten().cloned().collect()
    }
}

/// A delivery as the log shows it (without its body).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhook_deliveries, check_for_backend(diesel::pg::Pg))]
pub struct Delivery {
    pub id: i64,
    pub endpoint_id: i64,
    pub event_id: i64,
    pub event_type: String,
    pub status: String,
    pub attempts: i32,
    pub response_code: Option<i32>,
    pub last_error: Option<String>,
    pub next_attempt_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}
