//! Password hashing (argon2id, OWASP parameters) and the password policy.
//!
//! Hashing takes tens of milliseconds of CPU, so it always runs on the blocking
//! pool, never on an async worker.

use std::sync::OnceLock;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::{AuthError, AuthResult};

pub const MIN_LENGTH: usize = 8;
pub const MAX_LENGTH: usize = 128;

/// argon2id with m = 19 MiB, t = 2, p = 1.
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("OWASP argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) for the password. Blocking.
pub fn hash_now(password: &str) -> AuthResult<String> {
    hasher()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Internal(format!("password hashing failed: {e}")))
}

/// Whether the password matches the PHC string. Blocking.
pub fn verify_now(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash of a random password, verified against when the email is unknown so
/// that a login takes as long whether or not the account exists.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_now(&ecom_core::random_hex(16)).unwrap_or_default())
}

/// At most one hash per CPU at a time: a login storm then keeps the CPUs busy without
/// crowding out the async workers' threads, so other requests still answer promptly.
fn hashing_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        tokio::sync::Semaphore::new(cpus)
    })
}

/// Hashes on the blocking pool.
pub async fn hash(password: String) -> AuthResult<String> {
    let _slot = hashing_slots()
        .acquire()
        .await
        .map_err(|e| AuthError::Internal(e.to_string()))?;
    tokio::task::spawn_blocking(move || hash_now(&password))
        .await
        .map_err(|e| AuthError::Internal(format!("hashing task failed: {e}")))?
}

/// Verifies on the blocking pool; with no stored hash, verifies against the dummy
/// hash and answers false.
pub async fn verify(password: String, phc: Option<String>) -> bool {
    let Ok(_slot) = hashing_slots().acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || match phc {
        Some(phc) => verify_now(&password, &phc),
        None => {
            let _ = verify_now(&password, dummy_hash());
            false
        }
    })
    .await
    .unwrap_or(false)
}

/// 8..=128 characters and not a common or easily guessed password (zxcvbn score ≥ 2,
/// which refuses the well-known lists of most common passwords).
pub fn check_policy(password: &str, email: &str) -> AuthResult<()> {
    let length = password.chars().count();
    if !(MIN_LENGTH..=MAX_LENGTH).contains(&length) {
        return Err(AuthError::field(
            "password",
            format!("must be between {MIN_LENGTH} and {MAX_LENGTH} characters"),
        ));
    }
    let local_part = email.split('@').next().unwrap_or_default();
    let estimate = zxcvbn::zxcvbn(password, &[email, local_part]);
    if (estimate.score() as u8) < 2 {
        return Err(AuthError::field(
            "password",
            "is too common or too easy to guess; use a longer passphrase",
        ));
    }
    Ok(())
}
