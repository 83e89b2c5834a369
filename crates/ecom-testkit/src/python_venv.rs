//! Python virtualenvs of the test peers (localstripe, aiosmtpd), made once per checkout.
//!
//! `<workspace>/target/<name>-venv` holds the requirement lines of an `sdk/` file: made with
//! `python3 -m venv` and pip under an exclusive lock on `target/<name>-venv.lock`, so
//! parallel test binaries (and the `sdk/*.sh` scripts, which use the same lock and marker)
//! never race; a marker file with the requirement lines says the venv is complete.

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `<workspace>/target/<name>-venv`.
pub fn dir(name: &str) -> PathBuf {
    workspace_root().join("target").join(format!("{name}-venv"))
}

/// The requirement lines of a requirements file's text (no comments, no blanks).
pub fn requirement_lines(file_text: &str) -> Vec<&str> {
    file_text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// Makes `target/<name>-venv` with `requirements` unless it already has them; returns it.
pub fn ensure(name: &str, requirements: &[&str]) -> PathBuf {
    let venv = dir(name);
    let target = venv.parent().expect("the venv has a parent").to_path_buf();
    std::fs::create_dir_all(&target).expect("create target/");
    let lock = std::fs::File::create(target.join(format!("{name}-venv.lock")))
        .expect("create the venv lock file");
    lock.lock().expect("lock the venv");
    let marker = venv.join(".ecom-requirements");
    let wanted = requirements.join("\n");
    if std::fs::read_to_string(&marker).is_ok_and(|have| have == wanted) {
        return venv;
    }
    if venv.exists() {
        std::fs::remove_dir_all(&venv).expect("remove a half-made venv");
    }
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .output()
        .unwrap_or_else(|e| {
            panic!("{name} needs python3 on PATH ({e}); install python3 and python3-venv")
        });
    if !made.status.success() {
        panic!(
            "`python3 -m venv` failed; {name} needs Python's venv module \
             (Debian/Ubuntu: apt-get install python3-venv):\n{}",
            String::from_utf8_lossy(&made.stderr)
        );
    }
    let installed = Command::new(venv.join("bin").join("pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(requirements)
        .output()
        .expect("run the venv's pip");
    if !installed.status.success() {
        panic!(
            "pip could not install {}:\n{}",
            requirements.join(" "),
            String::from_utf8_lossy(&installed.stderr)
        );
    }
    std::fs::write(&marker, wanted).expect("mark the venv complete");
    venv
}
