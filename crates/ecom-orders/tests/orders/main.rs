//! ecom-orders' tests, against the real PostgreSQL (a database per test, see ecom-testkit).

mod checkout;
mod concurrency;
mod idempotency;
mod lifecycle;
mod listing;
mod lock_conflicts;
mod openapi;
mod report_races;
mod report_rollups;
mod reports;
mod support;
