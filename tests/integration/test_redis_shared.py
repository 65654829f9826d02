"""One limit shared by every instance: ratekitd processes on one real
redis-server, and what a check does when Redis fails."""

import concurrent.futures
import json
import multiprocessing
import os
import re
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

from conftest import free_port, request

ALGORITHMS = ["fixed_window", "sliding_window", "sliding_log", "token_bucket", "gcra",
              "leaky_bucket", "concurrency"]


def _fire(args):
    """One client process: n checks spread over the instances; returns allowed count."""
    urls, rule, key, n = args
    allowed = 0
    for i in range(n):
        r = request("POST", urls[i % len(urls)] + "/v1/check", {"rule": rule, "key": key})
        allowed += r.status == 200 and r.json()["allowed"]
    return allowed


def test_two_instances_enforce_one_exact_limit_for_every_algorithm(make_server, redis):
    env = {"RATEKIT_REDIS_URL": redis.url}
    a = make_server(env=env)
    b = make_server(env=env, db_path=a.db_path)
    limit = 40
    for alg in ALGORITHMS:
        a.create_rule(id="x-" + alg.replace("_", "-"), algorithm=alg, limit=limit, window="1h")
    deadline = time.time() + 3
    while time.time() < deadline and len(b.admin("GET", "/api/v1/rules").json()["rules"]) < 7:
        time.sleep(0.05)
    urls = [a.data, b.data]
    with multiprocessing.Pool(4) as pool:
        for alg in ALGORITHMS:
            rule = "x-" + alg.replace("_", "-")
            counts = pool.map(_fire, [(urls, rule, "shared-key", 30)] * 4)
            assert sum(counts) == limit, (alg, counts)


def test_keys_follow_the_documented_layout_with_a_ttl(make_server, redis):
    s = make_server(env={"RATEKIT_REDIS_URL": redis.url, "RATEKIT_KEY_PREFIX": "acme"})
    s.create_rule(id="lay", algorithm="token_bucket", limit=5, window="1m")
    s.check("lay", "203.0.113.7")
    keys = redis.cli("KEYS", "*").split("\n")
    assert all(k.startswith("acme:") for k in keys), keys
    # besides counters, only the shared ruleset and the cluster-wide statistics
    # (written once a second, so present or not yet) live in Redis
    shared = ("acme:ruleset", "acme:instances", "acme:stats:{", "acme:denied:{")
    counters = [k for k in keys if not k.startswith(shared)]
    assert counters == ["acme:{lay:203.0.113.7}:token_bucket"]
    ttl = int(redis.cli("PTTL", "acme:{lay:203.0.113.7}:token_bucket"))
    assert 0 < ttl <= 60000


def test_checks_go_on_exactly_after_redis_forgets_the_scripts(make_server, redis):
    """SCRIPT FLUSH (or a restart that kept the data): the scripts are loaded
    again and the checks that met NOSCRIPT are sent once more. None fails
    over, none is counted twice."""
    s = make_server(env={"RATEKIT_REDIS_URL": redis.url, "RATEKIT_THREADS": "1"})
    s.create_rule(id="flush", algorithm="fixed_window", limit=6, window="1h")
    before = [s.check("flush", "k").json() for _ in range(3)]
    redis.cli("SCRIPT", "FLUSH")
    # several at once on one thread, so that NOSCRIPT replies share a pipeline
    with concurrent.futures.ThreadPoolExecutor(5) as pool:
        after = list(pool.map(lambda _: s.check("flush", "k").json(), range(5)))
    assert all(a["allowed"] for a in before)
    assert [a["results"][0].get("fail_mode") for a in after] == [None] * 5
    assert sorted(a["allowed"] for a in after) == [False, False, True, True, True]


def test_scripts_redis_forgot_are_loaded_again_at_the_first_noscript(make_server, redis):
    """After SCRIPT FLUSH, the first check that meets NOSCRIPT loads every
    script again: the checks after it (each a round of its own, sent as an
    EVALSHA of its algorithm's script) find them, and Redis answers NOSCRIPT
    once in all."""
    s = make_server(env={"RATEKIT_REDIS_URL": redis.url, "RATEKIT_THREADS": "1"})
    s.create_rule(id="again", algorithm="gcra", limit=100, window="1h")
    assert s.check("again", "k").json()["results"][0].get("fail_mode") is None
    redis.cli("SCRIPT", "FLUSH")
    redis.cli("CONFIG", "RESETSTAT")
    answers = [s.check("again", "k").json() for _ in range(5)]
    assert [a["results"][0].get("fail_mode") for a in answers] == [None] * 5
    assert [a["remaining"] for a in answers] == [98, 97, 96, 95, 94]
    errors = redis.cli("INFO", "errorstats")
    assert re.search(r"errorstat_NOSCRIPT:count=1\b", errors), errors


