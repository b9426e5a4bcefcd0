# The doraflow binary for the distributed deployment (docker-compose.yml runs `migrate`, `ingest`,
# `aggregate` and `api` from it) and for `doraflow serve` alike.
#   docker build -t doraflow .
FROM rust:1-bookworm AS build
# rdkafka builds its bundled librdkafka with make and a C compiler (both in the image).
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin doraflow \
 && cp target/release/doraflow /usr/local/bin/doraflow

FROM debian:bookworm-slim
# curl serves the health checks.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /var/lib/doraflow --create-home doraflow
COPY --from=build /usr/local/bin/doraflow /usr/local/bin/doraflow
USER doraflow
WORKDIR /var/lib/doraflow
EXPOSE 8080
ENTRYPOINT ["doraflow"]
CMD ["serve", "--listen", "0.0.0.0:8080", "--data-dir", "/var/lib/doraflow/data"]
