FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags=-s -o /imserver ./cmd/imserver
# The data directory, owned by the image's user (nonroot, 65532), so that a
# volume mounted there starts out writable.
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /imserver /imserver
COPY --from=build --chown=65532:65532 /out/data /home/nonroot/data
WORKDIR /home/nonroot
# SQLite database, token secret (jwt.secret) and anything else the server
# keeps: mount a volume here or it is lost with the container.
VOLUME ["/home/nonroot/data"]
EXPOSE 8080 1883
# distroless has no shell or curl: the binary checks itself (GET /healthz
# on IM_HTTP_ADDR, loopback when the host is unspecified).
HEALTHCHECK --interval=30s --timeout=6s --start-period=20s --retries=3 CMD ["/imserver", "healthcheck"]
ENTRYPOINT ["/imserver"]
