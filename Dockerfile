# syntax=docker/dockerfile:1
#
# One image with the three binaries, static, on distroless, non-root:
#   /usr/local/bin/entrypoint-webhook     the admission webhook (the ENTRYPOINT)
#   /usr/local/bin/kubernetes-entrypoint  the resolver; on PATH, so charts that run
#                                         `command: [kubernetes-entrypoint]` keep working,
#                                         and the webhook injects this same image.
#   /usr/local/bin/kubectl-entrypoint     the kubectl plugin (kubectl entrypoint lint|inject|why|graph),
#                                         e.g. docker run --entrypoint kubectl-entrypoint IMAGE lint -f - < app.yaml
#
#   docker build -t kubernetes-entrypoint \
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

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="kubernetes-entrypoint" \
      org.opencontainers.image.description="Makes pods wait for their Kubernetes dependencies, then execs the application; with a mutating webhook that injects it into annotated pods" \
      org.opencontainers.image.source="https://github.com/kubernetes-entrypoint/kubernetes-entrypoint" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/kubernetes-entrypoint /out/entrypoint-webhook /out/kubectl-entrypoint /usr/local/bin/
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/entrypoint-webhook"]
