#!/usr/bin/env bash
# Install OpenFeature with flagd's in-process evaluator into promptgate's cache, once,
# and print where it is:
#   scripts/flagd.sh [python]    the Python SDK and flagd provider (PyPI; pinned in
#                                docs/examples/python/requirements.txt): the directory
#                                to put on PYTHONPATH
#   scripts/flagd.sh typescript  the TypeScript SDK and flagd provider (npm; pinned in
#                                docs/examples/typescript/package-lock.json): a
#                                directory with node_modules, where serve.ts runs
# tests/flagd.rs runs the real evaluators from there; `.ci/run` calls this first so the
# tests never skip in CI.
#
# Exits 0 with the directory on stdout, or with the reason on stderr and 1, or 2 when
# PROMPTGATE_REQUIRE_FLAGD names the language (`python,typescript`): the tests then fail
# rather than skip.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
export PIP_ROOT_USER_ACTION=ignore
LANGUAGE="${1:-python}"

fail() {
  echo "flagd evaluator ($LANGUAGE) cannot be installed here: $*" >&2
  if [[ ",${PROMPTGATE_REQUIRE_FLAGD:-}," == *",$LANGUAGE,"* ]]; then
    echo "PROMPTGATE_REQUIRE_FLAGD names $LANGUAGE: this is a failure, not a skip" >&2
    exit 2
  fi
  exit 1
}

case "$LANGUAGE" in
  python) PINS=(docs/examples/python/requirements.txt) ;;
  typescript) PINS=(docs/examples/typescript/package.json docs/examples/typescript/package-lock.json) ;;
  *) echo "usage: scripts/flagd.sh [python|typescript]" >&2; exit 64 ;;
esac
CACHE_ROOT="${PROMPTGATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/promptgate}"
DIR="$CACHE_ROOT/flagd-$LANGUAGE-$(cat "${PINS[@]}" | sha256sum | cut -c1-16)"

if [[ "$LANGUAGE" == typescript ]]; then
  # @openfeature/server-sdk needs Node.js 20 or newer.
  command -v node >/dev/null 2>&1 || fail "no node"
  major="$(node -p 'process.versions.node.split(".")[0]')"
  (( major >= 20 )) || fail "Node.js 20 or newer is needed, found $(node --version)"
fi

if [[ ! -f "$DIR/.complete" ]]; then
  mkdir -p "$CACHE_ROOT"
  tmp="$(mktemp -d "$CACHE_ROOT/.tmp-flagd.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  if [[ "$LANGUAGE" == python ]]; then
    command -v "$PYTHON" >/dev/null 2>&1 || fail "no $PYTHON"
    "$PYTHON" -m pip --version >/dev/null 2>&1 || fail "no pip for $PYTHON"
    # --target rather than a venv: Debian's python3 may lack the venv module, and
    # --target is not blocked by PEP 668's externally-managed marker.
    "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-deps \
      --only-binary :all: -r "${PINS[0]}" --target "$tmp/lib" >&2 \
      || fail "pip could not install ${PINS[0]}"
  else
    command -v npm >/dev/null 2>&1 || fail "no npm"
    mkdir "$tmp/lib"
    cp "${PINS[@]}" "$tmp/lib/"
    (cd "$tmp/lib" && npm ci --silent --no-audit --no-fund >&2) \
      || fail "npm could not install ${PINS[1]}"
  fi
  touch "$tmp/lib/.complete"
  rm -rf "$DIR"
  mv "$tmp/lib" "$DIR"
fi
echo "$DIR"
