//! Passwords after sign-up: forgotten (a reset link by mail), reset with that link, and
//! changed by their owner.

use std::time::Duration;

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use ecom_core::db::PgPool;
use ecom_core::{AppError, FieldError};

use crate::error::{AuthError, AuthResult};
use crate::schema::{refresh_families, users};
use crate::service::accounts::{self, normalize_email};
use crate::service::email_tokens::{self, TokenKind};
use crate::service::mails::MailPolicy;
use crate::service::throttle::{self, AttemptKeys, ThrottleLimits};
use crate::service::{password, verification};

/// `POST /auth/password/forgot` requests allowed per client address per hour.
pub const FORGOT_PER_ADDRESS_PER_HOUR: i32 = 10;
/// Reset mails sent per account per hour; more requests are answered alike and send none.
pub const RESET_MAILS_PER_ACCOUNT_PER_HOUR: i32 = 3;
const HOUR: Duration = Duration::from_secs(3600);

/// `POST /auth/password/forgot`. Counts the request against the client address (over
/// [`FORGOT_PER_ADDRESS_PER_HOUR`] → `Throttled`), then hands the rest to a background
/// task and returns: the answer never waits on work only an existing account causes, so
/// neither its body nor its timing tells whether the account exists.
pub async fn forgot(
    pool: &PgPool,
    mails: &MailPolicy,
    email: &str,
    client_address: &str,
) -> AuthResult<()> {
    let email = normalize_email(email)?;
    {
        let mut conn = pool.get().await?;
        let (requests, window_ends) =
            throttle::count(&mut conn, &format!("forgot:addr:{client_address}"), HOUR).await?;
        if requests > FORGOT_PER_ADDRESS_PER_HOUR {
            return Err(AuthError::Throttled {
                retry_after_secs: throttle::retry_after(window_ends),
            });
        }
    }
    let pool = pool.clone();
    let mails = mails.clone();
    tokio::spawn(async move {
        if let Err(e) = send_reset(&pool, &mails, &email).await {
            // Logged without the address: the error names no account.
            tracing::warn!(error = %AppError::from(e), "could not queue a password reset mail");
        }
    });
    Ok(())
}

/// Queues a reset mail for an active account with this (normalized) email, at most
/// [`RESET_MAILS_PER_ACCOUNT_PER_HOUR`]; otherwise does nothing.
async fn send_reset(pool: &PgPool, mails: &MailPolicy, email: &str) -> AuthResult<()> {
    let mut conn = pool.get().await?;
    conn.transaction(async |conn| {
        let Some(user) = accounts::find_by_email(conn, email).await? else {
            return Ok(());
        };
        if !user.is_active {
            return Ok(());
        }
        let (sent, _) = throttle::count(conn, &format!("reset_mail:{}", user.id), HOUR).await?;
        if sent > RESET_MAILS_PER_ACCOUNT_PER_HOUR {
            return Ok(());
        }
        mails.send_reset(conn, &user).await
    })
    .await
}

/// `POST /auth/password/reset`: uses the token, sets the password (the policy of
/// register), marks the email verified and revokes every login of the user. The token is
/// only spent when the password is accepted.
pub async fn reset(pool: &PgPool, token: &str, new_password: String) -> AuthResult<()> {
    let holder = {
        let mut conn = pool.get().await?;
        email_tokens::holder(&mut conn, TokenKind::ResetPassword, token).await?
    };
    password::check_policy(&new_password, &holder.email)?;
    let hash = password::hash(new_password).await?;
    let mut conn = pool.get().await?;
    conn.transaction(async |conn| {
        let user_id = email_tokens::consume(conn, TokenKind::ResetPassword, token).await?;
        set_password(conn, user_id, &hash).await?;
        verification::mark_verified(conn, user_id).await?;
        crate::service::sessions::revoke_all_for_user(conn, user_id, "password_reset").await?;
        Ok(())
    })
    .await
}

/// `POST /users/me/password`: checks the current password (counted like a login attempt:
/// a wrong one is a failed login for the throttle), sets the new one and revokes the
/// user's other logins, keeping `session_id` (the caller's).
pub async fn change_password(
    pool: &PgPool,
    limits: ThrottleLimits,
    user_id: i64,
    session_id: i64,
    current_password: String,
    new_password: String,
    client_address: &str,
) -> AuthResult<()> {
    let user = {
        let mut conn = pool.get().await?;
        accounts::find(&mut conn, user_id).await?
    };
    password::check_policy(&new_password, &user.email).map_err(|e| match e {
        AuthError::Invalid(fields) => AuthError::Invalid(
            fields
                .into_iter()
                .map(|f| FieldError::new("new_password", f.message))
                .collect(),
        ),
        other => other,
    })?;
    let keys = AttemptKeys::new(&user.email, client_address);
    {
        let mut conn = pool.get().await?;
        throttle::count_attempt(&mut conn, limits, &keys).await?;
    }
    if !password::verify(current_password, Some(user.password_hash.clone())).await {
        return Err(AuthError::InvalidCurrentPassword);
    }
    let hash = password::hash(new_password).await?;
    let mut conn = pool.get().await?;
    throttle::record_success(&mut conn, &keys).await?;
    conn.transaction(async |conn| {
        set_password(conn, user_id, &hash).await?;
        diesel::update(
            refresh_families::table
                .filter(refresh_families::user_id.eq(user_id))
                .filter(refresh_families::id.ne(session_id))
                .filter(refresh_families::revoked_at.is_null()),
        )
        .set((
            refresh_families::revoked_at.eq(diesel::dsl::now),
            refresh_families::revoked_reason.eq("password_changed"),
        ))
        .execute(conn)
        .await?;
        Ok(())
    })
    .await
}

async fn set_password(
    conn: &mut diesel_async::AsyncPgConnection,
    user_id: i64,
    hash: &str,
) -> AuthResult<()> {
    diesel::update(users::table.find(user_id))
        .set((
            users::password_hash.eq(hash),
            users::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await?;
    Ok(())
}
