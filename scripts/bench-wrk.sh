#!/usr/bin/env bash
# Durable decisions/s with a light load generator in its own process: starts
# `purser serve` (release build, fresh SQLite file, synchronous=FULL) with
# the bench policy, creates an agent and key, runs wrk (32 connections, one
# thread) with a fresh Idempotency-Key per request, and checks that every
# request created a payment (no replays counted).
#   scripts/bench-wrk.sh [connections] [seconds]
set -euo pipefail
conns="${1:-32}"; secs="${2:-10}"
root="$(cd "$(dirname "$0")/.." && pwd)"
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
cargo build --release --quiet --manifest-path "$root/Cargo.toml"
work="$(mktemp -d)"; trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir "$work/policies"; cp "$root/benches/policies/bench.toml" "$work/policies/"
token="$("$root/target/release/purser" token)"
port=18199
# Rate limits off (0), as for any benchmark: one key sends every request.
PURSER_RATE_LIMIT_READS=0 PURSER_RATE_LIMIT_WRITES=0 PURSER_ADMIN_TOKEN="$token" PURSER_ENCRYPTION_KEY="$("$root/target/release/purser" token)" RUST_LOG=warn "$root/target/release/purser" serve --listen "127.0.0.1:$port" \
    --database-url "sqlite://$work/bench.db" --policies "$work/policies" >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
api() { curl -sf "http://127.0.0.1:$port$1" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d "$2"; }
agent=$(api /v1/agents '{"name":"bench","policy":"bench","trust_level":"custom"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
export PURSER_BENCH_KEY=$(api "/v1/agents/$agent/keys" '{}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
count() { python3 -c "import sqlite3; print(sqlite3.connect('$work/bench.db').execute('select count(*) from payments').fetchone()[0])"; }
before=$(count)
wrk -t1 -c"$conns" -d"${secs}s" --latency -s "$root/scripts/wrk-pay.lua" "http://127.0.0.1:$port/v1/payments" | tee "$work/wrk.txt"
created=$(( $(count) - before ))
requests=$(grep -o '^ *[0-9]* requests in' "$work/wrk.txt" | grep -o '[0-9]*')
echo "payments created: $created for $requests requests"
[ "$created" -ge "$requests" ] || { echo "some requests did not create a payment" >&2; exit 1; }
