"""Per-key overrides, black-box: one client's own limit, expiry back to the
rule's, deletion, validation, and an override beating the client's plan."""

import datetime
import re
import time
import urllib.parse

from conftest import request

# A bucket refilling over an hour: counts in a test never straddle a window.
RULE = {"id": "api", "algorithm": "token_bucket", "limit": 2, "window": "1h"}


def iso_in(seconds):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def path(rule, key=None):
    p = f"/api/v1/rules/{rule}/overrides"
    return p if key is None else p + "/" + urllib.parse.quote(key, safe="")


def ruleset_version(server):
    return server.admin("GET", "/api/v1/rules").json()["version"]


def allowed_count(server, rule, key, tries):
    return sum(server.check(rule, key).json()["allowed"] for _ in range(tries))


def test_override_raises_one_clients_limit_and_not_anothers(server):
    server.create_rule(**RULE)
    r = server.admin("PUT", path("api", "user:42"), {"limit": 5, "note": "partner"})
    assert r.status == 200, r
    o = r.json()
    assert o["key"] == "user:42" and o["limit"] == 5 and o["note"] == "partner"
    assert o["expires_at"] is None and o["updated_by"] == "admin"

    assert allowed_count(server, "api", "user:42", 7) == 5
    assert allowed_count(server, "api", "user:7", 4) == 2
    r = server.check("api", "user:42")
    assert r.json()["limit"] == 5 and r.headers["x-ratelimit-limit"] == "5"

    assert server.admin("GET", path("api", "user:42")).json()["limit"] == 5
    listing = server.admin("GET", path("api")).json()["overrides"]
    assert [x["key"] for x in listing] == ["user:42"]


def test_override_can_lower_a_limit_and_applies_to_matched_requests(server):
    server.create_rule(id="per-ip", algorithm="token_bucket", limit=10, window="1h",
                       match={"path": "/api/*"})
    assert server.admin("PUT", path("per-ip", "ip:203.0.113.7"), {"limit": 1}).status == 200

    def check(ip):
        return request("POST", server.data + "/v1/check", {
            "request": {"method": "GET", "path": "/api/items", "ip": ip}}).json()

    assert check("203.0.113.7")["allowed"] is True
    denied = check("203.0.113.7")
    assert denied["allowed"] is False and denied["results"][0]["key"] == "ip:203.0.113.7"
    assert all(check("203.0.113.8")["allowed"] for _ in range(5))


def test_expired_override_returns_to_the_rules_limit(server):
    server.create_rule(**RULE)
    r = server.admin("PUT", path("api", "user:42"), {"limit": 100, "expires_at": iso_in(1.5)})
    assert r.status == 200, r
    assert allowed_count(server, "api", "user:42", 4) == 4
    time.sleep(2.0)
    r = server.check("api", "user:42").json()
    assert r["limit"] == 2
    assert server.admin("GET", path("api", "user:42")).json()["expired"] is True


def test_delete_returns_to_the_rules_limit(server):
    server.create_rule(**RULE)
    assert server.admin("PUT", path("api", "user:42"), {"limit": 50}).status == 200
    assert server.check("api", "user:42").json()["limit"] == 50
    assert server.admin("DELETE", path("api", "user:42")).status == 204
    assert server.check("api", "user:42").json()["limit"] == 2
    assert server.admin("GET", path("api", "user:42")).status == 404
    assert server.admin("DELETE", path("api", "user:42")).status == 404
    assert server.admin("GET", path("api")).json()["overrides"] == []


def test_overrides_survive_a_rule_update_and_go_with_its_deletion(server):
    server.create_rule(**RULE)
    assert server.admin("PUT", path("api", "user:42"), {"limit": 5}).status == 200
    assert server.admin("PATCH", "/api/v1/rules/api", {"limit": 3}).status == 200
    assert server.check("api", "user:42").json()["limit"] == 5
    assert server.check("api", "user:7").json()["limit"] == 3
    assert server.admin("DELETE", "/api/v1/rules/api").status == 204
    server.create_rule(**RULE)
    assert server.check("api", "user:42").json()["limit"] == 2
    assert server.admin("GET", path("api")).json()["overrides"] == []


