"""Safelist, denylist and bans: checked before any rule."""

import datetime
import sqlite3
import time

from conftest import request


def auth(server, ip):
    return request("GET", server.data + "/v1/auth",
                   headers={"X-Original-URI": "/api/x", "X-Forwarded-For": ip})


def add(server, **entry):
    r = server.admin("POST", "/api/v1/lists", entry)
    assert r.status == 201, r
    return r.json()


def iso_in(seconds):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def rows_of(server, value):
    """The rows the lists table holds for value, expired or not (read-only)."""
    conn = sqlite3.connect(f"file:{server.db_path}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT COUNT(*) FROM lists WHERE value = ?", (value,)).fetchone()[0]
    finally:
        conn.close()


def test_denylisted_cidr_is_refused_and_safelisted_one_skips_every_rule(server):
    server.create_rule(id="tight", algorithm="fixed_window", limit=1, window="1m")
    add(server, list="denylist", value="203.0.113.0/24", note="abuse")
    add(server, list="safelist", value="2001:db8::/32")
    r = auth(server, "203.0.113.50")
    assert r.status == 403 and r.json()["error"]["code"] == "forbidden"
    assert [auth(server, "2001:db8::7").status for _ in range(5)] == [200] * 5
    assert [auth(server, "198.51.100.1").status for _ in range(2)] == [200, 429]
    c = request("POST", server.data + "/v1/check",
                {"request": {"path": "/", "ip": "203.0.113.9"}}).json()
    assert c == {"allowed": False, "reason": "denylist", "results": []}
    d = server.check("tight", "203.0.113.77").json()
    assert d["allowed"] is False and d["reason"] == "denylist"


def test_key_entries_match_keys_as_ratekit_reports_them(server):
    server.create_rule(id="users", algorithm="fixed_window", limit=1, window="1m", key=["user", "ip"])
    add(server, list="safelist", value="user:vip")
    add(server, list="denylist", value="user:mallory")
    vip = [request("POST", server.data + "/v1/check", {"request": {
        "path": "/", "ip": "198.51.100.3", "headers": {"X-User-Id": "vip"}}}).json()
        for _ in range(3)]
    assert all(v["allowed"] and v["reason"] == "safelist" for v in vip)
    bad = request("POST", server.data + "/v1/check", {"request": {
        "path": "/", "ip": "198.51.100.3", "headers": {"X-User-Id": "mallory"}}}).json()
    assert bad["allowed"] is False and bad["reason"] == "denylist"
    batch = request("POST", server.data + "/v1/check/batch", {"checks": [
        {"rule": "users", "key": "user:vip"}, {"rule": "users", "key": "someone"}]}).json()
    assert batch["results"][0]["reason"] == "safelist"
    assert batch["results"][1]["allowed"] is True and "reason" not in batch["results"][1]


def test_a_header_key_typed_with_the_rules_capitals_names_the_client_checks_count(server):
    """A rule keyed by header:X-Tenant counts header:x-tenant:<value> (header
    names are case-blind): an entry, ban or override written the way the
    rule is written names that client too, instead of nobody."""
    server.create_rule(id="tenants", algorithm="fixed_window", limit=1, window="1m",
                       key=["header:X-Tenant"])

    def check(tenant):
        return request("POST", server.data + "/v1/check", {"request": {
            "path": "/", "ip": "198.51.100.3", "headers": {"X-Tenant": tenant}}}).json()

    entry = add(server, list="safelist", value="header:X-Tenant:vip")
    assert entry["value"] == "header:x-tenant:vip"
    assert all(check("vip")["reason"] == "safelist" for _ in range(3))
    r = server.admin("POST", "/api/v1/bans", {"value": "header:X-TENANT:evil", "duration": "1m"})
    assert r.status == 201 and check("evil")["reason"] == "denylist"
    r = server.admin("DELETE", "/api/v1/bans?value=header:X-Tenant:evil")
    assert r.status == 204 and "reason" not in check("evil")
    r = server.admin("PUT", "/api/v1/rules/tenants/overrides/header:X-Tenant:big", {"limit": 3})
    assert r.status == 200 and r.json()["key"] == "header:x-tenant:big", r
    assert [check("big")["allowed"] for _ in range(4)] == [True, True, True, False]
    r = server.admin("GET", "/api/v1/counters?rule=tenants&key=header:X-Tenant:big")
    assert r.json()["remaining"] == 0, r.json()