def test_a_lease_taken_on_one_instance_is_released_on_another(make_server, redis):
    env = {"RATEKIT_REDIS_URL": redis.url, "RATEKIT_THREADS": "1"}
    a = make_server(env=env)
    b = make_server(env=env, db_path=a.db_path)
    a.create_rule(id="jobs", algorithm="concurrency", limit=3, window="30s")
    deadline = time.time() + 3
    while time.time() < deadline and b.check("jobs", "probe").status == 404:
        time.sleep(0.05)

    def acquire(s):
        return request("POST", s.data + "/v1/acquire", {"rule": "jobs", "key": "w"}).json()

    def release(lease):
        return request("POST", b.data + "/v1/release", {"lease": lease["lease"]})

    leases = [acquire(a) for _ in range(3)]
    assert all(lease["allowed"] for lease in leases) and not acquire(b)["allowed"]
    # three releases at once on b's one thread: each ends its lease
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        answers = [r.json() for r in pool.map(release, leases)]
    assert answers == [{"released": True}] * 3
    assert [acquire(b)["allowed"] for _ in range(4)] == [True, True, True, False]
    assert release(leases[0]).json() == {"released": False}
    redis.stop()
    r = release(leases[1])
    assert r.status == 503 and r.json()["error"]["code"] == "store_unavailable"


def test_a_shortened_window_ends_each_lease_when_it_was_told_on_either_store(make_server,
                                                                           redis):
    """A lease expires window_ms after it was acquired, under the window of
    that moment: when a rule's window is shortened while leases are held,
    the new leases end sooner and the old ones when they were told, on the
    embedded store and on Redis alike."""
    for rule, env in (("jobs-embedded", {}), ("jobs-redis", {"RATEKIT_REDIS_URL": redis.url})):
        s = make_server(env=env)
        s.create_rule(id=rule, algorithm="concurrency", limit=2, window="1m")

        def acquire():
            return request("POST", s.data + "/v1/acquire", {"rule": rule, "key": "k"}).json()

        old = acquire()
        assert s.admin("PATCH", "/api/v1/rules/" + rule, {"window": "1s"}).status == 200
        new = acquire()
        denied = acquire()
        assert old["allowed"] and new["allowed"] and not denied["allowed"], (env, denied)
        assert 900 <= denied["retry_after_ms"] <= 1000, (env, denied)
        assert 58000 <= denied["reset_ms"] <= 60000, (env, denied)
        time.sleep(1.2)
        again = acquire()  # the new lease is gone; the old one still holds its slot
        assert again["allowed"] and again["remaining"] == 0, (env, again)
        assert 900 <= acquire()["retry_after_ms"] <= 1000, env
        r = request("POST", s.data + "/v1/release", {"lease": old["lease"]})
        assert r.json() == {"released": True}, env
        s.stop()


def test_a_release_reads_its_lease_without_walking_the_key(make_server, redis):
    """A lease names its units, so that a release on Redis reads the one
    member it ends instead of scanning the key's leases (thousands, on a
    busy key); a lease text without units is still released, by a scan."""
    s = make_server(env={"RATEKIT_REDIS_URL": redis.url})
    s.create_rule(id="exports", algorithm="concurrency", limit=10, window="30s")

    def acquire(cost):
        body = {"rule": "exports", "key": "acme", "cost": cost}
        return request("POST", s.data + "/v1/acquire", body).json()

    def release(lease):
        return request("POST", s.data + "/v1/release", {"lease": lease})

    a, b = acquire(3), acquire(4)
    assert (a["allowed"], a["remaining"], b["allowed"], b["remaining"]) == (True, 7, True, 3)
    assert re.fullmatch(r"exports\.[0-9a-f]{32}-3\.acme", a["lease"]), a["lease"]
    redis.cli("CONFIG", "RESETSTAT")
    assert release(a["lease"]).json() == {"released": True}
    assert "cmdstat_zscan" not in redis.cli("INFO", "commandstats")
    assert not acquire(7)["allowed"] and acquire(6)["allowed"]
    without_units = b["lease"].replace("-4.acme", ".acme")
    assert release(without_units).json() == {"released": True}
    assert "cmdstat_zscan" in redis.cli("INFO", "commandstats")
    assert acquire(4)["allowed"] and not acquire(1)["allowed"]
    wrong_units = a["lease"].replace("-3.", "-5.")
    assert release(wrong_units).json() == {"released": False}
    for bad in ("-0.", "-.", "-x.", "-12345678901."):
        r = release(a["lease"].replace("-3.", bad))
        assert r.status == 400 and r.json()["error"]["code"] == "invalid_request", bad


