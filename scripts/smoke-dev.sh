#!/usr/bin/env bash
# Starts `purser serve --dev` as a newcomer would (fresh directory, default
# database file), pays with the printed demo key, and checks the payment
# reaches `succeeded`. Used by CI; handy after changing the dev banner.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
cargo build --quiet --manifest-path "$root/Cargo.toml"
cp -r "$root/policies" "$work/"
cd "$work"
"$root/target/debug/purser" serve --dev --listen 127.0.0.1:0 >out.log 2>&1 &
pid=$!
for _ in $(seq 1 100); do grep -q "purser listening" out.log && break; sleep 0.1; done
base=$(grep -o 'http://127.0.0.1:[0-9]*' out.log | head -1)
key=$(grep -o 'psr_agent_[A-Za-z0-9_-]*' out.log | head -1)
[ -n "$base" ] && [ -n "$key" ] || { cat out.log; echo "dev banner incomplete" >&2; exit 1; }
curl -sf "$base/readyz" >/dev/null
id=$(curl -sf "$base/v1/payments" -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
    -H 'Idempotency-Key: smoke-1' \
    -d '{"amount":"42.50","currency":"USD","merchant_id":"aws.amazon.com","merchant_category":"cloud","rail":"card"}' \
    | python3 -c 'import json,sys; p=json.load(sys.stdin); assert p["status"]=="approved", p; print(p["id"])')
for _ in $(seq 1 50); do
    status=$(curl -sf "$base/v1/payments/$id" -H "Authorization: Bearer $key" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
    [ "$status" = succeeded ] && { echo "dev smoke test: payment $id succeeded"; exit 0; }
    sleep 0.1
done
echo "payment $id stuck in $status" >&2
exit 1
