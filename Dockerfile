# ratekit — multi-stage image: Node builds the dashboard, gcc builds
# ratekitd, and a slim Debian runtime carries only the shared libraries.

FROM node:20-bookworm-slim AS dashboard
WORKDIR /src/dashboard
COPY dashboard/package.json dashboard/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY dashboard/ ./
RUN npm run build

FROM debian:bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev make pkg-config \
      libmicrohttpd-dev libhiredis-dev libcjson-dev libsqlite3-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile VERSION ./
COPY tools/ tools/
COPY server/ server/
COPY lua/ lua/
COPY schema/ schema/
RUN make build/ratekitd

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libmicrohttpd12 libhiredis0.14 libcjson1 \
      libsqlite3-0 libssl3 curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/ratekit --shell /usr/sbin/nologin ratekit \
 && mkdir -p /var/lib/ratekit && chown ratekit:ratekit /var/lib/ratekit
COPY --from=build /src/build/ratekitd /usr/local/bin/ratekitd
COPY --from=dashboard /src/dashboard/dist /usr/share/ratekit/dashboard
ENV RATEKIT_DB=/var/lib/ratekit/ratekit.db \
    RATEKIT_DASHBOARD_DIR=/usr/share/ratekit/dashboard \
    RATEKIT_LISTEN=0.0.0.0:8080 \
    RATEKIT_ADMIN_LISTEN=0.0.0.0:8081
VOLUME ["/var/lib/ratekit"]
USER ratekit
EXPOSE 8080 8081
HEALTHCHECK --interval=5s --timeout=2s --start-period=5s --retries=5 \
  CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/ratekitd"]
