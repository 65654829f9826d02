#!/bin/sh
# ratekit's token bucket called straight from redis-cli, without ratekitd:
# 3 requests per minute for one client, four requests in a row.
#   KEYS[1]  the state key (the {...} part keeps it in one Redis Cluster slot)
#   ARGV     limit, window_ms, burst, cost, now_ms (-1: Redis's clock),
#            shape, lease id, op
#   reply    allowed (1/0), remaining, reset_ms, retry_after_ms, delay_ms
# Usage: REDIS_HOST=127.0.0.1 REDIS_PORT=6379 examples/redis/token-bucket.sh
set -eu
SCRIPT="$(dirname "$0")/../../lua/token_bucket.lua"
cli() { redis-cli -h "${REDIS_HOST:-127.0.0.1}" -p "${REDIS_PORT:-6379}" "$@"; }

KEY='ratekit:{api-per-ip:203.0.113.7}:token_bucket'
# EVAL sends the script each time; SCRIPT LOAD once, then EVALSHA, does not.
cli EVAL "$(cat "$SCRIPT")" 1 "$KEY" 3 60000 3 1 -1 0 '' decide | paste -sd' ' -
SHA=$(cli SCRIPT LOAD "$(cat "$SCRIPT")")
for i in 2 3 4; do
    cli EVALSHA "$SHA" 1 "$KEY" 3 60000 3 1 -1 0 '' decide | paste -sd' ' -
done
