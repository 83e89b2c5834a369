//! Administrative actions: each calls the owning domain's service and records the
//! audit row in the same transaction, so an action is never left unaudited.

use diesel_async::{AsyncConnection, AsyncPgConnection};
use ecom_auth::model::{Role, User};
use ecom_auth::service::roles;
use ecom_core::Principal;
use ecom_core::audit::{self, AuditEntry};

use crate::error::AdminResult;
use serde_json::json;

/// What an administrator does to a user account; each is recorded under its own
/// audit action.
#[derive(Debug, Clone, Copy)]
pub enum UserAction<'a> {
    /// Gives the user another existing role: `user.role_change`.
    ChangeRole(&'a str),
    /// Bans the user (every refresh family is revoked): `user.ban`.
    Ban,
    /// Lifts a ban: `user.unban`.
    Unban,
}

impl UserAction<'_> {
    fn audit_action(self) -> &'static str {
        match self {
            UserAction::ChangeRole(_) => "user.role_change",
            UserAction::Ban => "user.ban",
            UserAction::Unban => "user.unban",
        }
    }

    /// What the audit trail keeps of the user: the field the action changes.
    fn audit_view(self, user: &User) -> serde_json::Value {
        match self {
            UserAction::ChangeRole(_) => json!({"role": user.role}),
            UserAction::Ban | UserAction::Unban => json!({"is_active": user.is_active}),
        }
    }
}

/// Acts on a user through ecom-auth and records the action, in one transaction.
pub async fn act_on_user(
    conn: &mut AsyncPgConnection,
    actor: &Principal,
    user_id: i64,
    action: UserAction<'_>,
) -> AdminResult<User> {
    conn.transaction(async |conn| {
        let (before, after) = match action {
            UserAction::ChangeRole(role) => roles::change_role(conn, actor, user_id, role).await?,
            UserAction::Ban => roles::set_active(conn, actor, user_id, false).await?,
            UserAction::Unban => roles::set_active(conn, actor, user_id, true).await?,
        };
        let entry = AuditEntry {
            actor_id: actor.user_id,
            action: action.audit_action(),
            target_type: "user",
            target_id: user_id.to_string(),
            before: Some(action.audit_view(&before)),
            after: Some(action.audit_view(&after)),
        };
        audit::record(conn, entry).await?;
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
