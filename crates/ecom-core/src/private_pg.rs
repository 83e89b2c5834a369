//! The private PostgreSQL: with no `DATABASE_URL`, the store runs its own cluster from
//! the machine's PostgreSQL binaries in a data folder of the project.
//!
//! The cluster listens on 127.0.0.1 only, on a free port chosen at each start, with a
//! password generated once and kept beside it. A second process finds it running and
//! reuses it; only the process that started it stops it.

use std::fs::{self, File};
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::settings::SecretString;

/// Why the private PostgreSQL could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PrivatePgError {
    #[error(
        "no PostgreSQL binaries (initdb, pg_ctl) found on PATH or under /usr/lib/postgresql/*/bin: \
         install them (`apt-get install postgresql` or `brew install postgresql`) or set DATABASE_URL"
    )]
    NoBinaries,
    #[error(
        "running as root: PostgreSQL refuses root and there is no `postgres` user to run it as; \
         create that user or set DATABASE_URL"
    )]
    NoPostgresUser,
    #[error("{what} failed: {detail}")]
    Command { what: String, detail: String },
    #[error("private PostgreSQL in {dir}: {source}")]
    Io {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where and how to run the cluster.
#[derive(Debug, Clone)]
pub struct LaunchOptions {
    /// The data folder (`ECOM_DATA_DIR`); the cluster lives in its `postgres/` folder.
    pub data_dir: PathBuf,
    /// Trade durability for speed (no fsync): for test clusters only.
    pub ephemeral: bool,
}

#[derive(Debug, Clone, Copy)]
struct RunAs {
    uid: u32,
    gid: u32,
}

/// A running private cluster. Its Debug shows everything but the password.
#[derive(Debug)]
pub struct PrivatePostgres {
    bin_dir: PathBuf,
    cluster_dir: PathBuf,
    run_as: Option<RunAs>,
    port: u16,
    password: SecretString,
    started_here: bool,
}

/// How `pg_ctl` stops the cluster (`-m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// Ends every session, writes a checkpoint, then stops.
    Fast,
    /// Kills every server process at once, as a crash would; the next start replays the WAL.
    Immediate,
}

impl StopMode {
    fn as_arg(self) -> &'static str {
        match self {
            StopMode::Fast => "fast",
            StopMode::Immediate => "immediate",
        }
    }
}

impl PrivatePostgres {
    /// Creates the cluster if needed and starts it unless it already runs. Blocking.
    pub fn start(options: &LaunchOptions) -> Result<Self, PrivatePgError> {
        let bin_dir = find_binaries().ok_or(PrivatePgError::NoBinaries)?;
        let data_dir = absolute(&options.data_dir);
        let io = |source| PrivatePgError::Io {
            dir: data_dir.clone(),
            source,
        };
        fs::create_dir_all(&data_dir).map_err(io)?;
        // One process at a time creates or starts the cluster.
        let lock = File::create(data_dir.join("postgres.lock")).map_err(io)?;
        lock.lock().map_err(io)?;

        let run_as = if nix::unistd::geteuid().is_root() {
            let user = nix::unistd::User::from_name("postgres")
                .ok()
                .flatten()
                .ok_or(PrivatePgError::NoPostgresUser)?;
            Some(RunAs {
                uid: user.uid.as_raw(),
                gid: user.gid.as_raw(),
            })
        } else {
            None
        };
        let password = read_or_create_password(&data_dir.join("postgres.password")).map_err(io)?;
        let mut pg = PrivatePostgres {
            bin_dir,
            cluster_dir: data_dir.join("postgres"),
            run_as,
            port: 0,
            password: SecretString::new(password),
            started_here: false,
        };
        if !pg.cluster_dir.join("PG_VERSION").exists() {
            pg.init(options.ephemeral)?;
        }
        if let Some(port) = pg.running_port() {
            pg.port = port;
            tracing::info!(port, "reusing the private PostgreSQL already running");
        } else {
            pg.port = free_port().map_err(io)?;
            pg.pg_ctl_start()?;
            pg.started_here = true;
            tracing::info!(port = pg.port, dir = %pg.cluster_dir.display(), "started the private PostgreSQL");
        }
        drop(lock);
        Ok(pg)
    }

