//! Logins as refresh-token families: login, rotation with reuse detection, logout.
//!
//! A refresh token is 256 random bits, given to the client once and stored only as its
//! SHA-256. Each refresh marks the presented token used and issues its child in the
//! same family. Presenting a used token again is treated as theft (RFC 9700 §4.14.2):
//! the whole family is revoked, so neither the thief nor the victim can go on.

use base64::Engine;
use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use ecom_core::access_token::AccessTokens;
use ecom_core::db::PgPool;
use sha2::Digest;

use crate::api::TokenPair;
use crate::error::{AuthError, AuthResult};
use crate::model::{RefreshFamily, RefreshTokenRow};
use crate::schema::{refresh_families, refresh_tokens};
use crate::service::accounts::{self, normalize_email};
use crate::service::password;
use crate::service::throttle::LoginThrottle;

/// What a session needs: the access-token signer and the refresh-token lifetime.
#[derive(Clone, Copy)]
pub struct SessionPolicy<'a> {
    pub tokens: &'a AccessTokens,
    pub refresh_ttl: chrono::Duration,
}

/// A fresh opaque refresh token and the hash that is stored.
fn new_refresh_token() -> (String, Vec<u8>) {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_token(&token);
    (token, hash)
}

fn hash_token(token: &str) -> Vec<u8> {
    sha2::Sha256::digest(token.as_bytes()).to_vec()
}

/// Checks email and password and opens a new login family.
pub async fn login(
    pool: &PgPool,
    policy: SessionPolicy<'_>,
    throttle: &dyn LoginThrottle,
    email: &str,
    password_text: String,
    client_address: &str,
) -> AuthResult<TokenPair> {
    let throttle_key = email.trim().to_lowercase();
    if let Err(wait) = throttle.check(&throttle_key, client_address) {
        return Err(AuthError::Throttled {
            retry_after_secs: wait.as_secs() + 1,
        });
    }
    let user = match normalize_email(email) {
        Ok(normalized) => {
            let mut conn = pool.get().await?;
            accounts::find_by_email(&mut conn, &normalized).await?
        }
        Err(_) => None,
    };
    // No connection is held while hashing; unknown emails cost a hash too.
    let matches = password::verify(
        password_text,
        user.as_ref().map(|u| u.password_hash.clone()),
    )
    .await;
    let Some(user) = user.filter(|_| matches) else {
        throttle.record_failure(&throttle_key, client_address);
        return Err(AuthError::InvalidCredentials);
    };
    throttle.record_success(&throttle_key);
    if !user.is_active {
        return Err(AuthError::AccountBanned);
    }
    let mut conn = pool.get().await?;
    conn.transaction(async |conn| {
        let family_id: i64 = diesel::insert_into(refresh_families::table)
            .values(refresh_families::user_id.eq(user.id))
            .returning(refresh_families::id)
            .get_result(conn)
            .await?;
        issue_pair(conn, policy, user.id, family_id, None).await
    })
    .await
}

async fn issue_pair(
    conn: &mut AsyncPgConnection,
    policy: SessionPolicy<'_>,
    user_id: i64,
    family_id: i64,
    parent_id: Option<i64>,
) -> AuthResult<TokenPair> {
    let (refresh_token, token_hash) = new_refresh_token();
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::family_id.eq(family_id),
            refresh_tokens::token_hash.eq(token_hash),
            refresh_tokens::parent_id.eq(parent_id),
            refresh_tokens::expires_at.eq(Utc::now() + policy.refresh_ttl),
        ))
        .execute(conn)
        .await?;
    let access = policy
        .tokens
        .issue(user_id)
        .map_err(|e| AuthError::Internal(e.to_string()))?;
    Ok(TokenPair {
        access_token: access.token,
        refresh_token,
        token_type: "bearer",
        expires_in: access.expires_in,
    })
}

enum Rotation {
    Issued(TokenPair),
    Reused { family_id: i64, user_id: i64 },
    Invalid,
    Banned,
}

