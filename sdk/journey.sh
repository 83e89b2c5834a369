#!/usr/bin/env bash
# The generated-SDK journey: generates a Python client from the served /openapi.json with
# openapi-python-client (pinned in sdk/requirements.txt), starts a real `ecom` server on a
# fresh database and runs a shopper's and an admin's journey through that client
# (sdk/journey.py). The server's Stripe is a localstripe this script starts on a free
# loopback port (and stops at exit), which posts its events to the server's webhook.
# Exits non-zero on any failure. Settings: see sdk/lib.sh.
#
# `JOURNEY_CLUSTER=1 sdk/journey.sh` (or `sdk/journey.sh --cluster`) runs the same journey
# through HAProxy on a local cluster (deploy/local-cluster.sh: a PostgreSQL primary and its
# streaming replica, CLUSTER_REPLICAS ecom processes, default 3), stopped at exit.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[[ "${1:-}" == --cluster ]] && JOURNEY_CLUSTER=1

ensure_venv
# The journey's webhook receiver listens on loopback.
SERVER_ENV+=(WEBHOOK_ALLOW_PRIVATE=true)
start_localstripe
if [[ "${JOURNEY_CLUSTER:-}" == 1 ]]; then
  start_cluster
else
  start_server
fi
register_stripe_webhook "$BASE_URL"
"$CONTRACT_VENV/bin/openapi-python-client" generate --url "$BASE_URL/openapi.json" \
  --meta none --output-path "$WORK/client/ecom_client" >"$WORK/generate.log" 2>&1 ||
  { cat "$WORK/generate.log" >&2; exit 1; }
# openapi-python-client 0.29.1 types an operation with several request content types
# (POST /auth/login: JSON or the OAuth2 form) as `body: A | B | Unset` without importing
# `Unset` (a template bug); add the import where it is missing.
grep -rL 'import.*\bUnset\b' --include='*.py' "$WORK/client/ecom_client/api" |
  xargs -r grep -l '| Unset' |
  xargs -r sed -i 's/^from \.\.\.types import Response, UNSET$/from ...types import Response, UNSET, Unset/'
log "generated the client in $WORK/client"
# Without SMTP_URL the server writes each mail as a .eml file under {ECOM_DATA_DIR}/mail
# (./.ecom in the server's folder, or the private PostgreSQL's data folder).
MAIL_DIR="$WORK/.ecom/mail"
[[ -z "${DB_NAME:-}" ]] && MAIL_DIR="$WORK/data/mail"
# The cluster's processes share ECOM_DATA_DIR, and so the mail folder.
[[ "${JOURNEY_CLUSTER:-}" == 1 ]] && MAIL_DIR="$CLUSTER_DIR/data/mail"
PYTHONPATH="$WORK/client" MAIL_DIR="$MAIL_DIR" LOCALSTRIPE_URL="$LOCALSTRIPE_URL" LOCALSTRIPE_KEY="$LOCALSTRIPE_KEY" \
  "$CONTRACT_VENV/bin/python" "$ROOT/sdk/journey.py" \
  "$BASE_URL" "$ADMIN_EMAIL" "$ADMIN_PASSWORD"
