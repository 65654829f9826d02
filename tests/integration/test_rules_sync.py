"""Hot reload across instances that share only Redis, each with its own
SQLite file: a change on one is in force on the other within a second, and
survives in the other's file when Redis is gone."""

import json
import os
import time

RULE = {"id": "login", "algorithm": "token_bucket", "limit": 2, "window": "1h"}


def wait_until(predicate, timeout=1.0):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.02)
    return None


def knows(server, rule_id):
    r = server.check(rule_id, "probe-" + str(time.monotonic_ns()))
    return r.status == 200 and r.json().get("rule") == rule_id


def pair(make_server, redis, workdir):
    env = {"RATEKIT_REDIS_URL": redis.url}
    a = make_server(env=env, db_path=os.path.join(workdir, "a.db"))
    b = make_server(env=env, db_path=os.path.join(workdir, "b.db"))
    return a, b


def redis_version(redis):
    text = redis.cli("GET", "ratekit:ruleset")
    return json.loads(text)["version"] if text else 0


def test_rule_created_on_one_instance_is_enforced_on_the_other_within_a_second(
        make_server, redis, workdir):
    a, b = pair(make_server, redis, workdir)
    assert not knows(b, "login")
    a.create_rule(**RULE)
    took = wait_until(lambda: knows(b, "login"), timeout=1.0)
    assert took is not None, "B does not know the rule a second after A stored it"

    # enforced on B: the limit is shared through Redis, and B's own rule says 2
    key = "203.0.113.7"
    answers = [b.check("login", key).json()["allowed"] for _ in range(3)]
    assert answers == [True, True, False]

    # B keeps it in its own file, written by the sync
    history = b.admin("GET", "/api/v1/rules/login/history").json()["history"]
    assert history[0]["actor"] == "sync"


def test_updates_and_deletes_follow_and_are_not_published_back(make_server, redis, workdir):
    a, b = pair(make_server, redis, workdir)
    a.create_rule(**RULE)
    assert wait_until(lambda: knows(b, "login"), timeout=1.0) is not None
    v1 = redis_version(redis)

    assert a.admin("PATCH", "/api/v1/rules/login", {"limit": 7}).status == 200
    assert wait_until(lambda: b.admin("GET", "/api/v1/rules/login").json().get("limit") == 7,
                      timeout=1.0) is not None
    v2 = redis_version(redis)
    assert v2 == v1 + 1

    # a change made on B travels back to A
    assert b.admin("DELETE", "/api/v1/rules/login").status == 204
    assert wait_until(lambda: a.admin("GET", "/api/v1/rules/login").status == 404,
                      timeout=1.0) is not None
    time.sleep(0.5)
    assert redis_version(redis) == v2 + 1, "an instance that imported published again"


def test_older_version_in_redis_is_ignored(make_server, redis, workdir):
    a, b = pair(make_server, redis, workdir)
    a.create_rule(**RULE)
    assert wait_until(lambda: knows(b, "login"), timeout=1.0) is not None
    current = json.loads(redis.cli("GET", "ratekit:ruleset"))
    stale = {"version": current["version"] - 1, "origin": "elsewhere", "rules": []}
    redis.cli("SET", "ratekit:ruleset", json.dumps(stale, separators=(",", ":")))
    redis.cli("PUBLISH", "ratekit:ruleset", str(stale["version"]))
    time.sleep(0.5)
    assert knows(b, "login") and knows(a, "login")


def test_newer_document_written_to_redis_is_imported(make_server, redis, workdir):
    a, b = pair(make_server, redis, workdir)
    a.create_rule(**RULE)
    assert wait_until(lambda: knows(b, "login"), timeout=1.0) is not None
    current = json.loads(redis.cli("GET", "ratekit:ruleset"))
    newer = {"version": current["version"] + 5, "origin": "gitops",
             "rules": [{"id": "search", "algorithm": "token_bucket", "limit": 10, "window": "1s"}]}
    redis.cli("SET", "ratekit:ruleset", json.dumps(newer, separators=(",", ":")))
    redis.cli("PUBLISH", "ratekit:ruleset", str(newer["version"]))
    for s in (a, b):
        assert wait_until(lambda: knows(s, "search") and not knows(s, "login"),
                          timeout=1.0) is not None


def test_instance_restarted_without_redis_keeps_the_synced_rules(make_server, redis, workdir):
    a, b = pair(make_server, redis, workdir)
    a.create_rule(**RULE)
    assert wait_until(lambda: knows(b, "login"), timeout=1.0) is not None
    assert b.stop() == 0
    redis.stop()
    b2 = make_server(env={"RATEKIT_REDIS_URL": redis.url}, db_path=b.db_path)
    r = b2.admin("GET", "/api/v1/rules/login")
    assert r.status == 200 and r.json()["limit"] == 2
    assert knows(b2, "login")


def test_new_instance_joining_gets_the_ruleset(make_server, redis, workdir):
    env = {"RATEKIT_REDIS_URL": redis.url}
    a = make_server(env=env, db_path=os.path.join(workdir, "a.db"))
    a.create_rule(**RULE)
    assert wait_until(lambda: redis_version(redis) > 0, timeout=1.0) is not None
    c = make_server(env=env, db_path=os.path.join(workdir, "c.db"))
    assert wait_until(lambda: knows(c, "login"), timeout=2.0) is not None


def test_tokens_and_their_revocation_reach_the_other_instance(make_server, redis, workdir):
    a, b = pair(make_server, redis, workdir)
    t = a.admin("POST", "/api/v1/tokens", {"name": "ci", "role": "editor"}).json()
    assert wait_until(lambda: b.admin("GET", "/api/v1/rules", token=t["token"]).status == 200,
                      timeout=1.0) is not None
    assert t["token"].split("_", 2)[2] not in redis.cli("GET", "ratekit:ruleset")
    assert a.admin("DELETE", "/api/v1/tokens/" + t["id"]).status == 204
    assert wait_until(lambda: b.admin("GET", "/api/v1/rules", token=t["token"]).status == 401,
                      timeout=1.0) is not None, "B still accepts a token revoked on A"


def test_an_override_on_one_instance_does_not_hold_back_changes_from_the_other(
        make_server, redis, workdir):
    a, b = pair(make_server, redis, workdir)
    a.create_rule(**RULE)
    assert wait_until(lambda: knows(b, "login"), timeout=1.0) is not None
    assert b.admin("PUT", "/api/v1/rules/login/overrides/user:1", {"limit": 9}).status == 200
    assert a.admin("PATCH", "/api/v1/rules/login", {"limit": 5}).status == 200
    assert wait_until(lambda: b.admin("GET", "/api/v1/rules/login").json().get("limit") == 5,
                      timeout=1.0) is not None
    assert b.check("login", "user:1").json()["limit"] == 9