    /// URL of a database on this cluster.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/{}",
            self.password.expose(),
            self.port,
            database
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether this process started the cluster (and so should stop it).
    pub fn started_here(&self) -> bool {
        self.started_here
    }

    /// Stops the cluster (fast shutdown: open sessions are ended). Blocking.
    pub fn stop(&self) -> Result<(), PrivatePgError> {
        let dir = self.cluster_dir.to_string_lossy().into_owned();
        self.run_checked(
            "pg_ctl stop",
            "pg_ctl",
            &["stop", "-D", &dir, "-m", "fast", "-w", "-t", "60"],
        )?;
        Ok(())
    }

    /// Starts it again on the same port after [`stop`](Self::stop). Blocking.
    pub fn restart_stopped(&self) -> Result<(), PrivatePgError> {
        self.pg_ctl_start()
    }

    /// Stops the running cluster with `mode` and starts it again on the same port
    /// (`pg_ctl restart`); returns once it accepts connections. Blocking. Fault drills use
    /// it to take the database away under load.
    pub fn restart(&self, mode: StopMode) -> Result<(), PrivatePgError> {
        let dir = self.cluster_dir.to_string_lossy().into_owned();
        let log = self.log_file();
        self.run_checked(
            "pg_ctl restart",
            "pg_ctl",
            &[
                "restart",
                "-D",
                &dir,
                "-m",
                mode.as_arg(),
                "-l",
                &log,
                "-w",
                "-t",
                "60",
            ],
        )?;
        Ok(())
    }

    fn log_file(&self) -> String {
        self.cluster_dir
            .join("server.log")
            .to_string_lossy()
            .into_owned()
    }

    fn init(&self, ephemeral: bool) -> Result<(), PrivatePgError> {
        let io = |source| PrivatePgError::Io {
            dir: self.cluster_dir.clone(),
            source,
        };
        fs::create_dir_all(&self.cluster_dir).map_err(io)?;
        let pwfile =
            std::env::temp_dir().join(format!("ecom-pw-{}", uuid::Uuid::new_v4().simple()));
        crate::settings::write_private_file(&pwfile, self.password.expose()).map_err(io)?;
        if let Some(u) = self.run_as {
            let owner = (Some(u.uid), Some(u.gid));
            std::os::unix::fs::chown(&self.cluster_dir, owner.0, owner.1).map_err(io)?;
            std::os::unix::fs::chown(&pwfile, owner.0, owner.1).map_err(io)?;
        }
        let dir = self.cluster_dir.to_string_lossy().into_owned();
        let pw = pwfile.to_string_lossy().into_owned();
        let result = self.run_checked(
            "initdb",
            "initdb",
            &[
                "-D",
                &dir,
                "-U",
                "postgres",
                "-A",
                "scram-sha-256",
                "--pwfile",
                &pw,
                "-E",
                "UTF8",
                "--no-instructions",
            ],
        );
        let _ = fs::remove_file(&pwfile);
        result.map_err(|e| match e {
            PrivatePgError::Command { what, detail } if self.run_as.is_some() => PrivatePgError::Command {
                what,
                detail: format!(
                    "{detail} (as root the cluster runs as the `postgres` user, which must be able to \
                     reach {dir}; set ECOM_DATA_DIR to a folder it can reach, or set DATABASE_URL)"
                ),
            },
            other => other,
        })?;
        let mut conf = String::from(
            "\n# ecom private PostgreSQL\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\nmax_connections = 300\n",
        );
        if ephemeral {
            conf.push_str("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n");
        }
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(self.cluster_dir.join("postgresql.conf"))
            .map_err(io)?;
        file.write_all(conf.as_bytes()).map_err(io)?;
        Ok(())
    }

    fn pg_ctl_start(&self) -> Result<(), PrivatePgError> {
        let dir = self.cluster_dir.to_string_lossy().into_owned();
        let log = self.log_file();
        let opts = format!("-p {}", self.port);
        self.run_checked(
            "pg_ctl start",
            "pg_ctl",
            &[
                "start", "-D", &dir, "-l", &log, "-o", &opts, "-w", "-t", "60",
            ],
        )
        .map_err(|e| match e {
            PrivatePgError::Command { what, detail } => PrivatePgError::Command {
                what,
                detail: format!("{detail}; see {log}"),
            },
            other => other,
        })?;
        Ok(())
    }

