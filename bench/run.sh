#!/usr/bin/env bash
# Load benchmark of a release `ecom` against PostgreSQL's own ceiling (issue 12).
# Not part of CI: the figures go into issue notes, measured on a quiet machine.
#
#   bench/run.sh [--products 10000|100000|1000000] [scenario...]
#
# Scenarios (default: all): search list list_deep product report_30 report_365 order
# login register. For each one it captures the SQL the server sends for a few
# requests (from the PostgreSQL log), turns it into a pgbench script, runs wrk (after
# a 2 s warm-up that is not measured) and pgbench at the same concurrency and prints
# req/s as a percentage of pgbench's tps.
#
# Needs only PostgreSQL's binaries, wrk, pgbench, curl and python3. Unless
# BENCH_DATABASE_URL is given, it runs its own PostgreSQL in target/bench-pg/ on a
# free loopback port, logging every statement with its parameters; each catalog
# size has its own database there, loaded once and reused by later runs.
#
# Environment:
#   BENCH_DURATION=10s    wrk -d and pgbench -T
#   BENCH_CONNECTIONS=64  wrk -c and pgbench -c
#   BENCH_ROUNDS=1        rounds per scenario; the table shows medians
#   BENCH_ORDERS=1000000  orders loaded (bench/load_orders.sql)
#   BENCH_DATABASE_URL    use this (migrated or empty) database instead of our own cluster;
#                         capture then needs BENCH_PG_LOG: that server's statement log
#   ECOM_BIN              the binary (default: cargo build --release, target/release/ecom)
#   BENCH_KEEP_PG=1       leave the bench PostgreSQL running at the end
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

products=10000
scenarios=()
while [ $# -gt 0 ]; do
  case "$1" in
    --products) products=$2; shift 2 ;;
    --products=*) products=${1#*=}; shift ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) scenarios+=("$1"); shift ;;
  esac
done
case "$products" in 10000|100000|1000000) ;; *) echo "--products must be 10000, 100000 or 1000000" >&2; exit 2 ;; esac
orders=${BENCH_ORDERS:-1000000}
export BENCH_DURATION=${BENCH_DURATION:-10s} BENCH_CONNECTIONS=${BENCH_CONNECTIONS:-64}
export BENCH_ROUNDS=${BENCH_ROUNDS:-1} BENCH_PRODUCTS=$products

for tool in wrk pgbench psql curl python3; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install wrk postgresql-client)" >&2; exit 2; }
done

source bench/lib.sh
release_binary

if [ -n "${BENCH_DATABASE_URL:-}" ]; then
  db_url=$BENCH_DATABASE_URL
  pglog=${BENCH_PG_LOG:-}
else
  start_bench_pg
  db_url=$(bench_database "ecom_bench_$products")
fi
export DATABASE_URL=$db_url SECRET_KEY=${SECRET_KEY:-bench-secret-key-0123456789abcdef0123456789}

# Loading, once per database: seed-demo, the orders, the admin. Each step checks
# what is already there, so an interrupted load resumes where it stopped.
have() { psql "$DATABASE_URL" -Atc "$1" 2>/dev/null || echo 0; }
if [ "$(have 'SELECT count(*) FROM products')" -lt "$products" ] 2>/dev/null; then
  if [ "$(have 'SELECT count(*) FROM products')" != 0 ]; then
    echo "bench: $DATABASE_URL holds a partial catalog; drop it and run again" >&2; exit 2
  fi
  echo "bench: seed-demo --products $products"
  RUST_LOG=warn "$ECOM_BIN" seed-demo --products "$products" --shoppers 200
fi
if [ "$(have 'SELECT count(*) FROM orders')" -lt "$orders" ]; then
  echo "bench: loading $orders orders"
  PGOPTIONS="-c client_min_messages=warning" psql "$DATABASE_URL" -q -c "TRUNCATE orders, order_rollup_days CASCADE"
  psql "$DATABASE_URL" -q -o /dev/null -v orders="$orders" -v products="$products" -f bench/load_orders.sql
