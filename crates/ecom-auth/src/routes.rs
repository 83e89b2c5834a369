//! Handlers of /auth and /users: parse, call a service, render.

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, get, post, route, web};
use ecom_core::access_token::AccessTokens;
use ecom_core::client_address::ClientAddress;
use ecom_core::db::PgPool;
use ecom_core::request_db::Db;
use ecom_core::settings::Settings;
use ecom_core::{AppError, AppResult, Principal};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::{
    Accepted, ChangePasswordRequest, ForgotPasswordRequest, LoginErrors, LoginForm, LoginRequest,
    PublicProfile, RefreshErrors, RefreshRequest, RegisterRequest, ResetPasswordRequest, TokenPair,
    UpdateProfileRequest, UserProfile, VerifyEmailRequest,
};
use crate::service::mails::MailPolicy;
use crate::service::sessions::{self, SessionPolicy};
use crate::service::throttle::ThrottleLimits;
use crate::service::{accounts, recovery, verification};
/// Registers /auth and /users (with the original service's deprecated aliases); each
/// handler carries its route and its operation, so what is served is what is documented.
#[allow(deprecated)]
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(register)
        .service(login)
        .service(refresh)
        .service(revoke)
        .service(legacy::login_legacy)
        .service(legacy::legacy_refresh)
        .service(legacy::legacy_logout)
        .service(request_verification)
        .service(verify_email)
        .service(forgot_password)
        .service(reset_password)
        .service(get_me)
        .service(update_me)
        .service(change_password)
        .service(get_user);
}

pub(crate) fn policy<'a>(tokens: &'a AccessTokens, settings: &Settings) -> SessionPolicy<'a> {
    SessionPolicy {
        tokens,
        refresh_ttl: chrono::Duration::days(settings.refresh_token_expire_days),
    }
}

/// Token responses must not be cached (RFC 6749 §5.1).
pub(crate) fn token_response(pair: TokenPair) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(pair)
}

/// Create an account; a verification link is mailed to it.
#[utoipa::path(tag = "auth", operation_id = "registerUser",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Account created; the verification mail is queued with it", body = UserProfile),
        (status = 409, description = "`email_taken`"),
        (status = 422, description = "`validation_failed`: bad email, weak password, unknown field"),
    ))]
#[post("/auth/register")]
pub async fn register(
    pool: web::Data<PgPool>,
    settings: web::Data<Settings>,
    body: ecom_core::JsonObject<RegisterRequest>,
) -> AppResult<HttpResponse> {
    let mails = MailPolicy::from_settings(&settings);
    let user = accounts::register(&pool, &mails, body.into_inner()).await?;
    Ok(HttpResponse::Created().json(UserProfile::from(user)))
}

/// A 202 with the same body whatever happened behind it.
fn accepted(detail: &'static str) -> HttpResponse {
    HttpResponse::Accepted().json(Accepted {
        status: "accepted",
        detail,
    })
}

/// Mail the caller a new verification link (older links stop working).
#[utoipa::path(tag = "auth", operation_id = "requestEmailVerification",
    security(("bearer" = [])),
    responses(
        (status = 202, description = "The verification mail is queued", body = Accepted),
        (status = 409, description = "`email_already_verified`"),
        (status = 429, description = "`rate_limited`: a verification mail was requested less than 60 s ago (the mail at register does not count); see `Retry-After`"),
    ))]
#[post("/auth/verify-email/request")]
pub async fn request_verification(
    principal: Principal,
    pool: web::Data<PgPool>,
    settings: web::Data<Settings>,
) -> AppResult<HttpResponse> {
    let mails = MailPolicy::from_settings(&settings);
    verification::request(&pool, &mails, principal.user_id).await?;
    Ok(accepted("a verification link is on its way"))
}

/// Verify the email address with the token of a verification link.
#[utoipa::path(tag = "auth", operation_id = "verifyEmail",
    request_body = VerifyEmailRequest,
    responses(
        (status = 204, description = "The address is verified"),
        (status = 400, description = "`invalid_or_expired_token`: unknown, used, replaced by a newer link, or expired"),
        (status = 422, description = "`validation_failed`: missing or unknown field"),
    ))]
#[post("/auth/verify-email")]
pub async fn verify_email(
    pool: web::Data<PgPool>,
    body: ecom_core::JsonObject<VerifyEmailRequest>,
) -> AppResult<HttpResponse> {
    verification::verify(&pool, &body.token).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Ask for a password reset link. The answer is the same whether or not an account has
/// this email; an active account gets a mail (at most 3 per hour).
#[utoipa::path(tag = "auth", operation_id = "forgotPassword",
    request_body = ForgotPasswordRequest,
    responses(
        (status = 202, description = "Accepted (whether or not the account exists)", body = Accepted),
        (status = 422, description = "`validation_failed`: not an email address, or an unknown field"),
        (status = 429, description = "`rate_limited`: more than 10 requests in an hour from this client address; see `Retry-After`"),
    ))]
