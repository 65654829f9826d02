"""Observability, black-box: the live counters, the cluster-wide stats of
instances sharing one redis-server, the event stream, the Prometheus
metrics and the denial log, against real ratekitd processes."""

import concurrent.futures
import csv
import http.client
import io
import json
import shutil
import socket
import signal
import sqlite3
import statistics
import subprocess
import time

import pytest

from conftest import ADMIN_TOKEN, request


class EventStream:
    """GET /api/v1/stream, read event by event (token as ?access_token=, as
    EventSource sends it)."""

    def __init__(self, server, last_event_id=None, token=ADMIN_TOKEN):
        self.conn = http.client.HTTPConnection("127.0.0.1", server.admin_port, timeout=5)
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.conn.request("GET", "/api/v1/stream?access_token=" + token, headers=headers)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.headers = {k.lower(): v for k, v in self.resp.getheaders()}

    def next_event(self, timeout=5.0):
        """The next event as {"event", "id", "data"}; comments are skipped."""
        self.conn.sock.settimeout(timeout)
        event = {"event": "message", "id": None, "data": []}
        while True:
            line = self.resp.readline()
            if not line:
                raise EOFError("the stream ended")
            line = line.decode().rstrip("\r\n")
            if line == "":
                if event["data"]:
                    event["data"] = json.loads("\n".join(event["data"]))
                    return event
                event = {"event": "message", "id": None, "data": []}
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "data":
                event["data"].append(value)
            elif field in ("event", "id"):
                event[field] = value

    def events_until(self, predicate, timeout):
        """Reads events until predicate(event) holds; returns them all."""
        seen = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                e = self.next_event(max(0.05, deadline - time.monotonic()))
            except (socket.timeout, TimeoutError):
                break
            seen.append(e)
            if predicate(e):
                return seen
        raise AssertionError(f"no such event within {timeout}s; saw {seen[-5:]}")

    def close(self):
        self.conn.close()


def wait_until(fn, timeout, interval=0.05):
    """Polls fn until it answers a truthy value; returns it (or the last falsy one)."""
    deadline = time.monotonic() + timeout
    value = fn()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = fn()
    return value


def sum_rule(events, rule, field):
    return sum(e["data"]["rules"].get(rule, {}).get(field, 0)
               for e in events if e["event"] == "stats")


def totals(server, window=60):
    r = server.admin("GET", f"/api/v1/stats?window={window}")
    assert r.status == 200, r
    return r.json()


def rule_counts(stats, rule):
    for r in stats["rules"]:
        if r["rule"] == rule:
            return r
    return {"rule": rule, "allowed": 0, "denied": 0, "shadow_denied": 0, "errors": 0}


def batch(server, rule, keys):
    r = request("POST", server.data + "/v1/check/batch",
                {"checks": [{"rule": rule, "key": k} for k in keys]})
    assert r.status == 200, r
    return r.json()["results"]


# ---- live counters and the stream, on the embedded store --------------------------

def test_checks_show_in_the_stream_and_in_stats_within_two_seconds(server):
    server.create_rule(id="login", algorithm="fixed_window", limit=3, window="1m")
    server.create_rule(id="watch", algorithm="fixed_window", limit=1, window="1m", mode="shadow")
    stream = EventStream(server)
    assert stream.status == 200
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert stream.headers["cache-control"] == "no-cache"
    start = time.monotonic()
    for _ in range(5):
        server.check("login", "203.0.113.7")
    for _ in range(3):
        assert server.check("watch", "k").json()["allowed"] is True  # shadow never denies
    sent = time.monotonic()
    seen_so_far = []
    deadline = sent + 2.0
    while time.monotonic() < deadline and not (
            sum_rule(seen_so_far, "login", "denied") == 2
            and sum_rule(seen_so_far, "watch", "shadow_denied") == 2):
        try:
            seen_so_far.append(stream.next_event(max(0.05, deadline - time.monotonic())))
        except (socket.timeout, TimeoutError):
            break
    took = time.monotonic() - sent
    stream.close()
    assert sum_rule(seen_so_far, "login", "allowed") == 3, seen_so_far
    assert sum_rule(seen_so_far, "login", "denied") == 2
    assert sum_rule(seen_so_far, "watch", "allowed") == 1
    assert sum_rule(seen_so_far, "watch", "shadow_denied") == 2
    assert took <= 2.0, f"the checks reached the stream after {took:.2f}s"
    stats_events = [e for e in seen_so_far if e["event"] == "stats"]
    assert all(set(e["data"]) == {"t", "totals", "checks", "rules"} for e in stats_events)
    assert all(e["id"] for e in stats_events), "every event carries an id"
    assert time.monotonic() - start < 5

    s = totals(server)
    assert s["window_s"] == 60 and s["instances"] == 1
    assert s["totals"] == {"allowed": 4, "denied": 2, "shadow_denied": 2, "errors": 0}
    assert rule_counts(s, "login") == {"rule": "login", "allowed": 3, "denied": 2,
                                       "shadow_denied": 0, "errors": 0}

    now = int(time.time())
    r = server.admin("GET", f"/api/v1/stats/timeseries?rule=login&from={now - 10}&to={now}")
    body = r.json()
    assert r.status == 200 and body["step_s"] == 1 and len(body["points"]) == 11
    assert [p["t"] for p in body["points"]] == list(range(now - 10, now + 1))
    assert sum(p["allowed"] for p in body["points"]) == 3
    assert sum(p["denied"] for p in body["points"]) == 2
    coarse = server.admin("GET", f"/api/v1/stats/timeseries?from={now - 9}&to={now}&step=5")
    assert [p["t"] for p in coarse.json()["points"]] == [now - 9, now - 4]
    assert sum(p["shadow_denied"] for p in coarse.json()["points"]) == 2

    # The top keys come from the denial log's writer, which lets a flood coalesce for 0.5 s.
    expected = [{"rule": "login", "key": "203.0.113.7", "denied": 2}]
    top = wait_until(lambda: server.admin("GET", "/api/v1/stats/top?rule=login&window=300")
                     .json()["top"] == expected, timeout=3)
    assert top, server.admin("GET", "/api/v1/stats/top?rule=login&window=300").json()
    info = server.admin("GET", "/api/v1/info").json()
    assert info["instances"] == 1


