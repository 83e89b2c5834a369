//! The webhooks' use cases.
//!
//! - [`endpoints`]: endpoints, checked and audited
//! - [`deliveries`]: the delivery log, manual retry, the test delivery, retention
//! - [`fanout`]: the outbox consumer turning events into deliveries
//! - [`dispatch`]: the delivery workers (claim, send, record, retry, disable)
//! - [`destination`]: which addresses deliveries may go to
//! - [`signature`]: secrets and Standard Webhooks signatures

pub mod deliveries;
pub mod destination;
pub mod dispatch;
pub mod endpoints;
pub mod fanout;
pub mod signature;

pub use deliveries::{list_deliveries, purge_expired_deliveries, retry_delivery, send_test};
pub use dispatch::{DeliveryConfig, Dispatcher, Outcome, retry_delay};
pub use endpoints::{
    EndpointChanges, NewEndpoint, check_changes, check_new_endpoint, create_endpoint,
    delete_endpoint, get_endpoint, list_endpoints, update_endpoint,
};

pub(crate) type Result<T> = std::result::Result<T, crate::error::WebhooksError>;
