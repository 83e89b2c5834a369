//! Email tokens: what a verification or password-reset link carries.
//!
//! A token is 256 random bits, given to the user once (in the mail) and stored only as its
//! SHA-256. It is good while unused, not voided and not expired. Issuing one locks the
//! user's row and voids the older unused tokens of its kind, so at most one of a kind is
//! ever good. Using one is a single conditional `UPDATE … RETURNING`: of concurrent uses
//! exactly one changes the row, the others find nothing.

use std::time::Duration;

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::error::{AuthError, AuthResult};
use crate::model::User;
use crate::schema::{email_tokens, users};
use crate::service::sessions::{hash_token, new_opaque_token};

/// What a token lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    VerifyEmail,
    ResetPassword,
}

impl TokenKind {
    /// The name stored in `email_tokens.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::VerifyEmail => "verify_email",
            TokenKind::ResetPassword => "reset_password",
        }
    }
}

/// How long used, voided or expired tokens are kept before the clean-up deletes them.
const KEPT_AFTER_EXPIRY: &str = "1 day";

/// Issues a token of `kind` for the user, valid for `ttl`, voiding the user's older ones
/// of that kind. Call inside the transaction that mails it. Returns the token (never
/// stored or logged).
pub(crate) async fn issue(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    kind: TokenKind,
    ttl: Duration,
) -> AuthResult<String> {
    // One issuer per user at a time: two concurrent issues cannot both survive the voiding.
    users::table
        .find(user_id)
        .select(users::id)
        .for_update()
        .get_result::<i64>(conn)
        .await
        .optional()?
        .ok_or(AuthError::UserNotFound(user_id))?;
    diesel::update(
        email_tokens::table
            .filter(email_tokens::user_id.eq(user_id))
            .filter(email_tokens::kind.eq(kind.as_str()))
            .filter(email_tokens::used_at.is_null())
            .filter(email_tokens::voided_at.is_null()),
    )
    .set(email_tokens::voided_at.eq(diesel::dsl::now))
    .execute(conn)
    .await?;
    let ttl = chrono::Duration::from_std(ttl).map_err(|e| AuthError::Internal(e.to_string()))?;
    let (token, token_hash) = new_opaque_token();
    diesel::insert_into(email_tokens::table)
        .values((
            email_tokens::user_id.eq(user_id),
            email_tokens::kind.eq(kind.as_str()),
            email_tokens::token_hash.eq(token_hash),
            email_tokens::expires_at.eq(Utc::now() + ttl),
        ))
        .execute(conn)
        .await?;
    Ok(token)
}

/// The user of a good token of `kind`, without using it (to check a new password against
/// the account before the token is spent).
pub(crate) async fn holder(
    conn: &mut AsyncPgConnection,
    kind: TokenKind,
    token: &str,
) -> AuthResult<User> {
    email_tokens::table
        .inner_join(users::table)
        .filter(email_tokens::token_hash.eq(hash_token(token)))
        .filter(email_tokens::kind.eq(kind.as_str()))
        .filter(email_tokens::used_at.is_null())
        .filter(email_tokens::voided_at.is_null())
        .filter(email_tokens::expires_at.gt(diesel::dsl::now))
        .select(User::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or(AuthError::InvalidOrExpiredToken)
}

/// Uses a good token of `kind`: returns its user's id, or `InvalidOrExpiredToken` when it
/// is unknown, used, voided or expired (also when a concurrent use won).
pub(crate) async fn consume(
    conn: &mut AsyncPgConnection,
    kind: TokenKind,
    token: &str,
) -> AuthResult<i64> {
    diesel::update(
        email_tokens::table
            .filter(email_tokens::token_hash.eq(hash_token(token)))
            .filter(email_tokens::kind.eq(kind.as_str()))
            .filter(email_tokens::used_at.is_null())
            .filter(email_tokens::voided_at.is_null())
            .filter(email_tokens::expires_at.gt(diesel::dsl::now)),
    )
    .set(email_tokens::used_at.eq(diesel::dsl::now))
    .returning(email_tokens::user_id)
    .get_result(conn)
    .await
    .optional()?
    .ok_or(AuthError::InvalidOrExpiredToken)
}

/// Retention: deletes up to `batch` tokens expired for over a day (used and voided ones
/// included: none of them can be used any more). Rows another replica is deleting are
/// skipped. Returns how many were deleted.
pub async fn purge_expired(conn: &mut AsyncPgConnection, batch: i64) -> AuthResult<usize> {
    Ok(diesel::sql_query(format!(
        "DELETE FROM email_tokens WHERE id IN ( \
           SELECT id FROM email_tokens WHERE expires_at < now() - interval '{KEPT_AFTER_EXPIRY}' \
           ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)"
    ))
    .bind::<diesel::sql_types::BigInt, _>(batch)
    .execute(conn)
    .await?)
}
