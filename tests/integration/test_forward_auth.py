"""Rules that match real traffic: the context form of /v1/check, GET /v1/auth
(forward-auth) directly and behind a real nginx, client identity, trusted
proxies, JWT verification and plans."""

import base64
import calendar
import hashlib
import hmac
import json
import os
import socket
import subprocess
import threading
import time

import pytest

from conftest import free_port, request, wait_for_port


def ctx_check(server, path, method="GET", ip="203.0.113.7", headers=None, host=None, cost=None):
    body = {"request": {"method": method, "path": path, "ip": ip, "headers": headers or {}}}
    if host:
        body["request"]["host"] = host
    if cost is not None:
        body["cost"] = cost
    r = request("POST", server.data + "/v1/check", body)
    assert r.status == 200, r
    return r.json()


def auth(server, uri, method="GET", headers=None, query=""):
    h = {"X-Original-URI": uri, "X-Original-Method": method}
    h.update(headers or {})
    return request("GET", server.data + "/v1/auth" + query, headers=h)


def test_context_form_matches_rules_by_method_path_host_and_header(server):
    server.create_rule(id="api", algorithm="fixed_window", limit=2, window="1m",
                       match={"methods": ["GET"], "path": "/api/*"})
    server.create_rule(id="orders", algorithm="fixed_window", limit=1, window="1m",
                       match={"path": "/users/*/orders", "hosts": ["shop.example.com"]})
    server.create_rule(id="beta", algorithm="fixed_window", limit=1, window="1m",
                       match={"headers": {"X-Env": "beta"}, "path": "/beta"})
    a = ctx_check(server, "/api/items?page=2")
    assert a["allowed"] and [r["rule"] for r in a["results"]] == ["api"]
    assert a["results"][0]["key"] == "ip:203.0.113.7"
    assert ctx_check(server, "/api/items", method="POST")["results"] == []
    assert ctx_check(server, "/other")["results"] == []
    assert ctx_check(server, "/users/7/orders", host="evil.com")["results"] == []
    o = ctx_check(server, "/users/7/orders", host="Shop.Example.com:443")
    assert [r["rule"] for r in o["results"]] == ["orders"]
    assert ctx_check(server, "/beta", headers={"x-env": "prod"})["results"] == []
    assert ctx_check(server, "/beta", headers={"X-Env": "beta"})["results"][0]["rule"] == "beta"
    # encodings and dot-segments cannot dodge a rule
    ctx_check(server, "/api/x")
    d = ctx_check(server, "/./api/%78/../x")
    assert d["allowed"] is False and d["rule"] == "api"


def test_every_matching_rule_applies_and_any_enforcing_denial_denies(server):
    server.create_rule(id="wide", algorithm="fixed_window", limit=100, window="1m")
    server.create_rule(id="narrow", algorithm="fixed_window", limit=1, window="1m",
                       match={"path": "/login"})
    first = ctx_check(server, "/login")
    assert first["allowed"] and {r["rule"] for r in first["results"]} == {"wide", "narrow"}
    second = ctx_check(server, "/login")
    assert second["allowed"] is False and second["rule"] == "narrow"
    assert ctx_check(server, "/elsewhere")["allowed"] is True


def test_key_chain_takes_the_first_part_the_request_has(server):
    server.create_rule(id="chain", algorithm="fixed_window", limit=1, window="1m",
                       key=["user", "api_key", "header:X-Tenant", "ip"])
    keys = [ctx_check(server, "/x", headers=h)["results"][0]["key"] for h in (
        {"X-User-Id": "42"}, {"X-API-Key": "secret-key"}, {"X-Tenant": "acme"}, {})]
    assert keys[0] == "user:42"
    assert keys[1].startswith("api_key:") and "secret-key" not in keys[1]
    assert keys[2] == "header:x-tenant:acme"
    assert keys[3] == "ip:203.0.113.7"
    server.create_rule(id="tuple", algorithm="fixed_window", limit=1, window="1m",
                       key=["ip+route"], match={"path": "/t/*"})
    k = ctx_check(server, "/t/1", method="POST")["results"]
    assert [r["key"] for r in k if r["rule"] == "tuple"] == ["ip:203.0.113.7|route:POST:/t/*"]
    server.create_rule(id="glob", algorithm="fixed_window", limit=1, window="1m",
                       key=["global"], match={"path": "/g"})
    assert ctx_check(server, "/g", ip="1.1.1.1")["allowed"] is True
    assert ctx_check(server, "/g", ip="2.2.2.2")["allowed"] is False


