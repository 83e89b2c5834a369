# aiosmtpd (an SMTP server that keeps what it receives) for scripts and CI: its virtualenv,
# made as the mail tests make it (crates/ecom-testkit/src/python_venv.rs: same folder, lock
# file and marker), so either reuses the other's. Uses `log` of the sourcing script.
#
#   SMTP_VENV  the virtualenv of sdk/smtp-requirements.txt (default target/smtp-venv)

SMTP_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$SMTP_ROOT/sdk/python_venv.sh"
SMTP_VENV="${SMTP_VENV:-$SMTP_ROOT/target/smtp-venv}"

ensure_smtp_venv() {
  ensure_python_venv "$SMTP_VENV" "$SMTP_ROOT/sdk/smtp-requirements.txt"
}
