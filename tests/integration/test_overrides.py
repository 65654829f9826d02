"""Per-key overrides, black-box: one client's own limit, expiry back to the
rule's, deletion, validation, and an override beating the client's plan."""

import datetime
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
                 {"limit": 5, "expires_at": "2031-02-29T00:00:00Z"}):
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