#[post("/auth/password/forgot")]
pub async fn forgot_password(
    pool: web::Data<PgPool>,
    settings: web::Data<Settings>,
    client: ClientAddress,
    body: ecom_core::JsonObject<ForgotPasswordRequest>,
) -> AppResult<HttpResponse> {
    let mails = MailPolicy::from_settings(&settings);
    recovery::forgot(&pool, &mails, &body.email, &client.to_key()).await?;
    Ok(accepted(
        "if an account with this email exists, a reset link is on its way",
    ))
}

/// Set a new password with the token of a reset link. Every login of the account is
/// revoked, and its email counts as verified.
#[utoipa::path(tag = "auth", operation_id = "resetPassword",
    request_body = ResetPasswordRequest,
    responses(
        (status = 204, description = "The password is set; every session is revoked"),
        (status = 400, description = "`invalid_or_expired_token`: unknown, used, replaced by a newer link, or expired"),
        (status = 422, description = "`validation_failed`: weak password, missing or unknown field"),
    ))]
#[post("/auth/password/reset")]
pub async fn reset_password(
    pool: web::Data<PgPool>,
    body: ecom_core::JsonObject<ResetPasswordRequest>,
) -> AppResult<HttpResponse> {
    let ResetPasswordRequest { token, password } = body.into_inner();
    recovery::reset(&pool, &token, password).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Change the caller's password. The caller's login stays; every other login of the
/// account is revoked.
#[utoipa::path(tag = "users", operation_id = "changePassword",
    security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 204, description = "Changed; the account's other sessions are revoked"),
        (status = 403, description = "`invalid_current_password` (counts as a failed login), or `account_banned`"),
        (status = 422, description = "`validation_failed`: weak new password, missing or unknown field"),
        (status = 429, description = "`rate_limited`: too many failed logins for this account or client address; see `Retry-After`"),
    ))]
#[post("/users/me/password")]
pub async fn change_password(
    principal: Principal,
    pool: web::Data<PgPool>,
    settings: web::Data<Settings>,
    client: ClientAddress,
    body: ecom_core::JsonObject<ChangePasswordRequest>,
) -> AppResult<HttpResponse> {
    let ChangePasswordRequest {
        current_password,
        new_password,
    } = body.into_inner();
    recovery::change_password(
        &pool,
        ThrottleLimits::from_settings(&settings),
        principal.user_id,
        principal.session_id,
        current_password,
        new_password,
        &client.to_key(),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Declares a login handler: `/auth/login` and the original service's `/auth/token` are one
/// operation at two paths, so its documentation and body live here once.
macro_rules! login_endpoint {
    ($(#[$($attr:tt)*])* $name:ident, $path:tt, $operation_id:tt) => {
        /// Log in with JSON `{email, password}` or the OAuth2 password form (`username`, `password`).
        $(#[$($attr)*])*
        #[utoipa::path(tag = "auth", operation_id = $operation_id,
            request_body(content(
                (LoginRequest = "application/json"),
                (LoginForm = "application/x-www-form-urlencoded"),
            )),
            responses(
                (status = 200, description = "A new access and refresh token", body = TokenPair),
                LoginErrors,
            ))]
        #[post($path)]
        pub async fn $name(attempt: LoginAttempt) -> AppResult<HttpResponse> {
            attempt.log_in().await
        }
    };
}

login_endpoint!(login, "/auth/login", "login");

/// What issues token pairs: the pool, the signer and the settings that shape a session
/// (refresh lifetime, login throttling), as the token endpoints take them from app data.
pub struct TokenIssuer {
    pool: web::Data<PgPool>,
    tokens: web::Data<AccessTokens>,
    settings: web::Data<Settings>,
}

impl FromRequest for TokenIssuer {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    /// App data is read at once; a missing piece is the same 500 `web::Data` gives.
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(TokenIssuer::from_app_data(req))
    }
}

impl TokenIssuer {
    fn from_app_data(req: &HttpRequest) -> Result<Self, actix_web::Error> {
        Ok(TokenIssuer {
            pool: web::Data::extract(req).into_inner()?,
            tokens: web::Data::extract(req).into_inner()?,
            settings: web::Data::extract(req).into_inner()?,
        })
    }

    /// Exchanges a refresh token for a new pair (rotation).
    async fn refresh(&self, refresh_token: &str) -> AppResult<HttpResponse> {
        let pair = sessions::refresh(
            &self.pool,
            policy(&self.tokens, &self.settings),
            refresh_token,
        )
        .await?;
        Ok(token_response(pair))
    }
}

/// What a login reads from the request: the body as sent (JSON or form), the client's
/// address for throttling, and the issuer of the new session's tokens.
pub struct LoginAttempt {
    req: HttpRequest,
    body: web::Bytes,
    client: ClientAddress,
    issuer: TokenIssuer,
}

impl FromRequest for LoginAttempt {
    type Error = actix_web::Error;
    type Future = LocalFuture<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let parts = <(web::Bytes, ClientAddress, TokenIssuer)>::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let (body, client, issuer) = parts.await?;
            Ok(LoginAttempt {
                req,
                body,
                client,
                issuer,
            })
        })
    }
}

