//! Tests of ecom-payments against real peers: localstripe for Stripe's HTTP API, and the
//! real PostgreSQL (a database per test, see ecom-testkit).

mod flows;
mod late;
mod races;
mod schema;
mod stripe;
mod support;