fi
# Orders placed by earlier `order` scenarios (ids past the loaded ones) go, so that every
# run's reports read the same 1,000,000 orders (today's orders are always read live).
# Their days' rollups go with them (rebuilt by the next report).
PGOPTIONS="-c client_min_messages=warning" psql "$DATABASE_URL" -q \
  -c "DELETE FROM order_rollup_days WHERE day IN (SELECT DISTINCT (created_at AT TIME ZONE 'UTC')::date FROM orders WHERE id > $orders)" \
  -c "DELETE FROM orders WHERE id > $orders"
# The loaded orders are history: none of their pending ones is waiting for a payment, so
# the expiry task must not cancel them during a run (which would also change the reports).
# Migrated first, so that a new binary's migration cannot give them a due time afterwards.
RUST_LOG=warn "$ECOM_BIN" migrate >/dev/null
PGOPTIONS="-c client_min_messages=warning" psql "$DATABASE_URL" -q -c "DO \$\$ BEGIN
  IF EXISTS (SELECT 1 FROM information_schema.columns
             WHERE table_name = 'orders' AND column_name = 'payment_due_at') THEN
    UPDATE orders SET payment_due_at = NULL WHERE payment_due_at IS NOT NULL AND id <= $orders;
  END IF; END \$\$"
if [ "$(have "SELECT count(*) FROM users WHERE email = 'bench-admin@example.com' AND role = 'admin'")" != 1 ]; then
  printf 'bench-admin-password-91\n' | RUST_LOG=warn "$ECOM_BIN" create-admin --email bench-admin@example.com --password-stdin
fi
psql "$DATABASE_URL" -qc 'VACUUM ANALYZE'

# Statement logging is switched on only while the SQL is captured: logging every
# statement slows PostgreSQL down, and it must not weigh on either side of the ratio.
statement_log() {  # on|off
  [ -n "${BENCH_DATABASE_URL:-}" ] && return 0   # someone else's server: theirs to configure
  local v=-1; [ "$1" = on ] && v=0
  psql "$DATABASE_URL" -qAt -c "ALTER SYSTEM SET log_min_duration_statement = $v" -c 'SELECT pg_reload_conf()' >/dev/null
  sleep 0.5   # the postmaster rereads its configuration asynchronously
}

# The server as it ships: its default pool (16) unless DATABASE_POOL_SIZE is given. A pool
# as large as the load (64) was tried: on 2 cores it kept throughput and made every tail
# longer (listing p99 27 ms against 21, checkout 162 ms against 131), 64 backends taking
# turns on the cores where 16 kept them busy.
port=$(free_port)
export PORT=$port HOST=127.0.0.1 RUST_LOG=${RUST_LOG:-warn}
# Every login comes from 127.0.0.1: the brute-force throttle would answer most with 429.
export LOGIN_MAX_FAILURES_PER_EMAIL=1000000 LOGIN_MAX_FAILURES_PER_ADDRESS=1000000 LOGIN_THROTTLE_WINDOW_SECONDS=1
psql "$DATABASE_URL" -qc 'DELETE FROM login_throttle'
work=target/bench-run
mkdir -p "$work"
driver() {
  python3 bench/bench.py "$1" --base "http://127.0.0.1:$port" --database-url "$DATABASE_URL" \
    --pg-log "${pglog:-}" --server-pid "$server" --work-dir "$work" "${scenarios[@]}"
}
: > "$work/server.log"

# 1. Capture: a few requests per scenario against a server whose every connection is
#    new (so it logs), each turned into a pgbench script in target/bench-run/.
statement_log on
start_server
driver capture
stop_server
statement_log off

# 2. Measure: wrk and pgbench per scenario, on a fresh server (fresh pool, no logging).
#    Every wrk and pgbench run is bounded by -d/-T; the driver kills stragglers.
start_server
driver measure
