# aiosmtpd (an SMTP server that keeps what it receives) for scripts and CI: its virtualenv,
# made as the mail tests make it (crates/ecom-testkit/src/python_venv.rs: same folder, lock
# file and marker), so either reuses the other's. Uses `log` of the sourcing script.
#
#   SMTP_VENV  the virtualenv of sdk/smtp-requirements.txt (default target/smtp-venv)

SMTP_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SMTP_VENV="${SMTP_VENV:-$SMTP_ROOT/target/smtp-venv}"

ensure_smtp_venv() {
  local wanted
  wanted="$(grep -v '^[[:space:]]*#' "$SMTP_ROOT/sdk/smtp-requirements.txt" | sed '/^[[:space:]]*$/d')"
  mkdir -p "$(dirname "$SMTP_VENV")"
  (
    flock 9
    if [[ "$(cat "$SMTP_VENV/.ecom-requirements" 2>/dev/null)" != "$wanted" ]]; then
      log "installing $(echo $wanted) into $SMTP_VENV"
      rm -rf "$SMTP_VENV"
      python3 -m venv "$SMTP_VENV"
      # shellcheck disable=SC2086 # one requirement per word
      "$SMTP_VENV/bin/pip" install --quiet --disable-pip-version-check $wanted
      printf '%s' "$wanted" >"$SMTP_VENV/.ecom-requirements"
    fi
  ) 9>"$SMTP_VENV.lock"
}
