//! A real SMTP server on loopback (PyPI `aiosmtpd`, `sdk/smtp_server.py`) that keeps every
//! mail it accepts, for tests that read the mails the store sends and follow their links.
//!
//! Each [`SmtpPeer`] is its own server on a free loopback port with its own mail folder,
//! in one of the [`Mode`]s (accept, hang mid-send, fail once, reject). The virtualenv
//! (`target/smtp-venv`, pins in `sdk/smtp-requirements.txt`) is made on first use under a
//! file lock ([`crate::python_venv`]). The server reads its stdin, which this process
//! holds: it stops when the peer is dropped or the test binary exits, however it exits.
//! [`ReceivedMail`] parses what it kept (and the store's own `.eml` files).

use std::io::Read;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const REQUIREMENTS_FILE: &str = include_str!("../../../sdk/smtp-requirements.txt");
const LAUNCHER: &str = include_str!("../../../sdk/smtp_server.py");

/// How the server answers the mails it is sent (see `sdk/smtp_server.py`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 250 for every mail.
    Accept,
    /// Keeps the first mail, then never answers it (a send that dies midway); 250 later.
    StallFirst,
    /// 451 for the first mail (not kept); 250 later.
    TempfailFirst,
    /// 550 for every mail.
    Reject,
    /// 250 for every mail, after AUTH as [`AUTH_USER`] / [`AUTH_PASSWORD`] only.
    Auth,
}

/// The account a [`Mode::Auth`] server takes.
pub const AUTH_USER: &str = "mailer";
pub const AUTH_PASSWORD: &str = "s3cret pass";

impl Mode {
    fn arg(self) -> &'static str {
        match self {
            Mode::Accept => "accept",
            Mode::StallFirst => "stall-first",
            Mode::TempfailFirst => "tempfail-first",
            Mode::Reject => "reject",
            Mode::Auth => "auth",
        }
    }
}

/// A running SMTP server and the folder of what it received.
pub struct SmtpPeer {
    port: u16,
    maildir: PathBuf,
    child: Child,
}

impl std::fmt::Debug for SmtpPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpPeer")
            .field("port", &self.port)
            .finish()
    }
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Whether an SMTP server greets on `port`.
fn greets(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut banner = [0u8; 3];
    stream.read_exact(&mut banner).is_ok() && &banner == b"220"
}

impl SmtpPeer {
    /// A server that accepts every mail.
    pub fn start() -> Self {
        Self::start_in(Mode::Accept)
    }

    /// A server answering as `mode` says.
    pub fn start_in(mode: Mode) -> Self {
        let venv = crate::python_venv::ensure(
            "smtp",
            &crate::python_venv::requirement_lines(REQUIREMENTS_FILE),
        );
        let mut last_log = String::new();
        // A port picked free may be taken before the server binds it: try a few.
        for _ in 0..3 {
            let port = free_port();
            let maildir = std::env::temp_dir().join(format!(
                "ecom-smtp-{}-{port}-{}",
                std::process::id(),
                uuid::Uuid::new_v4().simple()
            ));
            let log = maildir.with_extension("log");
            let stderr = std::fs::File::create(&log).expect("create the SMTP server's log");
            let mut child = Command::new(venv.join("bin").join("python"))
                .args(["-c", LAUNCHER])
                .arg(port.to_string())
                .arg(&maildir)
                .arg(mode.arg())
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .expect("start the SMTP server");
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if greets(port) {
                    let _ = std::fs::remove_file(&log);
                    return SmtpPeer {
                        port,
                        maildir,
                        child,
                    };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
            last_log = std::fs::read_to_string(&log).unwrap_or_default();
            let _ = std::fs::remove_file(&log);
        }
        panic!("the SMTP server did not start; its last output:\n{last_log}");
    }

    /// `smtp://127.0.0.1:<port>`: what `SMTP_URL` is set to.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every mail received so far, in the order received.
    pub fn mails(&self) -> Vec<ReceivedMail> {
        read_mails(&self.maildir, "eml")
    }

    /// The mails received so far whose `To` contains `address`.
    pub fn mails_to(&self, address: &str) -> Vec<ReceivedMail> {
        self.mails()
            .into_iter()
            .filter(|m| m.header("To").is_some_and(|to| to.contains(address)))
            .collect()
    }

    /// Waits (up to 20 s) until `count` mails to `address` have arrived; returns them.
    pub async fn wait_for(&self, address: &str, count: usize) -> Vec<ReceivedMail> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mails = self.mails_to(address);
            if mails.len() >= count {
                return mails;
            }
            assert!(
                Instant::now() < deadline,
                "{count} mail(s) to {address} expected, {} arrived",
                mails.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.maildir);
    }
}

/// The files `*.<extension>` of `dir` as mails, in numeric (else name) order.
pub fn read_mails(dir: &Path, extension: &str) -> Vec<ReceivedMail> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect();
    files.sort_by_key(|p| {
        let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        (stem.parse::<u64>().unwrap_or(u64::MAX), stem.to_string())
    });
    files
        .iter()
        .map(|p| ReceivedMail::parse(&std::fs::read(p).expect("read a mail file")))
        .collect()
}

/// A mail as RFC 5322 text: its header fields (unfolded) and its decoded text body.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub raw: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl ReceivedMail {
    /// Parses a message: header fields up to the first empty line (CRLF or LF), the body
    /// after it decoded by its `Content-Transfer-Encoding` (7bit, 8bit,
    /// quoted-printable, base64).
    pub fn parse(bytes: &[u8]) -> Self {
        let raw = String::from_utf8_lossy(bytes).replace("\r\n", "\n");
        let (head, body) = raw.split_once("\n\n").unwrap_or((raw.as_str(), ""));
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in head.lines() {
            if line.starts_with([' ', '\t']) {
                if let Some((_, value)) = headers.last_mut() {
                    value.push(' ');
                    value.push_str(line.trim());
                }
            } else if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_string(), value.trim().to_string()));
            }
        }
        let encoding = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("Content-Transfer-Encoding"))
            .map(|(_, v)| v.to_ascii_lowercase())
            .unwrap_or_default();
        let body = match encoding.as_str() {
            "quoted-printable" => decode_quoted_printable(body),
            "base64" => {
                use base64::Engine;
                let compact: String = body.split_whitespace().collect();
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .expect("a base64 body");
                String::from_utf8_lossy(&bytes).into_owned()
            }
            _ => body.to_string(),
        };
        ReceivedMail {
            raw: raw.clone(),
            headers,
            body,
        }
    }

    /// The first header field of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `token` of the first link `<base><path>?token=…` in the body.
    pub fn link_token(&self, base: &str, path: &str) -> Option<String> {
        let prefix = format!("{base}{path}?token=");
        let start = self.body.find(&prefix)? + prefix.len();
        let token: String = self.body[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | '%'))
            .collect();
        (!token.is_empty()).then_some(token)
    }
}

fn decode_quoted_printable(text: &str) -> String {
    let mut out = Vec::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'=' if bytes.get(i + 1) == Some(&b'\n') => i += 2,
            b'=' if i + 3 <= bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'=');
                        i += 1;
                    }
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