def test_checks_stay_exact_while_redis_forgets_the_scripts_again_and_again(make_server, redis):
    """SCRIPT FLUSH every 2 ms under load: a NOSCRIPT met again after a
    reload is reloaded and resent again, so that no check fails over to the
    instance's memory (which would let extra requests through)."""
    s = make_server(env={"RATEKIT_REDIS_URL": redis.url, "RATEKIT_THREADS": "2"})
    s.create_rule(id="flushes", algorithm="fixed_window", limit=1500, window="1h")
    stop = threading.Event()

    def flush():
        with socket.create_connection(("127.0.0.1", redis.port)) as c:
            while not stop.is_set():
                c.sendall(b"*2\r\n$6\r\nSCRIPT\r\n$5\r\nFLUSH\r\n")
                assert c.recv(16) == b"+OK\r\n"
                time.sleep(0.002)

    def batch(_):
        r = request("POST", s.data + "/v1/check/batch",
                    {"checks": [{"rule": "flushes", "key": "k"}] * 50})
        return r.json()["results"]

    flusher = threading.Thread(target=flush)
    flusher.start()
    try:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            answers = [a for b in pool.map(batch, range(40)) for a in b]
    finally:
        stop.set()
        flusher.join()
    assert [a for a in answers if a["results"][0].get("fail_mode")] == [], s.output()[-2000:]
    assert sum(a["allowed"] for a in answers) == 1500


def test_a_batch_on_redis_is_exact_and_never_holds_its_thread(make_server, redis):
    """A batch of 100 is decided in order and exactly; while Redis does not
    answer it, the thread that took it serves other requests."""
    env = {"RATEKIT_REDIS_URL": redis.url, "RATEKIT_THREADS": "1",
           "RATEKIT_REDIS_TIMEOUT_MS": "1000"}
    s = make_server(env=env)
    s.create_rule(id="bulk", algorithm="fixed_window", limit=60, window="1h")
    checks = [{"rule": "bulk", "key": "k"}] * 98 + [{"rule": "nope", "key": "k"},
                                                    {"rule": "bulk", "key": "other"}]
    results = request("POST", s.data + "/v1/check/batch", {"checks": checks}).json()["results"]
    assert [r.get("allowed") for r in results[:98]] == [True] * 60 + [False] * 38
    assert results[98]["error"]["code"] == "unknown_rule" and results[99]["allowed"] is True
    assert all(r.get("results", [{}])[0].get("fail_mode") is None for r in results)
    assert s.check("bulk", "k").json()["allowed"] is False  # the batch's counts are in Redis
    redis.proc.send_signal(signal.SIGSTOP)
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            started = time.monotonic()
            pending = pool.submit(request, "POST", s.data + "/v1/check/batch",
                                  {"checks": [{"rule": "bulk", "key": "k2"}] * 100}, timeout=10)
            time.sleep(0.1)
            t = time.monotonic()
            assert request("GET", s.data + "/healthz", timeout=5).status == 200
            assert time.monotonic() - t < 0.5, "the batch held the thread"
            waited = pending.result()
            elapsed = time.monotonic() - started
    finally:
        redis.proc.send_signal(signal.SIGCONT)
    assert waited.status == 200 and 0.9 < elapsed < 3, elapsed
    fell_back = waited.json()["results"]
    assert all(r["results"][0]["fail_mode"] == "local" for r in fell_back)
    assert sum(r["allowed"] for r in fell_back) == 60  # decided locally, still exactly