def test_stats_refuse_a_rule_filter_no_rule_could_have(server):
    """?rule= is a rule id, as documented: another is refused, not answered
    as a rule that saw nothing."""
    for q in ("Login", "has%20space", "%C3%A9t%C3%A9", "a" * 65):
        for route in ("timeseries", "top"):
            r = server.admin("GET", f"/api/v1/stats/{route}?rule={q}")
            assert r.status == 400, (route, q, r)
            assert r.json()["error"]["code"] == "invalid_request"
    for route in ("timeseries", "top"):
        assert server.admin("GET", f"/api/v1/stats/{route}?rule=login").status == 200
        assert server.admin("GET", f"/api/v1/stats/{route}?rule=").status == 200


def test_a_timeseries_ending_near_the_epoch_starts_at_second_0(server):
    """The default ?from= (to - 299) is clamped at 0: no point has a negative t."""
    r = server.admin("GET", "/api/v1/stats/timeseries?to=1")
    assert r.status == 200, r
    assert [p["t"] for p in r.json()["points"]] == [0, 1]
    r = server.admin("GET", "/api/v1/stats/timeseries?to=300&step=100")
    assert [p["t"] for p in r.json()["points"]] == [1, 101, 201]


def test_top_keys_leave_out_a_shadow_rules_would_denials(server):
    """/stats/top counts real denials: a shadow rule denies nothing, as /stats says."""
    server.create_rule(id="watch", algorithm="fixed_window", limit=1, window="1m", mode="shadow")
    server.create_rule(id="login", algorithm="fixed_window", limit=1, window="1m")
    for _ in range(4):
        server.check("watch", "k")
    for _ in range(3):
        server.check("login", "k")
    expected = [{"rule": "login", "key": "k", "denied": 2}]
    assert wait_until(lambda: server.admin("GET", "/api/v1/stats/top").json()["top"] == expected,
                      timeout=3), server.admin("GET", "/api/v1/stats/top").json()
    assert server.admin("GET", "/api/v1/stats/top?rule=watch").json()["top"] == []
    s = wait_until(lambda: rule_counts(totals(server), "watch")["shadow_denied"] == 3 and
                   totals(server), timeout=3)
    assert rule_counts(s, "watch")["denied"] == 0


def test_top_keys_hold_no_minute_the_window_does_not_reach(server):
    """Denials are kept per minute: ?window= takes in the minute it begins
    in, never an older one. A denial made late in one minute is gone from
    window=1 a few seconds into the next, and still in window=60. (Waits
    for the clock: up to a minute.)"""
    server.create_rule(id="login", algorithm="fixed_window", limit=1, window="1m")
    server.check("login", "warm")  # the writer thread and the rule, before the clock matters
    while not 50 <= time.time() % 60 < 56:
        time.sleep(0.2)
    server.check("login", "k")
    server.check("login", "k")
    expected = [{"rule": "login", "key": "k", "denied": 1}]
    assert wait_until(lambda: server.admin("GET", "/api/v1/stats/top?window=1")
                      .json()["top"] == expected, timeout=3)
    time.sleep(60 - time.time() % 60 + 2.0)  # two seconds into the next minute
    assert server.admin("GET", "/api/v1/stats/top?window=1").json()["top"] == []
    assert server.admin("GET", "/api/v1/stats/top?window=60").json()["top"] == expected


def metrics_rules(server):
    text = request("GET", server.admin_url + "/metrics").body.decode()
    return {line.split('rule="')[1].split('"')[0] for line in text.splitlines()
            if line.startswith("ratekit_decisions_total{")}


