#!/bin/sh
# Two deployments sharing, step by step: a bank's handoff and a fintech's, each running on its
# own database, become partners; the bank shares a finished KYC session with the fintech's
# application, and the fintech imports it with the same two calls as within one deployment.
# Each step prints the request, the status and the answer, and the script stops at the first
# status that is not the expected one (exit 1).
#
#   sh scripts/federation.sh
#
# Settings (environment): BANK and FINTECH, the two servers' URLs, each its HANDOFF_PUBLIC_URL
# (default http://127.0.0.1:8081 and :8082); BANK_DATABASE_URL and FINTECH_DATABASE_URL, their
# databases, for the `handoff` commands (HANDOFF, default `handoff`). Both servers run with
# HANDOFF_TOKEN_ALG=EdDSA, and, on loopback, HANDOFF_FEDERATION_ALLOW_PRIVATE=true, which the
# `partners add` commands need too. Needs curl.
set -eu

BANK=${BANK:-http://127.0.0.1:8081}
FINTECH=${FINTECH:-http://127.0.0.1:8082}
HANDOFF=${HANDOFF:-handoff}
FIXTURES=${FIXTURES:-$(dirname "$0")/../fixtures}
ANSWER=$(mktemp)
trap 'rm -f "$ANSWER"' EXIT

# field NAME: the first string member NAME of the JSON on stdin.
field() {
  grep -o '"'"$1"'": *"[^"]*"' | head -n 1 | sed 's/.*: *"\(.*\)"$/\1/'
}

# call STEP EXPECTED METHOD URL KEY [BODY]: one request; BODY may be @FILE.
call() {
  step=$1 expected=$2 method=$3 url=$4 key=$5
  shift 5
  status=$(curl -sS -o "$ANSWER" -w '%{http_code}' -X "$method" -H "x-api-key: $key" \
    -H 'content-type: application/json' --data-binary "${1:-}" "$url")
  printf '%s. %s %s -> %s %.160s\n' "$step" "$method" "$url" "$status" "$(cat "$ANSWER")"
  if [ "$status" != "$expected" ]; then
    echo "step $step: expected $expected, got $status" >&2
    exit 1
  fi
}

bank() { DATABASE_URL=$BANK_DATABASE_URL $HANDOFF "$@" 2>/dev/null; }
fintech() { DATABASE_URL=$FINTECH_DATABASE_URL $HANDOFF "$@" 2>/dev/null; }

# 1. Each operator creates its application.
SOURCE=$(bank applications create --name Bank)
RECEIVER=$(fintech applications create --name Fintech)
echo "1. handoff applications create -> $SOURCE / $RECEIVER"
BANK_KEY=$(echo "$SOURCE" | field api_key)
FINTECH_KEY=$(echo "$RECEIVER" | field api_key)
FINTECH_APP=$(echo "$RECEIVER" | field application_id)

# 2. They become partners: the bank may share with the fintech's application, the fintech
#    imports the bank's tokens. Each command fetches the other's published keys.
echo "2. $(bank partners add --name fintech --url "$FINTECH" --application "$FINTECH_APP")"
echo "2. $(fintech partners add --name bank --url "$BANK")"

# 3. At the bank: a KYC workflow, a session, the verification engine's results.
call 3 201 POST "$BANK/v3/workflows/" "$BANK_KEY" '{"workflow_label": "KYC", "features": [
  {"feature": "OCR"}, {"feature": "LIVENESS"}, {"feature": "FACE_MATCH"},
  {"feature": "PROOF_OF_ADDRESS"}, {"feature": "PHONE_VERIFICATION"},
  {"feature": "EMAIL_VERIFICATION"}, {"feature": "AML"}, {"feature": "IP_ANALYSIS"},
  {"feature": "DATABASE_VALIDATION"}]}'
WF=$(field workflow_id < "$ANSWER")
call 3 201 POST "$BANK/v3/session/" "$BANK_KEY" "{\"workflow_id\": \"$WF\", \"vendor_data\": \"user-ana-001\"}"
S=$(field session_id < "$ANSWER")
call 3 200 PUT "$BANK/v3/session/$S/decision/" "$BANK_KEY" "@$FIXTURES/record-results-user.json"

# 4. The bank shares it with the fintech's application, as with any application.
call 4 200 POST "$BANK/v3/session/$S/share/" "$BANK_KEY" "{\"for_application_id\": \"$FINTECH_APP\"}"
TOKEN=$(field share_token < "$ANSWER")

# 5. The fintech imports it, trusting the bank's decision: its server fetches the session from
#    the bank's in one authenticated exchange.
call 5 201 POST "$FINTECH/v3/workflows/" "$FINTECH_KEY" '{"workflow_label": "KYC", "features": [{"feature": "OCR"}]}'
WF2=$(field workflow_id < "$ANSWER")
call 5 201 POST "$FINTECH/v3/session/import-shared/" "$FINTECH_KEY" \
  "{\"share_token\": \"$TOKEN\", \"workflow_id\": \"$WF2\", \"trust_review\": true}"
C=$(field session_id < "$ANSWER")

# 6. The clone is the fintech's; the token is spent; the bank's ledger shows it redeemed.
call 6 200 GET "$FINTECH/v3/session/$C/decision/" "$FINTECH_KEY"
call 6 403 POST "$FINTECH/v3/session/import-shared/" "$FINTECH_KEY" \
  "{\"share_token\": \"$TOKEN\", \"workflow_id\": \"$WF2\"}"
call 6 200 GET "$BANK/v3/session/$S/shares/" "$BANK_KEY"
echo "6. the bank's ledger: the token is $(field state < "$ANSWER")"
echo "federation done"