def test_ipv6_clients_share_their_64(server):
    server.create_rule(id="v6", algorithm="fixed_window", limit=1, window="1m")
    assert ctx_check(server, "/", ip="2001:db8:1:2::1")["allowed"] is True
    r = ctx_check(server, "/", ip="2001:db8:1:2:ffff::9")
    assert r["allowed"] is False and r["results"][0]["key"] == "ip:2001:db8:1:2::/64"
    assert ctx_check(server, "/", ip="2001:db8:1:3::1")["allowed"] is True


def test_forward_auth_allows_with_headers_then_denies_with_429_and_retry_after(server):
    server.create_rule(id="fa", algorithm="token_bucket", limit=2, window="1m",
                       match={"path": "/api/*"})
    headers = {"X-Forwarded-For": "198.51.100.4"}
    for _ in range(2):
        r = auth(server, "/api/things", headers=headers)
        assert r.status == 200
        assert r.headers["ratelimit-policy"] == '"fa";q=2;w=60'
    r = auth(server, "/api/things", headers=headers)
    assert r.status == 429
    body = r.json()["error"]
    assert body["code"] == "rate_limited" and body["rule"] == "fa" and body["retry_after_ms"] > 0
    assert body["reset_at"].endswith("Z")
    assert int(r.headers["retry-after"]) >= 1
    assert auth(server, "/api/things", headers=headers, query="?deny_status=403").status == 403
    assert auth(server, "/api/things", headers={"X-Forwarded-For": "198.51.100.5"}).status == 200
    # a path no rule covers passes, without rate-limit headers
    r = auth(server, "/public")
    assert r.status == 200 and "ratelimit" not in r.headers
    # Caddy and Traefik name the headers differently
    r = request("GET", server.data + "/v1/auth", headers={
        "X-Forwarded-Uri": "/api/things", "X-Forwarded-Method": "GET",
        "X-Forwarded-For": "198.51.100.4"})
    assert r.status == 429


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_a_denials_reset_at_is_the_instant_of_x_ratelimit_reset(make_server, make_redis, store):
    """reset_at is rounded up to the second as X-RateLimit-Reset is: never a
    time before the client's state is back to full."""
    server = make_server(env={"RATEKIT_REDIS_URL": make_redis().url} if store == "redis" else {})
    server.create_rule(id="ra", algorithm="token_bucket", limit=1, window="7s",
                       match={"path": "/ra"}, key=["ip"])
    for ip in ("198.51.100.40", "198.51.100.41", "198.51.100.42"):
        xff = {"X-Forwarded-For": ip}
        assert auth(server, "/ra", headers=xff).status == 200
        before_ms = time.time() * 1000
        r = auth(server, "/ra", headers=xff)
        assert r.status == 429, r
        reset_at = r.json()["error"]["reset_at"]
        epoch = calendar.timegm(time.strptime(reset_at, "%Y-%m-%dT%H:%M:%SZ"))
        assert epoch == int(r.headers["x-ratelimit-reset"]), (reset_at, r.headers)
        assert epoch * 1000 >= before_ms + r.json()["error"]["retry_after_ms"] - 10


