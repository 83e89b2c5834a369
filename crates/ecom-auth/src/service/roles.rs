//! Administration of users and roles: ban, role changes, search, permission sets.
//! ecom-admin calls these; each returns the state before and after for its audit trail.

use std::collections::{BTreeMap, BTreeSet};

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use ecom_core::pagination::Paged;
use ecom_core::{PageRequest, Permission, Principal};

use crate::error::{AuthError, AuthResult};
use crate::model::{ADMIN_ROLE, Role, User};
use crate::schema::{role_permissions, roles, users};
use crate::service::sessions;

/// Filters of the user list.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    /// Case-insensitive substring of the email or the full name.
    pub search: Option<String>,
    pub role: Option<String>,
    pub is_active: Option<bool>,
}

/// The permissions a role grants: every one for `admin`, else its rows.
pub async fn role_permissions(
    conn: &mut AsyncPgConnection,
    role: &str,
) -> AuthResult<BTreeSet<Permission>> {
    if role == ADMIN_ROLE {
        return Ok(Permission::ALL.iter().copied().collect());
    }
    let names: Vec<String> = role_permissions::table
        .filter(role_permissions::role.eq(role))
        .select(role_permissions::permission)
        .load(conn)
        .await?;
    Ok(names.iter().filter_map(|p| p.parse().ok()).collect())
}

/// Nobody hands out, takes away or acts on powers they do not hold themselves:
/// `PermissionNotHeld` names the permissions of `involved` the actor lacks.
fn require_held(actor: &Principal, involved: &BTreeSet<Permission>) -> AuthResult<()> {
    let missing: Vec<Permission> = involved.difference(&actor.permissions).copied().collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(AuthError::PermissionNotHeld(missing))
    }
}

/// The target account, locked until the transaction ends, so its role cannot change
/// between the permission check and the write.
async fn lock_user(conn: &mut AsyncPgConnection, user_id: i64) -> AuthResult<User> {
    users::table
        .find(user_id)
        .select(User::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()?
        .ok_or(AuthError::UserNotFound(user_id))
}

/// Bans (`active = false`) or unbans a user. The actor must hold every permission of
/// the target's role. A ban revokes every refresh family of the user in the same
/// transaction; access tokens stop working on the next request because the principal
/// resolver reads `is_active` and the family's revocation.
pub async fn set_active(
    conn: &mut AsyncPgConnection,
    actor: &Principal,
    user_id: i64,
    active: bool,
) -> AuthResult<(User, User)> {
    let change = AccountChange {
        is_active: Some(active),
        role: None,
    };
    change_account(conn, actor, user_id, change).await
}

/// Gives a user another existing role. The actor must hold every permission of both
/// the user's current role and the new one.
pub async fn change_role(
    conn: &mut AsyncPgConnection,
    actor: &Principal,
    user_id: i64,
    role: &str,
) -> AuthResult<(User, User)> {
    let change = AccountChange {
        is_active: None,
        role: Some(role),
    };
    change_account(conn, actor, user_id, change).await
}

/// What an administrator changes on an account: the ban state or the role.
#[derive(Clone, Copy, AsChangeset)]
#[diesel(table_name = users)]
struct AccountChange<'a> {
    is_active: Option<bool>,
    role: Option<&'a str>,
}

/// The one account update of the administration: never one's own account; a new role
/// must exist; the target is locked, and the actor must hold every permission of its
/// current role (and of the new one); a ban revokes every refresh family.
async fn change_account(
    conn: &mut AsyncPgConnection,
    actor: &Principal,
    user_id: i64,
    change: AccountChange<'_>,
) -> AuthResult<(User, User)> {
    if actor.user_id == user_id {
        return Err(AuthError::CannotModifySelf);
    }
    conn.transaction(async |conn| {
        if let Some(role) = change.role {
            let exists: bool = diesel::select(diesel::dsl::exists(roles::table.find(role)))
                .get_result(conn)
                .await?;
            if !exists {
                return Err(AuthError::UnknownRole(role.to_string()));
            }
        }
        let before = lock_user(conn, user_id).await?;
        let mut involved = role_permissions(conn, &before.role).await?;
        if let Some(role) = change.role {
            involved.extend(role_permissions(conn, role).await?);
        }
        require_held(actor, &involved)?;
        let after: User = diesel::update(users::table.find(user_id))
            .set((change, users::updated_at.eq(diesel::dsl::now)))
            .returning(User::as_returning())
            .get_result(conn)
            .await?;
        if change.is_active == Some(false) {
            sessions::revoke_all_for_user(conn, user_id, "banned").await?;
        }
        Ok((before, after))
    })
    .await
}

