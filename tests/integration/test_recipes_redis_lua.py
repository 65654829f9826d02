"""INTEGRATION.md's direct use of lua/token_bucket.lua from any Redis
client: examples/redis/token-bucket.sh and redis-cli EVAL against a real
redis-server."""

import os
import subprocess

from recipes.helpers import EXAMPLES, ROOT

SCRIPT = os.path.join(ROOT, "lua", "token_bucket.lua")


def replies(text):
    return [[int(x) for x in line.split()] for line in text.strip().splitlines()]


def test_example_script_allows_three_then_denies_with_retry_after(redis):
    out = subprocess.run(["sh", os.path.join(EXAMPLES, "redis", "token-bucket.sh")],
                         env=dict(os.environ, REDIS_PORT=str(redis.port)),
                         capture_output=True, text=True, timeout=10, check=True).stdout
    got = replies(out)
    assert [len(r) for r in got] == [5] * 4
    assert [r[0] for r in got] == [1, 1, 1, 0]          # allowed
    assert [r[1] for r in got] == [2, 1, 0, 0]          # remaining
    assert got[3][3] > 0 and got[3][3] <= 20000         # retry_after_ms: one token per 20 s
    assert all(r[4] == 0 for r in got)                  # delay_ms
    key = "ratekit:{api-per-ip:203.0.113.7}:token_bucket"
    assert 0 < int(redis.cli("PTTL", key)) <= 60000     # the state expires by itself


def test_eval_with_an_explicit_clock_refills_one_token_per_interval(redis):
    with open(SCRIPT) as f:
        body = f.read()

    def call(now, cost=1):
        out = redis.cli("EVAL", body, "1", "ratekit:{bot:42}:token_bucket",
                        "3", "60000", "3", str(cost), str(now), "0", "", "decide")
        return [int(x) for x in out.split()]

    t = 1_732_300_000_000
    assert [call(t)[0] for _ in range(3)] == [1, 1, 1]
    assert call(t) == [0, 0, 60000, 20000, 0]
    assert call(t + 19_999)[0] == 0
    assert call(t + 20_000)[:2] == [1, 0]
    assert call(t + 20_000, cost=0)[:2] == [1, 0]      # cost 0 peeks: nothing left
    assert call(t + 20_000)[0] == 0                    # and took nothing
