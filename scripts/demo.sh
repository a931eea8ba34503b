#!/usr/bin/env bash
# The README's first command: build promptgate, materialize the demo repository (a
# `main` branch and a `prompt-update` pull-request branch) in a temporary directory,
# and run the gate on it as a pull-request job would, offline, printing the evidence
# report.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked --quiet
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
bash scripts/demo-repo.sh "$work/demo" >/dev/null

pg=target/release/promptgate
echo "\$ promptgate validate"
"$pg" -C "$work/demo" validate
echo
# Offline: the `recorded` provider replays answers recorded from a real model
# (scripts/record-demo.sh). The gate's exit code is the verdict: 0 passed or pending a
# trade-off, 4 blocked, 5 could not evaluate.
echo "\$ promptgate gate --base main --head prompt-update --provider recorded"
status=0
"$pg" -C "$work/demo" gate --base main --head prompt-update --provider recorded "$@" || status=$?
echo
echo "(promptgate gate exited $status)"
case "$status" in 0|4|5) exit 0 ;; *) exit "$status" ;; esac