def test_put_replaces_and_window_and_burst_apply(server):
    server.create_rule(id="tb", algorithm="token_bucket", limit=2, window="1m")
    r = server.admin("PUT", path("tb", "k1"), {"limit": 3, "burst": 6, "window": "1h"})
    assert r.status == 200, r
    assert r.json()["burst"] == 6 and r.json()["window_ms"] == 3600000
    assert allowed_count(server, "tb", "k1", 8) == 6
    r = server.admin("PUT", path("tb", "k1"), {"limit": 4})
    assert r.json()["burst"] is None and r.json()["window_ms"] is None
    assert server.admin("GET", path("tb", "k1")).json()["limit"] == 4


def test_key_with_a_slash_round_trips(server):
    server.create_rule(**RULE)
    key = "tenant/a:1"
    assert server.admin("PUT", path("api", key), {"limit": 4}).status == 200
    assert server.admin("GET", path("api", key)).json()["key"] == key
    assert allowed_count(server, "api", key, 6) == 4


def test_invalid_overrides_are_refused(server):
    server.create_rule(**RULE)
    for body in ({}, {"limit": 0}, {"limit": "many"}, {"limit": 5, "burst": -1},
                 {"limit": 5, "window": "soon"}, {"limit": 5, "expires_at": "later"},
                 {"limit": 5, "expires_at": "2001-01-01T00:00:00Z"}, {"limit": 5, "colour": 1},
                 {"limit": 5, "expires_at": "2031-02-29T00:00:00Z"},
                 {"limit": 5, "expires_at": "1970-01-01T00:00:00Z"}):
        r = server.admin("PUT", path("api", "user:1"), body)
        assert r.status == 400, (body, r)
        assert r.json()["error"]["code"] == "invalid_override"
    r = server.admin("PUT", path("api", "has space"), {"limit": 5})
    assert r.status == 400
    assert server.admin("PUT", path("nope", "user:1"), {"limit": 5}).status == 404
    assert server.admin("GET", path("nope")).status == 404
    assert server.admin("GET", path("api")).json()["overrides"] == []


def test_override_beats_the_clients_plan(server):
    server.create_rule(id="plans", algorithm="token_bucket", limit=2, window="1h",
                       key=["user"], plans={"pro": {"limit": 10}})
    assert server.admin("PUT", path("plans", "user:42"), {"limit": 3}).status == 200

    def check(user):
        return request("POST", server.data + "/v1/check", {"request": {
            "method": "GET", "path": "/", "ip": "203.0.113.9",
            "headers": {"X-User-Id": user, "X-Plan": "pro"}}}).json()

    assert check("42")["limit"] == 3
    assert check("43")["limit"] == 10


def test_override_reaches_another_process_sharing_the_file(make_server):
    a = make_server()
    b = make_server(db_path=a.db_path)
    a.create_rule(**RULE)
    assert a.admin("PUT", path("api", "user:42"), {"limit": 9}).status == 200
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        r = b.check("api", "user:42").json()
        if r.get("limit") == 9:
            break
        time.sleep(0.05)
    assert b.check("api", "user:42").json()["limit"] == 9


def test_viewer_may_read_but_not_change_overrides(server):
    server.create_rule(**RULE)
    t = server.admin("POST", "/api/v1/tokens", {"name": "ro", "role": "viewer"}).json()["token"]
    assert server.admin("GET", path("api"), token=t).status == 200
    assert server.admin("PUT", path("api", "user:1"), {"limit": 5}, token=t).status == 403


def rule_state(server, rule_id):
    """What a refused change must leave alone: the rule, its history length,
    its overrides and the ruleset version."""
    return (server.admin("GET", f"/api/v1/rules/{rule_id}").json(),
            len(server.admin("GET", f"/api/v1/rules/{rule_id}/history").json()["history"]),
            server.admin("GET", path(rule_id)).json()["overrides"],
            server.admin("GET", "/api/v1/rules").json()["version"])


def assert_refused_for_override(r, key, field="limit"):
    assert r.status == 400, r
    err = r.json()["error"]
    assert err["code"] == "invalid_rule" and err["message"]
    assert [e["field"] for e in err["errors"]] == [f"overrides.{key}.{field}"], err
    assert all(e["message"] for e in err["errors"])