def test_rules_created_after_1024_deleted_ones_get_statistics_of_their_own(server):
    """Past 1,024 rules with traffic the rest count under _other, and a
    timeseries of one of them says so instead of answering _other's counts;
    once those rules are deleted (and a grace of 10 s has passed), new rules
    get series of their own again, starting at 0."""
    ids = [f"r-{i:04d}" for i in range(1030)]
    doc = {"rules": [{"id": i, "algorithm": "fixed_window", "limit": 10, "window": "1m"}
                     for i in ids]}
    assert server.admin("POST", "/api/v1/rules/import", doc, timeout=60).status == 200
    for k in range(0, len(ids), 100):
        r = request("POST", server.data + "/v1/check/batch",
                    {"checks": [{"rule": i, "key": "k"} for i in ids[k:k + 100]]})
        assert r.status == 200, r
    s = wait_until(lambda: (lambda t: t["totals"]["allowed"] == 1030 and t)(totals(server)),
                   timeout=3)
    assert s, totals(server)
    own = {r["rule"] for r in s["rules"]} - {"_other"}
    assert len(own) == 1024 and rule_counts(s, "_other")["allowed"] == 6
    lumped = sorted(set(ids) - own)
    r = server.admin("GET", f"/api/v1/stats/timeseries?rule={lumped[0]}")
    assert r.status == 404 and "_other" in r.json()["error"]["message"], r
    assert server.admin("GET", f"/api/v1/stats/timeseries?rule={sorted(own)[0]}").status == 200

    assert server.admin("POST", "/api/v1/rules/import", {"rules": []}).status == 200
    server.create_rule(id="hot", algorithm="fixed_window", limit=1000, window="1m")
    server.create_rule(id="cold", algorithm="fixed_window", limit=1000, window="1m")
    sent = {"hot": 0, "cold": 0}

    def load_shows_as_its_own():
        for rule, n in (("hot", 3), ("cold", 1)):
            for _ in range(n):
                server.check(rule, "k")
                sent[rule] += 1
        return {"hot", "cold"} <= metrics_rules(server)
    assert wait_until(load_shows_as_its_own, timeout=20, interval=0.5), metrics_rules(server)
    time.sleep(3)  # the second the slots were taken in leaves the window below
    for _ in range(5):
        server.check("hot", "k")
    server.check("cold", "k")
    sent["hot"] += 5
    assert wait_until(lambda: rule_counts(totals(server, window=3), "hot")["allowed"] == 5,
                      timeout=3), totals(server, window=3)
    assert rule_counts(totals(server, window=3), "cold")["allowed"] == 1
    now = int(time.time())
    points = server.admin("GET", f"/api/v1/stats/timeseries?rule=hot&from={now - 3}&to={now}")
    assert sum(p["allowed"] for p in points.json()["points"]) == 5, points.json()
    lines = request("GET", server.admin_url + "/metrics").body.decode().splitlines()
    shown = [int(line.split()[-1]) for line in lines
             if line.startswith('ratekit_decisions_total{rule="hot",decision="allowed"}')]
    assert shown and 5 <= shown[0] <= sent["hot"], (shown, sent)  # from 0, not r-xxxx's count


def test_a_rule_change_is_an_event_and_last_event_id_replays_what_was_missed(server):
    stream = EventStream(server)
    first = stream.events_until(lambda e: e["event"] == "stats", timeout=3)[-1]
    created = server.create_rule(id="burst", algorithm="token_bucket", limit=10, window="1s")
    events = stream.events_until(lambda e: e["event"] == "rule", timeout=3)
    rule_event = events[-1]
    assert rule_event["data"]["rule"] == "burst"
    assert rule_event["data"]["action"] == "create"
    version = server.admin("GET", "/api/v1/info").json()["ruleset_version"]
    assert rule_event["data"]["version"] == version
    assert created["id"] == "burst"
    r = server.admin("DELETE", "/api/v1/rules/burst")
    assert r.status == 204
    deleted = stream.events_until(lambda e: e["event"] == "rule", timeout=3)[-1]
    assert deleted["data"]["action"] == "delete" and deleted["data"]["version"] > version
    stream.close()

    # A client that reconnects with the id of the last event it saw gets what followed.
    again = EventStream(server, last_event_id=first["id"])
    replayed = again.events_until(lambda e: e["event"] == "rule"
                                  and e["data"]["action"] == "delete", timeout=3)
    again.close()
    actions = [e["data"]["action"] for e in replayed if e["event"] == "rule"]
    assert actions == ["create", "delete"]
    assert [int(e["id"]) for e in replayed] == sorted(int(e["id"]) for e in replayed)


def test_the_stream_wants_a_token_and_sends_heartbeat_comments(server):
    r = request("GET", server.admin_url + "/api/v1/stream", timeout=3)
    assert r.status == 401
    bad = EventStream(server, token="not-a-valid-token-at-all")
    assert bad.status == 401
    bad.close()


def test_request_id_is_echoed_on_the_data_plane(server):
    server.create_rule(id="rid", algorithm="fixed_window", limit=3, window="1m")
    r = server.check("rid", "k", headers={"X-Request-Id": "req-7f3a"})
    assert r.status == 200 and r.headers["x-request-id"] == "req-7f3a"
    assert "x-request-id" not in server.check("rid", "k").headers


# ---- Prometheus ---------------------------------------------------------------------

