//! Who is calling: the bearer-token extractor and the permission guard.
//!
//! Core verifies the token; a [`PrincipalResolver`] (implemented by ecom-auth) then
//! reads the user's *current* role, permissions and ban state, so a ban or a role
//! change applies on the very next request whatever tokens the user holds.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use diesel_async::AsyncPgConnection;

use crate::access_token::{AccessTokens, TokenError};
use crate::error::AppError;
use crate::request_db;

crate::string_enum! {
    /// The fine-grained permissions of the store (API.md's Permissions line).
    pub enum Permission {
        #[serde(rename = "create:product")]
        #[strum(serialize = "create:product")]
        CreateProduct,
        #[serde(rename = "edit:product")]
        #[strum(serialize = "edit:product")]
        EditProduct,
        #[serde(rename = "delete:product")]
        #[strum(serialize = "delete:product")]
        DeleteProduct,
        #[serde(rename = "manage:products")]
        #[strum(serialize = "manage:products")]
        ManageProducts,
        #[serde(rename = "manage:orders")]
        #[strum(serialize = "manage:orders")]
        ManageOrders,
        #[serde(rename = "manage:users")]
        #[strum(serialize = "manage:users")]
        ManageUsers,
        #[serde(rename = "view:reports")]
        #[strum(serialize = "view:reports")]
        ViewReports,
        #[serde(rename = "manage:webhooks")]
        #[strum(serialize = "manage:webhooks")]
        ManageWebhooks,
    }
}

/// The user's state as the resolver reads it now.
#[derive(Debug, Clone)]
pub struct Account {
    pub user_id: i64,
    pub role: String,
    pub permissions: BTreeSet<Permission>,
    pub is_active: bool,
    /// Whether the login the token names is still open (not logged out, reused or revoked).
    pub session_active: bool,
}

impl Account {
    /// Whether every listed permission is held.
    pub fn has_all(&self, permissions: &[Permission]) -> bool {
        permissions.iter().all(|p| self.permissions.contains(p))
    }
}

/// Reads a user's current role, permissions, ban state and whether the token's login is
/// still open (implemented by ecom-auth), in one database round trip on the request's
/// connection (see [`crate::request_db`]).
#[async_trait::async_trait]
pub trait PrincipalResolver: Send + Sync {
    /// `None` when the user no longer exists.
    async fn resolve(
        &self,
        conn: &mut AsyncPgConnection,
        user_id: i64,
        session_id: i64,
    ) -> Result<Option<Account>, AppError>;
}

/// The resolver as stored in app data.
pub type SharedResolver = Arc<dyn PrincipalResolver>;

/// An authenticated, active user. Extracting it answers 401 without a valid bearer
/// token and 403 `account_banned` for a banned account.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: i64,
    pub role: String,
    pub permissions: BTreeSet<Permission>,
    /// The token's `jti`, for logs and audit.
    pub token_id: String,
    /// The token's login (refresh-token family).
    pub session_id: i64,
}

impl Principal {
    pub fn has(&self, permission: Permission) -> bool {
        self.permissions.contains(&permission)
    }

    /// 403 `forbidden` unless the principal holds the permission.
    pub fn require(&self, permission: Permission) -> Result<(), AppError> {
        if self.has(permission) {
            Ok(())
        } else {
            Err(AppError::forbidden(
                "forbidden",
                format!("this action needs the `{permission}` permission"),
            ))
        }
    }
}

fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}

async fn authenticate(req: HttpRequest) -> Result<Principal, AppError> {
    let token = bearer_token(&req).ok_or_else(|| {
        AppError::unauthorized("not_authenticated", "a bearer access token is required")
    })?;
    let token = token.to_string();
    Ok(authenticate_token(&req, &token).await?.0)
}

