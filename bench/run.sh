#!/usr/bin/env bash
# Load benchmarks of a release `ecom` against a PostgreSQL you name. Prints wrk's
# latency distribution for each scenario. Not part of CI: numbers go in issue notes.
#
#   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/ecom_bench bench/run.sh [scenario...]
#
# Scenarios: seed, catalog, auth, orders, report (default: all but seed).
# `seed` loads 100,000 products (ecom seed-demo) and 1,000,000 orders (load_orders.sql).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${BENCH_DATABASE_URL:?set BENCH_DATABASE_URL to a database the benchmark may fill}"
PORT=${BENCH_PORT:-8099}
BASE="http://127.0.0.1:$PORT"
DURATION=${BENCH_DURATION:-15s}
BIN=${ECOM_BIN:-target/release/ecom}
export DATABASE_URL="$BENCH_DATABASE_URL" SECRET_KEY=${SECRET_KEY:-bench-secret-key-0123456789abcdef0123456789}
export PORT DATABASE_POOL_SIZE=${DATABASE_POOL_SIZE:-32} RUST_LOG=${RUST_LOG:-warn}
scenarios=("$@")
[ ${#scenarios[@]} -eq 0 ] && scenarios=(catalog auth orders report)

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
login() {
  curl -sf -X POST "$BASE/auth/login" -H 'content-type: application/json' \
    -d "{\"email\":\"$1\",\"password\":\"$2\"}" | json "['access_token']"
}

for s in "${scenarios[@]}"; do
  if [ "$s" = seed ]; then
    "$BIN" seed-demo --products 100000 --shoppers 200
    psql "$DATABASE_URL" -q -v orders=1000000 -f bench/load_orders.sql
    printf 'bench-admin-password-91\n' | "$BIN" create-admin --email bench-admin@example.com --password-stdin
  fi
done

"$BIN" serve & server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
for _ in $(seq 100); do curl -sf "$BASE/ready" >/dev/null && break; sleep 0.1; done

scripts=$(mktemp -d)
cat > "$scripts/product.lua" <<'LUA'
request = function() return wrk.format("GET", "/products/" .. math.random(1, 100000)) end
LUA
cat > "$scripts/login.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  return wrk.format(nil, nil, nil, '{"email":"shopper' .. math.random(1, 200) .. '@demo.example","password":"demo-shopper-password"}')
end
LUA
cat > "$scripts/order_random.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  return wrk.format(nil, "/orders", nil, '{"items":[{"product_id":' .. math.random(1, 100000) .. ',"quantity":1}]}')
end
LUA
cat > "$scripts/order_hot.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"items":[{"product_id":1,"quantity":1}]}'
LUA

run() { echo; echo "### $1"; shift; wrk --latency "$@" | sed -n '/Latency Distribution/,/Requests\/sec/p'; }

for s in "${scenarios[@]}"; do
  case "$s" in
    seed) ;;
    catalog)
      run "GET /products (newest, 20 per page), 32 connections" -t2 -c32 -d"$DURATION" "$BASE/products?limit=20"
      run "GET /products?search=wireless keyboard, 32 connections" -t2 -c32 -d"$DURATION" "$BASE/products?search=wireless%20keyboard"
      run "GET /products/{random id}, 32 connections" -t2 -c32 -d"$DURATION" -s "$scripts/product.lua" "$BASE"
      ;;
    auth)
      token=$(login shopper1@demo.example demo-shopper-password)
      run "POST /auth/login (one argon2id hash), 1 connection" -t1 -c1 -d"$DURATION" -s "$scripts/login.lua" "$BASE/auth/login"
      run "POST /auth/login, 16 connections" -t2 -c16 -d"$DURATION" -s "$scripts/login.lua" "$BASE/auth/login"
      run "GET /users/me, 32 connections" -t2 -c32 -d"$DURATION" -H "Authorization: Bearer $token" "$BASE/users/me"
      ;;
    orders)
      token=$(login shopper2@demo.example demo-shopper-password)
      psql "$DATABASE_URL" -q -c "UPDATE products SET stock = 1000000 WHERE id <= 100000"
      run "POST /orders, random products, 64 connections" -t2 -c64 -d"$DURATION" -H "Authorization: Bearer $token" -s "$scripts/order_random.lua" "$BASE"
      run "POST /orders, one hot product, 64 connections" -t2 -c64 -d"$DURATION" -H "Authorization: Bearer $token" -s "$scripts/order_hot.lua" "$BASE/orders"
      ;;
    report)
      token=$(login bench-admin@example.com bench-admin-password-91)
      to=$(date -u +%F); from=$(date -u -d '364 days ago' +%F)
      echo "orders in the database: $(psql "$DATABASE_URL" -Atc 'SELECT count(*) FROM orders')"
      run "GET /admin/reports/sales over 365 days, 1 connection" -t1 -c1 -d"$DURATION" -H "Authorization: Bearer $token" "$BASE/admin/reports/sales?from=$from&to=$to&top=5"
      run "GET /admin/reports/sales over 30 days, 1 connection" -t1 -c1 -d"$DURATION" -H "Authorization: Bearer $token" "$BASE/admin/reports/sales"
      ;;
    *) echo "unknown scenario $s" >&2; exit 2 ;;
  esac
done
