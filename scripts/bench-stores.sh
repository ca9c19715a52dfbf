#!/usr/bin/env bash
# The write path against its physical ceilings, in one run on one machine:
# PostgreSQL's own commit rate (pgbench, one small INSERT per transaction),
# SQLite's (purser bench-store, one committer), then durable decisions of
# purser on SQLite and on 1 and 2 PostgreSQL replicas, each as a ratio of
# its store's ceiling, with p50 and p99. Every purser run uses a fresh
# SQLite file or PostgreSQL schema, rate limits off.
#   scripts/bench-stores.sh [requests] [clients]
# Each client pays for an agent of its own (as many agents as clients).
# Needs pgbench and a PostgreSQL (PURSER_BENCH_DATABASE_URL, default the
# local one).
set -euo pipefail
cd "$(dirname "$0")/.."
requests="${1:-10000}"
clients="${2:-32}"
pg="${PURSER_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
cargo build --release --locked --quiet
purser=target/release/purser

# pgbench: $clients connections, 2 threads, 10 s, each transaction one
# INSERT of a small row into a table of its own (dropped afterwards).
work=$(mktemp -d)
trap 'rm -rf "$work"; psql -q "$pg" -c "DROP TABLE IF EXISTS purser_pgbench_rows" >/dev/null 2>&1 || true' EXIT
psql -q "$pg" -c "DROP TABLE IF EXISTS purser_pgbench_rows; \
    CREATE TABLE purser_pgbench_rows (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), v text)" >/dev/null
echo "INSERT INTO purser_pgbench_rows (v) VALUES ('decision');" > "$work/insert.sql"
pg_tps=$(pgbench -n -c "$clients" -j 2 -T 10 -f "$work/insert.sql" "$pg" 2>/dev/null |
    awk '/^tps = / { print int($3); exit }')
# SQLite: one committer is its ceiling (it has one writer).
sqlite_tps=$($purser bench-store --database-url sqlite://bench --concurrency 1 --commits 3000 |
    grep -oE '[0-9]+ commits/s' | grep -oE '^[0-9]+')

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { print a / b }'; }
# `purser bench` prints "... N durable decisions/s; latency p50 A ms, p90 B ms, p99 C ms, ...".
# The number after a label ("p50 12.34 ms" -> 12.34).
field() { grep -oE "$1 [0-9.]+" | awk '{ print $NF }' | head -1; }
row() { # label ceiling output
    local rate p50 p99
    rate=$(grep -oE '[0-9]+ durable decisions/s' <<<"$3" | awk '{ print $1 }')
    p50=$(field p50 <<<"$3")
    p99=$(field p99 <<<"$3")
    printf '%-34s %8s %8s %9.2f %8s %8s\n' "$1" "$clients" "$rate" "$(ratio "$rate" "$2")" "$p50" "$p99"
    echo "$rate" > "$work/last"
}

printf '%-34s %8s %8s %9s %8s %8s\n' "run" "clients" "per s" "x ceiling" "p50 ms" "p99 ms"
printf '%-34s %8s %8s %9.2f %8s %8s\n' "pgbench, one INSERT per tx" "$clients" "$pg_tps" 1 - -
printf '%-34s %8s %8s %9.2f %8s %8s\n' "sqlite bench-store, 1 committer" 1 "$sqlite_tps" 1 - -
row "purser, sqlite" "$sqlite_tps" \
    "$($purser bench --requests "$requests" --concurrency "$clients" --agents "$clients")"
row "purser, postgresql, 1 replica" "$pg_tps" \
    "$($purser bench --database-url "$pg" --replicas 1 --requests "$requests" --concurrency "$clients" --agents "$clients")"
one=$(cat "$work/last")
row "purser, postgresql, 2 replicas" "$pg_tps" \
    "$($purser bench --database-url "$pg" --replicas 2 --requests "$requests" --concurrency "$clients" --agents "$clients")"
two=$(cat "$work/last")
printf '2 replicas / 1 replica: %.2f\n' "$(ratio "$two" "$one")"
