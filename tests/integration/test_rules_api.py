"""The rules admin API, black-box: CRUD, validation, history and restore,
export/import, hot reload across two processes, durability across kill -9."""

import json
import re
import signal
import sqlite3
import threading
import time

from conftest import request

RULE = {"id": "api-per-ip", "algorithm": "fixed_window", "limit": 5, "window": "1m"}


def rule(**over):
    r = dict(RULE)
    r.update(over)
    return r


def rule_ids(server):
    r = server.admin("GET", "/api/v1/rules")
    assert r.status == 200, r
    return sorted(x["id"] for x in r.json()["rules"])


def ruleset_version(server):
    return server.admin("GET", "/api/v1/rules").json()["version"]


def wait_until(predicate, timeout=1.0):
    """Polls predicate every 20 ms; returns how long it took, or None."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.02)
    return None


def test_crud_round_trip(server):
    r = server.admin("POST", "/api/v1/rules",
                     rule(description="public API", algorithm="token_bucket", burst=2))
    assert r.status == 201, r
    created = r.json()
    assert created["id"] == "api-per-ip"
    assert created["window_ms"] == 60000
    assert "window" not in created
    assert created["version"] == 1
    assert created["mode"] == "enforce" and created["priority"] == 100
    assert created["key"] == ["ip"]
    assert created["created_at"].endswith("Z") and created["updated_at"].endswith("Z")

    r = server.admin("GET", "/api/v1/rules/api-per-ip")
    assert r.status == 200 and r.json() == created

    listing = server.admin("GET", "/api/v1/rules").json()
    assert [x["id"] for x in listing["rules"]] == ["api-per-ip"]
    assert listing["version"] >= 1

    r = server.admin("PUT", "/api/v1/rules/api-per-ip", rule(limit=50))
    assert r.status == 200, r
    assert r.json()["limit"] == 50 and r.json()["version"] == 2
    assert r.json()["burst"] is None, "PUT replaces the whole rule"

    r = server.admin("DELETE", "/api/v1/rules/api-per-ip")
    assert r.status == 204 and r.body == b""
    assert server.admin("GET", "/api/v1/rules/api-per-ip").status == 404
    r = server.admin("DELETE", "/api/v1/rules/api-per-ip")
    assert r.status == 404 and r.json()["error"]["code"] == "not_found"
    assert server.admin("PUT", "/api/v1/rules/nope", rule(id="nope")).status == 404


def test_create_of_an_existing_id_is_a_conflict(server):
    server.create_rule(**RULE)
    r = server.admin("POST", "/api/v1/rules", rule(limit=999))
    assert r.status == 409 and r.json()["error"]["code"] == "conflict"
    assert server.admin("GET", "/api/v1/rules/api-per-ip").json()["limit"] == 5


def test_dry_run_validates_and_stores_nothing(server):
    before = ruleset_version(server)
    r = server.admin("POST", "/api/v1/rules?dry_run=1", rule(window="30s"))
    assert r.status == 200, r
    assert r.json()["window_ms"] == 30000 and r.json()["id"] == "api-per-ip"
    assert rule_ids(server) == []
    assert server.admin("GET", "/api/v1/rules/api-per-ip").status == 404
    assert ruleset_version(server) == before

    r = server.admin("POST", "/api/v1/rules?dry_run=1", rule(limit=0))
    assert r.status == 400 and r.json()["error"]["code"] == "invalid_rule"

    server.create_rule(**RULE)
    r = server.admin("PATCH", "/api/v1/rules/api-per-ip?dry_run=1", {"limit": 77})
    assert r.status == 200 and r.json()["limit"] == 77
    assert server.admin("GET", "/api/v1/rules/api-per-ip").json()["limit"] == 5
    assert server.admin("POST", "/api/v1/rules?dry_run=1", RULE).status == 409


def test_invalid_rule_lists_every_problem_and_stores_nothing(server):
    bad = {"id": "Not Valid", "algorithm": "quantum", "limit": 0, "window": "soon",
           "mode": "loud", "key": ["cookie"], "colour": "red",
           "match": {"methods": ["FETCH"], "path": "no-slash"},
           "plans": {"pro": {"limit": -1}}}
    r = server.admin("POST", "/api/v1/rules", bad)
    assert r.status == 400, r
    err = r.json()["error"]
    assert err["code"] == "invalid_rule"
    fields = {e["field"] for e in err["errors"]}
    for f in ("id", "algorithm", "limit", "window", "mode", "key[0]", "colour",
              "match.methods[0]", "match.path", "plans.pro.limit"):
        assert f in fields, (f, err["errors"])
    assert all(e["message"] for e in err["errors"])
    assert rule_ids(server) == []


def test_numbers_are_range_checked_exactly(server):
    for limit in (1.5, "10", 1e300, 10000001, -3, True):
        r = server.admin("POST", "/api/v1/rules", rule(limit=limit))
        assert r.status == 400, (limit, r)
        assert [e["field"] for e in r.json()["error"]["errors"]] == ["limit"]
    r = server.admin("POST", "/api/v1/rules", rule(algorithm="sliding_log", limit=100001))
    assert r.status == 400
    assert server.admin("POST", "/api/v1/rules", rule(limit=10000000)).status == 201
    assert rule_ids(server) == ["api-per-ip"]


def test_window_duration_strings(server):
    cases = {"500ms": 500, "30s": 30000, "1m": 60000, "1h": 3600000, "1d": 86400000}
    for i, (text, ms) in enumerate(cases.items()):
        created = server.create_rule(**rule(id=f"w{i}", window=text))
        assert created["window_ms"] == ms, text
    for text in ("1.5s", "2w", "8d", "0s", "s", "-1m"):
        r = server.admin("POST", "/api/v1/rules", rule(id="bad", window=text))
        assert r.status == 400, text
    r = server.admin("POST", "/api/v1/rules", rule(id="both", window_ms=1000))
    assert r.status == 400, "window and window_ms together are ambiguous"


def test_bad_json_is_refused(server):
    for body in (b'{"id": "x"} trailing', b"{", b"", b"[1,"):
        r = request("POST", server.admin_url + "/api/v1/rules", body=body,
                    headers={"Authorization": "Bearer " + server.token,
                             "Content-Type": "application/json"})
        assert r.status == 400, (body, r)
        assert r.json()["error"]["code"] == "invalid_json"
    assert rule_ids(server) == []


def test_patch_merges_fields_then_validates_the_whole(server):
    server.create_rule(**rule(algorithm="token_bucket", burst=3, plans={"pro": {"limit": 50}}))
    r = server.admin("PATCH", "/api/v1/rules/api-per-ip", {"limit": 9, "window": "1h"})
    assert r.status == 200, r
    got = r.json()
    assert (got["limit"], got["window_ms"], got["burst"]) == (9, 3600000, 3)
    assert got["plans"] == {"pro": {"limit": 50}}
    assert got["version"] == 2

    r = server.admin("PATCH", "/api/v1/rules/api-per-ip", {"algorithm": "token_bucket", "shape": True})
    assert r.status == 400 and r.json()["error"]["errors"][0]["field"] == "shape"
    r = server.admin("PATCH", "/api/v1/rules/api-per-ip", {"id": "other"})
    assert r.status == 400
    r = server.admin("PATCH", "/api/v1/rules/api-per-ip", {"nonsense": 1})
    assert r.status == 400
    assert server.admin("GET", "/api/v1/rules/api-per-ip").json()["version"] == 2
    assert server.admin("PATCH", "/api/v1/rules/missing", {"limit": 1}).status == 404


BURST_IGNORED = ("fixed_window", "sliding_window", "sliding_log", "concurrency")


def refused_fields(r):
    assert r.status == 400, r
    assert r.json()["error"]["code"] in ("invalid_rule", "invalid_override"), r
    return [(e["field"], e["message"]) for e in r.json()["error"]["errors"]]


def test_burst_is_refused_where_the_algorithm_ignores_it(server):
    """DESIGN §3: a burst means something to token_bucket, gcra and
    leaky_bucket only; elsewhere it is refused as shape is, not stored."""
    only = "applies to token_bucket, gcra and leaky_bucket only"
    for alg in BURST_IGNORED:
        body = rule(id="r-" + alg.replace("_", "-"), algorithm=alg, burst=10)
        for query in ("", "?dry_run=1"):
            r = server.admin("POST", "/api/v1/rules" + query, body)
            assert refused_fields(r) == [("burst", only)], (alg, query)
        r = server.admin("POST", "/api/v1/rules", dict(body, burst=None, plans={"pro": {"burst": 4}}))
        assert refused_fields(r) == [("plans.pro.burst", only)], alg
        # an export of an earlier version carries such bursts: it imports, without them
        r = server.admin("POST", "/api/v1/rules/import", {"rules": [body]})
        assert r.status == 200 and r.json()["created"] == 1, (alg, r.body)
        assert server.admin("GET", "/api/v1/rules/" + body["id"]).json()["burst"] is None
        assert server.admin("DELETE", "/api/v1/rules/" + body["id"]).status == 204
        assert server.admin("POST", "/api/v1/rules", dict(body, burst=None)).status == 201
        path = "/api/v1/rules/" + body["id"]
        assert refused_fields(server.admin("PUT", path, body)) == [("burst", only)], alg
        assert refused_fields(server.admin("PATCH", path, {"burst": 3})) == [("burst", only)]
        r = server.admin("PUT", path + "/overrides/user:1", {"limit": 3, "burst": 6})
        assert refused_fields(r) == [("burst", only)], alg
        assert server.admin("GET", path).json()["burst"] is None
    # a change of algorithm that would leave the burst ignored is refused too
    server.create_rule(**rule(id="tb", algorithm="token_bucket", burst=5))
    r = server.admin("PATCH", "/api/v1/rules/tb", {"algorithm": "fixed_window"})
    assert refused_fields(r) == [("burst", only)]
    for alg in ("token_bucket", "gcra", "leaky_bucket"):
        got = server.create_rule(**rule(id="ok-" + alg.replace("_", "-"), algorithm=alg, burst=7,
                                        plans={"pro": {"burst": 9}}))
        assert got["burst"] == 7 and got["plans"]["pro"]["burst"] == 9


def test_a_stored_rule_with_an_ignored_burst_still_loads_and_can_be_changed(make_server,
                                                                           workdir):
    """A burst stored where it is ignored (accepted by earlier versions) is
    no reason to drop the rule, nor to refuse a change that does not give it."""
    s = make_server()
    s.create_rule(**rule(id="old", limit=2, plans={"pro": {"limit": 5}}))
    assert s.admin("PUT", "/api/v1/rules/old/overrides/user:9", {"limit": 3}).status == 200
    assert s.stop() == 0
    with sqlite3.connect(s.db_path) as db:
        body = json.loads(db.execute("SELECT body FROM rules WHERE id = 'old'").fetchone()[0])
        body["burst"] = 20
        body["plans"]["pro"]["burst"] = 9
        text = json.dumps(body, separators=(",", ":"))
        db.execute("UPDATE rules SET body = ? WHERE id = 'old'", (text,))
        db.execute("UPDATE rule_history SET after = ? WHERE rule_id = 'old'", (text,))
        db.execute("UPDATE rule_overrides SET burst = 7 WHERE rule_id = 'old'")
    s = make_server(db_path=s.db_path)
    assert [s.check("old", "k").json()["allowed"] for _ in range(3)] == [True, True, False]
    r = s.admin("PUT", "/api/v1/rules/old/overrides/user:1", {"limit": 4})
    assert r.status == 200, r
    r = s.admin("PATCH", "/api/v1/rules/old", {"limit": 3})
    assert r.status == 200, r
    assert r.json()["burst"] is None and r.json()["plans"] == {"pro": {"limit": 5}}
    r = s.admin("POST", "/api/v1/rules/old/restore/1")
    assert r.status == 200, r
    assert r.json()["limit"] == 2 and r.json()["burst"] is None


def test_a_stored_rule_that_is_not_json_can_be_replaced_or_deleted(make_server):
    """A rule whose stored body was broken outside ratekit (a hand edit) is
    left out of the ruleset; a PUT or a DELETE without If-Match, which need
    nothing from the old body, still mend it."""
    s = make_server()
    for id in ("broken-a", "broken-b"):
        s.create_rule(**rule(id=id, limit=2))
    assert s.stop() == 0
    with sqlite3.connect(s.db_path) as db:
        db.execute("UPDATE rules SET body = '{\"id\": \"broken' WHERE id LIKE 'broken-%'")
    s = make_server(db_path=s.db_path)
    assert s.check("broken-a", "k").status == 404
    r = s.admin("PUT", "/api/v1/rules/broken-a", rule(id="broken-a", limit=1))
    assert r.status == 200 and r.json()["limit"] == 1, r
    assert [s.check("broken-a", "k").json()["allowed"] for _ in range(2)] == [True, False]
    assert s.admin("DELETE", "/api/v1/rules/broken-b").status == 204
    assert s.admin("GET", "/api/v1/rules/broken-b").status == 404


def test_a_match_or_key_said_in_another_order_or_capitals_is_no_change(server):
    """Methods and hosts are sets, header names ignore case: a rule stores
    them one way (methods in their order, hosts sorted, header names in
    lower case), so that saying them otherwise makes no new version."""
    created = server.create_rule(
        id="canon", algorithm="fixed_window", limit=2, window="1m",
        match={"methods": ["post", "GET", "GET"], "hosts": ["B.example.com", "a.example.com",
                                                              "b.example.com"],
               "headers": {"X-Env": "prod"}},
        key=["header:X-Tenant+ip"])
    assert created["match"]["methods"] == ["GET", "POST"]
    assert created["match"]["hosts"] == ["a.example.com", "b.example.com"]
    assert created["match"]["headers"] == {"x-env": "prod"}
    assert created["key"] == ["header:x-tenant+ip"]
    for body in ({"match": {"methods": ["POST", "GET"], "hosts": ["b.example.com", "A.example.com"],
                            "headers": {"x-ENV": "prod"}}},
                 {"key": ["header:x-TENANT+ip"]}):
        r = server.admin("PATCH", "/api/v1/rules/canon", body)
        assert r.status == 200 and r.json()["version"] == 1, (body, r)
    assert len(server.admin("GET", "/api/v1/rules/canon/history").json()["history"]) == 1
    # it matches as it did: any capitals of the host and the header's name
    answer = request("POST", server.data + "/v1/check", {"request": {
        "method": "POST", "path": "/", "ip": "203.0.113.7", "host": "B.Example.com",
        "headers": {"X-ENV": "prod", "x-tenant": "acme"}}}).json()
    assert [(x["rule"], x["key"]) for x in answer["results"]] == [
        ("canon", "header:x-tenant:acme|ip:203.0.113.7")], answer
    r = server.admin("PATCH", "/api/v1/rules/canon",
                     {"match": {"headers": {"X-Env": "prod", "x-env": "dev"}}})
    assert r.status == 400 and "given twice" in r.body.decode(), r


def patch_in_parallel(servers, rule_id, bodies):
    """Sends each body as a PATCH of rule_id at the same moment, the i-th
    through servers[i % len(servers)]; answers the responses in order."""
    go = threading.Barrier(len(bodies))
    answers = [None] * len(bodies)

    def send(i):
        go.wait()
        answers[i] = servers[i % len(servers)].admin("PATCH", f"/api/v1/rules/{rule_id}",
                                                     bodies[i])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def assert_no_patch_lost(servers, rounds):
    """Rounds of two parallel PATCHes of different fields: after each, both
    changes are stored, and the history holds one entry per change, each
    changing only its own field of the version before it."""
    a = servers[0]
    a.create_rule(**rule(description="d0", priority=0))
    for n in range(1, rounds + 1):
        got = patch_in_parallel(servers, "api-per-ip",
                                [{"description": f"d{n}"}, {"priority": n}])
        assert [r.status for r in got] == [200, 200], got
        stored = a.admin("GET", "/api/v1/rules/api-per-ip").json()
        assert (stored["description"], stored["priority"]) == (f"d{n}", n), \
            f"round {n}: a change was lost: {stored}"
        assert stored["version"] == 1 + 2 * n
        assert sorted(r.json()["version"] for r in got) == [2 * n, 2 * n + 1]

    hist = a.admin("GET", "/api/v1/rules/api-per-ip/history").json()["history"]
    assert len(hist) == 1 + 2 * rounds
    assert [h["version"] for h in hist] == list(range(1 + 2 * rounds, 0, -1))
    for h in hist[:-1]:
        assert h["action"] == "update"
        changed = {k for k in h["after"]
                   if k not in ("version", "updated_at") and h["after"][k] != h["before"][k]}
        assert changed in ({"description"}, {"priority"}), (h["version"], changed)
        assert h["before"]["version"] == h["version"] - 1


def test_parallel_patches_of_different_fields_lose_nothing(make_server):
    assert_no_patch_lost([make_server(env={"RATEKIT_THREADS": "2"})], rounds=30)


def test_parallel_patches_through_two_processes_on_one_file_lose_nothing(make_server, workdir):
    db = workdir + "/shared.db"
    env = {"RATEKIT_THREADS": "2"}
    assert_no_patch_lost([make_server(env=env, db_path=db), make_server(env=env, db_path=db)],
                         rounds=15)


def test_if_match_changes_a_rule_only_in_the_state_it_was_read(server, make_server, workdir):
    """Read, edit, write back: with the ETag of the read as If-Match, a
    change made meanwhile by someone else is not undone (412, nothing
    changed); without If-Match the change is made as before."""
    server.create_rule(id="api", algorithm="fixed_window", limit=10, window="1m")
    read = server.admin("GET", "/api/v1/rules/api")
    tag = read.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{16}"', tag), tag
    # someone else switches the rule off
    other = server.admin("PATCH", "/api/v1/rules/api", {"mode": "off"})
    assert other.status == 200 and other.headers["etag"] != tag
    for method, body in (("PUT", dict(read.json(), description="typo fixed")),
                         ("PATCH", {"description": "typo fixed"}), ("DELETE", None)):
        r = server.admin(method, "/api/v1/rules/api", body, headers={"If-Match": tag})
        assert r.status == 412 and r.json()["error"]["code"] == "precondition_failed", (method, r)
    now = server.admin("GET", "/api/v1/rules/api")
    assert now.json()["mode"] == "off" and now.json()["version"] == 2
    assert now.headers["etag"] == other.headers["etag"]
    # with the current tag (or *) it goes through, and answers the new tag
    r = server.admin("PATCH", "/api/v1/rules/api", {"description": "typo fixed"},
                     headers={"If-Match": '"0000000000000000", ' + now.headers["etag"]})
    assert r.status == 200 and r.json()["mode"] == "off" and r.headers["etag"] != now.headers["etag"]
    assert server.admin("GET", "/api/v1/rules/api").headers["etag"] == r.headers["etag"]
    assert server.admin("DELETE", "/api/v1/rules/api", headers={"If-Match": "*"}).status == 204
    r = server.admin("PATCH", "/api/v1/rules/api", {"limit": 5}, headers={"If-Match": "*"})
    assert r.status == 404
    # an instance that received the rule gives it the same tag, whatever its version
    server.create_rule(id="shared", algorithm="gcra", limit=5, window="1m")
    other = make_server(db_path=workdir + "/other.db")
    export = server.admin("GET", "/api/v1/rules/export").json()
    other.admin("POST", "/api/v1/rules", {"id": "shared", "algorithm": "gcra", "limit": 1,
                                          "window": "1m"})
    assert other.admin("POST", "/api/v1/rules/import", export).status == 200
    theirs = other.admin("GET", "/api/v1/rules/shared")
    assert theirs.json()["version"] != server.admin("GET", "/api/v1/rules/shared").json()["version"]
    assert theirs.headers["etag"] == server.admin("GET", "/api/v1/rules/shared").headers["etag"]


def test_put_body_id_must_match_the_path(server):
    server.create_rule(**RULE)
    r = server.admin("PUT", "/api/v1/rules/api-per-ip", rule(id="someone-else"))
    assert r.status == 400 and r.json()["error"]["errors"][0]["field"] == "id"
    body = dict(RULE)
    del body["id"]
    r = server.admin("PUT", "/api/v1/rules/api-per-ip", dict(body, limit=8))
    assert r.status == 200 and r.json()["limit"] == 8


def test_history_and_restore_including_a_deleted_rule(server):
    server.create_rule(**RULE)
    assert server.admin("PATCH", "/api/v1/rules/api-per-ip", {"limit": 6}).status == 200
    assert server.admin("DELETE", "/api/v1/rules/api-per-ip").status == 204

    r = server.admin("GET", "/api/v1/rules/api-per-ip/history")
    assert r.status == 200, r
    hist = r.json()["history"]
    assert [h["action"] for h in hist] == ["delete", "update", "create"]
    assert [h["version"] for h in hist] == [3, 2, 1]
    assert hist[0]["after"] is None and hist[0]["before"]["limit"] == 6
    assert hist[1]["before"]["limit"] == 5 and hist[1]["after"]["limit"] == 6
    assert hist[2]["before"] is None
    assert all(h["actor"] and h["at"].endswith("Z") for h in hist)

    r = server.admin("POST", "/api/v1/rules/api-per-ip/restore/1")
    assert r.status == 200, r
    assert r.json()["limit"] == 5 and r.json()["version"] == 4
    assert server.admin("GET", "/api/v1/rules/api-per-ip").json()["limit"] == 5
    assert server.admin("GET", "/api/v1/rules/api-per-ip/history").json()["history"][0]["action"] == "restore"

    assert server.admin("POST", "/api/v1/rules/api-per-ip/restore/2").json()["limit"] == 6
    r = server.admin("POST", "/api/v1/rules/api-per-ip/restore/99")
    assert r.status == 404 and r.json()["error"]["code"] == "not_found"
    assert server.admin("POST", "/api/v1/rules/api-per-ip/restore/abc").status == 404
    assert server.admin("POST", "/api/v1/rules/api-per-ip/restore/3").status == 409
    assert server.admin("GET", "/api/v1/rules/never/history").status == 404


def test_export_import_round_trip(server, make_server, workdir):
    server.create_rule(**rule(id="a", plans={"pro": {"limit": 100}}))
    server.create_rule(**rule(id="b", algorithm="leaky_bucket", shape=True, key=["user", "ip+route"]))
    r = server.admin("GET", "/api/v1/rules/export")
    assert r.status == 200, r
    doc = r.json()
    assert doc["version"] == ruleset_version(server)
    assert doc["exported_at"].endswith("Z")
    assert [x["id"] for x in doc["rules"]] == ["a", "b"]

    other = make_server(db_path=workdir + "/other.db")
    other.create_rule(**rule(id="stale"))
    r = other.admin("POST", "/api/v1/rules/import", doc)
    assert r.status == 200, r
    res = r.json()
    assert (res["created"], res["updated"], res["deleted"]) == (2, 0, 1)
    assert res["version"] == ruleset_version(other)
    strip = lambda rules: [{k: v for k, v in x.items()
                            if k not in ("version", "created_at", "updated_at")} for x in rules]
    assert strip(other.admin("GET", "/api/v1/rules/export").json()["rules"]) == strip(doc["rules"])

    r = other.admin("POST", "/api/v1/rules/import", doc)
    assert (r.json()["created"], r.json()["updated"], r.json()["deleted"]) == (0, 0, 0)


def test_import_is_all_or_nothing(server):
    server.create_rule(**rule(id="keep"))
    before = server.admin("GET", "/api/v1/rules/export").json()
    doc = {"rules": [rule(id="new-one"), rule(id="broken", limit=0), rule(id="keep", limit=1)]}
    r = server.admin("POST", "/api/v1/rules/import", doc)
    assert r.status == 400, r
    assert r.json()["error"]["code"] == "invalid_rule"
    assert [e["field"] for e in r.json()["error"]["errors"]] == ["rules[1].limit"]
    after = server.admin("GET", "/api/v1/rules/export").json()
    assert after["rules"] == before["rules"] and after["version"] == before["version"]

    r = server.admin("POST", "/api/v1/rules/import", {"rules": [rule(id="x"), rule(id="x")]})
    assert r.status == 400 and "rules[1].id" in [e["field"] for e in r.json()["error"]["errors"]]

    r = server.admin("POST", "/api/v1/rules/import?dry_run=1", {"rules": [rule(id="new-one")]})
    assert r.status == 200 and (r.json()["created"], r.json()["deleted"]) == (1, 1)
    assert rule_ids(server) == ["keep"]


def test_export_is_not_taken_for_a_rule_id(server):
    r = server.admin("POST", "/api/v1/rules", rule(id="export"))
    assert r.status == 400
    r = server.admin("GET", "/api/v1/rules/export")
    assert r.status == 200 and "exported_at" in r.json()


def test_an_online_backup_of_the_file_starts_another_instance_with_everything(
        server, make_server, workdir):
    """The README's backup: SQLite's online backup of RATEKIT_DB, taken
    while ratekitd runs, holds the rules, their history, overrides, lists
    and tokens."""
    server.create_rule(**rule(id="a", limit=3))
    assert server.admin("PATCH", "/api/v1/rules/a", {"limit": 4}).status == 200
    assert server.admin("PUT", "/api/v1/rules/a/overrides/user:1", {"limit": 9}).status == 200
    assert server.admin("POST", "/api/v1/lists",
                        {"list": "denylist", "value": "203.0.113.0/24"}).status == 201
    secret = server.admin("POST", "/api/v1/tokens", {"name": "ci", "role": "viewer"}).json()
    backup = workdir + "/backup.db"
    with sqlite3.connect(server.db_path) as live, sqlite3.connect(backup) as copy:
        live.backup(copy)
    live.close()
    copy.close()

    other = make_server(db_path=backup)
    assert other.admin("GET", "/api/v1/rules/a").json()["limit"] == 4
    assert len(other.admin("GET", "/api/v1/rules/a/history").json()["history"]) == 2
    assert other.check("a", "user:1").json()["limit"] == 9
    assert other.check("a", "203.0.113.5").json().get("reason") == "denylist"
    assert other.admin("GET", "/api/v1/rules", token=secret["token"]).status == 200


def test_admin_token_is_required(server):
    for method, path, body in (("GET", "/api/v1/rules", None), ("POST", "/api/v1/rules", RULE),
                               ("GET", "/api/v1/rules/export", None),
                               ("POST", "/api/v1/rules/import", {"rules": []})):
        r = request(method, server.admin_url + path, body)
        assert r.status == 401, (method, path, r)
        assert r.json()["error"]["code"] == "unauthorized"
        assert server.admin(method, path, body, token="wrong-token-0123456789").status == 401
    assert rule_ids(server) == [], "nothing was created without a token"


def test_a_change_is_in_force_at_once_on_the_same_instance(server):
    assert server.check("api-per-ip", "k").status == 404
    server.create_rule(**rule(limit=2))
    d = server.check("api-per-ip", "k").json()
    assert d["allowed"] and d["limit"] == 2
    server.admin("PATCH", "/api/v1/rules/api-per-ip", {"limit": 7})
    assert server.check("api-per-ip", "k").json()["limit"] == 7


def test_two_processes_on_one_file_see_each_others_changes_within_a_second(make_server, workdir):
    db = workdir + "/shared.db"
    a = make_server(db_path=db)
    b = make_server(db_path=db)
    a.create_rule(**rule(limit=3))
    took = wait_until(lambda: b.check("api-per-ip", "k").status == 200)
    assert took is not None, "B did not see A's new rule within 1 s"
    assert b.check("api-per-ip", "k").json()["limit"] == 3

    assert b.admin("PATCH", "/api/v1/rules/api-per-ip", {"limit": 11}).status == 200
    took = wait_until(lambda: a.check("api-per-ip", "k").json().get("limit") == 11)
    assert took is not None, "A did not see B's update within 1 s"

    assert a.admin("DELETE", "/api/v1/rules/api-per-ip").status == 204
    took = wait_until(lambda: b.check("api-per-ip", "k").status == 404)
    assert took is not None, "B did not see A's delete within 1 s"


def test_an_acknowledged_create_survives_kill_9(make_server, workdir):
    db = workdir + "/durable.db"
    s = make_server(db_path=db)
    s.create_rule(**rule(limit=4))
    assert s.admin("PATCH", "/api/v1/rules/api-per-ip", {"limit": 12}).status == 200
    s.proc.send_signal(signal.SIGKILL)
    s.proc.wait()
    s.log.close()

    t = make_server(db_path=db)
    r = t.admin("GET", "/api/v1/rules/api-per-ip")
    assert r.status == 200, r
    assert r.json()["limit"] == 12 and r.json()["version"] == 2
    assert t.check("api-per-ip", "k").json()["limit"] == 12
    assert [h["action"] for h in t.admin("GET", "/api/v1/rules/api-per-ip/history").json()["history"]] == ["update", "create"]


def test_a_dry_run_value_it_does_not_know_changes_nothing(server):
    """?dry_run=yes was taken as no dry run: the rule stored for real."""
    body = {"id": "typo", "algorithm": "fixed_window", "limit": 5, "window": "1m"}
    for value in ("yes", "2", "on"):
        r = server.admin("POST", "/api/v1/rules?dry_run=" + value, body)
        assert r.status == 400 and r.json()["error"]["code"] == "invalid_request", (value, r.body)
    assert server.admin("GET", "/api/v1/rules/typo").status == 404
    assert server.admin("POST", "/api/v1/rules?dry_run=true", body).status == 200
    assert server.admin("POST", "/api/v1/rules?dry_run=0", body).status == 201
    assert server.admin("PATCH", "/api/v1/rules/typo?dry_run=sure", {"limit": 9}).status == 400
    # a bare flag, which many APIs read as true, would have imported for real
    r = server.admin("POST", "/api/v1/rules/import?dry_run", {"rules": []})
    assert r.status == 400 and r.json()["error"]["code"] == "invalid_request", r
    assert server.admin("GET", "/api/v1/rules/typo").status == 200
    assert server.admin("GET", "/api/v1/rules/typo?dry_run=whatever").json()["limit"] == 5


def test_a_document_read_two_ways_is_refused(server):
    """A member given twice is read first by ratekit and last by most tools
    (a reviewer's diff, jq, Python): an import whose second "rules" is the
    one reviewed deleted every rule. Bytes that are not UTF-8 made every
    export holding them JSON no reader takes."""
    server.create_rule(id="kept", algorithm="fixed_window", limit=5, window="1m")
    rules = json.dumps([{"id": "kept", "algorithm": "fixed_window", "limit": 5, "window": "1m"}])
    for body in ('{"rules": [], "version": 3, "rules": %s}' % rules, '{"limit": 5, "limit": 6}'):
        path = "/api/v1/rules/import" if "rules" in body else "/api/v1/rules/kept"
        r = server.admin("POST" if "rules" in body else "PATCH", path, body=body.encode(),
                         headers={"Content-Type": "application/json"})
        assert r.status == 400 and "appears twice" in r.body.decode(), (body, r)
    latin1 = b'{"id": "cafe", "algorithm": "gcra", "limit": 5, "window": "1m", "description": "caf\xe9"}'
    r = server.admin("POST", "/api/v1/rules", body=latin1, headers={"Content-Type": "application/json"})
    assert r.status == 400 and r.json()["error"] == {"code": "invalid_json",
                                                     "message": "The body is not UTF-8"}, r
    export = server.admin("GET", "/api/v1/rules/export")
    assert [x["id"] for x in json.loads(export.body.decode("utf-8"))["rules"]] == ["kept"]
    r = server.admin("POST", "/api/v1/rules", {"id": "cafe", "algorithm": "gcra", "limit": 5,
                                               "window": "1m", "description": "caf\u00e9 \u2603"})
    assert r.status == 201 and r.json()["description"] == "caf\u00e9 \u2603"


def test_a_change_that_changes_nothing_makes_no_version(server):
    """PATCH {} or a field set to what it is, or a PUT of the rule as read,
    makes no version, no history entry and no reload (an import already
    skipped identical rules)."""
    server.create_rule(id="same", algorithm="fixed_window", limit=3, window="1m")
    read = server.admin("GET", "/api/v1/rules/same")
    ruleset_version = server.admin("GET", "/api/v1/rules").json()["version"]
    for method, body in (("PATCH", {}), ("PATCH", {"limit": 3}), ("PATCH", {"window": "60s"}),
                         ("PUT", read.json())):
        r = server.admin(method, "/api/v1/rules/same", body)
        assert r.status == 200 and r.json()["version"] == 1, (method, body, r)
        assert r.headers["etag"] == read.headers["etag"]
    assert len(server.admin("GET", "/api/v1/rules/same/history").json()["history"]) == 1
    assert server.admin("GET", "/api/v1/rules").json()["version"] == ruleset_version, "no reload"
    r = server.admin("PATCH", "/api/v1/rules/same", {"limit": 4})
    assert r.status == 200 and r.json()["version"] == 2

