#!/usr/bin/env bash
# A local cluster on loopback ports, shaped like production (issue 16): a PostgreSQL primary,
# one streaming replica made with `pg_basebackup -R` (hot standby), CLUSTER_REPLICAS `ecom`
# processes and HAProxy in front of them, routing on their `/ready` checks.
#
#   deploy/local-cluster.sh start          prints `url: …` (HAProxy) and `database: …` (the primary)
#   deploy/local-cluster.sh stop           tears it all down, keeps $CLUSTER_DIR/logs/
#   deploy/local-cluster.sh stop-ecom N | start-ecom N | kill-ecom N
#   deploy/local-cluster.sh stop-standby | start-standby
#   deploy/local-cluster.sh status         prints $CLUSTER_DIR/cluster.env
#
# Settings (environment):
#   CLUSTER_DIR       the cluster's folder (default <repo>/target/local-cluster)
#   CLUSTER_REPLICAS  ecom processes (default 3)
#   ECOM_BIN          the binary (default: cargo build --release, target/release/ecom)
#   CLUSTER_PORT      HAProxy's port (default: a free one)
#   CLUSTER_WAIT_SECONDS  the limit of every wait (default 60)
#   CLUSTER_SYNCHRONOUS_STANDBY=1  commits wait until the standby has applied them
#                     (synchronous_commit = remote_apply): an anonymous read that follows a
#                     write sees it, for scripts that check exactly that (the SDK journey)
# Every other variable reaches the ecom processes (STRIPE_*, READ_REPLICA_MAX_LAG_MS, …);
# the topology (DATABASE_URL, DATABASE_READ_URL, PORT, HOST, SECRET_KEY, ECOM_DATA_DIR,
# TRUSTED_PROXIES, LOG_FORMAT) is the script's. Daemons log to $CLUSTER_DIR/logs/; progress
# and errors go to stderr; stdout carries only the two lines of `start` (and `status`).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLUSTER_DIR="${CLUSTER_DIR:-$ROOT/target/local-cluster}"
mkdir -p "$CLUSTER_DIR"
CLUSTER_DIR="$(cd "$CLUSTER_DIR" && pwd)"
LOG_DIR="$CLUSTER_DIR/logs"
PG_DIR="$CLUSTER_DIR/pg"
ENV_FILE="$CLUSTER_DIR/cluster.env"
RUN_FILE="$CLUSTER_DIR/binaries.env"
# The caller's environment at `start`, NUL-separated, so `start-ecom` restarts a process
# with the settings it first had.
CALLER_ENV="$CLUSTER_DIR/caller.env0"
# Every wait is bounded (seconds).
WAIT_LIMIT="${CLUSTER_WAIT_SECONDS:-60}"

log() { printf '[local-cluster] %s\n' "$*" >&2; }
fail() { log "$*"; exit 1; }

# Descriptors inherited from the caller (a pipe to localstripe's stdin, say) must not be held
# open by the daemons: close everything but stdio and bash's own script descriptor.
for fd in /proc/$$/fd/*; do
  fd="${fd##*/}"
  case "$fd" in 0 | 1 | 2 | 255) ;; *) eval "exec $fd>&-" 2>/dev/null || true ;; esac
done

# PostgreSQL's binaries as the Rust code finds them: `initdb` on PATH (its real folder, where
# pg_basebackup is too), else the newest /usr/lib/postgresql/*/bin.
pg_bin_dir() {
  local dir=""
  if command -v initdb >/dev/null 2>&1; then
    dir="$(dirname "$(readlink -f "$(command -v initdb)")")"
  fi
  if [[ -z "$dir" || ! -x "$dir/pg_basebackup" ]]; then
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  fi
  for tool in initdb pg_ctl pg_basebackup postgres; do
    [[ -n "$dir" && -x "$dir/$tool" ]] ||
      fail "no PostgreSQL binaries (initdb, pg_ctl, pg_basebackup) on PATH or under /usr/lib/postgresql/*/bin: apt-get install postgresql"
  done
  printf '%s\n' "$dir"
}

