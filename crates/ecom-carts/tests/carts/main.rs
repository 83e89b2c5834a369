//! ecom-carts' tests, against the real PostgreSQL (a database per test, see ecom-testkit).

mod checkout;
mod concurrency;
mod expiry;
mod guest;
mod items;
mod merge;
mod openapi;
mod problems;
mod support;
mod variants;
