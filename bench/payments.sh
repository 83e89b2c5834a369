#!/usr/bin/env bash
# End-to-end payment time (issue 14): a release `ecom` whose Stripe is a localstripe, and
# BENCH_SHOPPERS concurrent shoppers, each in a loop: place an order, create a Stripe
# payment, confirm its PaymentIntent at localstripe with a test card (the Stripe.js step),
# poll until localstripe's webhook has made the order `paid` (bench/payments.py). Prints
# the count and p50/p99 of create→paid and of the whole round.
# Not part of CI or the tests: the figures go into issue notes. Loopback only; bounded
# in time; stops the server, localstripe and (unless BENCH_KEEP_PG=1) PostgreSQL itself.
#
#   bench/payments.sh
#
# Uses the bench's PostgreSQL (target/bench-pg/, as bench/run.sh) with a fresh database
# `ecom_bench_pay`, and the localstripe of the tests (target/localstripe-venv).
# localstripe holds every webhook back one second before it sends it (its webhooks.py),
# so create→paid cannot be below 1 s here; what is above it is the store's and
# localstripe's work.
#
# Environment:
#   BENCH_SHOPPERS=16       concurrent shoppers
#   BENCH_PAY_SECONDS=30    how long shoppers start new rounds
#   BENCH_PAY_TIMEOUT=30    longest wait for one order to become paid (then a failure)
#   ECOM_BIN                the binary (default: cargo build --release, target/release/ecom)
#   BENCH_KEEP_PG=1         leave the bench PostgreSQL running at the end
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
shoppers=${BENCH_SHOPPERS:-16}
seconds=${BENCH_PAY_SECONDS:-30}
wait_paid=${BENCH_PAY_TIMEOUT:-30}

for tool in psql curl python3 flock timeout; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing" >&2; exit 2; }
done

source bench/lib.sh
log() { printf '[bench/payments.sh] %s\n' "$*" >&2; }
source sdk/localstripe.sh
release_binary

start_bench_pg
PGOPTIONS="-c client_min_messages=warning" psql "postgres://postgres@127.0.0.1:$pgport/postgres" -qc \
  "DROP DATABASE IF EXISTS ecom_bench_pay WITH (FORCE)"
db_url=$(bench_database ecom_bench_pay)
export DATABASE_URL=$db_url
export SECRET_KEY=${SECRET_KEY:-bench-secret-key-0123456789abcdef0123456789}
RUST_LOG=warn "$ECOM_BIN" migrate >/dev/null
admin_password=bench-admin-password-91
printf '%s\n' "$admin_password" |
  RUST_LOG=warn "$ECOM_BIN" create-admin --email bench-admin@example.com --password-stdin >/dev/null

work=target/bench-run-pay
mkdir -p "$work"
: > "$work/server.log"
start_localstripe_at "$work/localstripe.log"
port=$(free_port)
export PORT=$port HOST=127.0.0.1 DATABASE_POOL_SIZE=${DATABASE_POOL_SIZE:-32} RUST_LOG=${RUST_LOG:-warn}
export "${STRIPE_ENV[@]}"
start_server
register_stripe_webhook "http://127.0.0.1:$port"

log "$shoppers shoppers for ${seconds} s (a round may wait up to ${wait_paid} s for its webhook)"
timeout $((seconds + wait_paid + 120)) python3 bench/payments.py \
  --base "http://127.0.0.1:$port" --localstripe "$LOCALSTRIPE_URL" --key "$LOCALSTRIPE_KEY" \
  --admin-email bench-admin@example.com --admin-password "$admin_password" \
  --shoppers "$shoppers" --seconds "$seconds" --timeout "$wait_paid"
