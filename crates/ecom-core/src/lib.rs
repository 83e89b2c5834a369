//! ecom-core: what every domain crate shares and no domain owns.
//!
//! - [`settings`]: typed settings and development-mode rules
//! - [`db`], [`private_pg`], [`migrate`]: the pool, the private PostgreSQL, migrations
//! - [`error`]: the one error type, rendered as problem+json
//! - [`money`], [`pagination`]: exact money and the list envelope
//! - [`access_token`], [`principal`]: bearer tokens, the caller, permissions
//! - [`audit`]: the append-only trail of administrative actions
//! - [`calendar`]: UTC days as instant ranges
//! - [`client_address`]: who the client is behind trusted proxies
//! - [`housekeeping`]: bounded periodic clean-ups, safe with several replicas
//! - [`http`], [`telemetry`], [`openapi`]: the app factory, request context, docs

pub mod access_token;
pub mod audit;
pub mod authorized;
pub mod calendar;
pub mod client_address;
pub mod db;
pub mod error;
pub mod housekeeping;
pub mod http;
pub mod http_cache;
pub mod migrate;
pub mod money;
pub mod openapi;
pub mod pagination;
pub mod principal;
pub mod private_pg;
pub mod server;
pub mod settings;
pub mod telemetry;

pub use error::{AppError, AppResult, FieldError};
pub use http::{AppContext, JsonObject, Module, build_app};
pub use money::Money;
pub use pagination::{Page, PageQuery, PageRequest};
pub use principal::{Permission, Principal};

/// `n` random bytes from the OS-seeded CSPRNG, hex-encoded.
pub fn random_hex(n: usize) -> String {
    use rand::RngCore;
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}
