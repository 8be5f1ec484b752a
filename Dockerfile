# syntax=docker/dockerfile:1
#
# The project's two images, for those who build with Docker on the real distroless
# (the release builds the same layout without Docker, on an equivalent base of its
# own: internal/release, docs/release.md). Static binaries, non-root:
#   --target kubernetes-entrypoint  the resolver alone, /usr/local/bin/kubernetes-entrypoint:
#                                   on PATH, so charts that run `command: [kubernetes-entrypoint]`
#                                   keep working; the webhook injects this image.
#   --target entrypoint-webhook     the admission webhook, also the controller (the default).
#
#   docker build --target kubernetes-entrypoint -t kubernetes-entrypoint \
#     --build-arg VERSION=$(git describe --tags --always) --build-arg REVISION=$(git rev-parse HEAD) .
#
# The builder runs `make build`, so the binaries are exactly those that `make build`
# produces outside Docker: CGO_ENABLED=0, -trimpath, -ldflags "-s -w -X main.version=...",
# -buildvcs=false (test/install checks that the two agree, byte for byte).

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
ARG TARGETOS
ARG TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    GOOS=${TARGETOS} GOARCH=${TARGETARCH} make build VERSION=${VERSION} BIN=/out

FROM gcr.io/distroless/static-debian12:nonroot AS kubernetes-entrypoint
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="kubernetes-entrypoint" \
      org.opencontainers.image.description="Makes a container wait for its Kubernetes dependencies, then execs the application: the resolver, injected by entrypoint-webhook" \
      org.opencontainers.image.source="https://github.com/kubernetes-entrypoint/kubernetes-entrypoint" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/kubernetes-entrypoint /usr/local/bin/
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/kubernetes-entrypoint"]

FROM gcr.io/distroless/static-debian12:nonroot AS entrypoint-webhook
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="entrypoint-webhook" \
      org.opencontainers.image.description="The mutating webhook and controller of kubernetes-entrypoint: injects the resolver into annotated pods" \
      org.opencontainers.image.source="https://github.com/kubernetes-entrypoint/kubernetes-entrypoint" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/entrypoint-webhook /usr/local/bin/
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/entrypoint-webhook"]
