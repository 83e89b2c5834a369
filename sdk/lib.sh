# Shared by sdk/journey.sh and sdk/fuzz.sh (sourced): the pinned Python tools and a real
# `ecom` server on a free port against a fresh database, stopped and dropped on exit.
#
#   ECOM_BIN           the server binary (default target/debug/ecom, built when missing)
#   TEST_DATABASE_URL  a PostgreSQL to create the throwaway database on (default
#                      postgres://postgres@127.0.0.1:5432/postgres); when nothing answers
#                      there, the server runs on its own private PostgreSQL in a temp folder
#   CONTRACT_VENV      the virtualenv of sdk/requirements.txt (default target/contract-venv)
#   LOCALSTRIPE_VENV   localstripe's virtualenv (see sdk/localstripe.sh)
#   CLUSTER_REPLICAS   ecom processes of start_cluster's cluster (default 3)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ECOM_BIN="${ECOM_BIN:-$ROOT/target/debug/ecom}"
CONTRACT_VENV="${CONTRACT_VENV:-$ROOT/target/contract-venv}"
ADMIN_EMAIL="contract-admin@example.com"
ADMIN_PASSWORD="quartz-lantern-harbor-42"
SECRET="contract-check-secret-key-0123456789abcdef"
# Extra settings of the server (start_localstripe adds Stripe's).
SERVER_ENV=()

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
source "$ROOT/sdk/localstripe.sh"

ensure_venv() {
  local stamp="$CONTRACT_VENV/.requirements"
  if ! cmp -s "$ROOT/sdk/requirements.txt" "$stamp" 2>/dev/null; then
    log "installing $(grep -v '^#' "$ROOT/sdk/requirements.txt" | xargs) into $CONTRACT_VENV"
    python3 -m venv "$CONTRACT_VENV"
    "$CONTRACT_VENV/bin/pip" install --quiet --disable-pip-version-check -r "$ROOT/sdk/requirements.txt"
    cp "$ROOT/sdk/requirements.txt" "$stamp"
  fi
}

ensure_binary() {
  if [[ ! -x "$ECOM_BIN" ]]; then
    (cd "$ROOT" && cargo build --bin ecom)
  fi
}

# A folder of this run, removed on exit (by stop_server).
work_dir() {
  if [[ -z "${WORK:-}" ]]; then
    WORK="$(mktemp -d /tmp/ecom-contract.XXXXXX)"
    chmod 755 "$WORK"
  fi
}