def test_entries_expire_and_can_be_removed(server):
    server.create_rule(id="e", algorithm="fixed_window", limit=100, window="1m")
    soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 2))
    e = add(server, list="denylist", value="198.51.100.20", expires_at=soon)
    assert e["expires_at"] == soon and e["kind"] == "cidr"
    assert auth(server, "198.51.100.20").status == 403
    time.sleep(2.5)
    assert auth(server, "198.51.100.20").status == 200
    assert server.admin("GET", "/api/v1/lists").json()["entries"] == []
    e = add(server, list="denylist", value="198.51.100.21")
    assert auth(server, "198.51.100.21").status == 403
    assert server.admin("DELETE", f"/api/v1/lists/{e['id']}").status == 204
    assert auth(server, "198.51.100.21").status == 200
    assert server.admin("DELETE", f"/api/v1/lists/{e['id']}").status == 404


def test_bans_are_temporary_denylist_entries(server):
    server.create_rule(id="b", algorithm="fixed_window", limit=100, window="1m")
    r = server.admin("POST", "/api/v1/bans", {"value": "198.51.100.30", "duration": "10m",
                                              "reason": "credential stuffing"})
    assert r.status == 201 and r.json()["list"] == "denylist"
    assert auth(server, "198.51.100.30").status == 403
    bans = server.admin("GET", "/api/v1/bans").json()["bans"]
    assert [b["value"] for b in bans] == ["198.51.100.30"]
    assert server.admin("GET", "/api/v1/lists").json()["entries"] == []
    assert server.admin("DELETE", f"/api/v1/bans/{bans[0]['id']}").status == 204
    assert auth(server, "198.51.100.30").status == 200
    r = server.admin("POST", "/api/v1/bans", {"value": "198.51.100.31"})
    assert r.status == 400


def test_a_ban_is_lifted_by_its_value_and_the_denylist_is_left_alone(server):
    server.create_rule(id="b", algorithm="fixed_window", limit=100, window="1m")
    deny = add(server, list="denylist", value="198.51.100.40")
    r = server.admin("POST", "/api/v1/bans", {"value": "198.51.100.41", "duration": "10m"})
    assert r.status == 201
    assert auth(server, "198.51.100.41").status == 403
    assert server.admin("DELETE", "/api/v1/bans?value=198.51.100.41").status == 204
    assert auth(server, "198.51.100.41").status == 200
    assert server.admin("DELETE", "/api/v1/bans?value=198.51.100.41").status == 404
    # A denylist entry is not a ban: lifting bans by its value leaves it.
    assert server.admin("DELETE", "/api/v1/bans?value=198.51.100.40").status == 404
    assert auth(server, "198.51.100.40").status == 403
    assert [e["id"] for e in server.admin("GET", "/api/v1/lists").json()["entries"]] == [deny["id"]]
    r = server.admin("DELETE", "/api/v1/bans")
    assert r.status == 400 and "?value=" in r.json()["error"]["message"]
    assert server.admin("DELETE", "/api/v1/bans?value=has%20space").status == 400


def test_an_unknown_list_name_in_the_query_is_refused_not_answered_empty(server):
    deny = add(server, list="denylist", value="198.51.100.50")
    safe = add(server, list="safelist", value="198.51.100.51")
    for name in ("foo", "Denylist", "bans"):
        r = server.admin("GET", "/api/v1/lists?list=" + name)
        assert r.status == 400, (name, r)
        assert r.json()["error"]["code"] == "invalid_request"
        assert "safelist or denylist" in r.json()["error"]["message"]
    ids = lambda q: [e["id"] for e in server.admin("GET", "/api/v1/lists" + q).json()["entries"]]
    assert ids("?list=denylist") == [deny["id"]]
    assert ids("?list=safelist") == [safe["id"]]
    assert ids("?list=") == ids("") == [safe["id"], deny["id"]]
    # every ban is on the denylist: GET /api/v1/bans has no ?list= to filter by
    ban = server.admin("POST", "/api/v1/bans", {"value": "198.51.100.52", "duration": "10m"})
    assert ban.status == 201
    for q in ("", "?list=safelist"):
        r = server.admin("GET", "/api/v1/bans" + q)
        assert r.status == 200 and [b["id"] for b in r.json()["bans"]] == [ban.json()["id"]]


