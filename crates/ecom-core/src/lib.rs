//! ecom-core: what every domain crate shares and no domain owns.
//!
//! - [`settings`]: typed settings and development-mode rules
//! - [`db`], [`private_pg`], [`migrate`]: the pool, the private PostgreSQL, migrations
//! - [`read_replica`]: the optional streaming replica for anonymous reads, and its lag
//! - [`error`]: the one error type, rendered as problem+json
//! - [`money`], [`pagination`]: exact money and the list envelope
//! - [`access_token`], [`principal`]: bearer tokens, the caller, permissions
//! - [`audit`]: the append-only trail of administrative actions
//! - [`events`]: the outbox of domain events and the cursor its consumers move
//! - [`mail`]: the mail queue, written in the transaction that makes a mail necessary
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
pub mod events;
pub mod housekeeping;
pub mod http;
pub mod http_cache;
pub mod mail;
pub mod migrate;
pub mod money;
pub mod openapi;
pub mod pagination;
pub mod principal;
pub mod private_pg;
pub mod read_replica;
pub mod request_db;
pub mod server;
pub mod settings;
pub mod telemetry;

pub use error::{AppError, AppResult, FieldError};
pub use http::{AppContext, JsonObject, Module, build_app};
pub use money::Money;
pub use pagination::{Page, PageQuery, PageRequest};
pub use principal::{Permission, Principal};

/// Implements `Debug` showing only the named fields, then `..`: one way for every type
/// whose other fields (passwords, tokens, emails) must never reach a log line.
///
/// `ecom_core::debug_showing!(TokenPair { token_type, expires_in });`
#[macro_export]
macro_rules! debug_showing {
    ($type:ident { $($field:ident),* $(,)? }) => {
        impl ::std::fmt::Debug for $type {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct(stringify!($type))
                    $(.field(stringify!($field), &self.$field))*
                    .finish_non_exhaustive()
            }
        }
    };
}

/// Implements `From<$from> for $to` by moving the named fields, same name on both sides:
/// for a response body that shows part of a row.
///
/// `ecom_core::from_fields!(User => PublicProfile { id, full_name, bio, created_at });`
#[macro_export]
macro_rules! from_fields {
    ($from:ty => $to:ident { $($field:ident),* $(,)? }) => {
        impl ::std::convert::From<$from> for $to {
            fn from(value: $from) -> Self {
                Self {
                    $($field: value.$field),*
                }
            }
        }
    };
}

/// Declares an enum that the API and the database carry by name (permissions, order
/// statuses): the one set of derives such a closed vocabulary needs, `ALL` (every value,
/// in declaration order) and `as_str` (the name, the same string serde uses). Name the
/// values with `#[serde(...)]`/`#[strum(...)]` on the enum or its variants.
#[macro_export]
macro_rules! string_enum {
    ($(#[$attr:meta])* $vis:vis enum $name:ident { $($variants:tt)* }) => {
        #[derive(
            Debug,
            Clone,
            Copy,
            PartialEq,
            Eq,
            PartialOrd,
            Ord,
            Hash,
            ::serde::Serialize,
            ::serde::Deserialize,
            ::utoipa::ToSchema,
            ::strum::Display,
            ::strum::EnumString,
            ::strum::IntoStaticStr,
            ::strum::VariantArray,
        )]
        $(#[$attr])*
        $vis enum $name { $($variants)* }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = <Self as ::strum::VariantArray>::VARIANTS;

            /// The name as sent and stored, the same string serde uses.
            pub fn as_str(&self) -> &'static str {
                self.into()
            }
        }
    };
}

/// `n` random bytes from the OS-seeded CSPRNG, hex-encoded.
pub fn random_hex(n: usize) -> String {
    use rand::RngCore;
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}