# Starts localstripe for the server (sdk/localstripe.sh) and gives the server its Stripe
# settings.
start_localstripe() {
  work_dir
  start_localstripe_at "$WORK/localstripe.log"
  SERVER_ENV+=("${STRIPE_ENV[@]}")
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts the server; sets BASE_URL. Registers cleanup on EXIT.
start_server() {
  ensure_binary
  work_dir
  local admin_url="${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
  local -a env=(env -i PATH="$PATH" HOME="$WORK" SECRET_KEY="$SECRET" LOG_FORMAT=text RUST_LOG=warn
    "${SERVER_ENV[@]}")
  DB_NAME=""
  if psql "$admin_url" -Atqc 'SELECT 1' >/dev/null 2>&1; then
    DB_NAME="ecom_contract_$(date +%s)_$$"
    ADMIN_DB_URL="$admin_url"
    psql "$admin_url" -qc "CREATE DATABASE $DB_NAME" >/dev/null
    env+=(DATABASE_URL="${admin_url%/*}/$DB_NAME")
    log "database $DB_NAME on ${admin_url%/*}"
  else
    env+=(ECOM_DATA_DIR="$WORK/data")
    log "no PostgreSQL at $admin_url: private PostgreSQL in $WORK/data"
  fi
  trap stop_server EXIT
  printf '%s\n' "$ADMIN_PASSWORD" | (cd "$WORK" && "${env[@]}" "$ECOM_BIN" create-admin --email "$ADMIN_EMAIL" --password-stdin) >/dev/null
  local port
  port="$(free_port)"
  (cd "$WORK" && exec "${env[@]}" PORT="$port" "$ECOM_BIN" serve) >"$WORK/server.log" 2>&1 &
  SERVER_PID=$!
  BASE_URL="http://127.0.0.1:$port"
  for _ in $(seq 1 300); do
    if curl -fsS "$BASE_URL/ready" >/dev/null 2>&1; then
      log "ecom serving at $BASE_URL"
      return 0
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
    sleep 0.2
  done
  log "ecom did not become ready; its log:"
  cat "$WORK/server.log" >&2
  return 1
}

stop_server() {
  local status=$?
  if [[ -n "${SERVER_PID:-}" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  stop_localstripe
  if [[ $status -ne 0 && -f "${WORK:-}/server.log" ]]; then
    log "server log (last 40 lines):"
    tail -n 40 "$WORK/server.log" >&2 || true
  fi
  if [[ -n "${DB_NAME:-}" ]]; then
    psql "$ADMIN_DB_URL" -qc "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  [[ -n "${WORK:-}" ]] && rm -rf "$WORK"
  exit "$status"
}

# Starts a local cluster (deploy/local-cluster.sh) in $WORK/cluster instead of one server:
# a PostgreSQL primary and its streaming replica, CLUSTER_REPLICAS ecom processes with the
# server's settings and HAProxy in front. Sets BASE_URL (HAProxy) and CLUSTER_DIR; creates
# the administrator on the primary. Registers cleanup on EXIT.
start_cluster() {
  ensure_binary
  work_dir
  CLUSTER_DIR="$WORK/cluster"
  trap stop_cluster EXIT
  # The journey checks anonymous reads right after writes (a product's stock once an order
  # is cancelled): commits wait for the standby's replay, so the replica's reads are fresh
  # here (elsewhere they may be up to READ_REPLICA_MAX_LAG_MS behind, as documented).
  local started
  started="$(env -i PATH="$PATH" HOME="$WORK" "${SERVER_ENV[@]}" CLUSTER_DIR="$CLUSTER_DIR" \
    ECOM_BIN="$ECOM_BIN" CLUSTER_REPLICAS="${CLUSTER_REPLICAS:-3}" CLUSTER_SYNCHRONOUS_STANDBY=1 \
    "$ROOT/deploy/local-cluster.sh" start)"
  BASE_URL="$(sed -n 's/^url: //p' <<<"$started")"
  CLUSTER_DATABASE_URL="$(sed -n 's/^database: //p' <<<"$started")"
  [[ -n "$BASE_URL" && -n "$CLUSTER_DATABASE_URL" ]] || { log "unexpected output of start: $started"; return 1; }
  printf '%s\n' "$ADMIN_PASSWORD" | (cd "$WORK" && env -i PATH="$PATH" HOME="$WORK" \
    DATABASE_URL="$CLUSTER_DATABASE_URL" SECRET_KEY="$SECRET" LOG_FORMAT=text RUST_LOG=warn \
    "$ECOM_BIN" create-admin --email "$ADMIN_EMAIL" --password-stdin) >/dev/null
  log "cluster of ${CLUSTER_REPLICAS:-3} ecom processes behind HAProxy at $BASE_URL"
}

stop_cluster() {
  local status=$?
  CLUSTER_DIR="$CLUSTER_DIR" "$ROOT/deploy/local-cluster.sh" stop || true
  stop_localstripe
  if [[ $status -ne 0 ]]; then
    local file
    for file in "$CLUSTER_DIR"/logs/{ecom-*,haproxy,primary,standby}.log; do
      [[ -f "$file" ]] || continue
      log "$(basename "$file") (last 30 lines):"
      tail -n 30 "$file" >&2 || true
    done
  fi
  [[ -n "${WORK:-}" ]] && rm -rf "$WORK"
  exit "$status"
}

# An access token for email/password via the JSON login.
token_for() {
  curl -fsS -X POST "$BASE_URL/auth/login" -H 'content-type: application/json' \
    -d "{\"email\":\"$1\",\"password\":\"$2\"}" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}