def test_a_rule_change_its_overrides_no_longer_fit_is_refused(server):
    server.create_rule(id="slog", algorithm="token_bucket", limit=5, window="1h")
    assert server.admin("PUT", path("slog", "user:2"), {"limit": 5000000}).status == 200
    assert server.admin("PUT", path("slog", "user:3"), {"limit": 50}).status == 200
    before = rule_state(server, "slog")

    # concurrency allows a limit up to 1e4, sliding_log up to 1e5
    for body in ({"algorithm": "concurrency"}, {"algorithm": "sliding_log"}):
        assert_refused_for_override(server.admin("PATCH", "/api/v1/rules/slog", body), "user:2")
        r = server.admin("PATCH", "/api/v1/rules/slog?dry_run=1", body)
        assert_refused_for_override(r, "user:2")
        whole = {"id": "slog", "limit": 5, "window": "1h", **body}
        assert_refused_for_override(server.admin("PUT", "/api/v1/rules/slog", whole), "user:2")
    export = server.admin("GET", "/api/v1/rules/export").json()
    export["rules"][0]["algorithm"] = "concurrency"
    r = server.admin("POST", "/api/v1/rules/import", export)
    assert r.status == 400, r
    # the document's own override (user:2 comes first) no longer fits its rule
    assert [e["field"] for e in r.json()["error"]["errors"]] == ["overrides[0].limit"]
    # a document without overrides keeps the stored ones, which must fit
    del export["overrides"]
    r = server.admin("POST", "/api/v1/rules/import", export)
    assert r.status == 400, r
    assert [e["field"] for e in r.json()["error"]["errors"]] == ["rules[0].overrides.user:2.limit"]
    assert rule_state(server, "slog") == before, "a refused change stored nothing"
    r = request("POST", server.data + "/v1/acquire", {"rule": "slog", "key": "user:2"})
    assert r.status == 404 or r.json().get("limit") != 5000000

    # an override brought within the new bounds lets the change through
    assert server.admin("PUT", path("slog", "user:2"), {"limit": 9000}).status == 200
    r = server.admin("PATCH", "/api/v1/rules/slog", {"algorithm": "concurrency"})
    assert r.status == 200, r
    r = request("POST", server.data + "/v1/acquire", {"rule": "slog", "key": "user:2"}).json()
    assert r["limit"] == 9000 and r["remaining"] == 8999


def test_a_restore_its_overrides_no_longer_fit_is_refused(server):
    server.create_rule(id="workers", algorithm="concurrency", limit=5, window="1m")
    assert server.admin("PATCH", "/api/v1/rules/workers",
                        {"algorithm": "token_bucket"}).status == 200
    assert server.admin("PUT", path("workers", "user:2"), {"limit": 20000}).status == 200
    before = rule_state(server, "workers")
    r = server.admin("POST", "/api/v1/rules/workers/restore/1")
    assert_refused_for_override(r, "user:2")
    assert rule_state(server, "workers") == before
    assert server.admin("DELETE", path("workers", "user:2")).status == 204
    r = server.admin("POST", "/api/v1/rules/workers/restore/1")
    assert r.status == 200 and r.json()["algorithm"] == "concurrency"


def test_an_expired_override_does_not_hold_a_rule_change_back(server):
    server.create_rule(id="slog", algorithm="token_bucket", limit=5, window="1h")
    r = server.admin("PUT", path("slog", "user:2"), {"limit": 5000000, "expires_at": iso_in(1.0)})
    assert r.status == 200, r
    time.sleep(1.5)
    r = server.admin("PATCH", "/api/v1/rules/slog", {"algorithm": "concurrency"})
    assert r.status == 200, r
    r = request("POST", server.data + "/v1/acquire", {"rule": "slog", "key": "user:2"}).json()
    assert r["limit"] == 5


def overrides_of(server, rule_id):
    """The overrides of a rule as a PUT gives them (no times of their own)."""
    return [{k: o[k] for k in ("key", "limit", "burst", "window_ms", "expires_at", "note")}
            for o in server.admin("GET", path(rule_id)).json()["overrides"]]


