//! ecom-core's integration tests, against the real PostgreSQL (see ecom-testkit).

mod database;
mod events;
mod http_errors;
mod principal;
mod private_pg;
mod settings;
mod sqlstate;
mod support;