def test_a_gateway_forwarding_12_kb_of_headers_is_answered_and_40_kb_gets_431(server):
    """Behind a gateway the original request's headers come along: a cookie
    jar, a token, tracing headers. 12 KB of them is answered as any request;
    40 KB is refused with 431, not with a dropped connection."""
    server.create_rule(id="fa", algorithm="token_bucket", limit=5, window="1m",
                       match={"path": "/api/*"})
    big = {"Cookie": "; ".join(f"c{i}={'v' * 70}" for i in range(100)),  # 7.6 KB
           "Authorization": "Bearer " + "t" * 2000}
    big.update({f"X-Trace-{i}": "x" * 40 for i in range(50)})
    assert sum(len(k) + len(v) + 4 for k, v in big.items()) > 12000
    r = auth(server, "/api/things", headers=big)
    assert r.status == 200 and r.headers["ratelimit-policy"] == '"fa";q=5;w=60'
    r = auth(server, "/api/things", headers={"Cookie": "c=" + "v" * 40000})
    assert r.status == 431
    assert auth(server, "/api/things").status == 200


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_a_shaping_rule_spaces_answers_out_without_holding_a_thread(make_server, make_redis,
                                                                     store):
    env = {"RATEKIT_THREADS": "2"}
    if store == "redis":
        env["RATEKIT_REDIS_URL"] = make_redis().url
    server = make_server(env=env)
    server.create_rule(id="smooth", algorithm="leaky_bucket", limit=10, window="1s", burst=5,
                       shape=True, match={"path": "/api/*"})
    answers = {}

    def one(i):
        started = time.monotonic()
        r = auth(server, "/api/x", headers={"X-Forwarded-For": "198.51.100.7"})
        answers[i] = (r.status, time.monotonic() - started)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    time.sleep(0.1)
    # Four answers wait on 2 server threads: another client is answered at once all the same.
    started = time.monotonic()
    assert auth(server, "/public", headers={"X-Forwarded-For": "198.51.100.8"}).status == 200
    assert time.monotonic() - started < 0.1, "a waiting answer holds a server thread"
    for t in threads:
        t.join()
    by_time = sorted(answers.values(), key=lambda a: a[1])
    # the queue holds 5: they pass one every 100 ms (the first at once); the 6th is refused
    assert [status for status, _ in by_time].count(200) == 5
    assert [status for status, _ in by_time].count(429) == 1
    passed = [took for status, took in by_time if status == 200]
    assert passed[0] < 0.08 and passed[-1] >= 0.38, passed
    assert all(b - a >= 0.07 for a, b in zip(passed, passed[1:])), passed


def test_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(make_server):
    server = make_server(env={"RATEKIT_TRUSTED_PROXIES": "10.0.0.0/8"})
    server.create_rule(id="spoof", algorithm="fixed_window", limit=2, window="1m")
    statuses = [auth(server, "/", headers={"X-Forwarded-For": f"203.0.113.{i}",
                                           "X-Real-IP": f"198.51.100.{i}"}).status
                for i in range(5)]
    assert statuses == [200, 200, 429, 429, 429]
    # and the context form: the reported ip is a client, its headers are not believed
    r = ctx_check(server, "/", ip="192.0.2.1", headers={"X-Forwarded-For": "203.0.113.99"})
    assert r["results"][0]["key"] == "ip:192.0.2.1"


def test_trusted_proxy_chain_is_walked_from_the_right(server):
    server.create_rule(id="walk", algorithm="fixed_window", limit=1, window="1m")
    r = ctx_check(server, "/", ip="127.0.0.1",
                  headers={"X-Forwarded-For": "6.6.6.6, 198.51.100.77, 127.0.0.1"})
    assert r["results"][0]["key"] == "ip:198.51.100.77"
    # However many hops a client writes on the left, the right end is read.
    forged = ", ".join(f"6.6.{i // 250}.{i % 250}" for i in range(300))
    r = ctx_check(server, "/", ip="127.0.0.1",
                  headers={"X-Forwarded-For": forged + ", 198.51.100.78, 127.0.0.1"})
    assert r["results"][0]["key"] == "ip:198.51.100.78"
    r = auth(server, "/", headers={"X-Forwarded-For": forged + ", 198.51.100.79"})
    assert r.status == 200
    assert server.admin("GET", "/api/v1/counters?rule=walk&key=ip:198.51.100.79"
                        ).json()["remaining"] == 0
    # A client's own Forwarded does not outrank the X-Forwarded-For its proxy wrote.
    r = ctx_check(server, "/", ip="127.0.0.1",
                  headers={"X-Forwarded-For": "198.51.100.80", "Forwarded": "for=6.6.6.6"})
    assert r["results"][0]["key"] == "ip:198.51.100.80"