/// One page of users, newest first, with the total.
pub async fn list_users(
    conn: &mut AsyncPgConnection,
    filter: &UserFilter,
    page: PageRequest,
) -> AuthResult<(Vec<User>, i64)> {
    let query = || {
        let mut q = users::table.into_boxed();
        if let Some(search) = filter
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let pattern = format!("%{}%", escape_like(search));
            q = q.filter(
                users::email
                    .ilike(pattern.clone())
                    .or(users::full_name.ilike(pattern)),
            );
        }
        if let Some(role) = &filter.role {
            q = q.filter(users::role.eq(role.clone()));
        }
        if let Some(active) = filter.is_active {
            q = q.filter(users::is_active.eq(active));
        }
        q
    };
    let total: i64 = query().count().get_result(conn).await?;
    let items = query()
        .select(User::as_select())
        .order((users::created_at.desc(), users::id.desc()))
        .paged(page)
        .load(conn)
        .await?;
    Ok((items, total))
}

/// Escapes `%`, `_` and `\` for a LIKE pattern.
fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Every role with its permissions, by name.
pub async fn list_roles(conn: &mut AsyncPgConnection) -> AuthResult<Vec<Role>> {
    let rows: Vec<(String, Option<String>)> = roles::table
        .left_join(role_permissions::table)
        .select((roles::name, role_permissions::permission.nullable()))
        .order((roles::name, role_permissions::permission))
        .load(conn)
        .await?;
    let mut by_role: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (role, permission) in rows {
        let entry = by_role.entry(role).or_default();
        entry.extend(permission);
    }
    Ok(by_role
        .into_iter()
        .map(|(name, permissions)| Role { name, permissions })
        .collect())
}

/// Creates a role or replaces its permission set. `admin` always keeps every
/// permission, whatever is asked. The actor may not edit their own role, and may add or
/// remove only permissions they hold (one they lack may stay as it is). Concurrent
/// edits of one role are serialized on its row. Returns the role before (if it
/// existed) and after.
pub async fn put_role(
    conn: &mut AsyncPgConnection,
    actor: &Principal,
    name: &str,
    permissions: &[String],
) -> AuthResult<(Option<Role>, Role)> {
    if !name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        || name.len() > 50
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    {
        return Err(AuthError::field(
            "name",
            "must start with a lower-case letter and use only a-z, 0-9, '_' and '-' (at most 50)",
        ));
    }
    let mut wanted: Vec<String> = Vec::new();
    for p in permissions {
        let parsed: Permission = p
            .parse()
            .map_err(|_| AuthError::UnknownPermission(p.clone()))?;
        wanted.push(parsed.as_str().to_string());
    }
    if name == ADMIN_ROLE {
        wanted = Permission::ALL
            .iter()
            .map(|p| p.as_str().to_string())
            .collect();
    }
    wanted.sort();
    wanted.dedup();
    if name == actor.role {
        return Err(AuthError::CannotModifySelf);
    }
    conn.transaction(async |conn| {
        let created = diesel::insert_into(roles::table)
            .values(roles::name.eq(name))
            .on_conflict_do_nothing()
            .execute(conn)
            .await?
            == 1;
        roles::table
            .find(name)
            .select(roles::name)
            .for_update()
            .first::<String>(conn)
            .await?;
        let current = role_permissions(conn, name).await?;
        let requested: BTreeSet<Permission> =
            wanted.iter().filter_map(|p| p.parse().ok()).collect();
        let changed: BTreeSet<Permission> =
            current.symmetric_difference(&requested).copied().collect();
        require_held(actor, &changed)?;
        let before = (!created).then(|| Role {
            name: name.to_string(),
            permissions: current.iter().map(|p| p.as_str().to_string()).collect(),
        });
        diesel::delete(role_permissions::table.filter(role_permissions::role.eq(name)))
            .execute(conn)
            .await?;
        let rows: Vec<_> = wanted
            .iter()
            .map(|p| {
                (
                    role_permissions::role.eq(name),
                    role_permissions::permission.eq(p),
                )
            })
            .collect();
        diesel::insert_into(role_permissions::table)
            .values(rows)
            .execute(conn)
            .await?;
        Ok((
            before,
            Role {
                name: name.to_string(),
                permissions: wanted.clone(),
            },
        ))
    })
    .await
}