def test_metrics_pass_promtool_and_count_decisions(server):
    server.create_rule(id="api", algorithm="fixed_window", limit=2, window="1m")
    server.create_rule(id="shadowed", algorithm="fixed_window", limit=1, window="1m",
                       mode="shadow")
    for _ in range(3):
        server.check("api", "k")
    for _ in range(2):
        server.check("shadowed", "k")
    r = request("GET", server.admin_url + "/metrics")  # no token: Prometheus scrapes it
    assert r.status == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = r.body.decode()
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: apt-get install prometheus (make deps-test)")
    lint = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                          text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    lines = set(text.splitlines())
    assert 'ratekit_decisions_total{rule="api",decision="allowed"} 2' in lines
    assert 'ratekit_decisions_total{rule="api",decision="denied"} 1' in lines
    assert 'ratekit_decisions_total{rule="shadowed",decision="shadow_denied"} 1' in lines
    assert 'ratekit_decisions_total{rule="shadowed",decision="allowed"} 1' in lines
    assert "ratekit_check_duration_seconds_count 5" in lines
    assert 'ratekit_check_duration_seconds_bucket{le="+Inf"} 5' in lines
    assert "ratekit_store_up 1" in lines
    assert "ratekit_store_errors_total 0" in lines
    assert "ratekit_violations_dropped_total 0" in lines
    version = server.admin("GET", "/api/v1/info").json()
    assert f"ratekit_ruleset_version {version['ruleset_version']}" in lines
    assert f'ratekit_build_info{{version="{version["version"]}"}} 1' in lines
    assert "# TYPE ratekit_check_duration_seconds histogram" in lines

    stream = EventStream(server)
    text = request("GET", server.admin_url + "/metrics").body.decode()
    assert "ratekit_sse_clients 1" in text.splitlines()
    stream.close()


# ---- the denial log ------------------------------------------------------------------

def violations_dropped(server):
    text = request("GET", server.admin_url + "/metrics").body.decode()
    for line in text.splitlines():
        if line.startswith("ratekit_violations_dropped_total "):
            return int(line.split()[1])
    raise AssertionError("no ratekit_violations_dropped_total")


def stored_violations(server, rule):
    """Denials in the log of rule: the sum of the rows' counts."""
    with sqlite3.connect(f"file:{server.db_path}?mode=ro", uri=True) as db:
        return db.execute("SELECT COALESCE(SUM(count), 0) FROM violations WHERE rule = ?",
                          (rule,)).fetchone()[0]


def stored_rows(server, rule):
    with sqlite3.connect(f"file:{server.db_path}?mode=ro", uri=True) as db:
        return db.execute("SELECT COUNT(*) FROM violations WHERE rule = ?", (rule,)).fetchone()[0]


def duration_count(server):
    for line in request("GET", server.admin_url + "/metrics").body.decode().splitlines():
        if line.startswith("ratekit_check_duration_seconds_count "):
            return int(line.split()[1])
    raise AssertionError("no ratekit_check_duration_seconds_count")


def test_check_duration_has_one_sample_per_check(server):
    """The histogram's HELP says "one check": a batch of 100 entries is 100
    checks, and a request three rules cover is one."""
    server.create_rule(id="api", algorithm="fixed_window", limit=1000, window="1m")
    server.create_rule(id="site", algorithm="fixed_window", limit=1000, window="1m",
                       match={"path": "/p"})
    server.create_rule(id="site-ip", algorithm="fixed_window", limit=1000, window="1m",
                       key=["ip"], match={"path": "/p"})
    before = duration_count(server)
    batch(server, "api", [f"k{i}" for i in range(100)])
    assert duration_count(server) == before + 100
    r = request("POST", server.data + "/v1/check",
                {"request": {"method": "GET", "path": "/p", "ip": "192.0.2.1"}})
    assert r.status == 200 and len(r.json()["results"]) == 3, r  # "api" covers all
    assert duration_count(server) == before + 101


# ---- checks: each request once, however many rules decide it -----------------------

def checks_metric(server):
    """ratekit_checks_total by decision label."""
    out = {}
    for line in request("GET", server.admin_url + "/metrics").body.decode().splitlines():
        if line.startswith("ratekit_checks_total{"):
            out[line.split('decision="')[1].split('"')[0]] = int(line.split()[1])
    return out


def context_check(server, path, ip):
    r = request("POST", server.data + "/v1/check",
                {"request": {"method": "GET", "path": path, "ip": ip}})
    assert r.status == 200, r
    return r.json()


def test_a_request_three_rules_cover_is_one_check_and_a_batch_of_n_is_n(server):
    server.create_rule(id="api", algorithm="fixed_window", limit=1000, window="1m")
    server.create_rule(id="site", algorithm="fixed_window", limit=1000, window="1m",
                       match={"path": "/p"})
    server.create_rule(id="strict", algorithm="fixed_window", limit=1, window="1h",
                       key=["ip"], match={"path": "/p"})
    assert checks_metric(server) == {"allowed": 0, "denied": 0, "error": 0}
    first = context_check(server, "/p", "192.0.2.1")
    assert first["allowed"] is True and len(first["results"]) == 3, first
    second = context_check(server, "/p", "192.0.2.1")  # "strict" denies, the others refunded
    assert second["allowed"] is False and len(second["results"]) == 3, second
    assert checks_metric(server) == {"allowed": 1, "denied": 1, "error": 0}
    batch(server, "api", [f"k{i}" for i in range(7)])
    assert checks_metric(server) == {"allowed": 8, "denied": 1, "error": 0}

    want = {"allowed": 8, "denied": 1, "errors": 0}
    s = wait_until(lambda: totals(server)["checks"] == want and totals(server), timeout=3)
    assert s, totals(server)
    # the rule decisions stay as they were: three per context request, one per entry
    assert s["totals"] == {"allowed": 12, "denied": 1, "shadow_denied": 0, "errors": 0}
    assert sorted(r["rule"] for r in s["rules"]) == ["api", "site", "strict"]

    now = int(time.time())
    points = server.admin("GET", f"/api/v1/stats/timeseries?from={now - 30}&to={now}"
                          ).json()["points"]
    assert {k: sum(p["checks"][k] for p in points) for k in want} == want
    assert sum(p["allowed"] for p in points) == 12
    one_rule = server.admin("GET", f"/api/v1/stats/timeseries?rule=api&from={now - 30}&to={now}")
    assert all("checks" not in p for p in one_rule.json()["points"])

    stream = EventStream(server)
    sent = int(time.time()) + 1  # a second of its own: nothing else was checked in it
    time.sleep(sent + 0.3 - time.time())
    context_check(server, "/p", "192.0.2.1")
    seen = stream.events_until(lambda e: e["event"] == "stats" and e["data"]["t"] >= sent
                               and e["data"]["checks"]["denied"], timeout=3)
    stream.close()
    last = seen[-1]["data"]
    assert last["checks"] == {"allowed": 0, "denied": 1, "errors": 0}, last
    assert last["totals"]["allowed"] == 2 and last["totals"]["denied"] == 1, last


