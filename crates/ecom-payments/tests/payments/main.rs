//! Tests of ecom-payments against real peers: localstripe for Stripe's HTTP API, and the
//! real PostgreSQL.

mod schema;
mod stripe;
