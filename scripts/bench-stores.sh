#!/usr/bin/env bash
# Durable decisions per second and latency on each store, and each store's
# own commit rate measured the same way (the ceiling the gateway is compared
# with). Needs PostgreSQL (PURSER_BENCH_DATABASE_URL, default the local one);
# every run uses a fresh SQLite file or a fresh PostgreSQL schema.
#   scripts/bench-stores.sh [requests]
set -euo pipefail
cd "$(dirname "$0")/.."
requests="${1:-10000}"
pg="${PURSER_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
cargo build --release --locked --quiet
purser=target/release/purser

echo "== the stores' own commit rates (one row per transaction)"
for c in 1 32; do
    printf 'sqlite      %s\n' "$($purser bench-store --database-url sqlite://bench --concurrency "$c" --commits 3000)"
done
for c in 1 32 64; do
    printf 'postgresql  %s\n' "$($purser bench-store --database-url "$pg" --concurrency "$c" --commits 5000)"
done

echo "== the gateway: durable decisions (rate limits off)"
for c in 32 128; do
    printf 'sqlite, 1 process        %s\n' "$($purser bench --requests "$requests" --concurrency "$c")"
    for r in 1 2; do
        printf 'postgresql, %s replica(s)  %s\n' "$r" \
            "$($purser bench --database-url "$pg" --replicas "$r" --requests "$requests" --concurrency "$c")"
    done
done
