#!/usr/bin/env bash
# Compares two purser binaries on the same machine in the same session:
# `purser bench` (durable decisions, fresh SQLite file per run) alternating
# A and B for several rounds, so that drift of the machine (disk, other
# load) hits both alike. Prints each run, then per binary the median of
# decisions/s and of CPU time per decision (the process's user + system
# time: steadier than throughput when fsync latency wanders), and B/A.
#   scripts/bench-ab.sh A_BINARY B_BINARY [rounds] [requests] [extra bench args...]
# e.g. keep the old build:  cp target/release/purser /tmp/purser-old
# BENCH_DIR=/dev/shm puts the databases in memory: fsync becomes free, which
# takes the disk's wandering latency out of a comparison of CPU costs.
set -euo pipefail
a="$1"; b="$2"; rounds="${3:-5}"; requests="${4:-20000}"; shift $(( $# < 4 ? $# : 4 ))
work="$(mktemp -d -p "${BENCH_DIR:-${TMPDIR:-/tmp}}")"; trap 'rm -rf "$work"' EXIT
cd "$work"
for round in $(seq 1 "$rounds"); do
    for which in A B; do
        bin=$a; [ "$which" = B ] && bin=$b
        out=$( { /usr/bin/time -f 'cpu %U %S' "$bin" bench --requests "$requests" "$@" ; } 2>&1 )
        rate=$(grep -o '[0-9]* durable decisions/s' <<<"$out" | grep -o '^[0-9]*')
        cpu=$(grep '^cpu ' <<<"$out" | awk -v n="$requests" '{ printf "%.0f", ($2 + $3) / n * 1e6 }')
        printf '%s round %s: %6s decisions/s  %4s us CPU/decision\n' "$which" "$round" "$rate" "$cpu"
        echo "$which $rate $cpu" >>results
    done
done
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for which in A B; do
    rate=$(awk -v w="$which" '$1 == w { print $2 }' results | median)
    cpu=$(awk -v w="$which" '$1 == w { print $3 }' results | median)
    echo "$which median: $rate decisions/s, $cpu us CPU/decision"
    echo "$rate $cpu" >"median-$which"
done
read -r ra ca <median-A; read -r rb cb <median-B
awk -v ra="$ra" -v rb="$rb" -v ca="$ca" -v cb="$cb" \
    'BEGIN { printf "B/A: throughput %.2f, CPU per decision %.2f\n", rb / ra, cb / ca }'