def test_invalid_entries_are_refused_with_field_errors(server):
    r = server.admin("POST", "/api/v1/lists", {"list": "greylist", "value": "has space",
                                               "expires_at": "tomorrow"})
    assert r.status == 400
    fields = {e["field"] for e in r.json()["error"]["errors"]}
    assert fields == {"list", "value", "expires_at"}
    add(server, list="safelist", value="10.0.0.0/8")
    r = server.admin("POST", "/api/v1/lists", {"list": "safelist", "value": "10.0.0.0/8"})
    assert r.status == 409
    assert server.admin("POST", "/api/v1/lists", {"list": "safelist", "value": "x"},
                        token="wrong-token-wrong-token").status == 401


def test_a_list_change_reaches_another_process_within_a_second(make_server):
    a = make_server()
    b = make_server(db_path=a.db_path)
    b.create_rule(id="x", algorithm="fixed_window", limit=100, window="1m")
    add(a, list="denylist", value="198.51.100.40")
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline and auth(b, "198.51.100.40").status != 403:
        time.sleep(0.05)
    assert auth(b, "198.51.100.40").status == 403


def test_an_expired_ban_does_not_keep_its_value_from_being_banned_again(server):
    server.create_rule(id="b", algorithm="fixed_window", limit=100, window="1m")
    value, other = "203.0.113.50", "203.0.113.51"
    for v in (value, other):
        assert server.admin("POST", "/api/v1/bans", {"value": v, "duration": "1s"}).status == 201
    other_id = next(b["id"] for b in server.admin("GET", "/api/v1/bans").json()["bans"]
                    if b["value"] == other)
    time.sleep(1.5)
    assert server.admin("GET", "/api/v1/bans").json() == {"bans": []}
    assert auth(server, value).status == 200
    r = server.admin("POST", "/api/v1/bans", {"value": value, "duration": "10m"})
    assert r.status == 201, r
    assert [b["value"] for b in server.admin("GET", "/api/v1/bans").json()["bans"]] == [value]
    assert auth(server, value).status == 403
    # A ban that is over is lifted already: lifting it again finds nothing.
    assert server.admin("DELETE", f"/api/v1/bans?value={other}").status == 404
    assert server.admin("DELETE", f"/api/v1/bans/{other_id}").status == 404
    # Expired bans leave the table; the live one is lifted by its value.
    assert rows_of(server, value) == 1 and rows_of(server, other) == 0
    assert server.admin("DELETE", f"/api/v1/bans?value={value}").status == 204
    assert auth(server, value).status == 200


def test_an_expired_list_entry_does_not_keep_its_value_from_being_added_again(server):
    server.create_rule(id="e", algorithm="fixed_window", limit=100, window="1m",
                       key=["user", "ip"])
    old = add(server, list="denylist", value="user:mallory", expires_at=iso_in(1))
    add(server, list="safelist", value="198.51.100.60", expires_at=iso_in(1))
    time.sleep(1.5)
    assert server.admin("GET", "/api/v1/lists").json() == {"entries": []}
    again = add(server, list="denylist", value="user:mallory")
    assert again["expires_at"] is None and again["id"] != old["id"]
    assert server.admin("DELETE", f"/api/v1/lists/{old['id']}").status == 404
    c = request("POST", server.data + "/v1/check", {"request": {
        "path": "/", "ip": "198.51.100.3", "headers": {"X-User-Id": "mallory"}}}).json()
    assert c["allowed"] is False and c["reason"] == "denylist"
    add(server, list="safelist", value="198.51.100.60", expires_at=iso_in(600))
    listed = server.admin("GET", "/api/v1/lists").json()["entries"]
    assert sorted(e["value"] for e in listed) == ["198.51.100.60", "user:mallory"]
    # An expired denylist entry does not keep a ban of its value out either.
    add(server, list="denylist", value="198.51.100.61", expires_at=iso_in(1))
    time.sleep(1.5)
    r = server.admin("POST", "/api/v1/bans", {"value": "198.51.100.61", "duration": "10m"})
    assert r.status == 201, r
    assert rows_of(server, "user:mallory") == 1 and rows_of(server, "198.51.100.61") == 1


