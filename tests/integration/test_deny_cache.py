"""The local deny cache: a key denied with retry_after_ms = R is answered by
ratekitd itself until R has passed, without asking Redis, and the answers
stay those the store would give."""

import time


def evalsha_calls(redis):
    """EVALSHA calls Redis has served since the last CONFIG RESETSTAT."""
    for line in redis.cli("INFO", "commandstats").splitlines():
        if line.startswith("cmdstat_evalsha:"):
            return int(line.split("calls=")[1].split(",")[0])
    return 0


def deny(s, rule, key, limit):
    """Spends the key's limit; answers the first denial."""
    for _ in range(limit):
        assert s.check(rule, key).json()["allowed"] is True
    r = s.check(rule, key).json()
    assert r["allowed"] is False
    return r


def test_a_hot_denied_key_is_answered_without_redis(make_server, redis):
    s = make_server(env={"RATEKIT_REDIS_URL": redis.url})
    for alg in ["fixed_window", "sliding_window", "sliding_log", "token_bucket", "gcra",
                "leaky_bucket"]:
        rule = "hot-" + alg.replace("_", "-")
        s.create_rule(id=rule, algorithm=alg, limit=3, window="1h")
        first = deny(s, rule, "attacker", 3)
        redis.cli("CONFIG", "RESETSTAT")
        last = first["retry_after_ms"]
        for _ in range(50):
            r = s.check(rule, "attacker")
            body = r.json()
            assert body["allowed"] is False, (alg, body)
            assert body["remaining"] == 0
            assert 0 < body["retry_after_ms"] <= last, (alg, body, last)
            assert r.headers["retry-after"] == str(-(-body["retry_after_ms"] // 1000))
            last = body["retry_after_ms"]
        assert evalsha_calls(redis) == 0, alg
        # another key of the same rule still goes to Redis
        assert s.check(rule, "someone-else").json()["allowed"] is True
        assert evalsha_calls(redis) == 1, alg


def test_a_denial_ends_when_its_retry_after_has_passed(make_server, redis):
    s = make_server(env={"RATEKIT_REDIS_URL": redis.url})
    s.create_rule(id="short", algorithm="token_bucket", limit=2, window="1s")
    first = deny(s, "short", "k", 2)
    assert 0 < first["retry_after_ms"] <= 500
    time.sleep(first["retry_after_ms"] / 1000 + 0.05)
    assert s.check("short", "k").json()["allowed"] is True


def test_a_counters_reset_forgets_the_denial(make_server, redis):
    s = make_server(env={"RATEKIT_REDIS_URL": redis.url})
    s.create_rule(id="reset", algorithm="fixed_window", limit=2, window="1h")
    deny(s, "reset", "k", 2)
    assert s.admin("DELETE", "/api/v1/counters?rule=reset&key=k").status == 204
    assert s.check("reset", "k").json()["allowed"] is True


def test_a_rule_change_forgets_the_denial(make_server, redis):
    s = make_server(env={"RATEKIT_REDIS_URL": redis.url})
    s.create_rule(id="grow", algorithm="fixed_window", limit=2, window="1h")
    deny(s, "grow", "k", 2)
    assert s.admin("PATCH", "/api/v1/rules/grow", {"limit": 10}).status == 200
    assert s.check("grow", "k").json()["allowed"] is True


def test_a_costlier_or_cheaper_check_still_asks_the_store(make_server, redis):
    s = make_server(env={"RATEKIT_REDIS_URL": redis.url})
    s.create_rule(id="cost", algorithm="token_bucket", limit=3, window="1h")
    deny(s, "cost", "k", 3)
    redis.cli("CONFIG", "RESETSTAT")
    assert s.check("cost", "k", cost=0).json()["allowed"] is True  # a peek
    assert s.check("cost", "k", cost=2).json()["allowed"] is False
    assert evalsha_calls(redis) == 2


def test_concurrency_denials_are_not_remembered(make_server, redis):
    s = make_server(env={"RATEKIT_REDIS_URL": redis.url})
    s.create_rule(id="jobs", algorithm="concurrency", limit=1, window="1h")
    from conftest import request
    lease = request("POST", s.data + "/v1/acquire", {"rule": "jobs", "key": "k"}).json()["lease"]
    assert request("POST", s.data + "/v1/acquire",
                   {"rule": "jobs", "key": "k"}).json()["allowed"] is False
    assert request("POST", s.data + "/v1/release", {"lease": lease}).json()["released"] is True
    assert request("POST", s.data + "/v1/acquire",
                   {"rule": "jobs", "key": "k"}).json()["allowed"] is True


def test_the_embedded_store_answers_a_denied_key_as_the_cache_would(server):
    server.create_rule(id="emb", algorithm="sliding_window", limit=5, window="1h")
    first = deny(server, "emb", "k", 5)
    again = [server.check("emb", "k").json() for _ in range(20)]
    assert all(not a["allowed"] and a["remaining"] == 0 for a in again)
    assert again[-1]["retry_after_ms"] <= first["retry_after_ms"]
    assert again[-1]["reset_ms"] <= first["reset_ms"]
