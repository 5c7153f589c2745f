# syntax=docker/dockerfile:1

# Build: a static binary, no cgo (SQLite is the pure Go driver).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=""
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-X main.version=${VERSION}" -o /microchat ./cmd/microchat
# The data directory, owned by the non-root user so that a new volume
# mounted on it is writable.
RUN mkdir /data

# Run: no shell, no package manager, user nonroot (65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /microchat /usr/local/bin/microchat
COPY --from=build --chown=65532:65532 /data /data
# adaptivestackstart=0 keeps each idle widget socket's read goroutine on a
# 2 KB stack (see channels/webchat/doc.go and docs/benchmarks.md); the
# server also sets it itself (cmd/microchat/godebug.go).
ENV MICROCHAT_DATA_DIR=/data \
    MICROCHAT_LISTEN=:8080 \
    GODEBUG=adaptivestackstart=0
USER 65532:65532
WORKDIR /data
EXPOSE 8080
VOLUME /data
ENTRYPOINT ["/usr/local/bin/microchat"]
CMD ["serve"]
