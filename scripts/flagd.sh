#!/usr/bin/env bash
# Install the Python OpenFeature SDK with flagd's in-process evaluator (versions pinned
# in docs/examples/python/requirements.txt, from PyPI) into promptgate's cache, once, and
# print the directory to put on PYTHONPATH. tests/flagd.rs runs the real evaluator from
# there; `.ci/run` calls this first so the tests never skip in CI.
#
# Exits 0 with the directory on stdout, or with the reason on stderr and 1, or 2 when
# PROMPTGATE_REQUIRE_FLAGD is set (the tests then fail rather than skip).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
export PIP_ROOT_USER_ACTION=ignore
REQUIREMENTS=docs/examples/python/requirements.txt
CACHE_ROOT="${PROMPTGATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/promptgate}"
DIR="$CACHE_ROOT/flagd-python-$(sha256sum "$REQUIREMENTS" | cut -c1-16)"

fail() {
  echo "flagd evaluator cannot be installed here: $*" >&2
  if [[ -n "${PROMPTGATE_REQUIRE_FLAGD:-}" ]]; then
    echo "PROMPTGATE_REQUIRE_FLAGD is set: this is a failure, not a skip" >&2
    exit 2
  fi
  exit 1
}

if [[ ! -f "$DIR/.complete" ]]; then
  command -v "$PYTHON" >/dev/null 2>&1 || fail "no $PYTHON"
  "$PYTHON" -m pip --version >/dev/null 2>&1 || fail "no pip for $PYTHON"
  mkdir -p "$CACHE_ROOT"
  tmp="$(mktemp -d "$CACHE_ROOT/.tmp-flagd.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  # --target rather than a venv: Debian's python3 may lack the venv module, and --target
  # is not blocked by PEP 668's externally-managed marker.
  "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-deps \
    --only-binary :all: -r "$REQUIREMENTS" --target "$tmp/lib" >&2 \
    || fail "pip could not install $REQUIREMENTS"
  touch "$tmp/lib/.complete"
  rm -rf "$DIR"
  mv "$tmp/lib" "$DIR"
fi
echo "$DIR"
