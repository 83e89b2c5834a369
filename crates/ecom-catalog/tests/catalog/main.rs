//! ecom-catalog's tests, against the real PostgreSQL (a database per test, see ecom-testkit).

mod caching;
mod categories;
mod cursor;
mod listing;
mod openapi;
mod products;
mod reviews;
mod search;
mod search_reuse;
mod seed;
mod statements;
mod stock;
mod support;
mod totals;
mod variant_stock;
mod variants;
