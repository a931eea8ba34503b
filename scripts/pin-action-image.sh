#!/usr/bin/env bash
# Point action.yml at a published image instead of the Dockerfile: the release workflow
# runs this on the tagged commit, so a workflow that uses a release tag pulls the
# prebuilt image (seconds) instead of compiling promptgate (minutes). `main` keeps
# `image: Dockerfile`, which this repository's own workflows use through `uses: ./`.
#
# Usage: scripts/pin-action-image.sh IMAGE DIGEST [ACTION_YML]
#   IMAGE   e.g. ghcr.io/acme/promptgate (lower-case, no tag)
#   DIGEST  sha256:<64 hex digits>, the digest of the multi-platform image index
set -euo pipefail

image="${1:?usage: pin-action-image.sh IMAGE DIGEST [ACTION_YML]}"
digest="${2:?usage: pin-action-image.sh IMAGE DIGEST [ACTION_YML]}"
file="${3:-$(dirname "$0")/../action.yml}"

[[ "$image" =~ ^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)+$ ]] \
  || { echo "pin-action-image: not an image name without tag: $image" >&2; exit 2; }
[[ "$digest" =~ ^sha256:[0-9a-f]{64}$ ]] \
  || { echo "pin-action-image: not a sha256 digest: $digest" >&2; exit 2; }

# Exactly one `  image: Dockerfile` line under `runs:`; anything else (already pinned,
# edited by hand) is an error rather than a guess.
count="$(grep -c '^  image: Dockerfile$' "$file" || true)"
[[ "$count" == 1 ]] \
  || { echo "pin-action-image: $file: expected one line '  image: Dockerfile', found $count" >&2; exit 1; }

tmp="$(mktemp "$file.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
sed "s|^  image: Dockerfile\$|  image: docker://$image@$digest|" "$file" >"$tmp"
mv "$tmp" "$file"
trap - EXIT
echo "action.yml → docker://$image@$digest"
