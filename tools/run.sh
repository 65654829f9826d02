#!/usr/bin/env bash
# make run / make run-redis: starts ratekitd in the foreground (Ctrl-C stops it).
# With --redis, a local redis-server is started beside it and stopped after.
set -euo pipefail
cd "$(dirname "$0")/.."
export RATEKIT_DB=${RATEKIT_DB:-./ratekit.db}
with_redis=0
if [ "${1:-}" = "--redis" ]; then with_redis=1; shift; fi
if [ $with_redis = 1 ] && [ -z "${RATEKIT_REDIS_URL:-}" ]; then
    port=${RATEKIT_REDIS_PORT:-6379}
    dir=$(mktemp -d /tmp/ratekit-redis-XXXXXX)
    redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --appendonly yes \
        --daemonize no --loglevel warning &
    redis_pid=$!
    trap 'kill $redis_pid 2>/dev/null; wait $redis_pid 2>/dev/null; rm -rf "$dir"' EXIT
    for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    export RATEKIT_REDIS_URL="redis://127.0.0.1:$port"
    echo "redis-server on 127.0.0.1:$port (pid $redis_pid)"
fi
build/ratekitd "$@" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null' INT TERM
wait $pid || true
wait $pid 2>/dev/null || true
