#!/usr/bin/env bash
# The README's first command: build promptgate, materialize the demo repository (a
# `main` branch and a `prompt-update` pull-request branch) in a temporary directory,
# and run promptgate on it as a pull-request job would.
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
echo "\$ promptgate changes --base main --head prompt-update"
"$pg" -C "$work/demo" changes --base main --head prompt-update "$@"
