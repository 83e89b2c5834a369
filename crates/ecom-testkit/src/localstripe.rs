//! localstripe: a stateful Stripe-protocol server (PyPI `localstripe`), for tests that
//! talk to Stripe's HTTP API for real.
//!
//! The first call in a test binary makes sure `<workspace>/target/localstripe-venv` holds
//! the pinned version ([`crate::python_venv`]: created with `python3 -m venv` and pip under
//! a file lock, so parallel test binaries do not race), then starts one server on a free loopback port and
//! waits until it answers HTTP. The server reads its stdin, which this process holds: when
//! the test binary exits, however it exits, the pipe closes and the server stops with it.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// `sdk/localstripe-requirements.txt`: localstripe and the versions of its dependencies it
/// was verified with, shared with the shell scripts that start it.
const REQUIREMENTS_FILE: &str = include_str!("../../../sdk/localstripe-requirements.txt");
/// A secret key localstripe accepts (any `sk_…` longer than 5 characters).
pub const SECRET_KEY: &str = "sk_test_ecom_localstripe";

/// What pip installs: the requirement lines of [`REQUIREMENTS_FILE`].
pub fn requirements() -> Vec<&'static str> {
    crate::python_venv::requirement_lines(REQUIREMENTS_FILE)
}

/// `sdk/localstripe_server.py`: localstripe's app on 127.0.0.1 only, from scratch, until
/// its stdin closes.
const LAUNCHER: &str = include_str!("../../../sdk/localstripe_server.py");

/// A running localstripe, shared by every test of the binary.
pub struct LocalStripe {
    port: u16,
    /// Kept so its stdin stays open for the life of the process.
    _child: Child,
}

impl std::fmt::Debug for LocalStripe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalStripe")
            .field("port", &self.port)
            .finish()
    }
}

static SERVER: OnceLock<LocalStripe> = OnceLock::new();

/// The test binary's localstripe, started on first use.
pub fn localstripe() -> &'static LocalStripe {
    SERVER.get_or_init(start)
}

/// `<workspace>/target/localstripe-venv`.
pub fn venv_dir() -> PathBuf {
    crate::python_venv::dir("localstripe")
}

/// Creates the virtualenv with [`requirements`] unless it already has them (see
/// [`crate::python_venv`]: lock `target/localstripe-venv.lock`, shared with `sdk/localstripe.sh`).
pub fn ensure_venv() -> PathBuf {
    crate::python_venv::ensure("localstripe", &requirements())
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn start() -> LocalStripe {
    let venv = ensure_venv();
    let mut last_log = String::new();
    // A port picked free may be taken before localstripe binds it: try a few.
    for _ in 0..3 {
        let port = free_port();
        let log = std::env::temp_dir().join(format!(
            "ecom-localstripe-{}-{port}.log",
            std::process::id()
        ));
        let stderr = std::fs::File::create(&log).expect("create localstripe's log");
        let mut child = Command::new(venv.join("bin").join("python"))
            .args(["-c", LAUNCHER])
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start localstripe");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if request(port, "GET", "/v1/balance", "").is_ok() {
                let _ = std::fs::remove_file(&log);
                return LocalStripe {
                    port,
                    _child: child,
                };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        last_log = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
    }
    panic!("localstripe did not start; its last output:\n{last_log}");
}

impl LocalStripe {
    /// `http://127.0.0.1:<port>`: what `STRIPE_API_BASE` is set to.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Has localstripe POST its events to `url`, signed with `secret` (its
    /// `/_config/webhooks/{name}`); `name` replaces an earlier registration of that name.
    pub fn register_webhook(&self, name: &str, url: &str, secret: &str) {
        let body = format!("url={}&secret={}", form_escape(url), form_escape(secret));
        let (status, text) = self
            .request("POST", &format!("/_config/webhooks/{name}"), &body)
            .expect("localstripe answers");
        assert_eq!(status, 200, "localstripe took the webhook: {text}");
    }

    /// One HTTP/1.0 request with the test secret key: the status and the body.
    pub fn request(&self, method: &str, path: &str, form: &str) -> std::io::Result<(u16, String)> {
        request(self.port, method, path, form)
    }
}

/// One HTTP/1.0 request to localstripe on `port` with [`SECRET_KEY`]: the status and the body.
fn request(port: u16, method: &str, path: &str, form: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {SECRET_KEY}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("not an HTTP answer"))?;
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

fn form_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
