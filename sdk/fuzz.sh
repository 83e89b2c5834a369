#!/usr/bin/env bash
# Schemathesis (pinned in sdk/requirements.txt) against a real `ecom` server's
# /openapi.json, once signed in as a shopper and once as an administrator: every
# operation, examples + coverage + fuzzing phases, bounded by FUZZ_MAX_EXAMPLES per
# operation and FUZZ_MAX_TIME seconds per identity. Fails on any 5xx, any response that
# does not match its documented schema, status code, content type or headers, and any
# request the document forbids that the server accepts. Settings: see sdk/lib.sh.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

FUZZ_MAX_EXAMPLES="${FUZZ_MAX_EXAMPLES:-25}"
FUZZ_MAX_TIME="${FUZZ_MAX_TIME:-60}"
FUZZ_SEED="${FUZZ_SEED:-}"
CHECKS="not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance,negative_data_rejection"

ensure_venv
# A webhook secret (and no Stripe key: `stripe` payments would reach a real Stripe): the
# fuzzed webhook requests go through the signature check, not the "no secret" refusal.
SERVER_ENV+=(STRIPE_WEBHOOK_SECRET="$STRIPE_WEBHOOK_SECRET")
start_server

# Some data so that ids 1..n exist: products, a category, a shopper with an order.
ADMIN_TOKEN="$(token_for "$ADMIN_EMAIL" "$ADMIN_PASSWORD")"
for i in 1 2 3; do
  curl -fsS -o /dev/null -X POST "$BASE_URL/products" -H "authorization: Bearer $ADMIN_TOKEN" \
    -H 'content-type: application/json' \
    -d "{\"name\":\"Fuzz product $i\",\"description\":\"seed\",\"price\":\"1$i.50\",\"stock\":500,\"category_name\":\"Fuzz\"}"
done
SHOPPER_EMAIL="fuzz-shopper@example.com"
SHOPPER_PASSWORD="amber-willow-signal-93"
curl -fsS -o /dev/null -X POST "$BASE_URL/auth/register" -H 'content-type: application/json' \
  -d "{\"email\":\"$SHOPPER_EMAIL\",\"password\":\"$SHOPPER_PASSWORD\"}"
SHOPPER_TOKEN="$(token_for "$SHOPPER_EMAIL" "$SHOPPER_PASSWORD")"
curl -fsS -o /dev/null -X POST "$BASE_URL/orders" -H "authorization: Bearer $SHOPPER_TOKEN" \
  -H 'content-type: application/json' -d '{"items":[{"product_id":1,"quantity":1}]}'

fuzz() {
  local who="$1" token="$2"
  log "schemathesis as the $who"
  local -a seed=()
  [[ -n "$FUZZ_SEED" ]] && seed=(--seed "$FUZZ_SEED")
  (cd "$WORK" && "$CONTRACT_VENV/bin/schemathesis" --config-file "$ROOT/sdk/schemathesis.toml" run "$BASE_URL/openapi.json" \
    --header "Authorization: Bearer $token" \
    --checks "$CHECKS" \
    --phases examples,coverage,fuzzing \
    --max-examples "$FUZZ_MAX_EXAMPLES" \
    --max-time "$FUZZ_MAX_TIME" \
    --generation-database none \
    --suppress-health-check all \
    "${seed[@]}" --no-color)
}

# The shopper first: the administrator's run may ban or demote users.
fuzz shopper "$SHOPPER_TOKEN"
fuzz administrator "$ADMIN_TOKEN"
log "schemathesis: no failures as the shopper nor as the administrator"
