//! Accounts: registration, profiles, and the administrators' bootstrap.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use ecom_core::events::{self, NewEvent};

use crate::api::{RegisterRequest, UpdateProfileRequest, UserProfile};
use crate::error::{AuthError, AuthResult};
use crate::model::{ADMIN_ROLE, NewUser, USER_ROLE, User};
use crate::schema::users;
use crate::service::mails::MailPolicy;
use crate::service::password;
use ecom_core::FieldError;
use ecom_core::db::PgPool;

/// The development administrator of API.md's "Running it" (DEBUG only).
pub const DEV_ADMIN_EMAIL: &str = "admin@example.com";
pub const DEV_ADMIN_PASSWORD: &str = "admin123";

const MAX_FULL_NAME: usize = 100;
const MAX_BIO: usize = 1000;

/// Trims, lower-cases and validates an email.
pub fn normalize_email(raw: &str) -> AuthResult<String> {
    let email = raw.trim().to_lowercase();
    if email.len() > 254 || !email_address::EmailAddress::is_valid(&email) || !email.contains('.') {
        return Err(AuthError::field("email", "must be a valid email address"));
    }
    Ok(email)
}

fn clean_text(
    value: Option<&str>,
    field: &str,
    max: usize,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    let raw = value?;
    // The documented limit is on what the client sends, whitespace included.
    if raw.chars().count() > max {
        errors.push(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    let v = raw.trim();
    (!v.is_empty()).then(|| v.to_string())
}

/// Creates an account with the `user` role, records `user.registered` and queues the
/// verification mail, all in one transaction. The password is hashed before a connection
/// is taken, so a burst of sign-ups cannot hold the pool while argon2 runs.
pub async fn register(pool: &PgPool, mails: &MailPolicy, req: RegisterRequest) -> AuthResult<User> {
    let mut errors = Vec::new();
    let email = match normalize_email(&req.email) {
        Ok(e) => Some(e),
        Err(AuthError::Invalid(mut f)) => {
            errors.append(&mut f);
            None
        }
        Err(e) => return Err(e),
    };
    if let Err(AuthError::Invalid(mut f)) =
        password::check_policy(&req.password, email.as_deref().unwrap_or_default())
    {
        errors.append(&mut f);
    }
    let full_name = clean_text(
        req.full_name.as_deref(),
        "full_name",
        MAX_FULL_NAME,
        &mut errors,
    );
    let Some(email) = email.filter(|_| errors.is_empty()) else {
        return Err(AuthError::Invalid(errors));
    };
    let hash = password::hash(req.password).await?;
    let mut conn = pool.get().await?;
    conn.transaction(async |conn| {
        let user = insert_user(conn, &email, &hash, full_name.as_deref(), USER_ROLE).await?;
        mails.send_verification(conn, &user).await?;
        // Last: recording holds the outbox lock until commit.
        record_registered(conn, &user).await?;
        Ok(user)
    })
    .await
}

async fn insert_user(
    conn: &mut AsyncPgConnection,
    email: &str,
    password_hash: &str,
    full_name: Option<&str>,
    role: &str,
) -> AuthResult<User> {
    diesel::insert_into(users::table)
        .values(NewUser {
            email,
            password_hash,
            full_name,
            role,
        })
        .returning(User::as_returning())
        .get_result(conn)
        .await
        .map_err(|e| match e {
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            ) => AuthError::EmailTaken,
            other => other.into(),
        })
}

/// Records `user.registered` with the account as `GET /users/me` shows it, in the
/// transaction of the insert.
async fn record_registered(conn: &mut AsyncPgConnection, user: &User) -> AuthResult<()> {
    let profile = serde_json::to_value(UserProfile::from(user.clone()))
        .map_err(|e| AuthError::Internal(e.to_string()))?;
    events::record(
        conn,
        NewEvent {
            event_type: "user.registered",
            aggregate_type: "user",
            aggregate_id: user.id,
            owner_id: None,
            data: serde_json::json!({ "user": profile }),
        },
    )
    .await?;
    Ok(())
}

/// The account with this id.
pub async fn find(conn: &mut AsyncPgConnection, user_id: i64) -> AuthResult<User> {
    users::table
        .find(user_id)
        .select(User::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or(AuthError::UserNotFound(user_id))
}

/// The account with this (already normalized) email, if any.
pub async fn find_by_email(conn: &mut AsyncPgConnection, email: &str) -> AuthResult<Option<User>> {
    Ok(users::table
        .filter(users::email.eq(email))
        .select(User::as_select())
        .first(conn)
        .await
        .optional()?)
}

/// Applies a partial profile update: absent fields stay, `null` or "" clears.
pub async fn update_profile(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    req: UpdateProfileRequest,
) -> AuthResult<User> {
    let mut errors = Vec::new();
    let full_name = req
        .full_name
        .map(|v| clean_text(v.as_deref(), "full_name", MAX_FULL_NAME, &mut errors));
    let bio = req
        .bio
        .map(|v| clean_text(v.as_deref(), "bio", MAX_BIO, &mut errors));
    if !errors.is_empty() {
        return Err(AuthError::Invalid(errors));
    }
    let current = find(conn, user_id).await?;
    diesel::update(users::table.find(user_id))
        .set((
            users::full_name.eq(full_name.unwrap_or(current.full_name)),
            users::bio.eq(bio.unwrap_or(current.bio)),
            users::updated_at.eq(diesel::dsl::now),
        ))
        .returning(User::as_returning())
        .get_result(conn)
        .await
        .map_err(Into::into)
}

/// Creates an administrator (recording `user.registered`), or makes an existing account
/// one with this password (`ecom create-admin`). The password must meet the policy.
pub async fn create_admin(
    conn: &mut AsyncPgConnection,
    email: &str,
    password_text: String,
) -> AuthResult<User> {
    let email = normalize_email(email)?;
    password::check_policy(&password_text, &email)?;
    let hash = password::hash(password_text).await?;
    conn.transaction(async |conn| match find_by_email(conn, &email).await? {
        None => {
            let user = insert_user(conn, &email, &hash, Some("Administrator"), ADMIN_ROLE).await?;
            record_registered(conn, &user).await?;
            Ok(user)
        }
        Some(existing) => diesel::update(users::table.find(existing.id))
            .set((
                users::role.eq(ADMIN_ROLE),
                users::password_hash.eq(&hash),
                users::is_active.eq(true),
                users::updated_at.eq(diesel::dsl::now),
            ))
            .returning(User::as_returning())
            .get_result(conn)
            .await
            .map_err(Into::into),
    })
    .await
}

/// On the private PostgreSQL only (the caller decides): when no administrator exists,
/// creates `admin@example.com` / `admin123` (the original service's documented flow).
/// Returns whether it did. Safe when several processes start at once: the insert is
/// skipped if another process made the account first.
pub async fn ensure_development_admin(conn: &mut AsyncPgConnection) -> AuthResult<bool> {
    let admins: i64 = users::table
        .filter(users::role.eq(ADMIN_ROLE))
        .count()
        .get_result(conn)
        .await?;
    if admins > 0 || find_by_email(conn, DEV_ADMIN_EMAIL).await?.is_some() {
        return Ok(false);
    }
    // The development password is deliberately weak and bypasses the policy.
    let hash = password::hash(DEV_ADMIN_PASSWORD.to_string()).await?;
    conn.transaction(async |conn| {
        let created: Option<User> = diesel::insert_into(users::table)
            .values(NewUser {
                email: DEV_ADMIN_EMAIL,
                password_hash: &hash,
                full_name: Some("Development admin"),
                role: ADMIN_ROLE,
            })
            .on_conflict_do_nothing()
            .returning(User::as_returning())
            .get_result(conn)
            .await
            .optional()?;
        match created {
            Some(user) => record_registered(conn, &user).await.map(|()| true),
            None => Ok(false),
        }
    })
    .await
}

/// Password of the demo shoppers made by `ecom seed-demo`.
pub const DEMO_SHOPPER_PASSWORD: &str = "demo-shopper-password";

/// Demo shoppers `shopper1@demo.example` … `shopperN@demo.example` (all with
/// [`DEMO_SHOPPER_PASSWORD`]), created if missing; returns their ids. One hash is
/// computed and shared, so a thousand shoppers load in one statement.
pub async fn seed_demo_shoppers(
    conn: &mut AsyncPgConnection,
    count: usize,
) -> AuthResult<Vec<i64>> {
    let hash = password::hash(DEMO_SHOPPER_PASSWORD.to_string()).await?;
    let emails: Vec<String> = (1..=count)
        .map(|i| format!("shopper{i}@demo.example"))
        .collect();
    let names: Vec<String> = (1..=count).map(|i| format!("Demo Shopper {i}")).collect();
    let rows: Vec<_> = emails
        .iter()
        .zip(&names)
        .map(|(email, name)| NewUser {
            email,
            password_hash: &hash,
            full_name: Some(name),
            role: USER_ROLE,
        })
        .collect();
    diesel::insert_into(users::table)
        .values(rows)
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    Ok(users::table
        .filter(users::email.eq_any(&emails))
        .select(users::id)
        .order(users::id)
        .load(conn)
        .await?)
}

/// Accounts created in `[from, until)` (the sales report's new users).
pub async fn count_created_between(
    conn: &mut AsyncPgConnection,
    from: chrono::DateTime<chrono::Utc>,
    until: chrono::DateTime<chrono::Utc>,
) -> AuthResult<i64> {
    Ok(users::table
        .filter(users::created_at.ge(from))
        .filter(users::created_at.lt(until))
        .count()
        .get_result(conn)
        .await?)
}