def test_list_refusals_are_denied_checks_and_safelisted_requests_allowed_ones(server):
    server.create_rule(id="api", algorithm="fixed_window", limit=1000, window="1m")
    for entry in ({"list": "denylist", "value": "203.0.113.0/24"},
                  {"list": "safelist", "value": "198.51.100.7"}):
        assert server.admin("POST", "/api/v1/lists", entry).status == 201
    assert context_check(server, "/x", "203.0.113.9")["reason"] == "denylist"
    assert server.check("api", "203.0.113.10").json()["reason"] == "denylist"
    r = request("GET", server.data + "/v1/auth",
                headers={"X-Original-URI": "/x", "X-Forwarded-For": "203.0.113.11"})
    assert r.status == 403
    assert context_check(server, "/x", "198.51.100.7")["allowed"] is True
    batch(server, "api", ["203.0.113.12", "k"])
    assert checks_metric(server) == {"allowed": 2, "denied": 4, "error": 0}


def test_a_burst_of_10000_denials_is_stored_or_counted_as_dropped(server):
    server.create_rule(id="flood", algorithm="fixed_window", limit=1, window="1h")
    assert server.check("flood", "attacker").json()["allowed"] is True
    denied, started = 0, time.monotonic()
    for _ in range(100):
        denied += sum(not r["allowed"] for r in batch(server, "flood", ["attacker"] * 100))
    elapsed = time.monotonic() - started
    assert denied == 10000
    accounted = wait_until(
        lambda: stored_violations(server, "flood") + violations_dropped(server) == 10000,
        timeout=10)
    stored, dropped = stored_violations(server, "flood"), violations_dropped(server)
    assert accounted, (stored, dropped)
    time.sleep(0.6)  # nothing more arrives later: no row is written twice
    assert stored_violations(server, "flood") + violations_dropped(server) == 10000
    with sqlite3.connect(f"file:{server.db_path}?mode=ro", uri=True) as db:
        row = db.execute("SELECT rule, key, mode, \"limit\", cost, instance FROM violations "
                         "WHERE rule = 'flood' LIMIT 1").fetchone()
    assert row[:5] == ("flood", "attacker", "enforce", 1, 1) and row[5]
    # One key hammered: a row for each second and flush (every 500 ms), not one per denial.
    assert stored_rows(server, "flood") <= 3 * (elapsed + 1), (stored_rows(server, "flood"), elapsed)


def test_denials_of_one_key_in_one_second_are_one_row_with_a_count(server):
    server.create_rule(id="hammer", algorithm="fixed_window", limit=2, window="1h")
    server.create_rule(id="spread", algorithm="fixed_window", limit=1, window="1h")
    batch(server, "hammer", ["bot"] * 50)  # 48 denials of one key
    batch(server, "spread", [f"client-{i}" for i in range(10)] * 2)  # one denial each of 10
    assert wait_until(lambda: stored_violations(server, "hammer") == 48, timeout=5)
    assert wait_until(lambda: stored_violations(server, "spread") == 10, timeout=5)
    hammer = server.admin("GET", "/api/v1/violations?rule=hammer").json()["violations"]
    # One request of 50 checks: within one second, unless it straddled a second or a flush.
    assert 1 <= len(hammer) <= 2 and sum(v["count"] for v in hammer) == 48
    assert all(v["key"] == "bot" and v["limit"] == 2 for v in hammer)
    spread = server.admin("GET", "/api/v1/violations?rule=spread").json()["violations"]
    assert sorted(v["key"] for v in spread) == sorted(f"client-{i}" for i in range(10))
    assert all(v["count"] == 1 for v in spread)
    # The most denied keys count every denial of a row.
    assert server.admin("GET", "/api/v1/stats/top?rule=hammer&window=300").json()["top"] == [
        {"rule": "hammer", "key": "bot", "denied": 48}]


