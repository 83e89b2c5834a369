//! Tests of ecom-webhooks against real receivers on loopback and the real PostgreSQL (a
//! database per test, see ecom-testkit): endpoints, fan-out, signed deliveries, retries,
//! disabling, manual retries, test deliveries, sharing between workers, destinations.

mod delivery;
mod endpoints;
mod failures;
mod measure;
mod sharing;
mod support;
