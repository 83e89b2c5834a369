# Shared by bench/run.sh and bench/payments.sh (sourced from the repository root, after
# `set -euo pipefail`): the release binary, the bench's own PostgreSQL in target/bench-pg/
# on a free loopback port, the server, and stopping what was started on the way out.

root=${root:-$PWD}

# The release binary: build it unless ECOM_BIN names one (cargo does nothing when fresh).
release_binary() {
  if [ -z "${ECOM_BIN:-}" ]; then
    cargo build --release --quiet -p ecom-api --bin ecom
    ECOM_BIN=${CARGO_TARGET_DIR:-target}/release/ecom
  fi
  [ -x "$ECOM_BIN" ] || { echo "bench: no binary at $ECOM_BIN" >&2; exit 2; }
  case "$ECOM_BIN" in */debug/*) echo "bench: WARNING: $ECOM_BIN is a debug build, figures are meaningless" >&2 ;; esac
}

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$pg_bin" ] || pg_bin=$(dirname "$(command -v initdb || command -v pg_ctl || echo /nonexistent/x)")
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Everything the run starts is stopped on the way out, whatever the way out is.
server=""
pg_started=""
cleanup() {
  trap '' INT TERM   # a second Ctrl-C must not leave PostgreSQL running
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  if [ -n "$pg_started" ] && [ -z "${BENCH_KEEP_PG:-}" ]; then
    as_pg "$pg_bin/pg_ctl" -D "$pgdata" -m fast -w stop >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# PostgreSQL refuses to run as root: as root, run its binaries as `postgres`.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# The bench cluster in target/bench-pg/, made once, started unless it runs (left by
# BENCH_KEEP_PG=1). Sets pgdata, pglog, pgport.
start_bench_pg() {
  local benchdir=$root/target/bench-pg
  pgdata=$benchdir/data
  pglog=$benchdir/postgres.log
  mkdir -p "$benchdir"
  [ "$(id -u)" = 0 ] && chown postgres: "$benchdir"
  if [ ! -s "$pgdata/PG_VERSION" ]; then
    echo "bench: initdb $pgdata"
    as_pg "$pg_bin/initdb" -D "$pgdata" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  if as_pg "$pg_bin/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then
    # Left running by BENCH_KEEP_PG=1: reuse it, on the port it is on.
    pgport=$(sed -n 4p "$pgdata/postmaster.pid")
  else
    pgport=$(free_port)
    # Every statement is logged with its bound parameters: that log is where the
    # pgbench scripts come from. Logging costs both sides the same (the server's
    # statements during wrk and pgbench's), so the ratio stays fair.
    : > "$pglog.new" && chown postgres: "$pglog.new" 2>/dev/null; mv -f "$pglog.new" "$pglog"
    as_pg "$pg_bin/pg_ctl" -D "$pgdata" -l "$pglog" -w -t 60 start -o "\
      -c listen_addresses=127.0.0.1 -c port=$pgport -c unix_socket_directories='' \
      -c max_connections=300 -c shared_buffers=512MB -c work_mem=16MB \
      -c maintenance_work_mem=256MB -c synchronous_commit=on -c fsync=on \
      -c log_destination=stderr -c logging_collector=off -c log_parameter_max_length=-1 \
      -c log_line_prefix='%m [%p] <%a> ' -c log_checkpoints=off -c log_autovacuum_min_duration=-1" >/dev/null
    pg_started=1
  fi
}

# The URL of database $1 in the bench cluster, created when missing.
bench_database() {
  local admin="postgres://postgres@127.0.0.1:$pgport/postgres"
  local found
  found=$(psql "$admin" -Atc "SELECT 1 FROM pg_database WHERE datname = '$1'") || return 1
  if [ -z "$found" ]; then
    psql "$admin" -qc "CREATE DATABASE $1" || return 1
  fi
  echo "postgres://postgres@127.0.0.1:$pgport/$1"
}

# `ecom serve` with the environment's settings (PORT among them) on $port, its output
# appended to $work/server.log; returns once it is ready.
start_server() {
  "$ECOM_BIN" serve >> "$work/server.log" 2>&1 &
  server=$!
  for _ in $(seq 300); do curl -sf "http://127.0.0.1:$port/ready" >/dev/null && return 0; sleep 0.1; done
  echo "bench: the server did not start:" >&2; tail -20 "$work/server.log" >&2; exit 1
}
stop_server() { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; server=""; }