def _send_check(port, rule, key):
    """Sends one check on a new connection and returns the connection, unread."""
    body = ('{"rule":"%s","key":"%s"}' % (rule, key)).encode()
    c = socket.create_connection(("127.0.0.1", port), timeout=5)
    c.sendall(b"POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    return c


def _one_loop_server(make_server, redis, timeout_ms, **rule):
    """A server on one event loop and Redis, with the rule, whose first
    check was decided by Redis."""
    env = {"RATEKIT_REDIS_URL": redis.url, "RATEKIT_THREADS": "1",
           "RATEKIT_REDIS_TIMEOUT_MS": str(timeout_ms)}
    s = make_server(env=env)
    s.create_rule(**rule)
    assert s.check(rule["id"], "warm").json()["results"][0].get("fail_mode") is None
    return s


def test_clients_that_hang_up_while_redis_decides_cost_nothing(make_server, redis):
    """Checks waiting on a Redis that does not answer, whose clients then hang
    up: once Redis answers, they are counted and dropped, the server goes on
    serving on the same threads, and exits clean (the sanitizers watch the
    requests freed after their connections)."""
    s = _one_loop_server(make_server, redis, 2000, id="gone", algorithm="fixed_window",
                         limit=100, window="1h")
    redis.proc.send_signal(signal.SIGSTOP)
    try:
        waiting = [_send_check(s.data_port, "gone", "k") for _ in range(20)]
        time.sleep(0.3)  # read and sent to Redis by now
        for i, c in enumerate(waiting):  # half hang up with a reset, half with a close
            if i % 2 == 0:
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()
        time.sleep(0.2)
        t = time.monotonic()
        assert request("GET", s.data + "/healthz", timeout=5).status == 200
        assert time.monotonic() - t < 0.5, "the waiting checks held the thread"
    finally:
        redis.proc.send_signal(signal.SIGCONT)
    r = s.check("gone", "k").json()
    assert r["allowed"] is True and r["results"][0].get("fail_mode") is None
    assert r["remaining"] == 100 - 21  # the 20 abandoned checks were decided in Redis too


def test_a_request_many_rules_match_is_decided_by_every_rule_on_redis(make_server, redis):
    """Six rules match one request (more than one store job holds): each is
    decided in Redis, none fails over, and the tightest one denies."""
    s = make_server(env={"RATEKIT_REDIS_URL": redis.url, "RATEKIT_THREADS": "1"})
    for i in range(6):
        s.create_rule(id=f"many-{i}", algorithm="token_bucket", limit=2 + i, window="1h",
                      match={"path": "/api/*"}, key=["ip"])
    body = {"request": {"method": "GET", "path": "/api/x", "ip": "198.51.100.7"}}
    answers = [request("POST", s.data + "/v1/check", body).json() for _ in range(3)]
    assert [a["allowed"] for a in answers] == [True, True, False]
    assert answers[2]["rule"] == "many-0"
    for a in answers:
        assert sorted(r["rule"] for r in a["results"]) == [f"many-{i}" for i in range(6)]
        assert all(r.get("fail_mode") is None for r in a["results"])
    # the rules' counts are in Redis: 2 each, the denied request counted nowhere
    remaining = {r["rule"]: r["remaining"] for r in answers[1]["results"]}
    assert remaining == {f"many-{i}": i for i in range(6)}
    assert len(redis.cli("KEYS", "ratekit:{many-*").split()) == 6


def test_a_round_of_checks_is_one_redis_call_and_a_bad_key_fails_only_its_own(
        make_server, redis):
    """The checks a thread reads in one round (here the 40 of one batch) go
    to Redis as one script call. A key someone else wrote with another type
    (WRONGTYPE) fails over its own check only: the checks decided in the
    same call keep their decisions, counted in Redis. A call that meets
    NOSCRIPT (the third, after SCRIPT FLUSH) is sent once more, none of its
    checks failing over nor counted twice."""
    s = make_server(env={"RATEKIT_REDIS_URL": redis.url, "RATEKIT_THREADS": "1"})
    s.create_rule(id="round", algorithm="token_bucket", limit=100, window="1h")
    redis.cli("HSET", "ratekit:{round:poisoned}:token_bucket", "a", "1")
    keys = [f"k{i}" for i in range(20)] + ["poisoned"] + [f"k{i}" for i in range(20, 39)]
    redis.cli("CONFIG", "RESETSTAT")
    for n in range(3):
        if n == 2:
            redis.cli("SCRIPT", "FLUSH")
        r = request("POST", s.data + "/v1/check/batch",
                    {"checks": [{"rule": "round", "key": k} for k in keys]})
        assert r.status == 200
        for key, a in zip(keys, r.json()["results"]):
            if key == "poisoned":
                assert a["results"][0].get("fail_mode") is not None, a
            else:
                assert a["results"][0].get("fail_mode") is None, (key, a)
                assert a["remaining"] == 99 - n, (key, a)
    stats = redis.cli("INFO", "commandstats")
    calls = int(re.search(r"cmdstat_evalsha:calls=(\d+)", stats).group(1))
    assert calls == 3, f"{calls} script calls for 3 rounds of {len(keys)} checks"
    assert "cmdstat_eval:calls=1," in stats, stats
    assert redis.cli("HGET", "ratekit:{round:poisoned}:token_bucket", "a") == "1"
    assert redis.cli("EXISTS", "ratekit:{round:k38}:token_bucket") == "1"


def test_a_round_mixing_rules_and_costs_is_one_call_each_check_decided_by_its_own(
        make_server, redis):
    """A round of 40 checks over two rules, two keys and 11 costs: its checks
    share the sets of script arguments they have in common (more sets than
    ratekitd compares a check with), all in one script call, and each check
    is decided by its own rule, key and cost, as if it were alone."""
    s = make_server(env={"RATEKIT_REDIS_URL": redis.url, "RATEKIT_THREADS": "1"})
    limits = {"mix-fw": 30, "mix-tb": 25}
    s.create_rule(id="mix-fw", algorithm="fixed_window", limit=30, window="1h")
    s.create_rule(id="mix-tb", algorithm="token_bucket", limit=25, window="1h")
    checks = [{"rule": "mix-tb" if i % 3 == 0 else "mix-fw", "key": f"k{i % 2}",
               "cost": 1 + i % 11} for i in range(40)]
    redis.cli("CONFIG", "RESETSTAT")
    results = request("POST", s.data + "/v1/check/batch", {"checks": checks}).json()["results"]
    used = {}
    for c, r in zip(checks, results):
        at = (c["rule"], c["key"])
        allowed = used.get(at, 0) + c["cost"] <= limits[c["rule"]]
        if allowed:
            used[at] = used.get(at, 0) + c["cost"]
        assert r["results"][0].get("fail_mode") is None, r
        assert (r["allowed"], r["remaining"]) == (allowed, limits[c["rule"]] - used.get(at, 0)), \
            (c, r)
    assert sum(not r["allowed"] for r in results) > 5, "the costs must exhaust some limits"
    stats = redis.cli("INFO", "commandstats")
    assert int(re.search(r"cmdstat_evalsha:calls=(\d+)", stats).group(1)) == 1, stats
    for (rule, key), n in used.items():  # and Redis holds those counts
        assert s.check(rule, key, cost=0).json()["remaining"] == limits[rule] - n


def _read_response(sock):
    """Reads one HTTP/1.1 answer with a Content-Length: (status, JSON body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the connection closed before an answer"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the connection closed within an answer"
        body += chunk
    return int(head.split()[1]), json.loads(body[:length])


def test_acquires_read_together_go_in_one_call_and_each_keeps_its_own_lease(make_server, redis):
    """Eight acquires read together (ratekitd is stopped while they are
    sent) go to Redis in a batch call or two, each acquire's arguments (its
    lease among them) a set of its own: exactly the limit of 5 pass, each
    with a lease of its own that Redis holds, and each release ends its
    own lease."""
    s = make_server(env={"RATEKIT_REDIS_URL": redis.url, "RATEKIT_THREADS": "1"})
    s.create_rule(id="slots", algorithm="concurrency", limit=5, window="1m")
    body = b'{"rule":"slots","key":"w"}'
    acquire = (b"POST /v1/acquire HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    socks = []
    try:
        for _ in range(8):
            socks.append(socket.create_connection(("127.0.0.1", s.data_port), timeout=5))
        for c in socks:  # connected and served once, so that all wait idle
            c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _read_response(c)[0] == 200
        redis.cli("CONFIG", "RESETSTAT")
        s.proc.send_signal(signal.SIGSTOP)
        try:
            for c in socks:
                c.sendall(acquire)
            time.sleep(0.2)
        finally:
            s.proc.send_signal(signal.SIGCONT)
        answers = [_read_response(c)[1] for c in socks]
    finally:
        for c in socks:
            c.close()
    stats = redis.cli("INFO", "commandstats")  # 8 in 3 calls at most: one has 3 or more
    assert int(re.search(r"cmdstat_evalsha:calls=(\d+)", stats).group(1)) <= 3, stats
    taken = [a for a in answers if a["allowed"]]
    assert len(taken) == 5 and len({a["lease"] for a in taken}) == 5, answers
    members = redis.cli("ZRANGE", "ratekit:{slots:w}:concurrency", "0", "-1").split()
    assert len([m for m in members if m != "#"]) == 5, members  # one member a lease
    for a in taken:
        r = request("POST", s.data + "/v1/release", {"lease": a["lease"]})
        assert r.json() == {"released": True}, (a, r.json())
    assert redis.cli("EXISTS", "ratekit:{slots:w}:concurrency") == "0"


def test_fail_modes_when_redis_is_gone(make_server, redis):
    env = {"RATEKIT_REDIS_URL": redis.url, "RATEKIT_REDIS_TIMEOUT_MS": "100"}
    s = make_server(env=env)
    s.create_rule(id="open", algorithm="fixed_window", limit=1, window="1m", fail_mode="open")
    s.create_rule(id="closed", algorithm="fixed_window", limit=100, window="1m",
                  fail_mode="closed")
    s.create_rule(id="local", algorithm="fixed_window", limit=2, window="1m")
    assert s.check("open", "k").json()["allowed"] is True
    redis.stop()
    for _ in range(3):
        r = s.check("open", "k").json()
        assert r["allowed"] is True and r["results"][0]["fail_mode"] == "open"
    r = s.check("closed", "k").json()
    assert r["allowed"] is False and r["results"][0]["fail_mode"] == "closed"
    local = [s.check("local", "k").json() for _ in range(3)]
    assert [x["allowed"] for x in local] == [True, True, False]
    assert request("GET", s.data + "/readyz").status == 503


def test_a_lease_taken_while_redis_is_gone_is_released_at_once(make_server, redis):
    """A lease acquired in fail_mode local lives in the instance's memory:
    its release ends it there, while Redis is still away, and the slot is
    free for the next acquire, during this outage or the next."""
    s = make_server(env={"RATEKIT_REDIS_URL": redis.url, "RATEKIT_REDIS_TIMEOUT_MS": "100"})
    s.create_rule(id="exports", algorithm="concurrency", limit=1, window="1h")

    def acquire():
        return request("POST", s.data + "/v1/acquire", {"rule": "exports", "key": "z"}).json()

    redis.proc.send_signal(signal.SIGSTOP)
    try:
        lease = acquire()
        assert lease["allowed"] and lease["results"][0]["fail_mode"] == "local", lease
        assert not acquire()["allowed"]
        r = request("POST", s.data + "/v1/release", {"lease": lease["lease"]})
        assert r.status == 200 and r.json() == {"released": True}, r
        again = acquire()
        assert again["allowed"] and again["results"][0]["fail_mode"] == "local", again
        r = request("POST", s.data + "/v1/release", {"lease": again["lease"]})
        assert r.json() == {"released": True}
    finally:
        redis.proc.send_signal(signal.SIGCONT)
    # The acquires that timed out landed in Redis once it resumed; their
    # releases, sent to Redis too, ended them there: the slot is free.
    assert _ready_within(s, 5.0) is not None
    peek = s.check("exports", "z", cost=0).json()
    assert peek["remaining"] == 1, ("a lease released is held in Redis", peek)


def test_a_hung_redis_never_hangs_a_check_and_checks_come_back(make_server, redis):
    env = {"RATEKIT_REDIS_URL": redis.url, "RATEKIT_REDIS_TIMEOUT_MS": "150"}
    s = make_server(env=env)
    s.create_rule(id="hung", algorithm="token_bucket", limit=1000, window="1m")
    assert s.check("hung", "k").json()["results"][0].get("fail_mode") is None
    redis.proc.send_signal(signal.SIGSTOP)
    try:
        worst = 0
        for _ in range(10):
            t = time.monotonic()
            r = s.check("hung", "k", timeout=5)
            worst = max(worst, time.monotonic() - t)
            assert r.status == 200 and r.json()["allowed"] is True
        assert worst < 0.15 + 0.35, worst
    finally:
        redis.proc.send_signal(signal.SIGCONT)
    deadline = time.monotonic() + 2.0
    back = False
    while time.monotonic() < deadline and not back:
        back = s.check("hung", "k").json()["results"][0].get("fail_mode") is None
        time.sleep(0.05)
    assert back, "checks did not return to Redis within 2 s"


def test_while_redis_hangs_no_check_waits_on_a_probe(make_server, redis):
    """Once the breaker is open, every check fails over at once: the probes
    that find out whether Redis is back are the prober's, never a client's
    (which would wait out the command timeout once per cool-down)."""
    env = {"RATEKIT_REDIS_URL": redis.url, "RATEKIT_REDIS_TIMEOUT_MS": "250"}
    s = make_server(env=env)
    s.create_rule(id="hung", algorithm="token_bucket", limit=10 ** 6, window="1m")
    assert s.check("hung", "k").json()["results"][0].get("fail_mode") is None
    redis.proc.send_signal(signal.SIGSTOP)
    try:
        end = time.monotonic() + 1.0
        while time.monotonic() < end:  # the breaker opens
            s.check("hung", "k", timeout=5)
        slow, count = [], 0
        end = time.monotonic() + 3.5  # several cool-downs (500-1000 ms)
        while time.monotonic() < end:
            t = time.monotonic()
            r = s.check("hung", "k", timeout=5)
            took = time.monotonic() - t
            count += 1
            assert r.status == 200 and r.json()["results"][0]["fail_mode"] == "local"
            if took > 0.15:
                slow.append(round(took, 3))
        assert count > 50 and slow == [], (count, slow)
    finally:
        redis.proc.send_signal(signal.SIGCONT)
    assert _ready_within(s, 3.0) is not None


def _ready_within(server, seconds):
    """Polls only /readyz (no check) until it answers 200; the seconds it took, or None."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        r = request("GET", server.data + "/readyz", timeout=5)
        if r.status == 200:
            assert r.json()["store_healthy"] is True
            return time.monotonic() - start
        assert r.json()["store_healthy"] is False
        time.sleep(0.05)
    return None


