# promptgate: container image for the GitHub Action (see action.yml).
# Base images are pinned by digest; the tag beside each is for readers.

# --- build: a static binary -------------------------------------------------------
# Alpine's Rust builds for the platform's musl target (x86_64- or
# aarch64-unknown-linux-musl), which links statically by default; the release workflow
# builds this stage for linux/amd64 and linux/arm64. Pins here must be the digest of a
# multi-platform image index (`docker buildx imagetools inspect`), not of one platform.
FROM rust:1.95-alpine@sha256:606fd313a0f49743ee2a7bd49a0914bab7deedb12791f3a846a34a4711db7ed2 AS builder
WORKDIR /build
COPY Cargo.toml Cargo.lock ./
# Workspace members: cargo reads their manifests even to build the root package.
COPY crates ./crates
COPY src ./src
COPY benches ./benches
COPY schemas ./schemas
RUN cargo build --release --locked \
    && cp target/release/promptgate /usr/local/bin/promptgate

# --- the binary alone: `--target binary --output type=local,dest=DIR` (release assets)
FROM scratch AS binary
COPY --from=builder /usr/local/bin/promptgate /promptgate

# --- runtime ------------------------------------------------------------------
FROM alpine:3.22@sha256:14358309a308569c32bdc37e2e0e9694be33a9d99e68afb0f5ff33cc1f695dce
LABEL org.opencontainers.image.title="promptgate" \
      org.opencontainers.image.description="Release gate for LLM prompt changes" \
      org.opencontainers.image.licenses="Apache-2.0"

# The runner mounts the workspace owned by another user than the container's
# root; without safe.directory, git refuses to read it ("dubious ownership").
RUN apk add --no-cache ca-certificates git \
    && git config --system --add safe.directory '*'

COPY --from=builder /usr/local/bin/promptgate /usr/local/bin/promptgate
RUN promptgate --version

# No USER: GitHub runs Docker actions as root so they can write to the workspace.
ENTRYPOINT ["promptgate"]