/// Verifies `token` and resolves its user now; also gives the token's expiry (Unix seconds).
async fn authenticate_token(req: &HttpRequest, token: &str) -> Result<(Principal, i64), AppError> {
    let tokens = req
        .app_data::<web::Data<AccessTokens>>()
        .ok_or_else(|| AppError::internal("AccessTokens missing from app data"))?;
    let (user_id, claims) = tokens.verify(token).map_err(|e| match e {
        TokenError::Expired => {
            AppError::unauthorized("token_expired", "the access token has expired")
        }
        _ => AppError::unauthorized("invalid_token", "the access token is invalid"),
    })?;
    let resolver = req
        .app_data::<web::Data<SharedResolver>>()
        .ok_or_else(|| AppError::internal("PrincipalResolver missing from app data"))?;
    let mut conn = request_db::pool_of(req)?.get().await?;
    let account = resolver.resolve(&mut conn, user_id, claims.sid).await?;
    request_db::keep_for_handler(req, conn);
    let principal = admit(account, claims.sid, claims.jti)?;
    Ok((principal, claims.exp))
}

/// The principal an account makes, or why it may not act: gone or invalid (401), banned
/// (403 `account_banned`), its login ended (401 `session_revoked`).
fn admit(
    account: Option<Account>,
    session_id: i64,
    token_id: String,
) -> Result<Principal, AppError> {
    let account = account
        .ok_or_else(|| AppError::unauthorized("invalid_token", "the access token is invalid"))?;
    if !account.is_active {
        return Err(AppError::forbidden(
            "account_banned",
            "this account is banned",
        ));
    }
    if !account.session_active {
        return Err(AppError::unauthorized(
            "session_revoked",
            "this login has been ended (logout, ban or password change); sign in again",
        ));
    }
    Ok(Principal {
        user_id: account.user_id,
        role: account.role,
        permissions: account.permissions,
        token_id,
        session_id,
    })
}

/// The caller of a long-lived stream (Server-Sent Events): the token comes as a bearer
/// header or, since browsers' `EventSource` sends no headers, as `?access_token=`. Carries
/// the token's expiry, so the stream can end with it, and re-checks the account on demand.
#[derive(Debug, Clone)]
pub struct StreamPrincipal {
    pub principal: Principal,
    /// The token's `exp` (Unix seconds).
    pub expires_at: i64,
    resolver: SharedResolver,
}

impl StreamPrincipal {
    /// The account as it is now: `Err` once the user is banned or gone, or the token's
    /// login was revoked (the stream then ends). Permissions are re-read too.
    pub async fn recheck(&self, conn: &mut AsyncPgConnection) -> Result<Principal, AppError> {
        let p = &self.principal;
        let account = self.resolver.resolve(conn, p.user_id, p.session_id).await?;
        admit(account, p.session_id, p.token_id.clone())
    }
}

impl std::fmt::Debug for dyn PrincipalResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrincipalResolver")
    }
}

impl FromRequest for StreamPrincipal {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let token = match bearer_token(&req) {
                Some(t) => t.to_string(),
                None => web::Query::<std::collections::HashMap<String, String>>::from_query(
                    req.query_string(),
                )
                .ok()
                .and_then(|q| q.get("access_token").cloned())
                .filter(|t| !t.trim().is_empty())
                .ok_or_else(|| {
                    AppError::unauthorized(
                        "not_authenticated",
                        "a bearer access token (or `access_token`) is required",
                    )
                })?,
            };
            let (principal, expires_at) = authenticate_token(&req, &token).await?;
            let resolver = req
                .app_data::<web::Data<SharedResolver>>()
                .map(|r| r.get_ref().clone())
                .ok_or_else(|| AppError::internal("PrincipalResolver missing from app data"))?;
            Ok(StreamPrincipal {
                principal,
                expires_at,
                resolver,
            })
        })
    }
}

impl FromRequest for Principal {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        Box::pin(authenticate(req.clone()))
    }
}

/// A principal when a token is sent, none otherwise; a bad token is still refused.
#[derive(Debug, Clone)]
pub struct MaybePrincipal(pub Option<Principal>);

impl FromRequest for MaybePrincipal {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            if req.headers().get(header::AUTHORIZATION).is_none() {
                return Ok(MaybePrincipal(None));
            }
            authenticate(req).await.map(|p| MaybePrincipal(Some(p)))
        })
    }
}
