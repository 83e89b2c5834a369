//! Where mails go: an SMTP server (`SMTP_URL`, through lettre over rustls), or, without
//! one, complete RFC 5322 files `{ECOM_DATA_DIR}/mail/<id>.eml`. Both carry the message
//! [`message`] builds, with the Message-ID chosen at enqueue.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use ecom_core::mail::QueuedMail;
use ecom_core::settings::Settings;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::error::MailError;

/// How long one SMTP exchange may take before it counts as failed (and is retried).
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// A failed send, as the retry decision needs it. Its text never holds an address.
#[derive(Debug)]
pub enum DeliveryError {
    /// Retrying cannot help (the server refused the mail for good, or it cannot be built).
    Permanent(String),
    /// Worth another try later (network, timeouts, 4xx answers, a full disk).
    Transient(String),
}

impl std::fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeliveryError::Permanent(e) => write!(f, "permanent: {e}"),
            DeliveryError::Transient(e) => write!(f, "transient: {e}"),
        }
    }
}

/// The configured way out.
#[derive(Clone)]
pub enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// The folder the `.eml` files are written to.
    Files(PathBuf),
}

impl std::fmt::Debug for Transport {
    // The SMTP transport holds credentials: only the kind is shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Smtp(_) => f.write_str("Transport::Smtp"),
            Transport::Files(dir) => write!(f, "Transport::Files({})", dir.display()),
        }
    }
}

impl Transport {
    /// SMTP when `SMTP_URL` is set (`smtp://[user:pass@]host:port[?tls=required]`,
    /// `smtps://…`), else files under `{ECOM_DATA_DIR}/mail/`.
    pub fn from_settings(settings: &Settings) -> Result<Self, MailError> {
        match &settings.smtp_url {
            Some(url) => Self::smtp(url.expose()),
            None => Ok(Transport::Files(settings.ecom_data_dir.join("mail"))),
        }
    }

    /// An SMTP transport for `url` (see [`Transport::from_settings`]).
    pub fn smtp(url: &str) -> Result<Self, MailError> {
        let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| MailError::SmtpUrl(e.to_string()))?;
        Ok(Transport::Smtp(builder.timeout(Some(SMTP_TIMEOUT)).build()))
    }

    /// Sends (or writes) one mail.
    pub async fn deliver(&self, mail: &QueuedMail) -> Result<(), DeliveryError> {
        let message = message(mail)?;
        match self {
            Transport::Smtp(smtp) => smtp.send(message).await.map(drop).map_err(|e| {
                // A server's answer may quote the recipient: it is kept out of logs and rows.
                let text = without_addresses(&e.to_string());
                if e.is_permanent() {
                    DeliveryError::Permanent(text)
                } else {
                    DeliveryError::Transient(text)
                }
            }),
            Transport::Files(dir) => {
                let dir = dir.clone();
                let id = mail.id;
                let bytes = message.formatted();
                tokio::task::spawn_blocking(move || write_eml(&dir, id, &bytes))
                    .await
                    .map_err(|e| DeliveryError::Transient(e.to_string()))?
                    .map_err(|e| DeliveryError::Transient(format!("writing the .eml file: {e}")))
            }
        }
    }
}

/// `text` with every word that holds an `@` (a mail address, `<bob@example.com>:`)
/// replaced by `[address]`.
pub fn without_addresses(text: &str) -> String {
    text.split(' ')
        .map(|word| {
            if word.contains('@') {
                "[address]"
            } else {
                word
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The mail as an RFC 5322 message: its Message-ID, dated when it was queued (so every
/// attempt sends the same message), plain UTF-8 text.
pub fn message(mail: &QueuedMail) -> Result<Message, DeliveryError> {
    let from = mail
        .sender
        .parse()
        .map_err(|_| DeliveryError::Permanent("MAIL_FROM is not a mailbox".into()))?;
    let to = mail
        .recipient
        .parse()
        .map_err(|_| DeliveryError::Permanent("the recipient is not a mailbox".into()))?;
    Message::builder()
        .message_id(Some(mail.message_id.clone()))
        .date(SystemTime::from(mail.created_at))
        .from(from)
        .to(to)
        .subject(mail.subject.clone())
        .header(lettre::message::header::MIME_VERSION_1_0)
        .header(ContentType::TEXT_PLAIN)
        .body(mail.text_body.clone())
        .map_err(|e| DeliveryError::Permanent(e.to_string()))
}

/// Writes `<dir>/<id>.eml` whole or not at all: into a temporary file of the same folder,
/// flushed to disk, then renamed over the final name (a rename is atomic), so a crash
/// never leaves half a mail under a `.eml` name. Writing again replaces the file.
fn write_eml(dir: &Path, id: i64, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{id}.eml.tmp"));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, dir.join(format!("{id}.eml")))?;
    // The rename itself is made durable by syncing the folder.
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::without_addresses;

    #[test]
    fn server_answers_lose_their_addresses() {
        assert_eq!(
            without_addresses("permanent error (550): 5.1.1 <bob@example.com>: Recipient rejected"),
            "permanent error (550): 5.1.1 [address] Recipient rejected"
        );
        assert_eq!(
            without_addresses("connection refused"),
            "connection refused"
        );
    }
}
