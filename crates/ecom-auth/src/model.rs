//! Rows of the identity tables and the domain types built from them.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::schema::{refresh_families, refresh_tokens, users};

/// Name of the role that always holds every permission.
pub const ADMIN_ROLE: &str = "admin";
/// Name of the role new accounts get.
pub const USER_ROLE: &str = "user";

/// A user account.
#[derive(Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct User {
    pub id: i64,
    pub email: String,
    pub password_hash: String,
    pub full_name: Option<String>,
    pub bio: Option<String>,
    pub role: String,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Whether the owner followed a verification (or password reset) link.
    pub email_verified: bool,
}

// Never prints the email or the password hash.
ecom_core::debug_showing!(User {
    id,
    role,
    is_active,
    email_verified
});

#[derive(Insertable)]
#[diesel(table_name = users)]
pub(crate) struct NewUser<'a> {
    pub email: &'a str,
    pub password_hash: &'a str,
    pub full_name: Option<&'a str>,
    pub role: &'a str,
}

/// A login family: every refresh token descending from one login.
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = refresh_families, check_for_backend(diesel::pg::Pg))]
pub struct RefreshFamily {
    pub id: i64,
    pub user_id: i64,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_reason: Option<String>,
}

/// One refresh token of a family (stored as a hash only).
#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = refresh_tokens, check_for_backend(diesel::pg::Pg))]
pub struct RefreshTokenRow {
    pub id: i64,
    pub family_id: i64,
    pub token_hash: Vec<u8>,
    pub parent_id: Option<i64>,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A role and its permissions.
///
/// Also the response body of the role administration (`RoleOut`), sent as it is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[schema(as = RoleOut, description = "A role and its permissions.")]
pub struct Role {
    #[schema(example = "analyst")]
    pub name: String,
    #[schema(example = json!(["view:reports"]))]
    pub permissions: Vec<String>,
}
