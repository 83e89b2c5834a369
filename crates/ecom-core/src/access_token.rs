//! Access tokens: HS256 JWTs with the algorithm pinned. ecom-auth issues them; the
//! principal extractor verifies them. A refresh token is opaque and can never pass.

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::settings::SecretString;

/// Issuer and audience written into, and required of, every access token.
pub const ISSUER: &str = "ecom";
pub const AUDIENCE: &str = "ecom-api";
/// The `typ` claim that only access tokens carry.
pub const ACCESS_TYPE: &str = "access";

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    /// The user id, as a string (RFC 7519).
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
    pub jti: String,
    pub typ: String,
    /// The login (refresh-token family) the token belongs to: revoking it ends the token.
    pub sid: i64,
}

/// A freshly signed token (its Debug never shows the token).
#[derive(Clone)]
pub struct IssuedAccessToken {
    pub token: String,
    pub expires_in: i64,
    pub claims: AccessClaims,
}

crate::debug_showing!(IssuedAccessToken { expires_in, claims });

/// Why a token was refused; all of them answer 401.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is invalid")]
    Invalid,
    #[error("could not sign the token: {0}")]
    Signing(String),
}

/// Signs and verifies access tokens with one secret.
pub struct AccessTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl_secs: i64,
}

impl AccessTokens {
    pub fn new(secret: &SecretString, ttl_minutes: i64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
            decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
            validation,
            ttl_secs: ttl_minutes * 60,
        }
    }

    /// Signs a token for the user's login `session_id`, valid for the configured lifetime.
    pub fn issue(&self, user_id: i64, session_id: i64) -> Result<IssuedAccessToken, TokenError> {
        self.issue_for(user_id, session_id, self.ttl_secs)
    }

    /// [`AccessTokens::issue`] with a lifetime of `ttl_secs` instead of the configured one
    /// (a short-lived token shows what happens to a stream when its token expires).
    pub fn issue_for(
        &self,
        user_id: i64,
        session_id: i64,
        ttl_secs: i64,
    ) -> Result<IssuedAccessToken, TokenError> {
        let now = unix_now();
        let claims = AccessClaims {
            sub: user_id.to_string(),
            iat: now,
            exp: now + ttl_secs,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            jti: uuid::Uuid::new_v4().simple().to_string(),
            typ: ACCESS_TYPE.into(),
            sid: session_id,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| TokenError::Signing(e.to_string()))?;
        Ok(IssuedAccessToken {
            token,
            expires_in: ttl_secs,
            claims,
        })
    }

    /// Checks signature, algorithm, expiry, issuer, audience and type; returns the user id.
    /// Whether the token's login is still open is the resolver's question, not this one's.
    pub fn verify(&self, token: &str) -> Result<(i64, AccessClaims), TokenError> {
        let data = jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })?;
        if data.claims.typ != ACCESS_TYPE {
            return Err(TokenError::Invalid);
        }
        let user_id = data.claims.sub.parse().map_err(|_| TokenError::Invalid)?;
        Ok((user_id, data.claims))
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