def import_doc(server, doc, dry_run=False):
    return server.admin("POST", "/api/v1/rules/import" + ("?dry_run=1" if dry_run else ""), doc)


def test_export_and_import_carry_the_overrides(server, make_server, workdir):
    server.create_rule(**RULE)
    server.create_rule(id="burst", algorithm="token_bucket", limit=10, window="1h", burst=10)
    until = "2099-01-01T00:00:00.250Z"  # read back as put, to the millisecond
    r = server.admin("PUT", path("api", "user:42"),
                     {"limit": 5, "note": "partner", "expires_at": until})
    assert r.status == 200 and r.json()["expires_at"] == until, r
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r.json()["updated_at"]), \
        "stamps are to the second, as a rule's are"
    assert server.admin("PUT", path("api", "user:7"), {"limit": 1}).status == 200
    assert server.admin("PUT", path("burst", "user:1"),
                        {"limit": 20, "burst": 30, "window": "2h"}).status == 200
    doc = server.admin("GET", "/api/v1/rules/export").json()
    assert [(o["rule"], o["key"]) for o in doc["overrides"]] == [
        ("api", "user:42"), ("api", "user:7"), ("burst", "user:1")]
    assert doc["overrides"][0]["expires_at"] == until and doc["overrides"][0]["note"] == "partner"
    # taken back by the instance it came from, it changes nothing
    version = ruleset_version(server)
    r = import_doc(server, doc)
    assert r.json()["overrides"] == {"created": 0, "updated": 0, "deleted": 0, "expired": 0}, r
    assert ruleset_version(server) == version

    # another instance: its own override of "api" goes, "stale" and its override go
    other = make_server(db_path=workdir + "/other.db")
    other.create_rule(**RULE)
    other.create_rule(id="stale", algorithm="fixed_window", limit=1, window="1m")
    assert other.admin("PUT", path("api", "user:9"), {"limit": 3}).status == 200
    assert other.admin("PUT", path("api", "user:7"), {"limit": 4}).status == 200
    assert other.admin("PUT", path("stale", "user:1"), {"limit": 2}).status == 200
    version = ruleset_version(other)
    r = import_doc(other, doc, dry_run=True)
    assert r.status == 200, r
    assert r.json()["overrides"] == {"created": 2, "updated": 1, "deleted": 2, "expired": 0}
    assert ruleset_version(other) == version and overrides_of(other, "api")[0]["key"] == "user:7"

    r = import_doc(other, doc)
    assert r.status == 200, r
    res = r.json()
    assert (res["created"], res["updated"], res["deleted"]) == (1, 0, 1)
    assert res["overrides"] == {"created": 2, "updated": 1, "deleted": 2, "expired": 0}
    for rule_id in ("api", "burst"):
        assert overrides_of(other, rule_id) == overrides_of(server, rule_id)
    assert other.admin("GET", path("api", "user:7")).json()["updated_by"] == "admin"
    # in force at once, as a PUT's would be
    assert allowed_count(other, "api", "user:42", 7) == 5
    assert allowed_count(other, "api", "user:7", 3) == 1
    assert allowed_count(other, "api", "user:9", 4) == 2
    assert other.check("burst", "user:1").json()["limit"] == 20

    # the same document again changes nothing, not even the ruleset version
    version = ruleset_version(other)
    r = import_doc(other, doc)
    assert r.json()["overrides"] == {"created": 0, "updated": 0, "deleted": 0, "expired": 0}
    assert ruleset_version(other) == version
    # a document without "overrides" leaves them as they are
    r = import_doc(other, {"rules": doc["rules"]})
    assert r.status == 200 and "overrides" not in r.json()
    assert len(overrides_of(other, "api")) == 2