impl LoginAttempt {
    async fn log_in(self) -> AppResult<HttpResponse> {
        let (email, password) = parse_login(&self.req, &self.body)?;
        let TokenIssuer {
            pool,
            tokens,
            settings,
        } = &self.issuer;
        let pair = sessions::login(
            pool,
            policy(tokens, settings),
            ThrottleLimits::from_settings(settings),
            &email,
            password,
            &self.client.to_key(),
        )
        .await?;
        Ok(token_response(pair))
    }
}

/// An extractor's future that is not `Send` (it holds the request).
type LocalFuture<T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, actix_web::Error>>>>;

/// JSON or `application/x-www-form-urlencoded`, chosen by `Content-Type`.
fn parse_login(req: &HttpRequest, body: &[u8]) -> AppResult<(String, String)> {
    use ecom_core::http::has_content_type;
    if has_content_type(req, "application/x-www-form-urlencoded") {
        let form: LoginForm = serde_urlencoded::from_bytes(body)
            .map_err(|e| AppError::invalid_field("body", e.to_string()))?;
        if form.grant_type.as_deref().is_some_and(|g| g != "password") {
            return Err(AppError::invalid_field(
                "grant_type",
                "only the `password` grant is supported",
            ));
        }
        return Ok((form.username, form.password));
    }
    if has_content_type(req, "application/json") {
        let json: LoginRequest = ecom_core::http::json_object(body)?;
        return Ok((json.email, json.password));
    }
    Err(AppError::unsupported_media_type(
        "send application/json or application/x-www-form-urlencoded",
    ))
}

/// Exchange a refresh token for a new pair (rotation). A token already exchanged
/// revokes its whole login.
#[utoipa::path(tag = "auth", operation_id = "refreshToken",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new pair; the presented refresh token no longer works", body = TokenPair),
        RefreshErrors,
    ))]
#[post("/auth/refresh")]
pub async fn refresh(
    issuer: TokenIssuer,
    body: ecom_core::JsonObject<RefreshRequest>,
) -> AppResult<HttpResponse> {
    issuer.refresh(&body.refresh_token).await
}

/// Log out: the refresh token (and its login) can no longer refresh.
#[utoipa::path(tag = "auth", operation_id = "revokeToken",
    request_body = RefreshRequest,
    responses(
        (status = 204, description = "Revoked (also answered for unknown tokens)"),
    ))]
#[post("/auth/revoke")]
pub async fn revoke(
    pool: web::Data<PgPool>,
    body: ecom_core::JsonObject<RefreshRequest>,
) -> AppResult<HttpResponse> {
    sessions::revoke(&pool, &body.refresh_token).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The caller's account.
#[utoipa::path(tag = "users", operation_id = "getCurrentUser",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's account", body = UserProfile),
    ))]
#[get("/users/me")]
pub async fn get_me(principal: Principal, db: Db) -> AppResult<web::Json<UserProfile>> {
    let mut conn = db.conn().await?;
    let user = accounts::find(&mut conn, principal.user_id).await?;
    Ok(web::Json(user.into()))
}

/// Update the caller's profile (`full_name`, `bio`); PATCH is accepted too.
#[utoipa::path(tag = "users", operation_id = "updateCurrentUser",
    security(("bearer" = [])),
    request_body = UpdateProfileRequest,
    responses(
        (status = 200, description = "The updated account", body = UserProfile),
        (status = 422, description = "`validation_failed`, including fields that cannot be set here"),
    ))]
