#!/bin/sh
# The README's walk-through, step by step, against a running handoff server: two applications,
# a KYC session recorded, read, reviewed, listed, shared and imported, then deleted. Each step
# prints the request, the status and the answer, and the script stops at the first status that
# is not the expected one (exit 1).
#
#   sh scripts/walkthrough.sh
#
# Settings (environment): BASE, the server (default http://127.0.0.1:8080); HANDOFF, the
# `handoff` command (default `handoff`, on PATH after `cargo install --path crates/app`), which
# creates the applications in the database DATABASE_URL names: the server's, or the script stops
# after step 1 saying so. Needs curl.
set -eu

BASE=${BASE:-http://127.0.0.1:8080}
HANDOFF=${HANDOFF:-handoff}
FIXTURES=${FIXTURES:-$(dirname "$0")/../fixtures}
ANSWER=$(mktemp)
SAID=$(mktemp)
trap 'rm -f "$ANSWER" "$SAID"' EXIT

# field NAME: the first string member NAME of the JSON on stdin.
field() {
  grep -o '"'"$1"'": *"[^"]*"' | head -n 1 | sed 's/.*: *"\(.*\)"$/\1/'
}

# call STEP EXPECTED METHOD PATH KEY [BODY]: one request; BODY may be @FILE. The answer is left
# in $ANSWER.
call() {
  step=$1 expected=$2 method=$3 path=$4 key=$5
  shift 5
  if [ $# -gt 0 ]; then
    status=$(curl -sS -o "$ANSWER" -w '%{http_code}' -X "$method" -H "x-api-key: $key" \
      -H 'content-type: application/json' --data-binary "$1" "$BASE$path")
  else
    status=$(curl -sS -o "$ANSWER" -w '%{http_code}' -X "$method" -H "x-api-key: $key" "$BASE$path")
  fi
  printf '%s. %s %s -> %s %.160s\n' "$step" "$method" "$path" "$status" "$(cat "$ANSWER")"
  if [ "$status" != "$expected" ]; then
    echo "step $step: expected $expected, got $status" >&2
    exit 1
  fi
}

# 1. The operator creates an application; its API key is printed once, never stored in clear.
if ! ACME=$($HANDOFF applications create --name Acme 2>"$SAID"); then
  cat "$SAID" >&2
  exit 1
fi
echo "1. handoff applications create --name Acme -> $ACME"
KEY=$(echo "$ACME" | field api_key)
# The command must have written into the server's database, or nothing below can work.
status=$(curl -sS -o /dev/null -w '%{http_code}' -H "x-api-key: $KEY" "$BASE/v3/workflows/")
if [ "$status" = 401 ] || [ "$status" = 403 ]; then
  echo "stopped: the server at $BASE does not know the key just made in $(sed -n 's/^database: //p' "$SAID"): \
the server and \`$HANDOFF\` open different databases; run this script with the server's DATABASE_URL" >&2
  exit 1
fi

# 2. A KYC workflow with the features the example results cover (a KYB_* feature would make it
#    a business workflow).
call 2 201 POST /v3/workflows/ "$KEY" '{"workflow_label": "KYC", "features": [
  {"feature": "OCR"}, {"feature": "LIVENESS"}, {"feature": "FACE_MATCH"},
  {"feature": "PROOF_OF_ADDRESS"}, {"feature": "PHONE_VERIFICATION"},
  {"feature": "EMAIL_VERIFICATION"}, {"feature": "AML"}, {"feature": "IP_ANALYSIS"},
  {"feature": "DATABASE_VALIDATION"}]}'
WF=$(field workflow_id < "$ANSWER")

# 3. A session for one of your users; a new vendor_data creates its User (ACTIVE).
call 3 201 POST /v3/session/ "$KEY" "{\"workflow_id\": \"$WF\", \"vendor_data\": \"user-ana-001\"}"
S=$(field session_id < "$ANSWER")

# 4. The verification engine records its results.
call 4 200 PUT "/v3/session/$S/decision/" "$KEY" "@$FIXTURES/record-results-user.json"

# 5. The decision, in the V3 shape (arrays per feature) and the V2 shape (one object each).
call 5 200 GET "/v3/session/$S/decision/" "$KEY"
call 5 200 GET "/v2/session/$S/decision/" "$KEY"

# 6. A reviewer changes the decision; the review shows in the decision's "reviews".
call 6 200 PATCH "/v3/session/$S/update-status/" "$KEY" \
  '{"new_status": "Declined", "comment": "Expired document."}'

# 7. Lists and entities.
call 7 200 GET "/v3/sessions/?status=Declined&limit=10" "$KEY"
call 7 200 GET /v3/users/user-ana-001/ "$KEY"

# 8. A second application, the receiver, with a workflow of the same kind.
BETA=$($HANDOFF applications create --name Beta)
echo "8. handoff applications create --name Beta -> $BETA"
KEY2=$(echo "$BETA" | field api_key)
BETA_ID=$(echo "$BETA" | field application_id)
call 8 201 POST /v3/workflows/ "$KEY2" '{"features": [{"feature": "OCR"}, {"feature": "LIVENESS"}]}'
WF2=$(field workflow_id < "$ANSWER")

# 9. The holder shares its finished session (Approved, Declined or In Review) with Beta.
call 9 200 POST "/v3/session/$S/share/" "$KEY" \
  "{\"for_application_id\": \"$BETA_ID\", \"ttl_in_seconds\": 3600}"
TOKEN=$(field share_token < "$ANSWER")

# 10. Beta redeems the token once, trusting the decision: a clone in Beta's tenant, Declined.
call 10 201 POST /v3/session/import-shared/ "$KEY2" \
  "{\"share_token\": \"$TOKEN\", \"workflow_id\": \"$WF2\", \"trust_review\": true}"
CLONE=$(field session_id < "$ANSWER")
grep -q '"status": *"Declined"' "$ANSWER" || { echo "step 10: the clone is not Declined" >&2; exit 1; }

# 11. Beta reads its clone; a second import answers 403 already_imported with the clone's id.
call 11 200 GET "/v3/session/$CLONE/decision/" "$KEY2"
call 11 403 POST /v3/session/import-shared/ "$KEY2" \
  "{\"share_token\": \"$TOKEN\", \"workflow_id\": \"$WF2\"}"

# 12. Acme deletes its session and every related row; Beta's clone stays.
call 12 204 DELETE "/v3/session/$S/delete/" "$KEY"
call 12 200 GET "/v3/session/$CLONE/decision/" "$KEY2"
echo "walk-through done"
