FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags=-s -o /imserver ./cmd/imserver

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /imserver /imserver
WORKDIR /home/nonroot
EXPOSE 8080 1883
ENTRYPOINT ["/imserver"]