def test_x_forwarded_for_sent_on_several_lines_is_one_list(server):
    """A proxy may add its own X-Forwarded-For line below the client's: the
    lines are one list (RFC 9110), walked from the right end of the last."""
    server.create_rule(id="lines", algorithm="fixed_window", limit=5, window="1m")
    with socket.create_connection(("127.0.0.1", server.data_port), timeout=5) as s:
        s.sendall(b"GET /v1/auth HTTP/1.1\r\nHost: x\r\nX-Original-URI: /a\r\n"
                  b"X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 198.51.100.81\r\n"
                  b"Connection: close\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
    counters = lambda ip: server.admin("GET", f"/api/v1/counters?rule=lines&key=ip:{ip}").json()
    assert counters("198.51.100.81")["remaining"] == 4
    assert counters("6.6.6.6")["remaining"] == 5


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256(claims, secret):
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64(sig)}"


def test_forged_jwt_buys_no_fresh_limit(make_server):
    server = make_server(env={"RATEKIT_JWT_SECRET": "s3cret-s3cret-s3cret-s3cret-s3cret"})
    server.create_rule(id="jwt", algorithm="fixed_window", limit=1, window="1m",
                       key=["jwt:sub", "ip"])
    good = hs256({"sub": "alice", "exp": time.time() + 600}, "s3cret-s3cret-s3cret-s3cret-s3cret")
    r = ctx_check(server, "/", headers={"Authorization": "Bearer " + good})
    assert r["results"][0]["key"] == "jwt:sub:alice"
    forged = [hs256({"sub": f"mallory{i}"}, "wrong-secret") for i in range(3)]
    none_alg = b64(b'{"alg":"none"}') + "." + b64(b'{"sub":"x"}') + "."
    expired = hs256({"sub": "bob", "exp": time.time() - 10}, "s3cret-s3cret-s3cret-s3cret-s3cret")
    answers = [ctx_check(server, "/", headers={"Authorization": "Bearer " + t})
               for t in forged + [none_alg, expired, "garbage"]]
    assert all(a["results"][0]["key"] == "ip:203.0.113.7" for a in answers)
    assert [a["allowed"] for a in answers] == [True] + [False] * 5


def test_a_request_without_any_key_part_is_counted_by_its_address(make_server):
    """A rule keyed only by a token claim or a header still limits a client
    that leaves them out, or forges the token: it is counted by its address
    (it skipped the rule before, however often it came)."""
    server = make_server(env={"RATEKIT_JWT_SECRET": "s3cret-s3cret-s3cret-s3cret-s3cret"})
    server.create_rule(id="only-jwt", algorithm="fixed_window", limit=1, window="1m",
                       match={"path": "/jwt/*"}, key=["jwt:sub"])
    server.create_rule(id="only-tenant", algorithm="fixed_window", limit=1, window="1m",
                       match={"path": "/tenant/*"}, key=["header:X-Tenant"])
    good = hs256({"sub": "alice", "exp": time.time() + 600}, "s3cret-s3cret-s3cret-s3cret-s3cret")
    forged = hs256({"sub": "mallory"}, "wrong-secret")
    r = ctx_check(server, "/jwt/x", headers={"Authorization": "Bearer " + good})
    assert r["results"][0]["key"] == "jwt:sub:alice"
    for path, headers in (("/jwt/x", {}), ("/jwt/x", {"Authorization": "Bearer " + forged}),
                          ("/tenant/x", {})):
        answers = [ctx_check(server, path, headers=headers) for _ in range(2)]
        assert [a["results"][0]["key"] for a in answers] == ["ip:203.0.113.7"] * 2, answers
    assert [a["allowed"] for a in answers] == [True, False]
    assert not ctx_check(server, "/jwt/y")["allowed"], "the forged token shares the address's"
    r = ctx_check(server, "/tenant/x", headers={"X-Tenant": "acme"})
    assert r["allowed"] and r["results"][0]["key"] == "header:x-tenant:acme"


