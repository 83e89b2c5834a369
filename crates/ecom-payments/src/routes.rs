//! Handlers of the payments' endpoints: parse, authorize, call a service, render.
//!
//! The endpoints (`/orders/{id}/payments`, the Stripe webhook, the admin operations) need
//! ecom-orders' settlement functions and arrive with them; until then the module serves
//! no route, so `bins/api` does not mount it.

use utoipa_actix_web::service_config::ServiceConfig;

/// Registers the payments' handlers; each carries its route and its operation.
pub fn configure(_cfg: &mut ServiceConfig) {}