#[route("/users/me", method = "PUT", method = "PATCH")]
pub async fn update_me(
    principal: Principal,
    db: Db,
    body: ecom_core::JsonObject<UpdateProfileRequest>,
) -> AppResult<web::Json<UserProfile>> {
    let mut conn = db.conn().await?;
    let user = accounts::update_profile(&mut conn, principal.user_id, body.into_inner()).await?;
    Ok(web::Json(user.into()))
}

/// A user's public profile (never the email).
#[utoipa::path(tag = "users", operation_id = "getUser",
    params(("id" = i64, Path, description = "User id")),
    responses(
        (status = 200, description = "Public profile", body = PublicProfile),
        (status = 404, description = "`not_found`"),
    ))]
#[get("/users/{id}")]
pub async fn get_user(db: Db, id: web::Path<i64>) -> AppResult<web::Json<PublicProfile>> {
    let mut conn = db.conn().await?;
    let user = accounts::find(&mut conn, id.into_inner()).await?;
    Ok(web::Json(user.into()))
}

/// The original service's paths, deprecated in the document (`#[deprecated]` is what
/// marks an operation so; the allowance covers the registrations actix generates).
#[allow(deprecated)]
pub mod legacy {
    use super::*;
    use crate::api::LegacyRefreshQuery;

    login_endpoint!(
        ///
        /// The original service's path: use `POST /auth/login`.
        #[deprecated = "the original service's path; use POST /auth/login"]
        login_legacy,
        "/auth/token",
        "loginLegacy"
    );

    /// The refresh token of a legacy call: `?refresh_token=`, else the JSON body.
    pub struct LegacyRefreshToken(String);

    impl FromRequest for LegacyRefreshToken {
        type Error = actix_web::Error;
        type Future = LocalFuture<Self>;

        fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
            let parts = <(web::Query<LegacyRefreshQuery>, web::Bytes)>::from_request(req, payload);
            let req = req.clone();
            Box::pin(async move {
                let (query, body) = parts.await?;
                let token = legacy_refresh_token(&req, query.into_inner(), &body)?;
                Ok(LegacyRefreshToken(token))
            })
        }
    }

    /// A body, when sent, must be a valid `/auth/refresh` body; the query wins.
    fn legacy_refresh_token(
        req: &HttpRequest,
        query: LegacyRefreshQuery,
        body: &[u8],
    ) -> AppResult<String> {
        // A body, when sent, must be valid like `/auth/refresh`'s, even beside the query.
        let from_body = if body.is_empty() {
            None
        } else if ecom_core::http::has_content_type(req, "application/json") {
            Some(ecom_core::http::json_object::<RefreshRequest>(body)?.refresh_token)
        } else {
            return Err(AppError::unsupported_media_type(
                "send the body as application/json",
            ));
        };
        query.refresh_token.or(from_body).ok_or_else(|| {
            AppError::invalid_field(
                "refresh_token",
                "send refresh_token as a query parameter or in a JSON body",
            )
        })
    }

    /// The original service's refresh (`?refresh_token=`): use `POST /auth/refresh`.
    #[deprecated = "the original service's path; use POST /auth/refresh"]
    #[utoipa::path(tag = "auth", operation_id = "refreshTokenLegacy",
        params(LegacyRefreshQuery),
        request_body(content = Option<RefreshRequest>, description = "Read when the query has no `refresh_token`"),
        responses(
            (status = 200, description = "A new pair; the presented refresh token no longer works", body = TokenPair),
            RefreshErrors,
            (status = 422, description = "`validation_failed`: no refresh token in the query or the body"),
        ))]
    #[post("/auth/token/refresh")]
    pub async fn legacy_refresh(
        token: LegacyRefreshToken,
        issuer: TokenIssuer,
    ) -> AppResult<HttpResponse> {
        issuer.refresh(&token.0).await
    }

    /// The original service's logout (`?refresh_token=`): use `POST /auth/revoke`.
    #[deprecated = "the original service's path; use POST /auth/revoke"]
    #[utoipa::path(tag = "auth", operation_id = "logoutLegacy",
        params(LegacyRefreshQuery),
        request_body(content = Option<RefreshRequest>, description = "Read when the query has no `refresh_token`"),
        responses(
            (status = 204, description = "Revoked (also answered for unknown tokens)"),
            (status = 422, description = "`validation_failed`: no refresh token in the query or the body"),
        ))]
    #[post("/auth/logout")]
    pub async fn legacy_logout(
        token: LegacyRefreshToken,
        pool: web::Data<PgPool>,
    ) -> AppResult<HttpResponse> {
        sessions::revoke(&pool, &token.0).await?;
        Ok(HttpResponse::NoContent().finish())
    }
}
