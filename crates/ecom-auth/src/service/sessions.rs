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
use crate::service::throttle::{self, AttemptKeys, ThrottleLimits};

/// What a session needs: the access-token signer and the refresh-token lifetime.
#[derive(Clone, Copy)]
pub struct SessionPolicy<'a> {
    pub tokens: &'a AccessTokens,
    pub refresh_ttl: chrono::Duration,
}

/// A fresh opaque token (256 random bits, URL-safe base64) and the hash that is stored:
/// refresh tokens and email tokens alike.
pub(crate) fn new_opaque_token() -> (String, Vec<u8>) {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_token(&token);
    (token, hash)
}

pub(crate) fn hash_token(token: &str) -> Vec<u8> {
    sha2::Sha256::digest(token.as_bytes()).to_vec()
}

/// Checks email and password and opens a new login family. The attempt is counted
/// against the email and the client address first (see [`throttle`]); no connection is
/// held while the password is hashed.
pub async fn login(
    pool: &PgPool,
    policy: SessionPolicy<'_>,
    limits: ThrottleLimits,
    email: &str,
    password_text: String,
    client_address: &str,
) -> AuthResult<TokenPair> {
    let keys = AttemptKeys::new(email, client_address);
    let user = {
        let mut conn = pool.get().await?;
        throttle::count_attempt(&mut conn, limits, &keys).await?;
        match normalize_email(email) {
            Ok(normalized) => accounts::find_by_email(&mut conn, &normalized).await?,
            Err(_) => None,
        }
    };
    // Unknown emails cost a hash too, so timing does not tell which accounts exist.
    let matches = password::verify(
        password_text,
        user.as_ref().map(|u| u.password_hash.clone()),
    )
    .await;
    let Some(user) = user.filter(|_| matches) else {
        return Err(AuthError::InvalidCredentials);
    };
    let mut conn = pool.get().await?;
    throttle::record_success(&mut conn, &keys).await?;
    if !user.is_active {
        return Err(AuthError::AccountBanned);
    }
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
    let (refresh_token, token_hash) = new_opaque_token();
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
        .issue(user_id, family_id)
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

/// How long an ended login is kept: longer than any access token lives
/// (`ACCESS_TOKEN_EXPIRE_MINUTES` ≤ 1440), so a token naming a deleted family could only
/// have expired already.
const ENDED_SESSION_GRACE: &str = "1 day";

/// Deletes up to `batch` refresh tokens expired for longer than a day, then the login
/// families left without tokens and up to `batch` families revoked over a day ago.
/// Rows being rotated or cleaned by another replica are skipped. Returns rows deleted.
pub async fn purge_expired(conn: &mut AsyncPgConnection, batch: i64) -> AuthResult<usize> {
    use diesel::sql_types::BigInt;
    #[derive(QueryableByName)]
    struct Family {
        #[diesel(sql_type = BigInt)]
        family_id: i64,
    }
    conn.transaction(async |conn| {
        let emptied: Vec<Family> = diesel::sql_query(format!(
            "DELETE FROM refresh_tokens WHERE id IN ( \
               SELECT id FROM refresh_tokens WHERE expires_at < now() - interval '{ENDED_SESSION_GRACE}' \
               ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED) \
             RETURNING family_id"
        ))
        .bind::<BigInt, _>(batch)
        .load(conn)
        .await?;
        let mut families: Vec<i64> = emptied.iter().map(|f| f.family_id).collect();
        families.sort_unstable();
        families.dedup();
        let empty_families = diesel::sql_query(
            "DELETE FROM refresh_families f WHERE f.id = ANY($1) \
             AND NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.family_id = f.id)",
        )
        .bind::<diesel::sql_types::Array<BigInt>, _>(&families)
        .execute(conn)
        .await?;
        let revoked = diesel::sql_query(format!(
            "DELETE FROM refresh_families WHERE id IN ( \
               SELECT id FROM refresh_families WHERE revoked_at < now() - interval '{ENDED_SESSION_GRACE}' \
               ORDER BY revoked_at LIMIT $1 FOR UPDATE SKIP LOCKED)"
        ))
        .bind::<BigInt, _>(batch)
        .execute(conn)
        .await?;
        Ok(emptied.len() + empty_families + revoked)
    })
    .await
}
