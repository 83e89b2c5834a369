//! Administration failures. Admin owns no tables and no rules of its own: its failures
//! are those of the domains it calls and of the audit trail it writes, kept apart here
//! so each keeps its own stable code when it becomes a response.

use ecom_core::AppError;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Users, roles and bans (`permission_not_held`, `cannot_modify_self`, …).
    #[error(transparent)]
    Identity(#[from] ecom_auth::AuthError),
    /// Writing the audit row of an action.
    #[error("could not record the audit entry: {0}")]
    Audit(#[from] diesel::result::Error),
}

impl From<AdminError> for AppError {
    fn from(err: AdminError) -> Self {
        match err {
            AdminError::Identity(e) => e.into(),
            AdminError::Audit(e) => e.into(),
        }
    }
}

pub type AdminResult<T> = Result<T, AdminError>;
