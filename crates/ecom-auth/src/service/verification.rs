//! Email verification: the mail on request (the one at register is sent by
//! [`accounts::register`](crate::service::accounts::register)) and following its link.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use ecom_core::db::PgPool;

use crate::error::{AuthError, AuthResult};
use crate::model::User;
use crate::schema::users;
use crate::service::email_tokens::{self, TokenKind};
use crate::service::mails::MailPolicy;

/// Seconds between two requested verification mails of one account.
pub const REQUEST_INTERVAL_SECS: i64 = 60;

/// `POST /auth/verify-email/request`: a new verification mail (voiding the older links).
/// `EmailAlreadyVerified` when there is nothing to verify; `Throttled` within
/// [`REQUEST_INTERVAL_SECS`] of the previous request (the mail at register does not
/// count). The account's row is locked first, so of concurrent requests one sends a mail.
pub async fn request(pool: &PgPool, mails: &MailPolicy, user_id: i64) -> AuthResult<()> {
    let mut conn = pool.get().await?;
    conn.transaction(async |conn| {
        let (user, previous): (User, Option<DateTime<Utc>>) = users::table
            .find(user_id)
            .select((User::as_select(), users::verification_requested_at))
            .for_update()
            .get_result(conn)
            .await
            .optional()?
            .ok_or(AuthError::UserNotFound(user_id))?;
        if user.email_verified {
            return Err(AuthError::EmailAlreadyVerified);
        }
        let now = Utc::now();
        if let Some(next) = previous
            .map(|p| p + chrono::Duration::seconds(REQUEST_INTERVAL_SECS))
            .filter(|next| *next > now)
        {
            return Err(AuthError::Throttled {
                retry_after_secs: crate::service::throttle::retry_after(next),
            });
        }
        diesel::update(users::table.find(user_id))
            .set(users::verification_requested_at.eq(diesel::dsl::now))
            .execute(conn)
            .await?;
        mails.send_verification(conn, &user).await
    })
    .await
}

/// `POST /auth/verify-email`: uses the token and marks the address verified.
pub async fn verify(pool: &PgPool, token: &str) -> AuthResult<User> {
    let mut conn = pool.get().await?;
    conn.transaction(async |conn| {
        let user_id = email_tokens::consume(conn, TokenKind::VerifyEmail, token).await?;
        mark_verified(conn, user_id).await
    })
    .await
}

/// Sets `email_verified` (a followed verification or reset link proves the mailbox).
pub(crate) async fn mark_verified(
    conn: &mut diesel_async::AsyncPgConnection,
    user_id: i64,
) -> AuthResult<User> {
    Ok(diesel::update(users::table.find(user_id))
        .set((
            users::email_verified.eq(true),
            users::updated_at.eq(diesel::dsl::now),
        ))
        .returning(User::as_returning())
        .get_result(conn)
        .await?)
}
