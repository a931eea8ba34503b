#!/usr/bin/env bash
# A real Prometheus server for tests/prometheus.rs: Debian's `prometheus` package.
#
# Usage:
#   scripts/prometheus.sh            print the server binary's path (exit 1, saying why,
#                                    when there is none); installs nothing
#   scripts/prometheus.sh --install  the same, installing the package with apt-get
#                                    first when it is missing (what .ci/run does)
#
# PROMPTGATE_PROMETHEUS names a binary to use instead of the one on PATH.
set -euo pipefail

find_it() {
  if [[ -n "${PROMPTGATE_PROMETHEUS:-}" ]]; then
    [[ -x "$PROMPTGATE_PROMETHEUS" ]] || { echo "PROMPTGATE_PROMETHEUS=$PROMPTGATE_PROMETHEUS is not an executable" >&2; return 1; }
    echo "$PROMPTGATE_PROMETHEUS"
  elif command -v prometheus >/dev/null 2>&1; then
    command -v prometheus
  else
    return 1
  fi
}

if found="$(find_it)"; then
  echo "$found"
  exit 0
fi
if [[ "${1:-}" != "--install" ]]; then
  echo "no prometheus server found (install Debian's package: scripts/prometheus.sh --install)" >&2
  exit 1
fi
sudo=()
[[ "$(id -u)" -eq 0 ]] || sudo=(sudo)
echo "prometheus not found: installing Debian's package with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq >&2
"${sudo[@]}" apt-get install -y -qq --no-install-recommends prometheus </dev/null >&2
find_it
