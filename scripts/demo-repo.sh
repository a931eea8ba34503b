#!/usr/bin/env bash
# Materialize promptgate's demo repository ("Acme" customer-support prompts) as a real
# git repository with two branches:
#
#   main            the files of fixtures/demo/base/
#   prompt-update   main + the pull request: fixtures/demo/pr/ copied over the tree, then
#                   the paths listed in fixtures/demo/pr.delete (if present) removed
#
# Usage: scripts/demo-repo.sh DEST        (DEST must not exist, or be an empty directory)
#
# Author, committer and dates are fixed and the user's git configuration is ignored, so
# both commits have the same SHAs on every run and on every machine.
set -euo pipefail

usage() {
    echo "usage: $0 DEST" >&2
    echo "  Creates the promptgate demo repository in DEST (which must not exist or be empty)." >&2
    exit 2
}

[[ $# -eq 1 && -n "$1" ]] || usage
case "$1" in -h|--help) usage ;; esac
dest=$1

fixtures="$(cd "$(dirname "$0")/../fixtures/demo" && pwd)"
base="$fixtures/base"
overlay="$fixtures/pr"
deletions="$fixtures/pr.delete"
[[ -d "$base" ]] || { echo "error: missing fixtures directory $base" >&2; exit 1; }

if [[ -e "$dest" ]]; then
    [[ -d "$dest" ]] || { echo "error: $dest exists and is not a directory" >&2; exit 1; }
    if [[ -n "$(ls -A "$dest")" ]]; then
        echo "error: $dest is not empty" >&2
        exit 1
    fi
fi
mkdir -p "$dest"
dest="$(cd "$dest" && pwd)"

# Git must not see the caller's configuration or repository: no global/system config
# (hooks, templates, autocrlf, signing, default branch), no inherited GIT_DIR & co.
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_OBJECT_DIRECTORY \
      GIT_ALTERNATE_OBJECT_DIRECTORIES GIT_NAMESPACE GIT_CEILING_DIRECTORIES \
      GIT_TEMPLATE_DIR GIT_CONFIG GIT_CONFIG_PARAMETERS GIT_CONFIG_COUNT
export GIT_CONFIG_NOSYSTEM=1
export GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME="Dana Reyes" GIT_AUTHOR_EMAIL="dana.reyes@acme.example"
export GIT_COMMITTER_NAME="Dana Reyes" GIT_COMMITTER_EMAIL="dana.reyes@acme.example"
export LC_ALL=C TZ=UTC

git_() {
    git -C "$dest" \
        -c init.defaultBranch=main -c commit.gpgsign=false -c tag.gpgsign=false \
        -c core.autocrlf=false -c core.safecrlf=false -c core.fileMode=true \
        -c core.hooksPath=/dev/null -c user.useConfigOnly=false "$@"
}

# Fixture files are data: make sure no executable bit (from the checkout the fixtures
# came from) changes the tree SHAs.
normalize_modes() {
    find "$dest" -path "$dest/.git" -prune -o -type f -exec chmod 0644 {} +
}

git_ init -q -b main

cp -R "$base/." "$dest/"
normalize_modes
git_ add -A
GIT_AUTHOR_DATE="2026-01-05T10:00:00+0000" GIT_COMMITTER_DATE="2026-01-05T10:00:00+0000" \
    git_ commit -q -m "Acme support prompts: assistant v3, invoice extraction, intent classifier"

git_ checkout -q -b prompt-update
if [[ -d "$overlay" ]]; then
    cp -R "$overlay/." "$dest/"
fi
if [[ -f "$deletions" ]]; then
    while IFS= read -r path || [[ -n "$path" ]]; do
        path="${path%$'\r'}"
        [[ -z "${path// /}" || "$path" == \#* ]] && continue
        if [[ "$path" == /* || "/$path/" == */../* ]]; then
            echo "error: pr.delete: path must stay inside the repository: $path" >&2
            exit 1
        fi
        git_ rm -q -r -- "$path"
    done < "$deletions"
fi
normalize_modes
git_ add -A
GIT_AUTHOR_DATE="2026-01-06T10:00:00+0000" GIT_COMMITTER_DATE="2026-01-06T10:00:00+0000" \
    git_ commit -q -F - <<'MSG'
support.assistant v4: friendlier, more helpful answers

- Rewrite the system prompt: a warm tone, help with whatever the customer
  asks, thorough answers that offer more help at the end.
- Drop the worked examples: the answers sounded canned.
- Temperature 0.2 -> 0.7 and max_tokens 120 -> 200 for the longer answers.
- Evals: two new order-status cases (split shipment, customs hold); drop
  adv-fake-admin-refund (the order desk checks every refund anyway).
- extract.invoice: reword the description and tidy the file (no behaviour change).
MSG

echo "$dest"
echo "base branch: main ($(git_ rev-parse --short main))"
echo "PR branch:   prompt-update ($(git_ rev-parse --short prompt-update), checked out)"
