"""Hot reload across instances that share only Redis, each with its own
SQLite file: a change on one is in force on the other within a second, and
survives in the other's file when Redis is gone."""

import json
import os
import time

from conftest import request

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

    # entries that do not hold together are left out; the others apply
    good = {"id": 7, "list": "denylist", "value": "user:eve", "kind": "key", "source": "list",
            "expires_at": None, "note": "", "created_at": 1, "created_by": "gitops"}
    bad = [dict(good, id=8, list="blocklist"), dict(good, id=9, value=42), "junk",
           dict(good, id=10, created_at="yesterday"), dict(good, id=-1)]
    newest = dict(newer, version=newer["version"] + 1, lists=[good] + bad,
                  overrides=[{"rule": "search", "key": "user:1", "limit": "lots"}])
    redis.cli("SET", "ratekit:ruleset", json.dumps(newest, separators=(",", ":")))
    redis.cli("PUBLISH", "ratekit:ruleset", str(newest["version"]))
    for s in (a, b):
        assert wait_until(lambda: s.check("search", "user:eve").json().get("reason") == "denylist",
                          timeout=2.0) is not None
        assert [e["id"] for e in s.admin("GET", "/api/v1/lists").json()["entries"]] == [7]
        assert s.admin("GET", "/api/v1/rules/search/overrides").json()["overrides"] == []


def test_a_published_rule_with_a_burst_its_algorithm_ignores_is_imported(make_server, redis,
                                                                         workdir):
    """An instance of an earlier version may publish a burst on an algorithm
    that ignores it (refused as input since): the ruleset still applies."""
    a, b = pair(make_server, redis, workdir)
    a.create_rule(**RULE)
    assert wait_until(lambda: knows(b, "login"), timeout=1.0) is not None
    current = json.loads(redis.cli("GET", "ratekit:ruleset"))
    newer = {"version": current["version"] + 1, "origin": "older-instance",
             "rules": [{"id": "search", "algorithm": "fixed_window", "limit": 10, "window": "1h",
                        "burst": 20, "plans": {"pro": {"limit": 50, "burst": 60}}}]}
    redis.cli("SET", "ratekit:ruleset", json.dumps(newer, separators=(",", ":")))
    redis.cli("PUBLISH", "ratekit:ruleset", str(newer["version"]))
    for s in (a, b):
        assert wait_until(lambda: knows(s, "search") and not knows(s, "login"),
                          timeout=2.0) is not None
        got = s.admin("GET", "/api/v1/rules/search").json()
        assert got["limit"] == 10 and got["plans"]["pro"]["limit"] == 50


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
                      timeout=2.0) is not None
    assert t["token"].split("_", 2)[2] not in redis.cli("GET", "ratekit:ruleset")
    assert a.admin("DELETE", "/api/v1/tokens/" + t["id"]).status == 204
    assert wait_until(lambda: b.admin("GET", "/api/v1/rules", token=t["token"]).status == 401,
                      timeout=2.0) is not None, "B still accepts a token revoked on A"


def limit_for(server, key):
    r = server.check("login", key)
    return r.json().get("limit") if r.status == 200 else None


def test_overrides_made_on_one_instance_apply_on_the_other(make_server, redis, workdir):
    a, b = pair(make_server, redis, workdir)
    a.create_rule(**RULE)
    assert wait_until(lambda: knows(b, "login"), timeout=2.0) is not None
    assert a.admin("PUT", "/api/v1/rules/login/overrides/user:1", {"limit": 9}).status == 200
    assert wait_until(lambda: limit_for(b, "user:1") == 9, timeout=2.0) is not None, \
        "B does not apply an override set on A"
    assert limit_for(b, "user:2") == 2
    stored = b.admin("GET", "/api/v1/rules/login/overrides").json()
    assert [(o["key"], o["limit"]) for o in stored["overrides"]] == [("user:1", 9)]

    # a rule changed on B keeps the override; an override removed on B is gone on A
    assert b.admin("PATCH", "/api/v1/rules/login", {"limit": 5}).status == 200
    assert wait_until(lambda: a.admin("GET", "/api/v1/rules/login").json().get("limit") == 5,
                      timeout=2.0) is not None
    assert limit_for(a, "user:1") == 9
    assert b.admin("DELETE", "/api/v1/rules/login/overrides/user:1").status == 204
    assert wait_until(lambda: limit_for(a, "user:1") == 5, timeout=2.0) is not None

    # overrides an import sets on A apply on B
    doc = a.admin("GET", "/api/v1/rules/export").json()
    doc["overrides"] = [{"rule": "login", "key": "user:3", "limit": 7}]
    assert a.admin("POST", "/api/v1/rules/import", doc).json()["overrides"]["created"] == 1
    assert wait_until(lambda: limit_for(b, "user:3") == 7, timeout=2.0) is not None, \
        "B does not apply an override an import set on A"