def test_a_jwt_setting_that_could_verify_no_token_stops_the_start(make_server, workdir):
    """A key or secret that can verify no token ratekit takes (or any token
    anyone can forge) is said at start, naming the setting, rather than
    every jwt: part falling through unseen."""
    keys = {}
    for name, args in (("p384", ["ecparam", "-name", "secp384r1", "-genkey", "-noout"]),
                       ("rsa1024", ["genrsa", "1024"]), ("p256", ["ecparam", "-name",
                                                                 "prime256v1", "-genkey",
                                                                 "-noout"])):
        private = subprocess.run(["openssl", *args], capture_output=True, check=True).stdout
        keys[name] = subprocess.run(["openssl", "pkey", "-pubout"], input=private,
                                    capture_output=True, check=True).stdout.decode()
    for env, said in (({"RATEKIT_JWT_SECRET": "short"}, "RATEKIT_JWT_SECRET: HS256 needs"),
                      ({"RATEKIT_JWT_PUBLIC_KEY": keys["p384"]}, "ES256 needs P-256"),
                      ({"RATEKIT_JWT_PUBLIC_KEY": keys["rsa1024"]}, "RS256 needs 2048")):
        s = make_server(env=env, start=False)
        s.start(wait=False)
        assert s.proc.wait(10) != 0, env
        assert said in s.output(), (env, s.output())
    assert make_server(env={"RATEKIT_JWT_PUBLIC_KEY": keys["p256"]}).proc.poll() is None


def test_a_numeric_claim_keys_by_its_integer_and_a_huge_one_is_not_used(make_server):
    server = make_server(env={"RATEKIT_JWT_SECRET": "s3cret-s3cret-s3cret-s3cret-s3cret"})
    server.create_rule(id="jwt-num", algorithm="fixed_window", limit=5, window="1m",
                       key=["jwt:sub", "ip"])
    keys = [ctx_check(server, "/", headers={"Authorization": "Bearer " + hs256(
        {"sub": sub}, "s3cret-s3cret-s3cret-s3cret-s3cret")})["results"][0]["key"]
        for sub in (42, -7, 1e300, -1e300, 2.5, 9.3e18)]
    assert keys == ["jwt:sub:42", "jwt:sub:-7"] + ["ip:203.0.113.7"] * 4


def test_plans_override_limits_from_x_plan_without_jwt_verification(server):
    server.create_rule(id="planned", algorithm="fixed_window", limit=1, window="1m",
                       key=["user"], plans={"pro": {"limit": 3}})
    free = [ctx_check(server, "/", headers={"X-User-Id": "f"})["allowed"] for _ in range(2)]
    pro = [ctx_check(server, "/", headers={"X-User-Id": "p", "X-Plan": "pro"})["allowed"]
           for _ in range(4)]
    assert free == [True, False] and pro == [True, True, True, False]