def test_readyz_comes_back_after_a_hung_redis_resumes_without_any_check(make_server, redis):
    """A balancer that takes the instance out on 503 sends no check: /readyz
    must heal on its own once Redis answers (README: within 2 s)."""
    s = make_server(env={"RATEKIT_REDIS_URL": redis.url, "RATEKIT_REDIS_TIMEOUT_MS": "150"})
    s.create_rule(id="fw", algorithm="fixed_window", limit=1000, window="1m")
    assert s.check("fw", "k").json()["results"][0].get("fail_mode") is None
    assert request("GET", s.data + "/readyz").status == 200
    redis.proc.send_signal(signal.SIGSTOP)
    try:
        for _ in range(10):
            assert s.check("fw", "k", timeout=5).json()["results"][0]["fail_mode"] == "local"
        time.sleep(1.5)  # the store's own probes meet the stopped Redis too
        r = request("GET", s.data + "/readyz")
        assert r.status == 503 and r.json()["store_healthy"] is False
    finally:
        redis.proc.send_signal(signal.SIGCONT)
    took = _ready_within(s, 5.0)
    assert took is not None and took < 2.5, f"/readyz still 503 {took} s after SIGCONT"
    assert s.check("fw", "k").json()["results"][0].get("fail_mode") is None


def test_readyz_comes_back_after_redis_restarts_without_any_check(make_server, make_redis):
    r1 = make_redis()
    s = make_server(env={"RATEKIT_REDIS_URL": r1.url, "RATEKIT_REDIS_TIMEOUT_MS": "150"})
    s.create_rule(id="fw", algorithm="fixed_window", limit=1000, window="1m")
    s.check("fw", "k")
    r1.stop()
    assert s.check("fw", "k").json()["results"][0]["fail_mode"] == "local"
    time.sleep(1.5)
    assert request("GET", s.data + "/readyz").status == 503
    make_redis(port=r1.port)  # the same port, an empty script cache
    took = _ready_within(s, 5.0)
    assert took is not None and took < 2.5, f"/readyz still 503 {took} s after the restart"
    assert s.check("fw", "k").json()["results"][0].get("fail_mode") is None