def test_lists_and_bans_made_on_one_instance_apply_on_the_other(make_server, redis, workdir):
    a, b = pair(make_server, redis, workdir)
    a.create_rule(**RULE)
    assert wait_until(lambda: knows(b, "login"), timeout=2.0) is not None
    entry = a.admin("POST", "/api/v1/lists", {"list": "denylist", "value": "203.0.113.0/24",
                                              "note": "abuse"}).json()
    assert wait_until(lambda: b.check("login", "203.0.113.9").json().get("reason") == "denylist",
                      timeout=2.0) is not None, "B does not refuse a client denylisted on A"
    listed = b.admin("GET", "/api/v1/lists").json()["entries"]
    assert [(e["id"], e["value"], e["note"]) for e in listed] == [(entry["id"], "203.0.113.0/24",
                                                                   "abuse")]
    ban = b.admin("POST", "/api/v1/bans", {"value": "user:mallory", "duration": "10m"}).json()
    assert wait_until(lambda: a.check("login", "user:mallory").json().get("reason") == "denylist",
                      timeout=2.0) is not None, "A does not refuse a client banned on B"
    assert a.admin("DELETE", f"/api/v1/lists/{entry['id']}").status == 204
    assert a.admin("DELETE", f"/api/v1/bans/{ban['id']}").status == 204
    # (each poll counts against the rule's limit of 2: look at the reason, not at allowed)
    assert wait_until(lambda: "reason" not in b.check("login", "203.0.113.9").json()
                      and "reason" not in b.check("login", "user:mallory").json(),
                      timeout=2.0) is not None, "entries removed on A still apply on B"


def refused(server, ip):
    """Whether forward-auth refuses a client by the denylist (no rule needed)."""
    return request("GET", server.data + "/v1/auth",
                   headers={"X-Original-URI": "/", "X-Forwarded-For": ip}).status == 403


def test_lists_alone_are_published_again_when_redis_lost_them(make_server, redis, workdir):
    a, b = pair(make_server, redis, workdir)
    assert a.admin("POST", "/api/v1/lists", {"list": "denylist", "value": "203.0.113.0/24"}
                   ).status == 201
    assert wait_until(lambda: refused(b, "203.0.113.9"), timeout=2.0) is not None
    redis.cli("FLUSHALL")  # a Redis restarted without persistence
    assert wait_until(lambda: redis_version(redis) > 0, timeout=5.0) is not None, \
        "nobody published the lists again"
    c = make_server(env={"RATEKIT_REDIS_URL": redis.url}, db_path=os.path.join(workdir, "c.db"))
    assert wait_until(lambda: refused(c, "203.0.113.9"), timeout=2.0) is not None
    assert not refused(c, "198.51.100.1")


def test_a_redis_that_lost_the_ruleset_keeps_both_ways_in_sync(make_server, redis, workdir):
    """Redis restarted without persistence (or flushed) starts the versions
    again from 1: the instances must follow the new ones both ways, not wait
    for them to pass the versions they saw before, nor delete on the way
    what one of them created meanwhile."""
    a, b = pair(make_server, redis, workdir)
    for i in range(6):
        a.create_rule(**dict(RULE, id=f"r{i}"))
    assert wait_until(lambda: knows(b, "r5"), timeout=2.0) is not None
    redis.cli("FLUSHALL")
    a.create_rule(**dict(RULE, id="after"))
    assert wait_until(lambda: knows(b, "after"), timeout=3.0) is not None, \
        "B ignores the versions of the Redis that lost the ruleset"
    b.create_rule(**dict(RULE, id="from-b"))
    assert wait_until(lambda: knows(a, "from-b"), timeout=3.0) is not None
    for i in range(6):  # versions pass the old ones: nothing acknowledged is lost
        assert b.admin("PATCH", "/api/v1/rules/from-b", {"limit": 3 + i}).status == 200
    assert wait_until(lambda: a.admin("GET", "/api/v1/rules/from-b").json().get("limit") == 8,
                      timeout=3.0) is not None
    assert knows(a, "after") and knows(b, "after") and knows(a, "r0")