def test_with_jwt_verification_only_a_verified_plan_claim_picks_the_plan(make_server):
    """A client naming its own plan in X-Plan gets nothing for it once JWTs
    are verified: the plan is the signed token's, on /v1/auth as on /v1/check."""
    secret = "plan-secret-plan-secret-plan-secret"
    server = make_server(env={"RATEKIT_JWT_SECRET": secret})
    server.create_rule(id="planned", algorithm="fixed_window", limit=2, window="1m",
                       match={"path": "/p/*"}, key=["ip"], plans={"pro": {"limit": 1000}})
    claimed = [auth(server, "/p/x", headers={"X-Plan": "pro"}) for _ in range(3)]
    assert [r.status for r in claimed] == [200, 200, 429]
    assert claimed[0].headers["ratelimit-policy"] == '"planned";q=2;w=60'
    # the same through the context form, for another client
    answers = [ctx_check(server, "/p/x", ip="198.51.100.20", headers={"X-Plan": "pro"})
               for _ in range(3)]
    assert [a["allowed"] for a in answers] == [True, True, False]
    assert {a["limit"] for a in answers} == {2}
    # a token signed with another secret names no plan either
    forged = hs256({"plan": "pro"}, "not-the-secret-at-all")
    r = ctx_check(server, "/p/x", ip="198.51.100.21",
                  headers={"Authorization": "Bearer " + forged, "X-Plan": "pro"})
    assert r["limit"] == 2
    # a verified claim does
    token = hs256({"plan": "pro"}, secret)
    r = auth(server, "/p/x", headers={"Authorization": "Bearer " + token,
                                      "X-Forwarded-For": "198.51.100.22"})
    assert r.status == 200 and r.headers["ratelimit-policy"] == '"planned";q=1000;w=60'
    assert r.headers["ratelimit"].startswith('"planned";r=999;')
    r = ctx_check(server, "/p/x", ip="198.51.100.23",
                  headers={"Authorization": "Bearer " + token, "X-Plan": "free"})
    assert r["allowed"] and r["limit"] == 1000


def release(server, lease):
    r = request("POST", server.data + "/v1/release", {"lease": lease})
    assert r.status == 200, r
    return r.json()["released"]


def cc_remaining(server, rule, key):
    r = server.admin("GET", f"/api/v1/counters?rule={rule}&key={key}")
    assert r.status == 200, r
    return r.json()["remaining"]


