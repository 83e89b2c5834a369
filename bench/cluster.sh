#!/usr/bin/env bash
# What a second (and a third) replica adds or costs on this machine (issue 16): a local
# cluster (deploy/local-cluster.sh) of 1, then 2, then 3 release `ecom` processes behind
# HAProxy, on a PostgreSQL primary and its streaming replica (anonymous catalog reads go
# there), and wrk through HAProxy on two catalog reads: a product page at random and the
# first listing page. With one replica it also measures that replica directly, which is
# what HAProxy itself costs. Prints req/s and latencies per topology.
# Not part of CI: the figures go into issue notes. Loopback only; bounded in time; the
# cluster is stopped at exit whatever happens.
#
#   bench/cluster.sh
#   BENCH_TOPOLOGIES="1 2" BENCH_DURATION=10s bench/cluster.sh
#
# Environment:
#   BENCH_TOPOLOGIES="1 2 3"  numbers of ecom processes, one cluster each
#   BENCH_DURATION=15s        wrk -d per scenario (after a 2 s warm-up that is not measured)
#   BENCH_CONNECTIONS=64      wrk -c
#   BENCH_PRODUCTS=10000      products seeded with `ecom seed-demo` in each cluster
#   ECOM_BIN                  the binary (default: cargo build --release, target/release/ecom)
#
# On a 2-core machine wrk, HAProxy, every ecom process and both PostgreSQL servers share
# the same two cores: expect no throughput gain from more processes here, only their cost.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
topologies=${BENCH_TOPOLOGIES:-1 2 3}
duration=${BENCH_DURATION:-15s}
connections=${BENCH_CONNECTIONS:-64}
products=${BENCH_PRODUCTS:-10000}

for tool in wrk psql curl python3; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install wrk postgresql-client)" >&2; exit 2; }
done

source bench/lib.sh
release_binary
ECOM_BIN=$(readlink -f "$ECOM_BIN")

work=$root/target/bench-cluster
mkdir -p "$work"
chmod o+x "$work" 2>/dev/null || true
export CLUSTER_DIR=$work/cluster
stop_cluster() { deploy/local-cluster.sh stop >/dev/null 2>&1 || true; }
# bench/lib.sh's cleanup (a bench server, the bench PostgreSQL) has nothing to do here.
trap 'stop_cluster; cleanup' EXIT

# A product page at random, each wrk thread with its own seed.
cat >"$work/product.lua" <<EOF
threads = 0
function setup(thread) threads = threads + 1; thread:set("tid", threads) end
function init(args) math.randomseed(os.time() * 1000 + (tid or 0)) end
request = function() return wrk.format(nil, "/products/" .. math.random(PRODUCT_LOW, PRODUCT_HIGH)) end
EOF
printf 'request = function() return wrk.format(nil, "/products?limit=20") end\n' >"$work/list.lua"

# wrk's figures as "req/s p50 p99 non-2xx socket-errors".
measure() {
  local url="$1" script="$2"
  wrk -t2 -c"$connections" -d2s -s "$script" "$url" >/dev/null 2>&1 || true
  wrk --latency --timeout 10s -t2 -c"$connections" -d"$duration" -s "$script" "$url" 2>&1 | awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /Requests\/sec:/ { rps = $2 }
    /^ +50%/ { p50 = ms($2) }
    /^ +99%/ { p99 = ms($2) }
    /Non-2xx or 3xx responses:/ { bad = $5 }
    /Socket errors:/ { sock = $3 $4 $5 $6 $7 $8 $9 }
    END { printf "%s %.1f %.1f %d %s\n", rps, p50, p99, bad, (sock == "" ? "-" : sock) }'
}

# Every ecom process has found the streaming replica up (it caught up after the seeding).
wait_replica_up() {
  local n url
  for n in $(seq 1 "$1"); do
    url=$(sed -n "s/^ECOM_${n}_URL=//p" "$CLUSTER_DIR/cluster.env")
    for _ in $(seq 1 300); do
      curl -fsS "$url/ready" 2>/dev/null | grep -q '"replica":{"state":"up"' && continue 2
      sleep 0.2
    done
    echo "bench: ecom $n does not see the read replica up: $(curl -sS "$url/ready")" >&2
    exit 1
  done
}

# Other work on the machine skews every figure: the load average is printed with them.
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
results=()
for replicas in $topologies; do
  echo "bench: cluster of $replicas ecom process(es)" >&2
  started=$(CLUSTER_REPLICAS=$replicas RUST_LOG=warn deploy/local-cluster.sh start)
  url=$(sed -n 's/^url: //p' <<<"$started")
  database=$(sed -n 's/^database: //p' <<<"$started")
  echo "bench: seed-demo --products $products" >&2
  DATABASE_URL=$database SECRET_KEY=bench-secret-key-0123456789abcdef0123456789 RUST_LOG=warn \
    "$ECOM_BIN" seed-demo --products "$products" --shoppers 10 >/dev/null
  read -r low high < <(psql "$database" -Atc 'SELECT min(id), max(id) FROM products' | tr '|' ' ')
  sed "s/PRODUCT_LOW/$low/; s/PRODUCT_HIGH/$high/" "$work/product.lua" >"$work/product-$replicas.lua"
  wait_replica_up "$replicas"
  targets=("haproxy,$replicas,$url")
  if [ "$replicas" = 1 ]; then
    targets+=("direct,1,$(sed -n 's/^ECOM_1_URL=//p' "$CLUSTER_DIR/cluster.env")")
  fi
  for target in "${targets[@]}"; do
    IFS=, read -r via n base <<<"$target"
    for scenario in product list; do
      script=$work/$scenario.lua
      [ "$scenario" = product ] && script=$work/product-$replicas.lua
      echo "bench: $scenario, $n process(es), $via, wrk -c$connections -d$duration" >&2
      results+=("$n $via $scenario $(measure "$base" "$script")")
    done
  done
  stop_cluster
done

echo
echo "catalog reads through HAProxy, wrk -t2 -c$connections -d$duration, $products products, $(nproc) cores"
echo "load average before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-10s %-8s %-9s %10s %9s %9s %8s %s\n' processes via scenario req/s p50_ms p99_ms non-2xx socket_errors
for row in "${results[@]}"; do
  # shellcheck disable=SC2086
  printf '%-10s %-8s %-9s %10s %9s %9s %8s %s\n' $row
done