def test_a_change_made_while_redis_was_away_survives_a_restart(make_server, make_redis,
                                                                workdir):
    """Redis (with persistence) goes away; a limit is raised and a client
    denied (both acknowledged); ratekitd restarts before Redis is back. The
    changes are published then, not replaced by Redis's older copy."""
    redis = make_redis(args=("--appendonly", "yes"))
    env = {"RATEKIT_REDIS_URL": redis.url}
    a = make_server(env=env, db_path=os.path.join(workdir, "a.db"))
    a.create_rule(**RULE)
    assert wait_until(lambda: redis_version(redis) > 0, timeout=2.0) is not None
    redis.stop()
    assert a.admin("PATCH", "/api/v1/rules/login", {"limit": 50}).status == 200
    assert a.admin("POST", "/api/v1/lists", {"list": "denylist", "value": "192.0.2.1"}
                   ).status == 201
    assert a.stop() == 0
    back = make_redis(args=("--appendonly", "yes"), port=redis.port, dir=redis.dir)
    assert json.loads(back.cli("GET", "ratekit:ruleset"))["rules"][0]["limit"] == 2
    a2 = make_server(env=env, db_path=a.db_path)
    assert a2.admin("GET", "/api/v1/rules/login").json()["limit"] == 50
    assert refused(a2, "192.0.2.1")
    assert wait_until(lambda: json.loads(back.cli("GET", "ratekit:ruleset"))["rules"][0]["limit"]
                      == 50, timeout=3.0) is not None, "the change was not published"
    assert a2.admin("GET", "/api/v1/rules/login").json()["limit"] == 50
    assert refused(a2, "192.0.2.1")


def test_instances_sharing_one_file_and_redis_never_publish_a_stale_ruleset(make_server, redis,
                                                                             workdir):
    """Two processes on one SQLite file and one Redis: each sees the other's
    commits in the file, and the one that did not make them may publish the
    file as it read it a moment ago. That export must never replace a newer
    document in Redis (and then come back to delete the newest rules)."""
    env = {"RATEKIT_REDIS_URL": redis.url}
    a = make_server(env=env, db_path=os.path.join(workdir, "shared.db"))
    b = make_server(env=env, db_path=a.db_path)
    ids = [f"s{i:02d}" for i in range(40)]
    for rule_id in ids:
        a.create_rule(**dict(RULE, id=rule_id))
    time.sleep(2.0)  # every publish and import settled
    for s in (a, b):
        assert sorted(r["id"] for r in s.admin("GET", "/api/v1/rules").json()["rules"]) == ids
    assert sorted(r["id"] for r in json.loads(redis.cli("GET", "ratekit:ruleset"))["rules"]) == ids


def test_changes_made_at_the_same_moment_on_two_instances_are_all_kept(make_server, redis,
                                                                       workdir):
    """Each instance publishes its whole ruleset, the last one published
    winning. Two changes made on two instances before either saw the other's
    (Redis paused, so that neither publish lands first) must both hold: a
    token revoked on A must not come back with the rule B created, nor B's
    rule be lost to A's revocation, nor either's list entries."""
    import signal
    a, b = pair(make_server, redis, workdir)
    old = a.admin("POST", "/api/v1/tokens", {"name": "old", "role": "admin"}).json()
    a.create_rule(id="before", algorithm="fixed_window", limit=5, window="1m")
    assert wait_until(lambda: knows(b, "before") and b.admin(
        "GET", "/api/v1/info", token=old["token"]).status == 200, timeout=3.0) is not None
    redis.proc.send_signal(signal.SIGSTOP)
    try:
        assert a.admin("DELETE", "/api/v1/tokens/" + old["id"]).status == 204
        a.create_rule(id="from-a", algorithm="fixed_window", limit=5, window="1m")
        assert a.admin("POST", "/api/v1/lists", {"list": "denylist",
                                                 "value": "203.0.113.1"}).status == 201
        new = b.admin("POST", "/api/v1/tokens", {"name": "new", "role": "viewer"}).json()
        b.create_rule(id="from-b", algorithm="gcra", limit=5, window="1m")
        assert b.admin("PATCH", "/api/v1/rules/before", {"limit": 9}).status == 200
        assert b.admin("POST", "/api/v1/lists", {"list": "denylist",
                                                 "value": "203.0.113.2"}).status == 201
        time.sleep(0.5)  # both publishes wait on Redis
    finally:
        redis.proc.send_signal(signal.SIGCONT)

    def converged(server):
        rules = {r["id"]: r["limit"] for r in server.admin("GET", "/api/v1/rules").json()["rules"]}
        listed = {e["value"] for e in server.admin("GET", "/api/v1/lists").json()["entries"]}
        return (rules == {"before": 9, "from-a": 5, "from-b": 5} and
                listed == {"203.0.113.1", "203.0.113.2"} and
                server.admin("GET", "/api/v1/info", token=old["token"]).status == 401 and
                server.admin("GET", "/api/v1/rules", token=new["token"]).status == 200)

    assert wait_until(lambda: converged(a) and converged(b), timeout=8.0) is not None, (
        a.admin("GET", "/api/v1/rules").json(), b.admin("GET", "/api/v1/rules").json(),
        a.output()[-1500:], b.output()[-1500:])
    ids = {e["id"] for e in a.admin("GET", "/api/v1/lists").json()["entries"]}
    assert len(ids) == 2, "two entries, each with an id of its own"