def test_an_allowed_context_check_answers_a_lease_for_every_concurrency_rule_it_holds(server):
    server.create_rule(id="jobs-cc", algorithm="concurrency", limit=5, window="1m",
                       match={"path": "/jobs/*"}, key=["ip"])
    server.create_rule(id="jobs-fw", algorithm="fixed_window", limit=3, window="1m",
                       match={"path": "/jobs/*"}, key=["ip"])
    server.create_rule(id="jobs-tenant", algorithm="concurrency", limit=2, window="1m",
                       match={"path": "/jobs/*"}, key=["header:X-Tenant", "ip"])
    ip, key = "198.51.100.9", "ip:198.51.100.9"
    answers = [ctx_check(server, "/jobs/run", method="POST", ip=ip) for _ in range(3)]
    assert [a["allowed"] for a in answers] == [True, True, False]
    assert [a["rule"] for a in answers] == ["jobs-tenant"] * 3  # the headline
    # the denied request holds nothing: ratekit ended the slot it took of jobs-cc
    assert cc_remaining(server, "jobs-cc", key) == 3
    leases = []
    for a in answers[:2]:
        held = {r["rule"]: r.get("lease") for r in a["results"]}
        assert held["jobs-fw"] is None
        # jobs-cc is never the headline, yet each answer hands its lease over
        assert held["jobs-cc"].startswith("jobs-cc.") and held["jobs-cc"].endswith("-1." + key)
        # the top level carries the headline's lease, when it holds one
        assert a.get("lease") == held["jobs-tenant"]
        leases += [x for x in held.values() if x]
    denied = answers[2]
    assert denied["results"][2]["allowed"] is False and "lease" not in denied
    assert denied["results"][0]["allowed"] is True  # jobs-cc allowed it, and was given back
    assert all("lease" not in r for r in denied["results"])
    # each lease an allowed answer carries frees its slot
    assert len(set(leases)) == 4 and all(release(server, x) for x in leases)
    assert cc_remaining(server, "jobs-cc", key) == 5
    assert cc_remaining(server, "jobs-tenant", key) == 2


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_forward_auth_asks_a_concurrency_rule_for_a_free_slot_and_takes_none(make_server,
                                                                             make_redis, store):
    """A gateway never sees a lease to release: /v1/auth takes none, and
    refuses the request while the slots are held (by /v1/acquire or by
    context-form checks) until one is released."""
    server = make_server(env={"RATEKIT_REDIS_URL": make_redis().url} if store == "redis" else {})
    server.create_rule(id="exports", algorithm="concurrency", limit=2, window="1h",
                       match={"path": "/exports/*"}, key=["ip"])
    xff = {"X-Forwarded-For": "198.51.100.30"}
    key = "ip:198.51.100.30"
    for _ in range(5):
        r = auth(server, "/exports/run", headers=xff)
        assert r.status == 200, r
        assert r.headers["ratelimit"].startswith('"exports";r=2;')
    assert cc_remaining(server, "exports", key) == 2
    held = [request("POST", server.data + "/v1/acquire",
                    {"rule": "exports", "key": key}).json()["lease"]]
    held.append(ctx_check(server, "/exports/run", ip="198.51.100.30")["lease"])
    r = auth(server, "/exports/run", headers=xff)
    assert r.status == 429, r
    assert r.json()["error"]["rule"] == "exports"
    assert r.headers["retry-after"] == "1"  # a slot frees when released: ask again soon
    assert auth(server, "/exports/run", headers={"X-Forwarded-For": "198.51.100.31"}).status == 200
    assert release(server, held[0])
    r = auth(server, "/exports/run", headers=xff)
    assert r.status == 200 and r.headers["ratelimit"].startswith('"exports";r=1;')
    assert cc_remaining(server, "exports", key) == 1


def metric(server, name):
    for line in request("GET", server.admin_url + "/metrics").body.decode().splitlines():
        if line.startswith(name + " "):
            return int(line.split()[1])
    raise AssertionError(f"no {name}")


def test_rules_past_the_64th_that_match_are_warned_of_once_per_ruleset_version(server):
    for i in range(1, 65):
        server.create_rule(id=f"r{i}", algorithm="fixed_window", limit=1000, window="1m",
                           match={"path": "/many"}, priority=i)
    server.create_rule(id="strict", algorithm="fixed_window", limit=1, window="1m",
                       match={"path": "/many"}, priority=1000)
    assert metric(server, "ratekit_check_rules_dropped_total") == 0
    statuses = [auth(server, "/many").status for _ in range(3)]
    answer = ctx_check(server, "/many")
    assert len(answer["results"]) == 64 and "strict" not in {r["rule"] for r in answer["results"]}
    assert statuses == [200, 200, 200]  # the bound: strict is not applied ...
    assert metric(server, "ratekit_check_rules_dropped_total") == 4  # ... but counted
    warning = "rules after the 64th by priority, such as 'strict', are not applied"
    assert server.output().count(warning) == 1, server.output()
    # a request that fits its rules is not counted
    ctx_check(server, "/other")
    assert metric(server, "ratekit_check_rules_dropped_total") == 4
    # a new ruleset version is warned of once more; a high priority rule then applies
    server.create_rule(id="first", algorithm="fixed_window", limit=1, window="1m",
                       match={"path": "/many"}, priority=0)
    assert [auth(server, "/many").status for _ in range(3)] == [200, 429, 429]
    assert server.output().count(warning.replace("'strict'", "'r64'")) == 1, server.output()


NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {dir}/tmp;
    proxy_temp_path {dir}/tmp;
    fastcgi_temp_path {dir}/tmp;
    uwsgi_temp_path {dir}/tmp;
    scgi_temp_path {dir}/tmp;
    upstream ratekit {{ server 127.0.0.1:{ratekit_port}; keepalive 16; }}
    server {{
        listen 127.0.0.1:{port};
        root {dir}/www;
{recipe}
    }}
}}
"""


EXAMPLES = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "examples"))


def recipe():
    """The server block of INTEGRATION.md's nginx recipe, around static content."""
    return f"""
        location /api/ {{
            include {EXAMPLES}/nginx/ratekit-protect.conf;
            try_files $uri =404;
        }}
        include {EXAMPLES}/nginx/ratekit-locations.conf;
"""


@pytest.fixture
def nginx(workdir, server):
    port = free_port()
    d = os.path.join(workdir, "nginx")
    os.makedirs(os.path.join(d, "www", "api"))
    os.makedirs(os.path.join(d, "tmp"))
    with open(os.path.join(d, "www", "api", "items"), "w") as f:
        f.write("items\n")
    os.chmod(workdir, 0o755)
    for root, dirs, _ in os.walk(d):
        for x in dirs:
            os.chmod(os.path.join(root, x), 0o755)
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(dir=d, port=port, ratekit_port=server.data_port,
                                  recipe=recipe()))
    proc = subprocess.Popen(["nginx", "-c", conf, "-p", d], stderr=subprocess.PIPE)
    wait_for_port(port, proc)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


def test_behind_real_nginx_clients_get_429_with_retry_after(server, nginx):
    server.create_rule(id="edge", algorithm="fixed_window", limit=3, window="1m",
                       match={"path": "/api/*"})
    got = [request("GET", nginx + "/api/items") for _ in range(5)]
    assert [r.status for r in got] == [200, 200, 200, 429, 429]
    assert got[0].body == b"items\n"
    assert got[0].headers.get("ratelimit-policy") == '"edge";q=3;w=60'
    denied = got[3]
    assert int(denied.headers["retry-after"]) >= 1
    assert denied.json()["error"]["code"] == "rate_limited"
    # nginx adds the client to X-Forwarded-For; ratekit trusts nginx on loopback,
    # so a spoofed header from the client does not give it a fresh limit
    spoof = request("GET", nginx + "/api/items", headers={"X-Forwarded-For": "9.9.9.9"})
    assert spoof.status == 429
    # nor does a Forwarded header, which nginx passes on as the client wrote it
    spoof = request("GET", nginx + "/api/items", headers={"Forwarded": "for=9.9.9.9"})
    assert spoof.status == 429


def test_a_shadow_rule_on_trial_never_heads_the_answer_of_an_enforcing_one(server):
    """A shadow rule tighter than the enforcing one it is tried beside must
    not tell clients to back off: the headers and the headline describe the
    enforcing rule; a request only shadow rules cover is still described."""
    server.create_rule(id="trial-live", match={"path": "/trial"}, key=["ip"],
                       algorithm="fixed_window", limit=100, window="1h")
    server.create_rule(id="trial-shadow", match={"path": "/trial"}, key=["ip"], mode="shadow",
                       algorithm="fixed_window", limit=1, window="1h")
    for i in range(3):
        r = request("GET", server.data + "/v1/auth",
                    headers={"X-Original-URI": "/trial", "X-Original-Method": "GET"})
        assert r.status == 200, r
        assert r.headers["ratelimit"].startswith(f'"trial-live";r={99 - i};t='), r.headers
        answer = ctx_check(server, "/trial", ip="198.51.100.77")
        assert answer["rule"] == "trial-live" and answer["remaining"] == 99 - i, answer
        assert {x["rule"]: x["allowed"] for x in answer["results"]} == {
            "trial-live": True, "trial-shadow": i == 0}
    server.create_rule(id="trial-only", match={"path": "/alone"}, key=["ip"], mode="shadow",
                       algorithm="fixed_window", limit=1, window="1h")
    answer = ctx_check(server, "/alone")
    assert answer["allowed"] and answer["rule"] == "trial-only", answer