psql_bin() { if [[ -x "$1/psql" ]]; then echo "$1/psql"; else echo psql; fi; }

# PostgreSQL refuses to run as root: as root, its server commands run as `postgres`, from a
# folder it can enter.
as_pg() {
  if [[ "$(id -u)" == 0 ]]; then
    (cd "$PG_DIR" && runuser -u postgres -- "$@")
  else
    (cd "$PG_DIR" && "$@")
  fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# A pid file holds "PID STARTTIME": a pid reused by another process after ours ended does not
# count as ours.
start_time() { awk '{ sub(/^.*\) /, ""); print $20 }' "/proc/$1/stat" 2>/dev/null; }
process_state() { awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null; }
# A process that has already ended is recorded as such.
write_pid() { printf '%s %s\n' "$1" "$(start_time "$1" || true)" | sed 's/ $/ ended/' >"$2"; }
# The live pid recorded in $1, or nothing.
live_pid() {
  local pid started
  [[ -s "$1" ]] || return 0
  read -r pid started <"$1" || return 0
  if [[ -n "$started" && "$(start_time "$pid")" == "$started" && "$(process_state "$pid")" != Z ]]; then
    printf '%s\n' "$pid"
  fi
}
# Waits (at most $2 seconds) until pid $1 is gone.
wait_gone() {
  local pid="$1" limit="$2" started
  started="$(start_time "$pid")"
  [[ -n "$started" ]] || return 0
  for _ in $(seq 1 $((limit * 10))); do
    if [[ "$(start_time "$pid")" != "$started" || "$(process_state "$pid")" == Z ]]; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}

# The last lines of a log, to stderr.
show_tail() {
  if [[ -f "$1" ]]; then
    log "last lines of $1:"
    tail -n "${2:-40}" "$1" >&2 || true
  fi
}

load_env() {
  [[ -f "$ENV_FILE" ]] || fail "no cluster in $CLUSTER_DIR (no cluster.env): run start first"
  local key value
  while IFS='=' read -r key value; do
    [[ -n "$key" ]] && printf -v "C_$key" '%s' "$value"
  done < <(cat "$ENV_FILE" "$RUN_FILE" 2>/dev/null)
}

# The port of a postgres:// or http:// URL.
url_port() {
  local port="${1##*:}"
  printf '%s\n' "${port%%/*}"
}

# Starts the command after $1 in a session of its own (a Ctrl-C at the caller's terminal
# does not reach it), its output appended to the log $1, stdin closed; sets SPAWNED to its
# pid (setsid execs in place, so that is the command's own).
spawn() {
  local logfile="$1"
  shift
  setsid "$@" </dev/null >>"$logfile" 2>&1 &
  SPAWNED=$!
}

# ---------------------------------------------------------------------------------------
# PostgreSQL

# Makes $PG_DIR (and the log files PostgreSQL writes) the postgres user's, and checks that
# it can reach them through every parent folder.
prepare_pg_dir() {
  mkdir -p "$PG_DIR"
  [[ "$(id -u)" == 0 ]] || return 0
  : >>"$LOG_DIR/primary.log"
  : >>"$LOG_DIR/standby.log"
  chown postgres: "$PG_DIR" "$LOG_DIR/primary.log" "$LOG_DIR/standby.log"
  if ! runuser -u postgres -- test -w "$PG_DIR" -a -w "$LOG_DIR/primary.log"; then
    # The first folder from the root down that postgres cannot enter is the one to name.
    local dir="" part
    local -a parts
    IFS=/ read -ra parts <<<"${PG_DIR#/}"
    for part in "${parts[@]}"; do
      dir="$dir/$part"
      if ! runuser -u postgres -- test -x "$dir"; then
        fail "PostgreSQL runs as the postgres user, which cannot enter $dir: \`chmod o+x $dir\`, or set CLUSTER_DIR to a folder it can reach"
      fi
    done
    fail "the postgres user cannot write $PG_DIR"
  fi
}

# The primary: a fresh initdb, replication on, loopback only, database `ecom`.
start_primary() {
  local bin="$1" port="$2" sockets="$3" max_connections="$4"
  as_pg "$bin/initdb" -D "$PG_DIR/primary" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
    >"$LOG_DIR/initdb.log" 2>&1 || { show_tail "$LOG_DIR/initdb.log"; return 1; }
  # Loopback only, and trust: nothing but this machine's own processes can connect, and the
  # cluster holds throwaway data. On real machines use scram-sha-256 and the hosts' addresses.
  as_pg tee "$PG_DIR/primary/pg_hba.conf" >/dev/null <<'EOF'
local all         all trust
host  all         all 127.0.0.1/32 trust
host  replication all 127.0.0.1/32 trust
EOF
  # The standby copies this file with pg_basebackup and appends its own port.
  as_pg tee -a "$PG_DIR/primary/postgresql.conf" >/dev/null <<EOF

# deploy/local-cluster.sh
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sockets'
# Every ecom process opens DATABASE_POOL_SIZE request connections and a 6-connection
# background pool (+1 while migrating); a standby needs at least the primary's value.
max_connections = $max_connections
wal_level = replica
max_wal_senders = 5
max_replication_slots = 5
# The standby reconnects through its slot after start-standby; this bounds what the primary
# keeps should it stay away.
max_slot_wal_keep_size = 1GB
hot_standby = on
# Tell the primary which rows the standby's queries still read, so vacuum there does not
# remove them and cancel a long catalog read or sales report on the standby.
hot_standby_feedback = on
logging_collector = off
log_line_prefix = '%m [%p] <%a> '
EOF
  as_pg "$bin/pg_ctl" -D "$PG_DIR/primary" -l "$LOG_DIR/primary.log" -w -t "$WAIT_LIMIT" start \
    >&2 || { show_tail "$LOG_DIR/primary.log"; return 1; }
  "$(psql_bin "$bin")" "postgres://postgres@127.0.0.1:$port/postgres" -qAtc 'CREATE DATABASE ecom' >&2 ||
    { show_tail "$LOG_DIR/primary.log"; return 1; }
}

# The streaming replica: a base backup of the primary (with a replication slot, and -R
# writing standby.signal and primary_conninfo), on its own port.
start_standby_fresh() {
  local bin="$1" primary_port="$2" port="$3"
  as_pg "$bin/pg_basebackup" -h 127.0.0.1 -p "$primary_port" -U postgres -D "$PG_DIR/standby" \
    -R -X stream -c fast -C -S ecom_standby >"$LOG_DIR/basebackup.log" 2>&1 ||
    { show_tail "$LOG_DIR/basebackup.log"; return 1; }
  as_pg tee -a "$PG_DIR/standby/postgresql.conf" >/dev/null <<EOF
# the standby's own port (the rest is the primary's file)
port = $port
EOF
  start_standby_server "$bin" "$port"
}

start_standby_server() {
  local bin="$1" port="$2"
  as_pg "$bin/pg_ctl" -D "$PG_DIR/standby" -l "$LOG_DIR/standby.log" -w -t "$WAIT_LIMIT" start \
    >&2 || { show_tail "$LOG_DIR/standby.log"; return 1; }
  for _ in $(seq 1 $((WAIT_LIMIT * 10))); do
    if "$(psql_bin "$bin")" "postgres://postgres@127.0.0.1:$port/ecom" -qAtc 'SELECT 1' >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  log "the standby does not accept connections"
  show_tail "$LOG_DIR/standby.log"
  return 1
}

# Every commit on the primary returns once the standby has replayed it: no staleness on the
# replica, at the price of a round trip per commit (and commits wait while the standby is
# down). Switched on once the standby runs: before, CREATE DATABASE would wait for it.
make_standby_synchronous() {
  local bin="$1"
  as_pg tee -a "$PG_DIR/primary/postgresql.conf" >/dev/null <<'EOF'
synchronous_standby_names = '*'
synchronous_commit = remote_apply
EOF
  as_pg "$bin/pg_ctl" -D "$PG_DIR/primary" reload >&2
}

stop_pg() {
  local bin="$1" data="$2"
  [[ -f "$data/postmaster.pid" ]] || return 0
  as_pg "$bin/pg_ctl" -D "$data" -m fast -w -t "$WAIT_LIMIT" stop >&2 || true
}

# ---------------------------------------------------------------------------------------
# ecom processes

# Starts ecom process $1 with the caller's saved environment and the topology's settings.
spawn_ecom() {
  local n="$1" url_var="C_ECOM_${1}_URL" port
  port="$(url_port "${!url_var}")"
  local -a saved=()
  mapfile -d '' saved <"$CALLER_ENV"
  # Production mode: DEBUG unset, whatever the caller has.
  local -a kept=()
  local entry
  for entry in "${saved[@]}"; do
    [[ "$entry" == DEBUG=* ]] || kept+=("$entry")
  done
  # The cluster's folder is the working directory: an ecom.toml or .env of the caller's
  # folder does not reach the processes.
  (cd "$CLUSTER_DIR" && spawn "$LOG_DIR/ecom-$n.log" env -i "${kept[@]}" \
    DATABASE_URL="$C_DATABASE_URL" DATABASE_READ_URL="$C_DATABASE_READ_URL" \
    PORT="$port" HOST=127.0.0.1 SECRET_KEY="$(cat "$CLUSTER_DIR/secret_key")" \
    ECOM_DATA_DIR="$CLUSTER_DIR/data" TRUSTED_PROXIES=127.0.0.1/32 LOG_FORMAT=text \
    "$C_ECOM_BIN" serve && write_pid "$SPAWNED" "$CLUSTER_DIR/ecom-$n.pid")
}

# Waits until ecom process $1 answers /ready with 200.
wait_ecom_ready() {
  local n="$1" url_var="C_ECOM_${1}_URL" pid
  for _ in $(seq 1 $((WAIT_LIMIT * 10))); do
    if curl -fsS -o /dev/null --max-time 2 "${!url_var}/ready" 2>/dev/null; then
      return 0
    fi
    pid="$(live_pid "$CLUSTER_DIR/ecom-$n.pid")"
    if [[ -z "$pid" ]]; then
      log "ecom $n exited before it was ready"
      show_tail "$LOG_DIR/ecom-$n.log"
      return 1
    fi
    sleep 0.1
  done
  log "ecom $n was not ready within ${WAIT_LIMIT} s"
  show_tail "$LOG_DIR/ecom-$n.log"
  return 1
}

# HAProxy's view of server ecom$1 (UP, DOWN, "UP 1/2", …), from its stats CSV.
haproxy_status() {
  curl -fsS --max-time 2 "$C_HAPROXY_STATS_URL;csv" 2>/dev/null | awk -F, -v server="ecom$1" '
    NR == 1 { for (i = 1; i <= NF; i++) if ($i == "status") col = i; next }
    $1 == "ecom" && $2 == server { print $col }'
}

wait_haproxy_up() {
  local n="$1"
  for _ in $(seq 1 $((WAIT_LIMIT * 10))); do
    [[ "$(haproxy_status "$n")" == UP ]] && return 0
    sleep 0.1
  done
  log "HAProxy does not report ecom$n UP within ${WAIT_LIMIT} s (it says: $(haproxy_status "$n"))"
  show_tail "$LOG_DIR/haproxy.log"
  show_tail "$LOG_DIR/ecom-$n.log"
  return 1
}

# SIGTERM, then waits for the exit; the drain (SHUTDOWN_GRACE_MS) and the in-flight
# requests (SHUTDOWN_TIMEOUT_SECONDS) bound how long it may take.
ecom_stop_limit() {
  local grace_ms="${SHUTDOWN_GRACE_MS:-5000}" timeout_s="${SHUTDOWN_TIMEOUT_SECONDS:-30}"
  echo $((grace_ms / 1000 + timeout_s + 15))
}

# ---------------------------------------------------------------------------------------
# HAProxy

write_haproxy_cfg() {
  local port="$1" stats_port="$2"
  shift 2
  {
    cat <<EOF
# Written by deploy/local-cluster.sh from its template; see README, "Several replicas".
global
    maxconn 4096
    log stdout format raw local0 info

defaults
    mode http
    log global
    option httplog
    option forwardfor
    timeout connect 2s
    timeout http-request 10s
    timeout queue 10s
    timeout http-keep-alive 10s
    # Server-Sent Events (/users/me/events, /admin/events) stay open for long and send a
    # ping every 15 s: inactivity timeouts well above that.
    timeout client 5m
    timeout server 5m
    timeout tunnel 1h
    timeout check 2s
    # A request that could not be sent (connection refused while a replica restarts) goes to
    # another server.
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response

frontend shop
    bind 127.0.0.1:$port
    default_backend ecom

backend ecom
    balance roundrobin
    # Only GET and HEAD are sent again after the server may have received them; a POST that
    # a replica may have acted on is never resent (its client retries with its key).
    http-request disable-l7-retry unless METH_GET
    option httpchk GET /ready
    http-check expect status 200
    default-server inter 500ms fall 2 rise 2
EOF
    local n=1
    for server_port in "$@"; do
      echo "    server ecom$n 127.0.0.1:$server_port check"
      n=$((n + 1))
    done
    cat <<EOF

listen stats
    bind 127.0.0.1:$stats_port
    stats enable
    stats uri /stats
    stats refresh 5s
EOF
  } >"$CLUSTER_DIR/haproxy.cfg"
}

# On PATH, or in /usr/sbin (Debian's place, which a normal user's PATH lacks).
haproxy_bin() {
  local found
  found="$(command -v haproxy 2>/dev/null || true)"
  [[ -n "$found" ]] || found=/usr/sbin/haproxy
  [[ -x "$found" ]] || fail "haproxy is missing: apt-get install haproxy"
  printf '%s\n' "$found"
}

start_haproxy() {
  local haproxy
  haproxy="$(haproxy_bin)"
  "$haproxy" -c -q -f "$CLUSTER_DIR/haproxy.cfg" >"$LOG_DIR/haproxy.log" 2>&1 ||
    { show_tail "$LOG_DIR/haproxy.log"; return 1; }
  spawn "$LOG_DIR/haproxy.log" "$haproxy" -f "$CLUSTER_DIR/haproxy.cfg"
  write_pid "$SPAWNED" "$CLUSTER_DIR/haproxy.pid"
}

# ---------------------------------------------------------------------------------------
# Commands

running() {
  local file
  for file in "$CLUSTER_DIR"/ecom-*.pid "$CLUSTER_DIR/haproxy.pid"; do
    [[ -n "$(live_pid "$file")" ]] && return 0
  done
  for file in "$PG_DIR/primary/postmaster.pid" "$PG_DIR/standby/postmaster.pid"; do
    [[ -s "$file" && -d "/proc/$(head -n 1 "$file")" ]] && return 0
  done
  return 1
}

ecom_binary() {
  if [[ -n "${ECOM_BIN:-}" ]]; then
    [[ -x "$ECOM_BIN" ]] || fail "ECOM_BIN=$ECOM_BIN is not an executable"
    readlink -f "$ECOM_BIN"
    return
  fi
  log "building the release binary (cargo build --release --bin ecom)"
  (cd "$ROOT" && cargo build --release --bin ecom >&2)
  printf '%s\n' "${CARGO_TARGET_DIR:-$ROOT/target}/release/ecom"
}

cmd_start() {
  if running; then
    fail "a cluster already runs in $CLUSTER_DIR: deploy/local-cluster.sh stop first (or another CLUSTER_DIR)"
  fi
  # Leftovers of a cluster that died (folders, pid files) go; its logs too.
  rm -rf "$PG_DIR" "$CLUSTER_DIR/data" "$LOG_DIR" "$CLUSTER_DIR"/*.pid "$ENV_FILE" "$RUN_FILE"
  mkdir -p "$LOG_DIR" "$CLUSTER_DIR/data"
  local replicas="${CLUSTER_REPLICAS:-3}"
  [[ "$replicas" =~ ^[1-9][0-9]*$ ]] || fail "CLUSTER_REPLICAS must be a positive number, not $replicas"
  local bin ecom_bin
  bin="$(pg_bin_dir)"
  haproxy_bin >/dev/null
  ecom_bin="$(ecom_binary)"
  [[ -x "$ecom_bin" ]] || fail "no ecom binary at $ecom_bin"

  trap 'status=$?; if [[ $status -ne 0 ]]; then log "start failed: stopping what it started"; cmd_stop >/dev/null 2>&1 || true; fi' EXIT
  env -0 >"$CALLER_ENV"
  chmod 600 "$CALLER_ENV"
  # One signing key per cluster, shared by every process (a token from one is good on all).
  (umask 077 && python3 -c 'import secrets; print(secrets.token_hex(32))' >"$CLUSTER_DIR/secret_key")

  prepare_pg_dir
  local primary_port standby_port haproxy_port stats_port
  primary_port="$(free_port)"
  standby_port="$(free_port)"
  haproxy_port="${CLUSTER_PORT:-$(free_port)}"
  stats_port="$(free_port)"
  # The sockets live in the cluster's folder; a Unix socket path is at most 107 bytes, so a
  # deep folder goes without (TCP on loopback only).
  local sockets="$PG_DIR"
  ((${#sockets} + 20 < 107)) || sockets=""
  local pool="${DATABASE_POOL_SIZE:-16}"
  local max_connections=$((replicas * (pool + 8) + 30))
  ((max_connections >= 100)) || max_connections=100

  log "PostgreSQL primary on 127.0.0.1:$primary_port ($bin)"
  start_primary "$bin" "$primary_port" "$sockets" "$max_connections"
  log "streaming replica on 127.0.0.1:$standby_port"
  start_standby_fresh "$bin" "$primary_port" "$standby_port"
  if [[ "${CLUSTER_SYNCHRONOUS_STANDBY:-}" == 1 ]]; then
    log "synchronous standby (remote_apply)"
    make_standby_synchronous "$bin"
  fi

  local -a ports=()
  {
    echo "URL=http://127.0.0.1:$haproxy_port"
    echo "DATABASE_URL=postgres://postgres@127.0.0.1:$primary_port/ecom"
    echo "DATABASE_READ_URL=postgres://postgres@127.0.0.1:$standby_port/ecom"
    echo "REPLICAS=$replicas"
    for n in $(seq 1 "$replicas"); do
      ports+=("$(free_port)")
      echo "ECOM_${n}_URL=http://127.0.0.1:${ports[-1]}"
    done
    echo "HAPROXY_STATS_URL=http://127.0.0.1:$stats_port/stats"
    echo "LOG_DIR=$LOG_DIR"
  } >"$ENV_FILE"
  # What the drill commands need besides cluster.env.
  printf 'ECOM_BIN=%s\nPG_BIN=%s\n' "$ecom_bin" "$bin" >"$RUN_FILE"
  load_env

  # All at once: the migrations run under an advisory lock, so replicas may start together.
  log "$replicas ecom processes ($ecom_bin)"
  for n in $(seq 1 "$replicas"); do spawn_ecom "$n"; done
  for n in $(seq 1 "$replicas"); do wait_ecom_ready "$n"; done

  write_haproxy_cfg "$haproxy_port" "$stats_port" "${ports[@]}"
  log "HAProxy on 127.0.0.1:$haproxy_port (stats on $stats_port)"
  start_haproxy
  for n in $(seq 1 "$replicas"); do wait_haproxy_up "$n"; done
  trap - EXIT

  echo "url: $C_URL"
  echo "database: $C_DATABASE_URL"
}

cmd_stop() {
  local file pid
  local -a pids=()
  for file in "$CLUSTER_DIR"/ecom-*.pid; do
    pid="$(live_pid "$file")"
    if [[ -n "$pid" ]]; then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
  done
  # They drain side by side.
  for pid in "${pids[@]}"; do
    wait_gone "$pid" "$(ecom_stop_limit)" || { log "ecom (pid $pid) did not stop: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; }
  done
  pid="$(live_pid "$CLUSTER_DIR/haproxy.pid")"
  if [[ -n "$pid" ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    wait_gone "$pid" "$WAIT_LIMIT" || kill -KILL "$pid" 2>/dev/null || true
  fi
  if [[ -d "$PG_DIR" ]]; then
    local bin
    bin="$(pg_bin_dir)"
    stop_pg "$bin" "$PG_DIR/standby"
    stop_pg "$bin" "$PG_DIR/primary"
  fi
  rm -rf "$PG_DIR" "$CLUSTER_DIR/data" "$CLUSTER_DIR"/*.pid "$ENV_FILE" "$RUN_FILE" "$CALLER_ENV" \
    "$CLUSTER_DIR/secret_key" "$CLUSTER_DIR/haproxy.cfg"
  log "stopped (logs kept in $LOG_DIR)"
}

# Checks that $1 names an ecom process of this cluster.
ecom_number() {
  [[ "${1:-}" =~ ^[1-9][0-9]*$ && "$1" -le "$C_REPLICAS" ]] ||
    fail "expected an ecom process number from 1 to $C_REPLICAS, not '${1:-}'"
}

cmd_stop_ecom() {
  load_env
  ecom_number "${1:-}"
  local pid
  pid="$(live_pid "$CLUSTER_DIR/ecom-$1.pid")"
  [[ -n "$pid" ]] || { log "ecom $1 does not run"; return 0; }
  kill -TERM "$pid"
  wait_gone "$pid" "$(ecom_stop_limit)" || { show_tail "$LOG_DIR/ecom-$1.log"; fail "ecom $1 did not exit after SIGTERM"; }
  log "ecom $1 stopped"
}

cmd_kill_ecom() {
  load_env
  ecom_number "${1:-}"
  local pid
  pid="$(live_pid "$CLUSTER_DIR/ecom-$1.pid")"
  [[ -n "$pid" ]] || { log "ecom $1 does not run"; return 0; }
  kill -KILL "$pid"
  wait_gone "$pid" "$WAIT_LIMIT" || fail "ecom $1 (pid $pid) is still there after SIGKILL"
  log "ecom $1 killed"
}

cmd_start_ecom() {
  load_env
  ecom_number "${1:-}"
  [[ -z "$(live_pid "$CLUSTER_DIR/ecom-$1.pid")" ]] || fail "ecom $1 already runs"
  spawn_ecom "$1"
  wait_ecom_ready "$1"
  wait_haproxy_up "$1"
  log "ecom $1 ready and UP in HAProxy"
}

cmd_stop_standby() {
  load_env
  as_pg "$C_PG_BIN/pg_ctl" -D "$PG_DIR/standby" -m fast -w -t "$WAIT_LIMIT" stop >&2
}

cmd_start_standby() {
  load_env
  start_standby_server "$C_PG_BIN" "$(url_port "$C_DATABASE_READ_URL")" || exit 1
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  stop-ecom) cmd_stop_ecom "${2:-}" ;;
  start-ecom) cmd_start_ecom "${2:-}" ;;
  kill-ecom) cmd_kill_ecom "${2:-}" ;;
  stop-standby) cmd_stop_standby ;;
  start-standby) cmd_start_standby ;;
  status) load_env && cat "$ENV_FILE" ;;
  *)
    echo "usage: $0 start|stop|stop-ecom N|start-ecom N|kill-ecom N|stop-standby|start-standby|status" >&2
    exit 2
    ;;
esac