def test_the_most_denied_keys_show_while_another_process_holds_the_database(server):
    server.create_rule(id="locked", algorithm="fixed_window", limit=1, window="1h")
    top = lambda: server.admin("GET", "/api/v1/stats/top?rule=locked").json()["top"]  # noqa: E731
    holder = sqlite3.connect(server.db_path, timeout=5, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # a backup or another instance's write holds the lock
    try:
        batch(server, "locked", ["bot"] * 4)  # 3 denials
        expected = [{"rule": "locked", "key": "bot", "denied": 3}]
        assert wait_until(lambda: top() == expected, timeout=2), top()
        assert stored_violations(server, "locked") == 0, "the log waits for the lock"
    finally:
        holder.execute("COMMIT")
        holder.close()
    assert wait_until(lambda: stored_violations(server, "locked") == 3, timeout=5)
    assert violations_dropped(server) == 0


def test_a_key_hammered_over_many_connections_is_counted_whole(server):
    server.create_rule(id="hot", algorithm="fixed_window", limit=1, window="1h")

    def hammer(_):
        conn = http.client.HTTPConnection("127.0.0.1", server.data_port, timeout=10)
        denied = 0
        for _ in range(300):
            conn.request("POST", "/v1/check", json.dumps({"rule": "hot", "key": "victim"}),
                          {"Content-Type": "application/json"})
            denied += not json.loads(conn.getresponse().read())["allowed"]
        conn.close()
        return denied

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        denied = sum(pool.map(hammer, range(8)))
    elapsed = time.monotonic() - started
    assert denied == 8 * 300 - 1
    assert wait_until(lambda: stored_violations(server, "hot") == denied, timeout=5), \
        (stored_violations(server, "hot"), violations_dropped(server))
    assert violations_dropped(server) == 0
    # A few rows a second (a server thread's, then the writer's flush), not one per denial.
    assert stored_rows(server, "hot") <= 8 * (elapsed + 2), (stored_rows(server, "hot"), elapsed)


def test_denials_just_before_a_graceful_stop_are_written(make_server):
    s = make_server()
    s.create_rule(id="last-words", algorithm="fixed_window", limit=1, window="1h")
    results = [s.check("last-words", "k").json()["allowed"] for _ in range(6)]
    assert results == [True] + [False] * 5
    assert s.stop() == 0  # at once: the denials may not have reached the writer yet
    with sqlite3.connect(f"file:{s.db_path}?mode=ro", uri=True) as db:
        assert db.execute("SELECT SUM(count) FROM violations WHERE rule = 'last-words'"
                          ).fetchone()[0] == 5


def test_violations_page_by_cursor_filter_and_export_as_csv(server):
    server.create_rule(id="pages", algorithm="fixed_window", limit=1, window="1h")
    server.create_rule(id="quiet", algorithm="fixed_window", limit=1, window="1h", mode="shadow")
    keys = ["a,b", 'q"x', "plain"] + [f"k{i}" for i in range(21)]
    batch(server, "pages", keys * 2)  # each key: 1 allowed, 1 denied
    batch(server, "quiet", ["s"] * 3)  # 2 would-deny, one row
    assert wait_until(lambda: stored_violations(server, "pages") == 24, timeout=5)
    assert wait_until(lambda: stored_violations(server, "quiet") == 2, timeout=5)

    seen, cursor, pages = [], None, 0
    while True:
        path = "/api/v1/violations?rule=pages&limit=7" + (f"&cursor={cursor}" if cursor else "")
        body = server.admin("GET", path).json()
        pages += 1
        seen.extend(body["violations"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert isinstance(cursor, str)
    assert pages == 4 and len(seen) == 24
    ids = [v["id"] for v in seen]
    assert len(set(ids)) == 24 and ids == sorted(ids, reverse=True), "newest first, each once"
    assert {v["key"] for v in seen} == set(keys)
    v = seen[0]
    assert set(v) == {"id", "at", "rule", "key", "mode", "limit", "cost", "count"}
    assert v["rule"] == "pages" and v["mode"] == "enforce" and v["limit"] == 1 and v["cost"] == 1
    assert v["count"] == 1
    assert time.strptime(v["at"], "%Y-%m-%dT%H:%M:%S.%fZ")

    by_key = server.admin("GET", "/api/v1/violations?key=a%2Cb").json()["violations"]
    assert len(by_key) == 1 and by_key[0]["key"] == "a,b"
    shadow = server.admin("GET", "/api/v1/violations?rule=quiet").json()["violations"]
    assert {x["mode"] for x in shadow} == {"shadow"} and sum(x["count"] for x in shadow) == 2
    future = int(time.time()) + 3600
    assert server.admin("GET", f"/api/v1/violations?from={future}").json() == {
        "violations": [], "next_cursor": None}
    assert server.admin("GET", "/api/v1/violations?cursor=nope").status == 400
    assert server.admin("GET", "/api/v1/violations?limit=0").status == 400

    r = server.admin("GET", "/api/v1/violations?format=csv")
    assert r.status == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == 'attachment; filename="violations.csv"'
    rows = list(csv.reader(io.StringIO(r.body.decode(), newline="")))
    assert rows[0] == ["id", "at", "rule", "key", "mode", "limit", "cost", "count"]
    assert len(rows) == 1 + 24 + len(shadow)
    assert sum(int(row[7]) for row in rows[1:]) == 26
    assert {row[3] for row in rows[1:] if row[2] == "pages"} == set(keys)
    assert sorted(int(row[0]) for row in rows[1:] if row[2] == "pages") == sorted(ids)


def test_rows_older_than_the_retention_are_deleted(make_server):
    s = make_server(env={"RATEKIT_VIOLATIONS_RETENTION_DAYS": "7"})
    s.create_rule(id="aging", algorithm="fixed_window", limit=1, window="1h")
    batch(s, "aging", ["k1", "k2", "k3"] * 2)  # 3 denials, a row each
    assert wait_until(lambda: stored_rows(s, "aging") == 3, timeout=5)
    assert s.stop() == 0
    with sqlite3.connect(s.db_path) as db:
        db.execute("UPDATE violations SET at_ms = at_ms - 8 * 86400000 "
                   "WHERE id = (SELECT MIN(id) FROM violations)")
    again = make_server(db_path=s.db_path, env={"RATEKIT_VIOLATIONS_RETENTION_DAYS": "7"})
    assert wait_until(lambda: stored_rows(again, "aging") == 2, timeout=5)
    assert len(again.admin("GET", "/api/v1/violations").json()["violations"]) == 2


def test_access_log_writes_one_json_line_per_check(make_server):
    s = make_server(env={"RATEKIT_ACCESS_LOG": "1", "RATEKIT_LOG_LEVEL": "info",
                         "RATEKIT_LOG_FORMAT": "json"})
    s.create_rule(id="acc", algorithm="fixed_window", limit=1, window="1h")
    s.check("acc", "203.0.113.9")
    s.check("acc", "203.0.113.9")

    def lines():
        out = []
        for line in s.output().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("message", "").startswith("check rule=acc "):
                out.append(entry["message"])
        return out

    assert wait_until(lambda: len(lines()) == 2, timeout=3), s.output()[-2000:]
    assert "key=203.0.113.9 decision=allowed" in lines()[0]
    assert "decision=denied" in lines()[1]


# ---- two instances on one Redis ------------------------------------------------------

def test_two_instances_on_redis_report_each_others_checks_within_two_seconds(make_server,
                                                                           redis):
    env = {"RATEKIT_REDIS_URL": redis.url}
    a = make_server(env=env)
    b = make_server(env=env, db_path=a.db_path)
    a.create_rule(id="shared", algorithm="fixed_window", limit=4, window="1h")
    assert wait_until(lambda: b.check("shared", "probe").status == 200, timeout=3)
    # the probe above counted once on b; wait until that second is behind us
    assert wait_until(lambda: rule_counts(totals(a), "shared")["allowed"] == 1, timeout=3)
    assert wait_until(lambda: totals(b)["instances"] == 2, timeout=3)
    assert b.admin("GET", "/api/v1/info").json()["instances"] == 2

    stream = EventStream(b)
    stream.events_until(lambda e: e["event"] == "stats", timeout=3)
    for _ in range(6):
        a.check("shared", "198.51.100.9")
    sent = time.monotonic()
    seen = []
    deadline = sent + 2.0
    while time.monotonic() < deadline and sum_rule(seen, "shared", "denied") < 2:
        try:
            seen.append(stream.next_event(max(0.05, deadline - time.monotonic())))
        except (socket.timeout, TimeoutError):
            break
    took = time.monotonic() - sent
    stream.close()
    assert sum_rule(seen, "shared", "allowed") == 4 and sum_rule(seen, "shared", "denied") == 2, \
        seen
    assert took <= 2.0, f"b's stream showed a's checks after {took:.2f}s"
    got = wait_until(lambda: rule_counts(totals(b), "shared")["denied"] == 2, timeout=0.5)
    assert got, totals(b)
    s = rule_counts(totals(b), "shared")
    assert s["allowed"] == 5 and s["denied"] == 2  # a's 4 and b's probe

    top = b.admin("GET", "/api/v1/stats/top?rule=shared").json()["top"]
    assert wait_until(lambda: b.admin("GET", "/api/v1/stats/top?rule=shared").json()["top"]
                      == [{"rule": "shared", "key": "198.51.100.9", "denied": 2}], timeout=2), top
    keys = redis.cli("KEYS", "ratekit:stats:*").split()
    assert keys and all(0 < int(redis.cli("TTL", k)) <= 960 for k in keys)
    assert int(redis.cli("ZCARD", "ratekit:instances")) == 2
    assert 0 < int(redis.cli("TTL", "ratekit:instances")) <= 60
    denied_keys = redis.cli("KEYS", "ratekit:denied:*").split()
    assert denied_keys and all(0 < int(redis.cli("TTL", k)) <= 1020 for k in denied_keys)


def test_two_instances_on_redis_count_each_request_once_cluster_wide(make_server, redis):
    """A request five rules cover goes to Redis in two groups of rules and
    is still one check; each instance's stats sum both instances' checks."""
    env = {"RATEKIT_REDIS_URL": redis.url}
    a = make_server(env=env)
    b = make_server(env=env, db_path=a.db_path)
    a.create_rule(id="api", algorithm="fixed_window", limit=1000, window="1m")
    for n in range(3):
        a.create_rule(id=f"wide-{n}", algorithm="fixed_window", limit=1000, window="1m",
                      match={"path": "/q"})
    a.create_rule(id="strict", algorithm="fixed_window", limit=1, window="1h", key=["ip"],
                  match={"path": "/q"})
    assert wait_until(lambda: len(context_check(b, "/none", "192.0.2.99")["results"]) == 1,
                      timeout=3)  # b has the rules too (that was one allowed check)
    assert len(context_check(a, "/q", "192.0.2.5")["results"]) == 5
    denied = context_check(a, "/q", "192.0.2.5")
    assert denied["allowed"] is False and len(denied["results"]) == 5, denied
    batch(b, "api", [f"k{i}" for i in range(4)])
    want = {"allowed": 6, "denied": 1, "errors": 0}
    for s in (a, b):
        got = wait_until(lambda s=s: totals(s)["checks"] == want, timeout=3)
        assert got, (totals(a), totals(b))
    s = totals(b)
    assert s["instances"] == 2
    assert s["totals"]["allowed"] + s["totals"]["denied"] == 1 + 10 + 4
    assert all(not r["rule"].startswith("_") for r in s["rules"]), s["rules"]
    fields = []
    for key in redis.cli("KEYS", "ratekit:stats:*").split():
        fields += redis.cli("HGETALL", key).split()[::2]
    assert any(f.startswith("_checks:denied@") for f in fields), fields
    assert checks_metric(a) == {"allowed": 1, "denied": 1, "error": 0}  # a's own
    assert checks_metric(b) == {"allowed": 5, "denied": 0, "error": 0}


def test_stats_answer_while_redis_is_away_and_catch_up_after(make_server, redis):
    s = make_server(env={"RATEKIT_REDIS_URL": redis.url, "RATEKIT_REDIS_TIMEOUT_MS": "100",
                         "RATEKIT_FAIL_MODE": "open"})
    s.create_rule(id="away", algorithm="fixed_window", limit=100, window="1h")
    redis.stop()
    for _ in range(3):
        s.check("away", "k")
    t0 = time.monotonic()
    r = s.admin("GET", "/api/v1/stats?window=60", timeout=3)
    assert r.status == 200 and time.monotonic() - t0 < 1.0
    assert wait_until(lambda: rule_counts(totals(s), "away")["errors"] == 3, timeout=3), totals(s)
    # fail open let them through: checks the fail mode answered, not allowed ones
    assert totals(s)["checks"] == {"allowed": 0, "denied": 0, "errors": 3}
    assert s.admin("GET", "/api/v1/stats/top", timeout=3).status == 503


def test_checks_decided_while_redis_was_stopped_stay_in_the_stats_after(make_server, redis):
    """The seconds an instance could not publish go out once Redis answers
    again, and the cluster view read back from Redis keeps them; a
    publication that timed out but landed is not counted twice."""
    env = {"RATEKIT_REDIS_URL": redis.url, "RATEKIT_REDIS_TIMEOUT_MS": "100"}
    s = make_server(env=env)
    s.create_rule(id="closed", algorithm="fixed_window", limit=100, window="1h",
                  fail_mode="closed")
    assert s.check("closed", "k").status == 200
    assert wait_until(lambda: rule_counts(totals(s), "closed")["allowed"] == 1, timeout=3)
    redis.proc.send_signal(signal.SIGSTOP)
    try:
        for _ in range(5):
            s.check("closed", "k", timeout=3)
        time.sleep(2.5)  # publications time out; one may sit in the socket, to land later
    finally:
        redis.proc.send_signal(signal.SIGCONT)
    metrics = request("GET", s.admin_url + "/metrics").body.decode().splitlines()
    assert 'ratekit_decisions_total{rule="closed",decision="error"} 5' in metrics
    time.sleep(3)
    for _ in range(3):  # it holds: a later read of Redis does not take it back
        counts = rule_counts(totals(s), "closed")
        assert counts["errors"] == 5 and counts["allowed"] == 1, counts
        time.sleep(0.5)
    now = int(time.time())
    points = s.admin("GET", f"/api/v1/stats/timeseries?from={now - 30}&to={now}").json()
    assert sum(p["allowed"] + p["denied"] for p in points["points"]) == 1
    stored = 0
    for key in redis.cli("KEYS", "ratekit:stats:*").split():
        fields = redis.cli("HGETALL", key).split()
        stored += sum(int(v) for f, v in zip(fields[::2], fields[1::2])
                      if f.startswith("closed:errors@"))
    assert stored == 5


# ---- the cost of streams -------------------------------------------------------------

def check_latencies(server, seconds):
    """Sequential checks on one keep-alive connection for a while: (p50, p99) in seconds."""
    conn = http.client.HTTPConnection("127.0.0.1", server.data_port, timeout=5)
    body = json.dumps({"rule": "lat", "key": "k"})
    out = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        conn.request("POST", "/v1/check", body=body, headers={"Content-Type": "application/json"})
        conn.getresponse().read()
        out.append(time.perf_counter() - t)
    conn.close()
    out.sort()
    return statistics.median(out), out[int(len(out) * 0.99)]


def test_200_open_streams_do_not_slow_checks(server):
    server.create_rule(id="lat", algorithm="token_bucket", limit=10 ** 7, window="1s")
    check_latencies(server, 0.3)  # warm up
    before = check_latencies(server, 3)
    socks = []
    for _ in range(200):
        s = socket.create_connection(("127.0.0.1", server.admin_port))
        s.sendall(f"GET /api/v1/stream?access_token={ADMIN_TOKEN} HTTP/1.1\r\n"
                  f"Host: x\r\n\r\n".encode())
        socks.append(s)
    assert wait_until(lambda: "ratekit_sse_clients 200" in
                      request("GET", server.admin_url + "/metrics").body.decode(), timeout=5)
    with_streams = check_latencies(server, 3)  # three stats events to all 200
    print(f"\ncheck latency p50/p99 without streams: {before[0] * 1e6:.0f}/{before[1] * 1e6:.0f} us;"
          f" with 200 streams: {with_streams[0] * 1e6:.0f}/{with_streams[1] * 1e6:.0f} us")
    for s in socks:
        s.close()
    assert with_streams[0] < before[0] * 1.5 + 0.0002
