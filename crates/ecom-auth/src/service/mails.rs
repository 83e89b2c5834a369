//! The mails identity sends (verification, password reset): their words and links. They
//! are queued with [`ecom_core::mail::enqueue`] in the transaction that issues the token,
//! and delivered by ecom-mail.

use std::time::Duration;

use diesel_async::AsyncPgConnection;
use ecom_core::mail::{self, OutgoingMail};
use ecom_core::settings::Settings;

use crate::error::AuthResult;
use crate::model::User;
use crate::service::email_tokens::{self, TokenKind};

/// What the identity mails need from the settings: sender, link base, token lifetimes.
#[derive(Clone)]
pub struct MailPolicy {
    /// `MAIL_FROM`.
    pub from: String,
    /// `STOREFRONT_URL`, without a trailing slash.
    pub storefront_url: String,
    /// `EMAIL_VERIFICATION_TTL_HOURS`.
    pub verification_ttl: Duration,
    /// `PASSWORD_RESET_TTL_MINUTES`.
    pub reset_ttl: Duration,
}

ecom_core::debug_showing!(MailPolicy {
    verification_ttl,
    reset_ttl
});

impl MailPolicy {
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            from: settings.mail_from.clone(),
            storefront_url: settings.storefront_url.trim_end_matches('/').to_string(),
            verification_ttl: Duration::from_secs(
                settings.email_verification_ttl_hours.saturating_mul(3600),
            ),
            reset_ttl: Duration::from_secs(settings.password_reset_ttl_minutes.saturating_mul(60)),
        }
    }

    fn greeting(user: &User) -> String {
        match &user.full_name {
            Some(name) => format!("Hello {name},"),
            None => "Hello,".to_string(),
        }
    }

    fn verification_mail(&self, user: &User, token: &str) -> OutgoingMail {
        let hours = self.verification_ttl.as_secs() / 3600;
        OutgoingMail {
            kind: "verify_email",
            from: self.from.clone(),
            to: user.email.clone(),
            subject: "Confirm your email address".to_string(),
            text_body: format!(
                "{}\n\nPlease confirm that this is your email address by opening this link:\n\n\
                 {}/verify-email?token={token}\n\n\
                 The link works once and for {hours} hours. If you did not create an account, \
                 ignore this mail.\n",
                Self::greeting(user),
                self.storefront_url,
            ),
            message_id: mail::random_message_id(&self.from),
        }
    }

    fn reset_mail(&self, user: &User, token: &str) -> OutgoingMail {
        let minutes = self.reset_ttl.as_secs() / 60;
        OutgoingMail {
            kind: "reset_password",
            from: self.from.clone(),
            to: user.email.clone(),
            subject: "Reset your password".to_string(),
            text_body: format!(
                "{}\n\nSomeone asked to reset the password of your account. To choose a new \
                 password, open this link:\n\n\
                 {}/reset-password?token={token}\n\n\
                 The link works once and for {minutes} minutes. If you did not ask for this, \
                 ignore this mail: your password stays as it is.\n",
                Self::greeting(user),
                self.storefront_url,
            ),
            message_id: mail::random_message_id(&self.from),
        }
    }

    /// Issues a verification token (voiding older ones) and queues its mail, in the
    /// caller's transaction.
    pub(crate) async fn send_verification(
        &self,
        conn: &mut AsyncPgConnection,
        user: &User,
    ) -> AuthResult<()> {
        let token =
            email_tokens::issue(conn, user.id, TokenKind::VerifyEmail, self.verification_ttl)
                .await?;
        mail::enqueue(conn, self.verification_mail(user, &token)).await?;
        Ok(())
    }

    /// Issues a reset token (voiding older ones) and queues its mail, in the caller's
    /// transaction.
    pub(crate) async fn send_reset(
        &self,
        conn: &mut AsyncPgConnection,
        user: &User,
    ) -> AuthResult<()> {
        let token =
            email_tokens::issue(conn, user.id, TokenKind::ResetPassword, self.reset_ttl).await?;
        mail::enqueue(conn, self.reset_mail(user, &token)).await?;
        Ok(())
    }
}
