# localstripe (a fake, stateful Stripe server) for scripts, sourced by sdk/lib.sh and
# bench/payments.sh: its virtualenv, a server on a free loopback port, the webhook it posts
# to. Uses `log` and `free_port` of the sourcing script.
#
#   LOCALSTRIPE_VENV  the virtualenv of sdk/localstripe-requirements.txt (default
#                     target/localstripe-venv, the one the payments tests use)

LOCALSTRIPE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$LOCALSTRIPE_ROOT/sdk/python_venv.sh"
LOCALSTRIPE_VENV="${LOCALSTRIPE_VENV:-$LOCALSTRIPE_ROOT/target/localstripe-venv}"
# localstripe takes any `sk_…` key; the webhook secret is ours to choose.
LOCALSTRIPE_KEY="sk_test_ecom_localstripe"
STRIPE_WEBHOOK_SECRET="whsec_ecom_scripts_localstripe"

# target/localstripe-venv with sdk/localstripe-requirements.txt, made as the payments tests
# make it (same lock file, same marker: the requirement lines), so either reuses the other's.
ensure_localstripe_venv() {
  ensure_python_venv "$LOCALSTRIPE_VENV" "$LOCALSTRIPE_ROOT/sdk/localstripe-requirements.txt"
}

# Starts localstripe (sdk/localstripe_server.py) on a free loopback port, its output in
# $1. Sets LOCALSTRIPE_URL, and STRIPE_ENV: the server's settings for it. localstripe reads
# its stdin from a pipe this shell holds, so it stops when this shell exits, however it
# exits (stop_localstripe stops it sooner).
start_localstripe_at() {
  local logfile="$1" port
  ensure_localstripe_venv
  port="$(free_port)"
  exec {LOCALSTRIPE_FD}> >(exec "$LOCALSTRIPE_VENV/bin/python" \
    "$LOCALSTRIPE_ROOT/sdk/localstripe_server.py" "$port" >"$logfile" 2>&1)
  LOCALSTRIPE_PID=$!
  LOCALSTRIPE_URL="http://127.0.0.1:$port"
  for _ in $(seq 1 300); do
    if curl -fsS -o /dev/null -H "Authorization: Bearer $LOCALSTRIPE_KEY" \
      "$LOCALSTRIPE_URL/v1/balance" 2>/dev/null; then
      log "localstripe at $LOCALSTRIPE_URL"
      STRIPE_ENV=(STRIPE_API_BASE="$LOCALSTRIPE_URL" STRIPE_SECRET_KEY="$LOCALSTRIPE_KEY"
        STRIPE_WEBHOOK_SECRET="$STRIPE_WEBHOOK_SECRET")
      return 0
    fi
    sleep 0.1
  done
  log "localstripe did not start; its output:"
  cat "$logfile" >&2
  return 1
}

# Has localstripe post its events, signed with STRIPE_WEBHOOK_SECRET, to the webhook of the
# server at $1.
register_stripe_webhook() {
  curl -fsS -o /dev/null -X POST "$LOCALSTRIPE_URL/_config/webhooks/ecom" \
    --data-urlencode "url=$1/payments/webhooks/stripe" \
    --data-urlencode "secret=$STRIPE_WEBHOOK_SECRET"
  log "localstripe posts its events to $1/payments/webhooks/stripe"
}

stop_localstripe() {
  if [[ -n "${LOCALSTRIPE_FD:-}" ]]; then
    exec {LOCALSTRIPE_FD}>&-
    LOCALSTRIPE_FD=""
  fi
  if [[ -n "${LOCALSTRIPE_PID:-}" ]]; then
    kill "$LOCALSTRIPE_PID" 2>/dev/null || true
    wait "$LOCALSTRIPE_PID" 2>/dev/null || true
    LOCALSTRIPE_PID=""
  fi
}