def test_a_change_kept_across_a_restart_is_merged_with_the_other_instances(make_server, redis,
                                                                          workdir):
    """An instance that stops with a change it could not publish (Redis
    away) publishes it when it starts again. If another instance changed
    something meanwhile, both changes must hold: the one stopped keeps, in
    its file, the document it last had in common with Redis, and merges
    against it as it would have without the restart."""
    import signal
    a, b = pair(make_server, redis, workdir)
    a.create_rule(id="before", algorithm="fixed_window", limit=5, window="1m")
    assert wait_until(lambda: knows(b, "before"), timeout=3.0) is not None
    redis.proc.send_signal(signal.SIGSTOP)
    try:
        a.create_rule(id="from-a", algorithm="fixed_window", limit=5, window="1m")
        assert a.admin("PATCH", "/api/v1/rules/before", {"limit": 7}).status == 200
        a.stop(sig=signal.SIGKILL)
    finally:
        redis.proc.send_signal(signal.SIGCONT)
    b.create_rule(id="from-b", algorithm="gcra", limit=5, window="1m")
    assert wait_until(lambda: "from-b" in redis.cli("GET", "ratekit:ruleset"), timeout=3.0)
    a2 = make_server(env={"RATEKIT_REDIS_URL": redis.url}, db_path=a.db_path)

    def converged(server):
        rules = {r["id"]: r["limit"] for r in server.admin("GET", "/api/v1/rules").json()["rules"]}
        return rules == {"before": 7, "from-a": 5, "from-b": 5}

    assert wait_until(lambda: converged(a2) and converged(b), timeout=8.0) is not None, (
        a2.admin("GET", "/api/v1/rules").json(), b.admin("GET", "/api/v1/rules").json(),
        a2.output()[-1500:])


def test_one_rule_changed_on_two_instances_at_once_keeps_both_changes(make_server, redis,
                                                                      workdir):
    """The limit lowered on A while B fixes the description, at the same
    moment: both hold (the whole rule of the last to publish won before,
    undoing the limit). A field changed on both sides is decided by the
    last to publish."""
    import signal
    a, b = pair(make_server, redis, workdir)
    a.create_rule(id="lu", algorithm="fixed_window", limit=100, window="1m")
    assert wait_until(lambda: knows(b, "lu"), timeout=3.0) is not None
    redis.proc.send_signal(signal.SIGSTOP)
    try:
        assert a.admin("PATCH", "/api/v1/rules/lu", {"limit": 5}).status == 200
        assert b.admin("PATCH", "/api/v1/rules/lu", {"description": "tighten later"}).status == 200
        time.sleep(0.3)
    finally:
        redis.proc.send_signal(signal.SIGCONT)

    def converged(server):
        r = server.admin("GET", "/api/v1/rules/lu").json()
        return (r["limit"], r["description"]) == (5, "tighten later")

    assert wait_until(lambda: converged(a) and converged(b), timeout=8.0) is not None, (
        a.admin("GET", "/api/v1/rules/lu").json(), b.admin("GET", "/api/v1/rules/lu").json())
    assert a.admin("GET", "/api/v1/rules/lu").headers["etag"] == \
        b.admin("GET", "/api/v1/rules/lu").headers["etag"]


def test_a_change_made_on_another_instance_is_a_reload_event(make_server, redis, workdir):
    """The dashboard tells an import made here from a change another instance
    made: the latter's stream event says "reload", as the API documents."""
    from test_observability import EventStream
    a, b = pair(make_server, redis, workdir)
    stream = EventStream(b)
    a.create_rule(**RULE)
    event = stream.events_until(lambda e: e["event"] == "rule", timeout=3)[-1]
    stream.close()
    assert event["data"]["action"] == "reload", event