def test_a_forged_release_on_a_rule_without_leases_spends_nothing_on_either_store(
        make_server, redis, workdir):
    """A lease names its rule: one naming a fixed_window or token_bucket rule
    ends nothing and must not run that rule's script with the lease's units."""
    for store, env in (("memory", {}), ("redis", {"RATEKIT_REDIS_URL": redis.url})):
        s = make_server(env=env, db_path=os.path.join(workdir, f"{store}.db"))
        s.create_rule(id="fw", algorithm="fixed_window", limit=5, window="1m")
        s.create_rule(id="tb", algorithm="token_bucket", limit=5, window="1m")
        for rule in ("fw", "tb"):
            for lease in (f"{rule}.{'0' * 32}-3.victim", f"{rule}.{'0' * 32}.victim"):
                r = request("POST", s.data + "/v1/release", {"lease": lease})
                assert r.status == 200 and r.json() == {"released": False}, (env, lease, r)
            assert s.check(rule, "victim").json()["remaining"] == 4, (env, rule)


def test_a_check_waits_for_redis_at_most_the_timeout_whatever_else_is_out(make_server, redis):
    """Checks sent while others are still out on the thread's connection are
    sent at once, behind them, not held until they come back: when Redis
    hangs, they fall over together, each within RATEKIT_REDIS_TIMEOUT_MS of
    its own start (held, each would wait for the timeout of those before
    it, then its own). The hang is one failure for the breaker, however
    many checks were out: the first check after it is on Redis again."""
    s = _one_loop_server(make_server, redis, 1000, id="behind", algorithm="token_bucket",
                         limit=1000, window="1m")
    redis.proc.send_signal(signal.SIGSTOP)

    def timed(key):
        t = time.monotonic()
        r = s.check("behind", key, timeout=10)
        return r, time.monotonic() - t

    try:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            out = []
            for key in "abcd":  # four rounds, so four batches out
                out.append(pool.submit(timed, key))
                time.sleep(0.2)
            answers = [f.result() for f in out]
    finally:
        redis.proc.send_signal(signal.SIGCONT)
    for r, _ in answers:
        assert r.status == 200 and r.json()["results"][0]["fail_mode"] == "local"
    waited = [round(t, 2) for _, t in answers]
    assert 0.9 < waited[0] < 1.4, waited
    assert waited[-1] < 0.7, f"checks held behind the first: {waited}"
    r = s.check("behind", "k")
    assert r.json()["results"][0].get("fail_mode") is None, "one hang opened the breaker"
    assert "is failing" not in s.output()


