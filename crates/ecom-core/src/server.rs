//! The one way the app is put on a socket, shared by the `ecom` binary and the tests:
//! bind (port 0 allowed), read the bound address, run until stopped, and drain.
//!
//! Signals are the binary's business: it hands [`AppServer::run_until_stopped`] anything
//! that yields stop requests ([`StopRequests`]); tests stop through [`AppServer::handle`].

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};

use crate::http::{AppContext, Draining, build_app};
use crate::settings::Settings;

/// The phases of a drain: `grace` of serving while `/ready` answers 503, so a load
/// balancer probing it stops sending requests here before the listener closes; then up
/// to `timeout` for in-flight requests to finish (any still running are cut off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drain {
    pub grace: Duration,
    pub timeout: Duration,
}

impl Drain {
    /// `SHUTDOWN_GRACE_MS` and `SHUTDOWN_TIMEOUT_SECONDS`.
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            grace: Duration::from_millis(settings.shutdown_grace_ms),
            timeout: Duration::from_secs(settings.shutdown_timeout_seconds),
        }
    }
}

/// Where and how to listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    pub host: String,
    /// 0 picks a free port; [`AppServer::addrs`] says which.
    pub port: u16,
    /// Worker threads; `None` leaves actix's default (one per core).
    pub workers: Option<usize>,
    pub drain: Drain,
}

impl ServerConfig {
    /// `HOST`, `PORT` and the drain settings.
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            host: settings.host.clone(),
            port: settings.port,
            workers: None,
            drain: Drain::from_settings(settings),
        }
    }

    /// 127.0.0.1 on a free port with `workers` threads, no grace, actix's 30 s for
    /// in-flight requests: what tests want.
    pub fn local(workers: usize) -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 0,
            workers: Some(workers),
            drain: Drain {
                grace: Duration::ZERO,
                timeout: Duration::from_secs(30),
            },
        }
    }
}

/// The listener could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {host}:{port} (HOST, PORT)")]
pub struct BindError {
    pub host: String,
    pub port: u16,
    #[source]
    pub source: std::io::Error,
}

/// Anything that says "stop": the binary's SIGTERM/SIGINT, or a test's channel.
pub trait StopRequests {
    /// Completes with the name of the next stop request (for the log).
    fn next(&mut self) -> impl Future<Output = &'static str>;
}

/// The app bound to its socket, not yet serving until run (or spawned) on an actix runtime.
pub struct AppServer {
    server: Server,
    addrs: Vec<SocketAddr>,
    draining: Draining,
    drain: Drain,
}

crate::debug_showing!(AppServer { addrs, drain });

/// Binds the app built from `ctx` as `config` says. Actix's own signal handling is off:
/// it would stop at once on SIGINT, and stopping is the caller's ([`StopRequests`]).
pub fn bind(ctx: AppContext, config: &ServerConfig) -> Result<AppServer, BindError> {
    let draining = ctx.draining().clone();
    let mut server = actix_web::HttpServer::new(move || build_app(&ctx))
        .disable_signals()
        .shutdown_timeout(config.drain.timeout.as_secs());
    if let Some(workers) = config.workers {
        server = server.workers(workers);
    }
    let server = server
        .bind((config.host.as_str(), config.port))
        .map_err(|source| BindError {
            host: config.host.clone(),
            port: config.port,
            source,
        })?;
    let addrs = server.addrs();
    Ok(AppServer {
        server: server.run(),
        addrs,
        draining,
        drain: config.drain,
    })
}

impl AppServer {
    /// Every bound address (the real port when 0 was asked for).
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The first bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// The flag `/ready` reads; set when a drain starts.
    pub fn draining(&self) -> &Draining {
        &self.draining
    }

    /// Stops the server from anywhere: `stop(true)` finishes in-flight requests.
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until stopped through [`AppServer::handle`].
    pub async fn run(self) -> std::io::Result<()> {
        self.server.await
    }

    /// Serves until a stop request, then drains: `/ready` turns 503 at once, the server
    /// keeps serving for the grace, then stops accepting and lets in-flight requests
    /// finish (up to the drain's timeout, which actix enforces). A second stop request
    /// at any point of the drain stops at once, cutting off what still runs; still a
    /// clean exit, as the operator asked for it.
    pub async fn run_until_stopped(self, mut stops: impl StopRequests) -> std::io::Result<()> {
        let Self {
            mut server,
            draining,
            drain,
            ..
        } = self;
        let handle = server.handle();
        let first = tokio::select! {
            result = &mut server => return result,
            name = stops.next() => name,
        };
        draining.start();
        tracing::info!(
            signal = first,
            grace_ms = drain.grace.as_millis() as u64,
            "draining: /ready answers 503; still serving until the grace ends (signal again to stop at once)"
        );
        tokio::select! {
            result = &mut server => return result,
            name = stops.next() => return stop_at_once(server, name),
            () = tokio::time::sleep(drain.grace) => {}
        }
        tracing::info!(
            timeout_s = drain.timeout.as_secs(),
            "grace over: stopped accepting; finishing in-flight requests"
        );
        // The command is sent now; the server future carries it out while it is polled.
        drop(handle.stop(true));
        tokio::select! {
            result = &mut server => result?,
            name = stops.next() => return stop_at_once(server, name),
        }
        tracing::info!("in-flight requests finished");
        Ok(())
    }
}

/// Dropping the server makes its workers close every connection now.
fn stop_at_once(server: Server, signal: &str) -> std::io::Result<()> {
    tracing::warn!(
        signal,
        "second signal: stopping at once; requests still running are cut off"
    );
    drop(server);
    Ok(())
}
