//! The principal resolver ecom-core asks on every authenticated request: one indexed
//! query for the user's current state and whether the token's login is still open, so
//! bans, role changes and logouts apply at once. No cache: a cache could serve a stale ban.

use std::collections::BTreeSet;

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use ecom_core::principal::{Account, PrincipalResolver};
use ecom_core::{AppError, Permission};

use crate::model::ADMIN_ROLE;
use crate::schema::{refresh_families, role_permissions, users};

/// Reads accounts from the identity tables.
pub struct AccountResolver;

#[async_trait::async_trait]
impl PrincipalResolver for AccountResolver {
    async fn resolve(
        &self,
        conn: &mut AsyncPgConnection,
        user_id: i64,
        session_id: i64,
    ) -> Result<Option<Account>, AppError> {
        let session_open = diesel::dsl::exists(
            refresh_families::table
                .filter(refresh_families::id.eq(session_id))
                .filter(refresh_families::user_id.eq(user_id))
                .filter(refresh_families::revoked_at.is_null()),
        );
        let rows: Vec<(String, bool, Option<String>, bool)> = users::table
            .left_join(role_permissions::table.on(role_permissions::role.eq(users::role)))
            .filter(users::id.eq(user_id))
            .select((
                users::role,
                users::is_active,
                role_permissions::permission.nullable(),
                session_open,
            ))
            .load(conn)
            .await?;
        let [(role, is_active, _, session_active), ..] = rows.as_slice() else {
            return Ok(None);
        };
        let (role, is_active, session_active) = (role.clone(), *is_active, *session_active);
        let permissions: BTreeSet<Permission> = if role == ADMIN_ROLE {
            Permission::ALL.iter().copied().collect()
        } else {
            rows.iter()
                .filter_map(|(_, _, p, _)| p.as_deref()?.parse().ok())
                .collect()
        };
        Ok(Some(Account {
            user_id,
            role,
            permissions,
            is_active,
            session_active,
        }))
    }
}