    /// The port of a cluster already running on this data folder.
    fn running_port(&self) -> Option<u16> {
        let dir = self.cluster_dir.to_string_lossy().into_owned();
        let status = self.run("pg_ctl", &["status", "-D", &dir]).ok()?;
        if !status.status.success() {
            return None;
        }
        let pid_file = fs::read_to_string(self.cluster_dir.join("postmaster.pid")).ok()?;
        pid_file.lines().nth(3)?.trim().parse().ok()
    }

    fn run(&self, program: &str, args: &[&str]) -> std::io::Result<Output> {
        let mut cmd = Command::new(self.bin_dir.join(program));
        cmd.args(args).env("LC_ALL", "C");
        if let Some(u) = self.run_as {
            cmd.uid(u.uid).gid(u.gid).current_dir(std::env::temp_dir());
        }
        cmd.output()
    }

    fn run_checked(
        &self,
        what: &str,
        program: &str,
        args: &[&str],
    ) -> Result<Output, PrivatePgError> {
        let output = self
            .run(program, args)
            .map_err(|e| PrivatePgError::Command {
                what: what.into(),
                detail: e.to_string(),
            })?;
        if output.status.success() {
            return Ok(output);
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stdout = String::from_utf8_lossy(&output.stdout);
        Err(PrivatePgError::Command {
            what: what.into(),
            detail: format!("{} {}", stderr.trim(), stdout.trim())
                .trim()
                .to_string(),
        })
    }
}

/// `initdb` and `pg_ctl`: on PATH, else the newest `/usr/lib/postgresql/<version>/bin`.
pub fn find_binaries() -> Option<PathBuf> {
    let has_all = |dir: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|b| dir.join(b).is_file())
    };
    if let Some(path) = std::env::var_os("PATH")
        && let Some(dir) = std::env::split_paths(&path).find(|d| has_all(d))
    {
        return Some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            has_all(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn read_or_create_password(path: &Path) -> std::io::Result<String> {
    if let Ok(existing) = fs::read_to_string(path)
        && !existing.trim().is_empty()
    {
        return Ok(existing.trim().to_string());
    }
    let password = crate::random_hex(24);
    crate::settings::write_private_file(path, &password)?;
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{Database, redacted_url};

    const PASSWORD: &str = "9f3c0b6e41d27a58c3e1";

    fn cluster() -> PrivatePostgres {
        PrivatePostgres {
            bin_dir: PathBuf::from("/usr/lib/postgresql/15/bin"),
            cluster_dir: PathBuf::from("/tmp/ecom/postgres"),
            run_as: None,
            port: 5499,
            password: SecretString::new(PASSWORD),
            started_here: true,
        }
    }

    #[test]
    fn debug_never_shows_the_password() {
        let pg = cluster();
        let database = Database {
            url: pg.url("ecom"),
            private: Some(cluster()),
        };
        for text in [
            format!("{pg:?}"),
            format!("{database:?}"),
            format!("{database:#?}"),
        ] {
            assert!(!text.contains(PASSWORD), "password shown in {text}");
            assert!(text.contains("5499"), "still says where: {text}");
        }
    }

    #[test]
    fn urls_are_shown_without_their_password() {
        let cases = [
            (
                "postgres://shop:s3cret@db.internal:5432/ecom",
                "postgres://shop:[redacted]@db.internal:5432/ecom",
            ),
            (
                "postgresql://shop@db/ecom?sslmode=require&password=s3cret",
                "postgresql://shop@db/ecom?sslmode=require&password=[redacted]",
            ),
            ("postgres://db/ecom", "postgres://db/ecom"),
            ("host=db user=shop password=s3cret", "[redacted]"),
        ];
        for (url, shown) in cases {
            assert_eq!(redacted_url(url), shown);
        }
        // Unescaped separators inside the password hide more, never less.
        for url in [
            "postgres://shop:s3/cr@et@db/ecom",
            "postgres://shop:s3?cret@db/ecom",
        ] {
            assert!(!redacted_url(url).contains("cr"), "{}", redacted_url(url));
        }
    }
}