def test_reconnecting_to_a_hung_redis_never_holds_the_loop(make_server, redis):
    """Redis hangs (it accepts connections, answers nothing): the first check
    times out and its connection is given up; the next checks open a new one,
    whose AUTH and SCRIPT LOADs get no answer either. Waiting for those must
    not hold the event loop: what needs no Redis answers at once meanwhile,
    and no check waits more than the timeout (it used to be twice)."""
    s = _one_loop_server(make_server, redis, 600, id="recon", algorithm="token_bucket",
                         limit=1000, window="1m")
    redis.proc.send_signal(signal.SIGSTOP)

    def timed(call):
        t = time.monotonic()
        r = call()
        return r, time.monotonic() - t

    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            checks = []
            for key in "abcdef":
                checks.append(pool.submit(timed, lambda key=key: s.check("recon", key,
                                                                         timeout=10)))
                time.sleep(0.15)
            health = pool.submit(timed, lambda: request("GET", s.data + "/healthz", timeout=10))
            answers = [f.result() for f in checks]
            health_r, health_t = health.result()
    finally:
        redis.proc.send_signal(signal.SIGCONT)
    assert health_r.status == 200 and health_t < 0.2, health_t
    waited = [round(t, 2) for _, t in answers]
    for r, _ in answers:
        assert r.status == 200 and r.json()["results"][0]["fail_mode"] == "local"
    assert max(waited) < 0.6 + 0.3, f"a check waited past the timeout: {waited}"


