# followpub: a static binary in a distroless image, running as a non-root user.
#
#   docker build -t followpub --build-arg VERSION=$(git describe --tags --always --dirty) \
#       --build-arg COMMIT=$(git rev-parse --short HEAD) .
#   docker run --rm followpub version
#
# The image runs `followpub run` by default; any other command replaces CMD (`sim`, `tail`,
# `check`, `watermark show`, `env`). The state lives in /var/lib/followpub, a volume owned by the
# non-root user: mount a named volume or a persistent disk there. /metrics, /healthz and /readyz
# listen on 0.0.0.0:9464 inside the container (the binary's default is loopback).
#
# Needs BuildKit (RUN --mount), which Docker's default builder is. No `# syntax=` line: the
# builder's own Dockerfile frontend is enough, and nothing has to be pulled for it.
# `make test-docker` builds this file with GO_IMAGE and RUNTIME_IMAGE pointing at base images made
# locally (scripts/docker/base-images.sh), since it has no registry to pull from.

# The two base images: the Go toolchain and the runtime.
ARG GO_IMAGE=golang:1.26
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

# Build on the builder's own platform and cross-compile for the target one (no emulation).
FROM --platform=$BUILDPLATFORM ${GO_IMAGE} AS build
WORKDIR /src

# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
# Empty unless given: then the go command's own defaults (or the builder's environment) apply.
ARG GOPROXY
ARG GOSUMDB
RUN --mount=type=cache,target=/go/pkg/mod go mod download

COPY . .
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
ARG COMMIT=unknown
# CGO_ENABLED=0: a static binary for a base image without libc. -tags timetzdata embeds the time
# zone database, so FOLLOWPUB_API_TIMEZONE=Asia/Shanghai loads whatever the base image carries
# (distroless has /usr/share/zoneinfo; scratch would not).
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -tags timetzdata \
        -ldflags "-s -w -X main.version=$VERSION -X main.commit=$COMMIT" \
        -o /out/followpub ./cmd/followpub

# The state directory, created here because the final image has no shell.
RUN mkdir -p /out/state

# distroless/static: CA certificates, time zone data, /etc/passwd with nonroot (65532), no shell, no
# package manager.
FROM ${RUNTIME_IMAGE}
COPY --from=build /out/followpub /followpub
# Owned by nonroot: a fresh named volume mounted here takes this owner, so the store is writable.
COPY --from=build --chown=65532:65532 /out/state /var/lib/followpub
ENV FOLLOWPUB_STATE_PATH=/var/lib/followpub/followpub.state \
    FOLLOWPUB_HTTP_ADDR=0.0.0.0:9464
# nonroot, by number so that Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
VOLUME ["/var/lib/followpub"]
EXPOSE 9464
ENTRYPOINT ["/followpub"]
CMD ["run"]