/// Exchanges a refresh token for a new pair; the presented token stops working.
pub async fn refresh(
    pool: &PgPool,
    policy: SessionPolicy<'_>,
    presented: &str,
) -> AuthResult<TokenPair> {
    let hash = hash_token(presented);
    let mut conn = pool.get().await?;
    // The reuse branch must commit its revocation, so it returns Ok and fails afterwards.
    let rotation = conn
        .transaction(async |conn| -> AuthResult<Rotation> {
            let found: Option<(RefreshTokenRow, RefreshFamily)> = refresh_tokens::table
                .inner_join(refresh_families::table)
                .filter(refresh_tokens::token_hash.eq(&hash))
                .select((RefreshTokenRow::as_select(), RefreshFamily::as_select()))
                .for_update()
                .first(conn)
                .await
                .optional()?;
            let Some((token, family)) = found else {
                return Ok(Rotation::Invalid);
            };
            if token.used_at.is_some() {
                revoke_family(conn, family.id, "reuse").await?;
                return Ok(Rotation::Reused {
                    family_id: family.id,
                    user_id: family.user_id,
                });
            }
            if token.revoked_at.is_some()
                || family.revoked_at.is_some()
                || token.expires_at <= Utc::now()
            {
                return Ok(Rotation::Invalid);
            }
            let user = accounts::find(conn, family.user_id).await?;
            if !user.is_active {
                return Ok(Rotation::Banned);
            }
            diesel::update(refresh_tokens::table.find(token.id))
                .set(refresh_tokens::used_at.eq(diesel::dsl::now))
                .execute(conn)
                .await?;
            Ok(Rotation::Issued(
                issue_pair(conn, policy, user.id, family.id, Some(token.id)).await?,
            ))
        })
        .await?;
    match rotation {
        Rotation::Issued(pair) => Ok(pair),
        Rotation::Reused { family_id, user_id } => {
            tracing::warn!(
                security_event = "refresh_token_reuse",
                user_id,
                family_id,
                "a rotated refresh token was presented again; its login family is revoked"
            );
            Err(AuthError::RefreshTokenReused)
        }
        Rotation::Invalid => Err(AuthError::InvalidRefreshToken),
        Rotation::Banned => Err(AuthError::AccountBanned),
    }
}

/// Logout: the token's family is revoked. Unknown tokens are accepted silently
/// (RFC 7009), so the answer reveals nothing.
pub async fn revoke(pool: &PgPool, presented: &str) -> AuthResult<()> {
    let hash = hash_token(presented);
    let mut conn = pool.get().await?;
    let family_id: Option<i64> = refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(&hash))
        .select(refresh_tokens::family_id)
        .first(&mut conn)
        .await
        .optional()?;
    if let Some(family_id) = family_id {
        revoke_family(&mut conn, family_id, "logout").await?;
    }
    Ok(())
}

async fn revoke_family(
    conn: &mut AsyncPgConnection,
    family_id: i64,
    reason: &str,
) -> AuthResult<()> {
    diesel::update(
        refresh_families::table
            .find(family_id)
            .filter(refresh_families::revoked_at.is_null()),
    )
    .set((
        refresh_families::revoked_at.eq(diesel::dsl::now),
        refresh_families::revoked_reason.eq(reason),
    ))
    .execute(conn)
    .await?;
    Ok(())
}

/// Revokes every open login of the user (on ban); returns how many were open.
pub async fn revoke_all_for_user(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    reason: &str,
) -> AuthResult<usize> {
    Ok(diesel::update(
        refresh_families::table
            .filter(refresh_families::user_id.eq(user_id))
            .filter(refresh_families::revoked_at.is_null()),
    )
    .set((
        refresh_families::revoked_at.eq(diesel::dsl::now),
        refresh_families::revoked_reason.eq(reason),
    ))
    .execute(conn)
    .await?)
}