def test_sigterm_is_prompt_while_a_hung_redis_holds_a_publish(make_server, redis):
    """A rule change is being published to a Redis that does not answer: the
    process still stops within a second or so, not after the sync's 5 s
    command timeout."""
    s = make_server(env={"RATEKIT_REDIS_URL": redis.url})
    s.create_rule(id="before", algorithm="fixed_window", limit=5, window="1m")
    redis.proc.send_signal(signal.SIGSTOP)
    try:
        s.create_rule(id="during", algorithm="fixed_window", limit=5, window="1m")
        time.sleep(0.3)  # the publish is on its way to the stopped Redis
        started = time.monotonic()
        rc = s.stop()
        took = time.monotonic() - started
    finally:
        redis.proc.send_signal(signal.SIGCONT)
    assert rc == 0 and took < 2.0, (rc, took)


def test_redis_restart_is_survived(make_server, make_redis, workdir):
    r1 = make_redis()
    port = r1.port
    s = make_server(env={"RATEKIT_REDIS_URL": r1.url, "RATEKIT_REDIS_TIMEOUT_MS": "100"})
    s.create_rule(id="rs", algorithm="fixed_window", limit=3, window="1m")
    s.check("rs", "k")
    r1.stop()
    assert s.check("rs", "k").json()["results"][0]["fail_mode"] == "local"
    # a new redis-server on the same port: the cache of scripts is empty
    d = tempfile.mkdtemp(dir=workdir)
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--dir", d], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 3
        ok = False
        while time.monotonic() < deadline and not ok:
            ok = s.check("rs", "fresh").json()["results"][0].get("fail_mode") is None
            time.sleep(0.05)
        assert ok
    finally:
        proc.kill()
        proc.wait()


def test_production_refuses_to_start_without_redis(make_server):
    s = make_server(env={"RATEKIT_REDIS_URL": "redis://127.0.0.1:1", "RATEKIT_ENV": "production"},
                    start=False)
    s.start(wait=False)
    assert s.proc.wait(10) != 0
    out = s.output()
    assert "RATEKIT_REDIS_URL" in out and "production" in out
    assert len([l for l in out.splitlines() if l.startswith("ratekitd:")]) == 1


def test_development_starts_without_redis_and_decides_locally(make_server):
    s = make_server(env={"RATEKIT_REDIS_URL": "redis://127.0.0.1:1"})
    s.create_rule(id="dev", algorithm="fixed_window", limit=1, window="1m")
    assert [s.check("dev", "k").json()["allowed"] for _ in range(2)] == [True, False]
    assert "unreachable" in s.output()


def _store_up(server):
    metrics = server.admin("GET", "/metrics").body.decode()
    return [l for l in metrics.splitlines() if l.startswith("ratekit_store_up ")]


def test_development_without_redis_is_not_ready_until_redis_answers(make_server, make_redis):
    """Started without its Redis (development), ratekitd is not ready from
    the first request on, and is once Redis answers, with no check sent."""
    port = free_port()
    s = make_server(env={"RATEKIT_REDIS_URL": f"redis://127.0.0.1:{port}"})
    r = request("GET", s.data + "/readyz")
    assert r.status == 503 and r.json()["store_healthy"] is False, r
    assert _store_up(s) == ["ratekit_store_up 0"]
    time.sleep(1)
    assert request("GET", s.data + "/readyz").status == 503
    make_redis(port=port)
    took = _ready_within(s, 5.0)
    assert took is not None and took < 2.5, f"/readyz still 503 {took} s after Redis started"
    assert _store_up(s) == ["ratekit_store_up 1"]


def test_a_bad_redis_url_stops_startup_with_one_line(make_server):
    s = make_server(env={"RATEKIT_REDIS_URL": "redis://host:notaport"}, start=False)
    s.start(wait=False)
    assert s.proc.wait(10) != 0
    assert "RATEKIT_REDIS_URL" in s.output()
