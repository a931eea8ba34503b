#!/usr/bin/env bash
# Audit the repository's GitHub Actions files (.github/workflows, action.yml,
# docs/examples) with zizmor, offline, as `.ci/run` does. zizmor comes from PyPI, its
# version and wheel hash pinned, and is cached after the first install. Where it cannot
# be installed (its wheel is for x86-64 Linux with glibc 2.28 or newer; no python3 with
# pip; PyPI unreachable) the audit is skipped with a warning: tests/workflows.rs checks
# the main rules without it. Findings fail the audit.
#
# Usage: scripts/zizmor.sh [ZIZMOR ARGS…]   e.g. --persona=pedantic
set -euo pipefail
cd "$(dirname "$0")/.."

ZIZMOR_VERSION=1.32.0
# zizmor-1.32.0-py3-none-manylinux_2_28_x86_64.whl
ZIZMOR_SHA256=84a6acb975accc13408786a2bd274b572537ca19c933ebbc13e78f3988562071

PYTHON="${PYTHON:-python3}"
export PIP_ROOT_USER_ACTION=ignore
CACHE_ROOT="${PROMPTGATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/promptgate}"
DIR="$CACHE_ROOT/zizmor-$ZIZMOR_VERSION"
BIN="$DIR/bin/zizmor"

skip() {
  echo "warning: zizmor $ZIZMOR_VERSION cannot be installed here ($*); workflow audit skipped" >&2
  exit 0
}

if [[ ! -x "$BIN" ]]; then
  command -v "$PYTHON" >/dev/null 2>&1 || skip "no $PYTHON"
  "$PYTHON" -m pip --version >/dev/null 2>&1 || skip "no pip for $PYTHON"
  mkdir -p "$CACHE_ROOT"
  tmp="$(mktemp -d "$CACHE_ROOT/.tmp-zizmor.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  printf 'zizmor==%s --hash=sha256:%s\n' "$ZIZMOR_VERSION" "$ZIZMOR_SHA256" >"$tmp/requirements.txt"
  # --target rather than a venv: Debian's python3 may lack the venv module, and --target
  # is not blocked by PEP 668's externally-managed marker.
  "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-deps \
    --only-binary :all: --require-hashes -r "$tmp/requirements.txt" --target "$tmp/zizmor" >&2 \
    || skip "pip could not install the pinned wheel"
  [[ -x "$tmp/zizmor/bin/zizmor" ]] || skip "no zizmor binary in the wheel"
  rm -rf "$DIR"
  mv "$tmp/zizmor" "$DIR"
fi

# --offline: no GitHub API calls (and no token needed); --strict-collection: a file that
# does not parse is a failure, not a warning.
exec "$BIN" --offline --strict-collection --no-progress --color=never "$@" \
  .github/workflows/*.yml action.yml docs/examples/*.yml
