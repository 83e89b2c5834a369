//! ecom-orders' tests, against the real PostgreSQL (a database per test, see ecom-testkit).

mod checkout;
mod concurrency;
mod expiry;
mod history;
mod idempotency;
mod lifecycle;
mod listing;
mod lock_conflicts;
mod migration;
mod openapi;
mod report_races;
mod report_rollups;
mod reports;
mod settlement;
mod support;
mod variant_lines;
