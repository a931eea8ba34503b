#!/usr/bin/env bash
# The figures of BENCHMARKS.md that are not `cargo bench` targets, in one run:
#   (2) does the gate keep llama-server busy? Output tokens/s of `promptgate eval` on the
#       demo's support assistant against llama-server with -np slots, vs the same
#       requests sent straight to the server at the same concurrency (the server alone,
#       saturated);
#   (3) the demo gate end to end, offline (recordings) — the live figure is printed by
#       scripts/e2e.sh;
#   (4) peak memory of both;
#   (5) release binary size and `promptgate --version` cold start.
# Ratios are what to read; absolute times on a shared 2-core machine are noisy.
#
# Usage: scripts/bench.sh [--parallel N]   (llama-server slots for (2); default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
parallel=2
[[ "${1:-}" == --parallel ]] && parallel=${2:?--parallel needs a value}

cargo build --release --locked --quiet
bin="$PWD/target/release/promptgate"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
bash scripts/demo-repo.sh "$work/demo" >/dev/null

rss() { /usr/bin/time -f '%M' "$@" 2>&1 >/dev/null | tail -n 1; }
ms() { local s; s=$(date +%s%N); "$@" >/dev/null 2>&1 || true; echo $(( ($(date +%s%N) - s) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "== (5) binary"
size=$(stat -c %s "$bin")
echo "release binary: $((size / 1024 / 1024)) MiB ($size bytes, stripped)"
cold=$(for _ in $(seq 1 21); do ms "$bin" --version; done | median)
sh_start=$(for _ in $(seq 1 21); do ms /bin/true; done | median)
echo "promptgate --version: ${cold} ms median of 21 (a process that does nothing: ${sh_start} ms)"

echo "== (3)(4) demo gate offline"
gate=("$bin" -C "$work/demo" gate --base main --head prompt-update --provider recorded --no-cache)
offline=$(for _ in $(seq 1 11); do ms "${gate[@]}"; done | median)
echo "demo gate, offline: ${offline} ms median of 11; peak RSS $(rss "${gate[@]}") KB"
echo "  ratio to promptgate --version: $(echo "scale=1; $offline / $cold" | bc)x"

echo "== (2) against llama-server -np $parallel"
# The demo's support-assistant requests, as the gate sends them (from the recordings).
python3 - "$work/demo/recordings" "$work/requests.jsonl" <<'PY'
import glob, json, sys
bodies = []
for f in glob.glob(sys.argv[1] + "/*.json"):
    r = json.load(open(f))["request"]
    bodies.append({"model": r["model"], "messages": r["messages"], **r.get("params", {})})
# Grouped by prompt, so the server's prompt cache helps it as much as it can: the
# server's best case.
bodies.sort(key=lambda b: json.dumps(b["messages"]))
with open(sys.argv[2], "w") as out:
    for b in bodies:
        out.write(json.dumps(b) + "\n")
PY
# The demo config at the server's concurrency.
sed -i "s/concurrency: 1,/concurrency: $parallel,/" "$work/demo/.promptgate.yaml"
git -C "$work/demo" -c user.name=b -c user.email=b@b commit -qam "bench: concurrency $parallel"

bash scripts/llama-server.sh run --port 8080 --parallel "$parallel" --log "$work/server.log" -- \
    bash -c '
set -euo pipefail
work=$1 bin=$2 parallel=$3
# The server alone: the same requests, $parallel in flight, straight over HTTP.
python3 - "$work/requests.jsonl" "$parallel" <<PY
import concurrent.futures, json, sys, time, urllib.request
bodies = [json.loads(l) for l in open(sys.argv[1])]
def send(body):
    req = urllib.request.Request("http://127.0.0.1:8080/v1/chat/completions",
        json.dumps(body).encode(), {"Content-Type": "application/json"})
    u = json.load(urllib.request.urlopen(req, timeout=300))["usage"]
    return u["prompt_tokens"], u["completion_tokens"]
start = time.monotonic()
with concurrent.futures.ThreadPoolExecutor(int(sys.argv[2])) as pool:
    usage = list(pool.map(send, bodies))
wall = time.monotonic() - start
tokens_in = sum(u[0] for u in usage)
tokens_out = sum(u[1] for u in usage)
print(f"server alone: {len(bodies)} requests, {tokens_in} in + {tokens_out} out tokens in {wall:.1f} s"
      f" = {tokens_out / wall:.1f} out, {(tokens_in + tokens_out) / wall:.0f} total tokens/s")
open("$work/server.tps", "w").write(f"{tokens_out / wall} {(tokens_in + tokens_out) / wall}")
PY
# The gate engine: promptgate eval on both versions of the artifact, the same requests.
start=$(date +%s%N)
"$bin" -C "$work/demo" eval support.assistant --provider local --no-cache --format json >"$work/head.json" || true
git -C "$work/demo" checkout -q main
"$bin" -C "$work/demo" eval support.assistant --provider local --no-cache --format json >"$work/base.json" || true
wall=$(( ($(date +%s%N) - start) / 1000000 ))
python3 - "$work" "$wall" <<PY
import json, sys
work, wall_ms = sys.argv[1], int(sys.argv[2])
tokens_in = tokens_out = requests = 0
for side in ("base", "head"):
    for run in json.load(open(f"{work}/{side}.json"))["runs"]:
        for case in run["cases"]:
            for s in case["samples"]:
                requests += 1
                tokens_in += s.get("input_tokens", 0)
                tokens_out += s.get("output_tokens", 0)
wall = wall_ms / 1000
out_tps, total_tps = tokens_out / wall, (tokens_in + tokens_out) / wall
server_out, server_total = map(float, open(f"{work}/server.tps").read().split())
print(f"promptgate eval: {requests} requests, {tokens_in} in + {tokens_out} out tokens in {wall:.1f} s"
      f" = {out_tps:.1f} out, {total_tps:.0f} total tokens/s")
print(f"  gate / server alone: {out_tps / server_out:.2f} (output tokens/s), {total_tps / server_total:.2f} (all tokens/s)")
PY
' _ "$work" "$bin" "$parallel"
