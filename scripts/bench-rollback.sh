#!/usr/bin/env bash
# How long `promptgate rollback` takes, end to end (process start, lock, read, atomic
# write with fsync, audit line), against `promptgate --version` (process start alone).
# A runtime config with 100 artifacts; 21 rollbacks; medians.
#
# Usage: scripts/bench-rollback.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --quiet
bin="$PWD/target/release/promptgate"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
runtime="$work/deploy/prompts.runtime.yaml"
for i in $(seq 1 100); do
    "$bin" rollout start "artifact-$i" --version 2 --stable 1 --runtime "$runtime" >/dev/null
done

median_ms() { sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)]}'; }
time_ms() { local s e; s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); echo "scale=3; ($e-$s)/1000000" | bc; }

rollback=$(for i in $(seq 1 21); do
    "$bin" rollout start artifact-50 --version 3 --runtime "$runtime" >/dev/null 2>&1 || true
    time_ms "$bin" rollback artifact-50 --from 3 --runtime "$runtime"
done | median_ms)
start=$(for i in $(seq 1 21); do time_ms "$bin" --version; done | median_ms)
echo "rollback (100 artifacts in the file): ${rollback} ms median"
echo "promptgate --version (process start): ${start} ms median"
echo "ratio: $(echo "scale=2; $rollback / $start" | bc)"