MALFORMED = ["10.0.0.0/33", "300.1.1.1", "2001:db8::/129", "1.2.3", "10.0.0.0/", "10.0.0.0/8/8",
             "10.0.0.0/x", "1.2.3.4:80", "[2001:db8::1]", "2001:db8:::1",
             "1.2.3.4 ", " 1.2.3.4", "user:42 "]


def test_malformed_addresses_and_surrounding_spaces_are_refused_naming_value(server):
    for value in MALFORMED:
        for path, body in (("/api/v1/lists", {"list": "denylist", "value": value}),
                           ("/api/v1/bans", {"value": value, "duration": "10m"})):
            r = server.admin("POST", path, body)
            assert r.status == 400, (path, value, r)
            error = r.json()["error"]
            assert error["code"] == "invalid_request", (value, error)
            assert [e["field"] for e in error["errors"]] == ["value"], (value, error)
            assert error["errors"][0]["message"], (value, error)
    assert server.admin("GET", "/api/v1/lists").json() == {"entries": []}
    assert server.admin("GET", "/api/v1/bans").json() == {"bans": []}
    r = server.admin("POST", "/api/v1/lists", {"list": "denylist", "value": "10.0.0.0/33"})
    assert "/32" in r.json()["error"]["errors"][0]["message"]
    r = server.admin("POST", "/api/v1/lists", {"list": "denylist", "value": "1.2.3.4 "})
    assert "spaces" in r.json()["error"]["errors"][0]["message"]
    assert server.admin("DELETE", "/api/v1/bans?value=1.2.3.4%20").status == 400


def test_addresses_cidrs_and_keys_are_still_accepted_with_their_kind(server):
    server.create_rule(id="k", algorithm="fixed_window", limit=100, window="1m")
    expected = {"10.0.0.0/8": "cidr", "192.0.2.7": "cidr", "2001:db8::/32": "cidr",
                "::ffff:198.51.100.9": "cidr", "user:42": "key", "ip:203.0.113.7": "key",
                "ip:2001:db8::1": "key", "api_key:3f2a9c": "key", "header:X-Tenant:acme": "key",
                "jwt:sub:alice": "key", "global": "key", "42": "key"}
    for value, kind in expected.items():
        assert add(server, list="denylist", value=value)["kind"] == kind, value
    assert auth(server, "10.1.2.3").status == 403
    assert auth(server, "198.51.100.9").status == 403
    assert server.check("k", "42").json()["reason"] == "denylist"


def test_a_cidr_written_as_mapped_ipv6_counts_its_prefix_in_ipv6_bits(server):
    """::ffff:10.8.0.0/112 is 10.8.0.0/16 written as IPv6: accepted, and it
    denies 10.8.x.x alone; ::ffff:10.8.0.0/16 is ::/16, which no IPv4 client
    is in (it was read as 10.8.0.0/16)."""
    add(server, list="denylist", value="::ffff:10.8.0.0/112")
    add(server, list="denylist", value="::ffff:10.77.0.0/16")

    def denied(ip):
        c = request("POST", server.data + "/v1/check", {"request": {"path": "/", "ip": ip}})
        return c.json().get("reason") == "denylist"

    assert denied("10.8.3.4") and denied("::ffff:10.8.250.1")
    assert not denied("10.9.0.1")
    assert not denied("10.77.1.1") and denied("::7")
