//! What the event routes take: the listing's filters.

use ecom_core::events::{EventFilter, TypePattern};
use ecom_core::pagination::de;
use ecom_core::{FieldError, PageQuery, PageRequest};
use serde::Deserialize;
use utoipa::{IntoParams, IntoResponses};

use crate::error::EventsError;

/// Filters of an event list or stream.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// `limit`, `offset` and `skip` (documented by [`PageQuery`]); the list only.
    #[serde(flatten)]
    #[param(ignore)]
    pub page: PageQuery,
    /// Comma-separated patterns as webhooks take them: a type (`order.paid`), a prefix
    /// (`order.*`) or `*`. Without it: every type.
    #[param(example = "order.*,payment.updated")]
    pub types: Option<String>,
    /// Only events with a larger id (a stream without `Last-Event-ID` starts here).
    #[serde(default, deserialize_with = "de::opt_i64")]
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// The access token, for clients that cannot send headers (browsers' `EventSource`).
    pub access_token: Option<String>,
}

impl EventQuery {
    /// The filter (without an owner) and the page; 422 naming `types`, `after` or paging.
    pub fn filter(&self) -> Result<(EventFilter, PageRequest), EventsError> {
        let page = self.page.validate().map_err(EventsError::Core)?;
        let mut errors = Vec::new();
        let mut types = Vec::new();
        for raw in self.types.iter().flat_map(|t| t.split(',')) {
            match TypePattern::parse(raw.trim()) {
                Some(p) => types.push(p),
                None => errors.push(FieldError::new(
                    "types",
                    format!("`{}` is not an event type, `<prefix>.*` or `*`", raw.trim()),
                )),
            }
        }
        if self.after.is_some_and(|a| a < 0) {
            errors.push(FieldError::new("after", "must be 0 or more"));
        }
        if !errors.is_empty() {
            return Err(EventsError::Invalid(errors));
        }
        let filter = EventFilter {
            types,
            owner_id: None,
            after: self.after,
        };
        Ok((filter, page))
    }
}

/// The answers every event route can give besides its 200.
#[derive(IntoResponses)]
pub enum EventListRefused {
    /// `invalid_last_event_id`: `Last-Event-ID` is not an event id
    #[response(status = 400)]
    BadLastEventId,
    /// `validation_failed`: `types`, `after` or paging
    #[response(status = 422)]
    Invalid,
}
