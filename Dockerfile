# scoreproxy image: a static binary on distroless, run as a non-root user.
# Build: docker build -t scoreproxy --build-arg VERSION=$(git describe --always) .
# Run:   docker run -v $PWD/deploy/scoreproxy.yaml:/etc/scoreproxy/config.yaml:ro -p 8490:8490 scoreproxy

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/scoreproxy ./cmd/scoreproxy

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/scoreproxy /usr/local/bin/scoreproxy
USER nonroot:nonroot
EXPOSE 8490
ENTRYPOINT ["/usr/local/bin/scoreproxy"]
CMD ["-config", "/etc/scoreproxy/config.yaml"]
