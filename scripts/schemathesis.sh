#!/usr/bin/env bash
# Fuzzes a running gateway against its own OpenAPI description with the
# external fuzzer schemathesis (every check, a fixed seed, a bounded number
# of examples), with admin, agent and approver credentials. Exits non-zero
# on any finding not excluded, with its reason, in scripts/schemathesis.toml.
#   scripts/schemathesis.sh [max-examples]
# Needs python3 with venv; installs schemathesis into target/ the first time.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
examples="${1:-25}"
version=4.32.5
venv="${SCHEMATHESIS_VENV:-$root/target/schemathesis-venv}"
if ! "$venv/bin/st" --version 2>/dev/null | grep -q "$version"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "schemathesis==$version"
fi

cargo build --locked --quiet --manifest-path "$root/Cargo.toml"
purser="$root/target/debug/purser"
work="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
mkdir "$work/policies"
cp "$root"/policies/*.toml "$work/policies/"
admin="$("$purser" token)"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
# Dev mode (plain http, loopback webhook targets), every rate limit off: the
# fuzzer sends thousands of requests, many with made-up credentials.
PURSER_ADMIN_TOKEN="$admin" PURSER_RATE_LIMIT_READS=0 PURSER_RATE_LIMIT_WRITES=0 \
    PURSER_RATE_LIMIT_FAILED_AUTH=0 RUST_LOG=warn \
    "$purser" serve --dev --listen "127.0.0.1:$port" --database-url "sqlite://$work/purser.db" \
    --policies "$work/policies" >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do curl -sf "$base/readyz" >/dev/null && break; sleep 0.1; done

# Credentials and data for the fuzzer to find: the agent it pays as (with
# payments waiting for approval), an approver, a webhook endpoint and an
# event, a standing card, a signing key.
call() {
    curl -sf "$base$2" -X "$1" -H "Authorization: Bearer $3" -H 'Content-Type: application/json' \
        ${5:+-H "Idempotency-Key: $5"} -d "$4"
}
# field KEY...: the value at KEY... of the JSON on stdin.
field() { python3 -c 'import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1:]: v = v[k]
print(v)' "$@"; }
agent_id="$(call POST /v1/agents "$admin" '{"name":"fuzzed","policy":"demo"}' | field id)"
agent_key="$(call POST "/v1/agents/$agent_id/keys" "$admin" '{}' | field key)"
approver="$(call POST /v1/approvers "$admin" '{"name":"fuzzing approver"}' | field token)"
spare_agent="$(call POST /v1/agents "$admin" '{"name":"frozen by the fuzzer","policy":"demo"}' | field id)"
endpoint="$(call POST /v1/webhook-endpoints "$admin" '{"url":"http://127.0.0.1:9/hook","events":["*"]}' | field id)"
# The demo policy asks a human above 50.00 for a merchant paid the first time.
for i in 1 2 3 4 5 6; do
    payment="$(call POST /v1/payments "$agent_key" \
        "{\"amount\":\"6$i.00\",\"currency\":\"USD\",\"merchant_id\":\"shop-$i.example\",\"merchant_category\":\"cloud\",\"rail\":\"card\"}" \
        "seed-$i")"
done
approval="$(field approval id <<<"$payment")"
payment="$(field id <<<"$payment")"
call POST "/v1/agents/$agent_id/cards" "$admin" '{"card_token":"card_fuzzed_0001"}' >/dev/null
# RFC 8032's first test key: a point of the curve, as not every 32 bytes are.
call POST "/v1/agents/$agent_id/signing-keys" "$admin" \
    '{"public_key":"11qYAYKxCrfVS/7TyWQHOg7hcvPaoiMlrwIaaPcHURo="}' >/dev/null
# The events the seed payments emitted to the endpoint: one to replay.
event="$(python3 -c "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(
    'SELECT id FROM webhook_events ORDER BY id LIMIT 1').fetchone()[0])" "$work/purser.db")"

export ADMIN="$admin" AGENT="$agent_key" APPROVER="$approver" ENDPOINT="$endpoint" EVENT="$event" \
    APPROVAL="$approval" PAYMENT="$payment" SPARE_AGENT="$spare_agent"
cd "$work"
fuzz() {
    "$venv/bin/st" --config-file "$root/scripts/schemathesis.toml" run "$base/openapi.json" \
        --checks all --workers 2 --seed 1 --max-examples "$examples" --continue-on-failure --no-color \
        --suppress-health-check too_slow "$@"
}
# The operations that revoke credentials or freeze agents run last, on their
# own: run among the others, they would take away the credentials the rest of
# the run needs (the fuzzer finds their ids in the lists). One worker there:
# a key one worker just created would otherwise be revoked by another
# worker's freeze (`revoke_keys`) before the first reads it back. The check
# that a created resource can be found again is off there: revoking and
# rotating with no grace are what this run does, so a key it created may be
# gone, rightly, by the time a later step names it.
revoking='^(revokeApprover|revokeAgentKey|rotateAgentKey|freezeAgent)$'
status=0
fuzz --exclude-operation-id-regex "$revoking" || status=1
fuzz --workers 1 --exclude-checks ensure_resource_availability --include-operation-id-regex \
    '^(createApprover|revokeApprover|createAgent|createAgentKey|revokeAgentKey|rotateAgentKey|freezeAgent)$' ||
    status=1
exit "$status"