def test_an_imports_overrides_are_checked_whole_and_nothing_changes_on_a_fault(server):
    server.create_rule(**RULE)
    assert server.admin("PUT", path("api", "user:1"), {"limit": 9}).status == 200
    before = server.admin("GET", "/api/v1/rules/export").json()
    rules = [dict(RULE), {"id": "fixed", "algorithm": "fixed_window", "limit": 5, "window": "1m"}]
    overrides = [
        {"rule": "nope", "key": "user:1", "limit": 5},
        {"rule": "api", "key": "has space", "limit": 5},
        {"rule": "api", "key": "user:2", "limit": 0},
        {"rule": "api", "key": "user:3", "limit": 5},
        {"rule": "api", "key": "user:3", "limit": 6},
        "user:4",
        {"rule": "fixed", "key": "user:5", "limit": 5, "burst": 9},
        {"rule": "api", "key": "user:6", "limit": 5, "colour": "red"},
        {"rule": "api", "key": "user:7", "limit": 5, "expires_at": "soon"},
        {"rule": "api", "key": "user:8", "limit": 5, "created_at": "2026-01-01T00:00:00Z",
         "updated_by": "ci", "expired": False},
    ]
    r = import_doc(server, {"rules": rules, "overrides": overrides})
    assert r.status == 400, r
    err = r.json()["error"]
    assert err["code"] == "invalid_rule"
    assert sorted(e["field"] for e in err["errors"]) == [
        "overrides[0].rule", "overrides[1].key", "overrides[2].limit", "overrides[4].key",
        "overrides[5]", "overrides[6].burst", "overrides[7].colour", "overrides[8].expires_at"]
    assert all(e["message"] for e in err["errors"])
    after = server.admin("GET", "/api/v1/rules/export").json()
    assert (after["rules"], after["overrides"]) == (before["rules"], before["overrides"])

    r = import_doc(server, {"rules": rules, "overrides": {"rule": "api"}})
    assert r.status == 400 and [e["field"] for e in r.json()["error"]["errors"]] == ["overrides"]

    # fixed, the same document goes through; the read-only members of an
    # override as the API answers it are taken and ignored
    fixed = [o for i, o in enumerate(overrides) if i in (3, 9)]
    r = import_doc(server, {"rules": rules, "overrides": fixed})
    assert r.status == 200, r
    assert r.json()["overrides"] == {"created": 2, "updated": 0, "deleted": 1, "expired": 0}
    assert [o["key"] for o in overrides_of(server, "api")] == ["user:3", "user:8"]
    assert server.admin("GET", path("api", "user:8")).json()["updated_by"] == "admin"


def test_an_import_leaves_expired_overrides_out(server):
    server.create_rule(**RULE)
    r = server.admin("PUT", path("api", "user:1"), {"limit": 7, "expires_at": iso_in(1.0)})
    assert r.status == 200, r
    assert server.admin("PUT", path("api", "user:2"), {"limit": 8}).status == 200
    time.sleep(1.5)
    doc = server.admin("GET", "/api/v1/rules/export").json()
    assert [o["key"] for o in doc["overrides"]] == ["user:2"], "an expired one is not exported"

    doc["overrides"] += [{"rule": "api", "key": "user:3", "limit": 9,
                          "expires_at": "2001-01-01T00:00:00Z"},
                         {"rule": "api", "key": "user:4", "limit": 9,
                          "expires_at": "1970-01-01T00:00:00Z"}]
    r = import_doc(server, doc)
    assert r.status == 200, r
    assert r.json()["overrides"] == {"created": 0, "updated": 0, "deleted": 0, "expired": 2}
    assert [o["key"] for o in overrides_of(server, "api")] == ["user:1", "user:2"]
    # one given again for a client whose override expired is a new one
    doc["overrides"] = [{"rule": "api", "key": "user:1", "limit": 7},
                        {"rule": "api", "key": "user:2", "limit": 8}]
    r = import_doc(server, doc)
    assert r.json()["overrides"] == {"created": 1, "updated": 0, "deleted": 0, "expired": 0}, r
    assert allowed_count(server, "api", "user:1", 9) == 7
    # a rule change its override would not fit goes through with the
    # document's overrides, which replace the stored ones
    assert server.admin("PUT", path("api", "user:2"), {"limit": 5000000}).status == 200
    doc = {"rules": [dict(RULE, algorithm="concurrency")], "overrides": []}
    r = import_doc(server, doc)
    assert r.status == 200, r
    assert r.json()["overrides"]["deleted"] == 2
    assert overrides_of(server, "api") == []
