//! Administrative actions: each calls the owning domain's service and records the
//! audit row in the same transaction, so an action is never left unaudited.

use diesel_async::{AsyncConnection, AsyncPgConnection};
use ecom_auth::model::{Role, User};
use ecom_auth::service::roles;
use ecom_core::Principal;
use ecom_core::audit::{self, AuditEntry};

use crate::error::AdminResult;
use serde_json::json;

/// Changes a user's role, recorded as `user.role_change`.
pub async fn change_role(
    conn: &mut AsyncPgConnection,
    actor: &Principal,
    user_id: i64,
    role: &str,
) -> AdminResult<User> {
    let actor_id = actor.user_id;
    conn.transaction(async |conn| {
        let (before, after) = roles::change_role(conn, actor, user_id, role).await?;
        audit::record(
            conn,
            AuditEntry {
                actor_id,
                action: "user.role_change",
                target_type: "user",
                target_id: user_id.to_string(),
                before: Some(json!({"role": before.role})),
                after: Some(json!({"role": after.role})),
            },
        )
        .await?;
        Ok(after)
    })
    .await
}

/// Bans or unbans a user (a ban revokes every refresh family), recorded as
/// `user.ban` or `user.unban`.
pub async fn set_banned(
    conn: &mut AsyncPgConnection,
    actor: &Principal,
    user_id: i64,
    banned: bool,
) -> AdminResult<User> {
    let actor_id = actor.user_id;
    conn.transaction(async |conn| {
        let (before, after) = roles::set_active(conn, actor, user_id, !banned).await?;
        audit::record(
            conn,
            AuditEntry {
                actor_id,
                action: if banned { "user.ban" } else { "user.unban" },
                target_type: "user",
                target_id: user_id.to_string(),
                before: Some(json!({"is_active": before.is_active})),
                after: Some(json!({"is_active": after.is_active})),
            },
        )
        .await?;
        Ok(after)
    })
    .await
}

/// Creates or replaces a role's permission set, recorded as `role.put`.
pub async fn put_role(
    conn: &mut AsyncPgConnection,
    actor: &Principal,
    name: &str,
    permissions: &[String],
) -> AdminResult<Role> {
    let actor_id = actor.user_id;
    conn.transaction(async |conn| {
        let (before, after) = roles::put_role(conn, actor, name, permissions).await?;
        audit::record(
            conn,
            AuditEntry {
                actor_id,
                action: "role.put",
                target_type: "role",
                target_id: name.to_string(),
                before: before.map(|r| json!({"permissions": r.permissions})),
                after: Some(json!({"permissions": after.permissions})),
            },
        )
        .await?;
        Ok(after)
    })
    .await
}
