//! The principal resolver ecom-core asks on every authenticated request: one indexed
//! query for the user's current state, so bans and role changes apply at once. No
//! cache: a cache could serve a stale ban.

use std::collections::BTreeSet;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use ecom_core::db::PgPool;
use ecom_core::principal::{Account, PrincipalResolver};
use ecom_core::{AppError, Permission};

use crate::model::ADMIN_ROLE;
use crate::schema::{role_permissions, users};

/// Reads accounts from the identity tables.
pub struct AccountResolver {
    pool: PgPool,
}

impl AccountResolver {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait::async_trait]
impl PrincipalResolver for AccountResolver {
    async fn resolve(&self, user_id: i64) -> Result<Option<Account>, AppError> {
        let mut conn = self.pool.get().await?;
        let rows: Vec<(String, bool, Option<String>)> = users::table
            .left_join(role_permissions::table.on(role_permissions::role.eq(users::role)))
            .filter(users::id.eq(user_id))
            .select((
                users::role,
                users::is_active,
                role_permissions::permission.nullable(),
            ))
            .load(&mut conn)
            .await?;
        let [(role, is_active, _), ..] = rows.as_slice() else {
            return Ok(None);
        };
        let (role, is_active) = (role.clone(), *is_active);
        let permissions: BTreeSet<Permission> = if role == ADMIN_ROLE {
            Permission::ALL.into_iter().collect()
        } else {
            rows.iter()
                .filter_map(|(_, _, p)| p.as_deref()?.parse().ok())
                .collect()
        };
        Ok(Some(Account {
            user_id,
            role,
            permissions,
            is_active,
        }))
    }
}
