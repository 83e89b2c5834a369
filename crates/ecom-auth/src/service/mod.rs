//! Identity use cases. Functions taking a connection run inside the caller's
//! transaction when there is one; the session functions take the pool because
//! they must not hold a connection while a password is hashed.

pub mod accounts;
pub mod email_tokens;
pub mod mails;
pub mod password;
pub mod recovery;
pub mod resolver;
pub mod roles;
pub mod sessions;
pub mod throttle;
pub mod verification;
