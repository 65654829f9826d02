"""ratekitd on a Redis Cluster (RATEKIT_REDIS_CLUSTER): exact limits with the
keys spread over every master, a slot migrated under load, rules and
statistics shared by instances with their own SQLite files, a stalled
master, a master killed and replaced by its replica, and the start-up rules.

The tests share one cluster (3 masters, 3 replicas), but the stalled-master
tests, which have one of their own; the failover test kills a master, so it
comes last."""

import concurrent.futures
import json
import os
import signal
import threading
import time

from cluster import RedisCluster, keyslot, redis_cluster  # noqa: F401 (the fixture)
from conftest import request


def _env(cluster, **extra):
    env = {"RATEKIT_REDIS_CLUSTER": cluster.seeds, "RATEKIT_REDIS_TIMEOUT_MS": "200"}
    env.update(extra)
    return env


def _wait_rule(server, rule_id, timeout=5.0):
    """Until the instance's data plane knows the rule (asked with a probe key)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "results" in server.check(rule_id, "probe").json():
            return
        time.sleep(0.05)
    raise AssertionError(f"rule {rule_id} never reached the other instance")


def _batch(server, rule, keys):
    """One /v1/check/batch over keys; the per-check answers."""
    r = request("POST", server.data + "/v1/check/batch",
                {"checks": [{"rule": rule, "key": k} for k in keys]})
    assert r.status == 200, r
    return r.json()["results"]


def _wait_until(predicate, timeout):
    """Polls predicate until it holds; the seconds it took, or None."""
    start = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - start
        if time.monotonic() - start >= timeout:
            return None
        time.sleep(0.02)


def _knows(server, rule_id):
    """Whether the instance's data plane decides by the rule (a fresh probe key each time)."""
    r = server.check(rule_id, f"probe-{time.monotonic_ns()}")
    return r.status == 200 and r.json().get("rule") == rule_id


def _stats(server):
    r = server.admin("GET", "/api/v1/stats?window=60")
    assert r.status == 200, r
    return r.json()


def _rule_counts(stats, rule):
    for r in stats["rules"]:
        if r["rule"] == rule:
            return {f: r[f] for f in ("allowed", "denied")}
    return {"allowed": 0, "denied": 0}


def _cluster_keys(cluster, pattern):
    """{key: port} of the keys matching pattern on every live master."""
    return {k: p for p in cluster.masters() for k in cluster.cli(p, "KEYS", pattern).split()}


def _fail_mode(answer):
    return answer["results"][0].get("fail_mode")


def _state_key(rule, key, alg="fixed_window"):
    return f"ratekit:{{{rule}:{key}}}:{alg}"


def test_two_instances_enforce_exact_limits_on_keys_spread_over_every_master(
        make_server, redis_cluster):
    a = make_server(env=_env(redis_cluster))
    b = make_server(env=_env(redis_cluster), db_path=a.db_path)
    a.create_rule(id="spread", algorithm="fixed_window", limit=5, window="1d")
    _wait_rule(b, "spread")
    keys = [f"client-{i}" for i in range(300)]
    chunks = [keys[i:i + 100] for i in range(0, len(keys), 100)]
    # every key 8 times: 4 rounds through each instance, all at once
    jobs = [(srv, chunk) for srv in (a, b) for chunk in chunks for _ in range(4)]
    allowed = {k: 0 for k in keys}
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        for chunk, answers in zip((c for _, c in jobs),
                                  pool.map(lambda j: _batch(j[0], "spread", j[1]), jobs)):
            for key, ans in zip(chunk, answers):
                assert _fail_mode(ans) is None, ans
                allowed[key] += ans["allowed"]
    assert {k: n for k, n in allowed.items() if n != 5} == {}
    masters = redis_cluster.masters()
    assert len(masters) == 3
    # the rule's state keys only (statistics and the ruleset live beside them)
    sizes = {p: len(redis_cluster.cli(p, "KEYS", "ratekit:{spread:*").split()) for p in masters}
    assert all(n > 0 for n in sizes.values()), sizes
    assert sum(sizes.values()) == len(keys) + 1  # and the probe
    info = a.admin("GET", "/api/v1/info").json()
    assert "redis-cluster" in str(info), info


def test_a_slot_migrated_under_load_keeps_every_count_exact(make_server, redis_cluster):
    a = make_server(env=_env(redis_cluster))
    b = make_server(env=_env(redis_cluster), db_path=a.db_path)
    a.create_rule(id="mig", algorithm="fixed_window", limit=100000, window="1d")
    _wait_rule(b, "mig")
    # four keys in one slot (the one that moves) and a few elsewhere
    slot = keyslot(_state_key("mig", "m0"))
    moving = ["m0"]
    i = 1
    while len(moving) < 4:
        if keyslot(_state_key("mig", f"m{i}")) == slot:
            moving.append(f"m{i}")
        i += 1
    keys = moving + [f"other-{i}" for i in range(8)]
    src = redis_cluster.slot_owner(slot)
    dst = next(p for p in redis_cluster.masters() if p != src)

    allowed = {k: 0 for k in keys}
    problems = []
    lock = threading.Lock()
    stop = threading.Event()

    def load(server):
        while not stop.is_set():
            answers = _batch(server, "mig", keys)
            with lock:
                for ans, key in zip(answers, keys):
                    if _fail_mode(ans) is not None or not ans["allowed"]:
                        problems.append((key, ans))
                    allowed[key] += ans["allowed"]

    threads = [threading.Thread(target=load, args=(s,)) for s in (a, b)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.2)
        cli = redis_cluster.cli
        cli(dst, "CLUSTER", "SETSLOT", str(slot), "IMPORTING", redis_cluster.ids[src])
        cli(src, "CLUSTER", "SETSLOT", str(slot), "MIGRATING", redis_cluster.ids[dst])
        for key in moving:  # one at a time: meanwhile some are here, some there (ASK)
            time.sleep(0.1)
            assert cli(src, "MIGRATE", "127.0.0.1", str(dst), _state_key("mig", key), "0",
                       "5000") == "OK"
        time.sleep(0.1)
        for port in redis_cluster.masters():
            cli(port, "CLUSTER", "SETSLOT", str(slot), "NODE", redis_cluster.ids[dst])
        time.sleep(0.3)  # the old owner answers MOVED now
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert problems == []
    assert redis_cluster.slot_owner(slot) == dst
    # what Redis counted is exactly what was allowed, for every key
    for key in keys:
        owner = dst if key in moving else redis_cluster.slot_owner(keyslot(_state_key("mig", key)))
        state = redis_cluster.cli(owner, "GET", _state_key("mig", key))
        # lua/README.md: <window index><count, 8 digits>, or "<start>:<count>"
        count = int(state.split(":")[1]) if ":" in state else int(state) % 10**8
        assert count == allowed[key], (key, state, allowed[key])
    assert all(allowed[k] > 10 for k in moving), allowed


def test_instances_with_their_own_files_share_rules_and_statistics(make_server, redis_cluster,
                                                                  workdir):
    env = _env(redis_cluster)
    a = make_server(env=env, db_path=os.path.join(workdir, "a.db"))
    b = make_server(env=env, db_path=os.path.join(workdir, "b.db"))
    assert not _knows(b, "hot")

    # a rule created on A is enforced on B within a second
    a.create_rule(id="hot", algorithm="fixed_window", limit=2, window="1h")
    took = _wait_until(lambda: _knows(b, "hot"), timeout=1.0)
    assert took is not None, "B does not know the rule a second after A stored it"
    assert [b.check("hot", "203.0.113.7").json()["allowed"] for _ in range(3)] == \
        [True, True, False]
    history = b.admin("GET", "/api/v1/rules/hot/history").json()["history"]
    assert history[0]["actor"] == "sync"
    # and a change made on B travels back to A
    assert b.admin("PATCH", "/api/v1/rules/hot", {"limit": 7}).status == 200
    assert _wait_until(lambda: a.admin("GET", "/api/v1/rules/hot").json().get("limit") == 7,
                       timeout=1.0) is not None
    ruleset = _cluster_keys(redis_cluster, "ratekit:ruleset")
    assert list(ruleset) == ["ratekit:ruleset"]
    assert ruleset["ratekit:ruleset"] == redis_cluster.slot_owner(keyslot("ratekit:ruleset"))
    doc = json.loads(redis_cluster.cli(ruleset["ratekit:ruleset"], "GET", "ratekit:ruleset"))
    assert [r["limit"] for r in doc["rules"] if r["id"] == "hot"] == [7]

    # checks made on A (under a rule B never used) show in B's statistics within 2 s
    a.create_rule(id="seen", algorithm="fixed_window", limit=3, window="1h")
    answers = [a.check("seen", "198.51.100.9").json()["allowed"] for _ in range(5)]
    assert answers == [True] * 3 + [False] * 2
    took = _wait_until(lambda: _rule_counts(_stats(b), "seen") == {"allowed": 3, "denied": 2},
                       timeout=2.0)
    assert took is not None, _stats(b)
    # A's heartbeat and its sums live on different masters: B may read the
    # sums a moment before the heartbeat, and counts A at its next refresh
    assert _wait_until(lambda: _stats(b)["instances"] == 2, timeout=2.0) is not None, _stats(b)
    assert b.admin("GET", "/api/v1/info").json()["instances"] == 2
    assert _wait_until(lambda: b.admin("GET", "/api/v1/stats/top?rule=seen").json()["top"] ==
                       [{"rule": "seen", "key": "198.51.100.9", "denied": 2}], timeout=2.0) \
        is not None, b.admin("GET", "/api/v1/stats/top?rule=seen").json()
    # the per-second sums live on the masters owning their slots, with their TTL
    seconds = _cluster_keys(redis_cluster, "ratekit:stats:*")
    assert seconds
    for key, port in seconds.items():
        assert port == redis_cluster.slot_owner(keyslot(key))
        assert 0 < int(redis_cluster.cli(port, "TTL", key)) <= 960


def test_leases_taken_on_one_instance_are_released_on_another_amid_checks(
        make_server, redis_cluster, workdir):
    """Releases and checks sent at once to one thread share its rounds to the
    cluster: every release ends its lease, every check is decided there."""
    env = _env(redis_cluster, RATEKIT_THREADS="1")
    a = make_server(env=env, db_path=os.path.join(workdir, "leases.db"))
    b = make_server(env=env, db_path=os.path.join(workdir, "leases.db"))
    a.create_rule(id="jobs", algorithm="concurrency", limit=4, window="30s")
    a.create_rule(id="calls", algorithm="fixed_window", limit=1000, window="1h")
    _wait_rule(b, "jobs")
    _wait_rule(b, "calls")

    def acquire(s, key):
        return request("POST", s.data + "/v1/acquire", {"rule": "jobs", "key": key}).json()

    # keys spread over the masters, four leases each
    keys = [f"w{i}" for i in range(6)]
    assert len({redis_cluster.slot_owner(keyslot(_state_key("jobs", k, "concurrency")))
                for k in keys}) > 1
    leases = [acquire(a, k) for k in keys for _ in range(4)]
    assert all(x["allowed"] for x in leases) and not acquire(b, keys[0])["allowed"]

    def release(lease):
        return request("POST", b.data + "/v1/release", {"lease": lease["lease"]}).json()

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        released = pool.map(release, leases)
        checked = pool.map(lambda i: b.check("calls", f"c{i}").json(), range(24))
        released, checked = list(released), list(checked)
    assert released == [{"released": True}] * len(leases)
    assert all(c["allowed"] and _fail_mode(c) is None for c in checked)
    assert all(acquire(b, k)["allowed"] for k in keys)


def test_bad_seed_lists_stop_startup_with_one_line(make_server):
    for seeds in ("127.0.0.1", "127.0.0.1:7000,,127.0.0.1:7001", "::1:7000", "host:99999"):
        s = make_server(env={"RATEKIT_REDIS_CLUSTER": seeds}, start=False)
        s.start(wait=False)
        assert s.proc.wait(10) != 0
        lines = [l for l in s.output().splitlines() if l.startswith("ratekitd:")]
        assert len(lines) == 1 and "RATEKIT_REDIS_CLUSTER" in lines[0], lines
    s = make_server(env={"RATEKIT_REDIS_CLUSTER": "127.0.0.1:7000",
                         "RATEKIT_REDIS_URL": "redis://127.0.0.1:6379"}, start=False)
    s.start(wait=False)
    assert s.proc.wait(10) != 0
    assert "not both" in s.output()


def test_an_unreachable_cluster_is_fatal_in_production_and_local_in_development(make_server):
    s = make_server(env={"RATEKIT_REDIS_CLUSTER": "127.0.0.1:1,127.0.0.1:2",
                         "RATEKIT_ENV": "production"}, start=False)
    s.start(wait=False)
    assert s.proc.wait(10) != 0
    lines = [l for l in s.output().splitlines() if l.startswith("ratekitd:")]
    assert len(lines) == 1 and "RATEKIT_REDIS_CLUSTER" in lines[0] and "production" in lines[0]
    d = make_server(env={"RATEKIT_REDIS_CLUSTER": "127.0.0.1:1"})
    d.create_rule(id="dev", algorithm="fixed_window", limit=1, window="1m")
    answers = [d.check("dev", "k").json() for _ in range(2)]
    assert [x["allowed"] for x in answers] == [True, False]
    assert all(_fail_mode(x) == "local" for x in answers)
    assert "unreachable" in d.output()


def test_a_stalled_master_holds_up_no_request_that_needs_no_redis(make_server):
    """With one event loop, a check whose master does not answer waits for the
    command timeout, then takes its rule's fail mode. Meanwhile the loop is
    not blocked reading: it answers at once what needs no Redis. Once the
    master is back, checks on it are decided there again."""
    cluster = RedisCluster(masters=2, node_timeout_ms=15000)  # no failover meanwhile
    try:
        s = make_server(env={"RATEKIT_REDIS_CLUSTER": cluster.seeds,
                             "RATEKIT_REDIS_TIMEOUT_MS": "1000", "RATEKIT_THREADS": "1"})
        s.create_rule(id="stall", algorithm="fixed_window", limit=1000, window="1h")
        victim = cluster.slot_owner(keyslot(_state_key("stall", "k")))
        assert _fail_mode(s.check("stall", "k").json()) is None
        cluster.procs[victim].send_signal(signal.SIGSTOP)
        try:
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                sent = time.monotonic()
                stalled = pool.submit(lambda: (s.check("stall", "k").json(),
                                               time.monotonic() - sent))
                time.sleep(0.2)  # its batch is out, awaiting the victim
                asked = time.monotonic()
                unknown = s.check("no-such-rule", "k")
                unknown_took = time.monotonic() - asked
                answer, took = stalled.result(10)
        finally:
            cluster.procs[victim].send_signal(signal.SIGCONT)
        assert unknown.status == 404 and unknown_took < 0.5, (unknown.status, unknown_took)
        assert _fail_mode(answer) == "local" and took >= 0.9, (answer, took)
        after = s.check("stall", "k").json()
        assert after["allowed"] and _fail_mode(after) is None, after
    finally:
        cluster.stop()


def test_checks_queued_behind_a_stalled_masters_batch_wait_one_timeout_not_two(make_server):
    """With one event loop, checks that come while a batch awaits a stalled
    master have waited for its timeout already: their requests to that
    master take the fail mode as soon as it times out, instead of waiting a
    second timeout in the next batch; those to a healthy master are decided
    there. A release queued so answers 503 at once. Once the master answers,
    checks are decided there again, and the release goes through."""
    timeout = 0.6
    cluster = RedisCluster(masters=2, node_timeout_ms=15000)  # no failover meanwhile
    try:
        s = make_server(env={"RATEKIT_REDIS_CLUSTER": cluster.seeds,
                             "RATEKIT_REDIS_TIMEOUT_MS": str(int(timeout * 1000)),
                             "RATEKIT_THREADS": "1"})
        s.create_rule(id="queue", algorithm="fixed_window", limit=1000, window="1h")
        s.create_rule(id="slots", algorithm="concurrency", limit=5, window="1h")

        def owner(key, rule="queue", alg="fixed_window"):
            return cluster.slot_owner(keyslot(_state_key(rule, key, alg)))

        victim = owner("k0")
        stalled = [k for k in (f"k{i}" for i in range(40)) if owner(k) == victim][:2]
        healthy = next(k for k in (f"h{i}" for i in range(40)) if owner(k) != victim)
        assert all(_fail_mode(x) is None for x in _batch(s, "queue", stalled + [healthy]))
        held = next(k for k in (f"l{i}" for i in range(40))
                    if owner(k, "slots", "concurrency") == victim)
        lease = request("POST", s.data + "/v1/acquire", {"rule": "slots", "key": held}).json()

        def timed(key):
            sent = time.monotonic()
            return s.check("queue", key, timeout=10).json(), time.monotonic() - sent

        def release():
            sent = time.monotonic()
            r = request("POST", s.data + "/v1/release", {"lease": lease["lease"]}, timeout=10)
            return r, time.monotonic() - sent

        cluster.procs[victim].send_signal(signal.SIGSTOP)
        try:
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                first = pool.submit(timed, stalled[0])
                time.sleep(0.2)  # its batch is out, awaiting the victim
                behind = pool.submit(timed, stalled[1])
                beside = pool.submit(timed, healthy)
                freed = pool.submit(release)
                (a, a_took), (b, b_took), (h, h_took) = (first.result(10), behind.result(10),
                                                         beside.result(10))
                r, r_took = freed.result(10)
        finally:
            cluster.procs[victim].send_signal(signal.SIGCONT)
        assert _fail_mode(a) == "local" and a_took >= timeout * 0.9, (a, a_took)
        # it came 0.2 s after the first batch left: that batch's timeout, and no other
        assert _fail_mode(b) == "local" and b_took < timeout + 0.2, (b, b_took)
        assert h["allowed"] and _fail_mode(h) is None and h_took < timeout + 0.2, (h, h_took)
        assert r.status == 503 and r_took < timeout + 0.2, (r, r_took)
        # its breaker may have opened meanwhile: back within its cool-down
        assert _wait_until(lambda: _fail_mode(s.check("queue", stalled[1]).json()) is None,
                           timeout=5.0) is not None
        assert release()[0].json() == {"released": True}
    finally:
        cluster.stop()


def test_readyz_comes_back_after_a_stalled_master_resumes_without_any_check(make_server):
    """A balancer that takes the instance out on 503 sends no check: /readyz
    heals on its own once every master answers again."""
    cluster = RedisCluster(masters=2, node_timeout_ms=15000)  # no failover meanwhile
    try:
        s = make_server(env={"RATEKIT_REDIS_CLUSTER": cluster.seeds,
                             "RATEKIT_REDIS_TIMEOUT_MS": "150"})
        s.create_rule(id="stall", algorithm="fixed_window", limit=1000, window="1h")
        victim = cluster.slot_owner(keyslot(_state_key("stall", "k")))
        assert _fail_mode(s.check("stall", "k").json()) is None
        assert request("GET", s.data + "/readyz").status == 200
        cluster.procs[victim].send_signal(signal.SIGSTOP)
        try:
            for _ in range(10):
                assert _fail_mode(s.check("stall", "k", timeout=5).json()) == "local"
            time.sleep(1.5)  # the store's own probes meet the stopped master too
            r = request("GET", s.data + "/readyz")
            assert r.status == 503 and r.json()["store_healthy"] is False, r
        finally:
            cluster.procs[victim].send_signal(signal.SIGCONT)
        took = _wait_until(lambda: request("GET", s.data + "/readyz").status == 200, 5.0)
        assert took is not None and took < 2.5, f"/readyz still 503 {took} s after SIGCONT"
        assert _fail_mode(s.check("stall", "k").json()) is None
    finally:
        cluster.stop()


def _store_up(server):
    text = request("GET", server.admin_url + "/metrics").body.decode()
    return next(line.split()[1] for line in text.splitlines()
                if line.startswith("ratekit_store_up "))


def test_readyz_and_store_up_hold_steady_while_one_master_is_stalled_under_load(make_server):
    """With one master of three stopped and checks over keys on every master,
    /readyz and ratekit_store_up say the store is failing all along, not in
    turn with each check's outcome; both come back once the master answers."""
    cluster = RedisCluster(masters=3, node_timeout_ms=15000)  # no failover meanwhile
    try:
        s = make_server(env={"RATEKIT_REDIS_CLUSTER": cluster.seeds,
                             "RATEKIT_REDIS_TIMEOUT_MS": "150"})
        s.create_rule(id="steady", algorithm="fixed_window", limit=100000, window="1h")
        keys = [f"s{i}" for i in range(30)]
        assert len({cluster.slot_owner(keyslot(_state_key("steady", k))) for k in keys}) == 3
        assert all(_fail_mode(x) is None for x in _batch(s, "steady", keys))
        assert request("GET", s.data + "/readyz").status == 200 and _store_up(s) == "1"
        stop = threading.Event()

        def load(offset):
            i = offset
            while not stop.is_set():
                s.check("steady", keys[i % len(keys)], timeout=5)
                i += 1

        cluster.procs[cluster.ports[0]].send_signal(signal.SIGSTOP)
        threads = [threading.Thread(target=load, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        seen = []
        try:
            time.sleep(0.6)  # the stopped master's first timeouts
            until = time.monotonic() + 1.5
            while time.monotonic() < until:
                seen.append((request("GET", s.data + "/readyz").status, _store_up(s)))
                time.sleep(0.02)
        finally:
            stop.set()
            for t in threads:
                t.join()
            cluster.procs[cluster.ports[0]].send_signal(signal.SIGCONT)
        assert len(seen) > 10 and set(seen) == {(503, "0")}, seen
        took = _wait_until(lambda: request("GET", s.data + "/readyz").status == 200, 5.0)
        assert took is not None and took < 2.5, f"/readyz still 503 {took} s after SIGCONT"
        assert _store_up(s) == "1"
    finally:
        cluster.stop()


def test_a_stalled_master_fails_over_only_the_checks_whose_keys_it_holds(make_server):
    """A batch, or a request several rules match, whose keys span a stalled
    master and a healthy one: what the healthy master decided stands (it
    counted it, and its denials deny); only the stalled master's keys take
    the fail mode."""
    cluster = RedisCluster(masters=2, node_timeout_ms=15000)  # no failover meanwhile
    try:
        s = make_server(env={"RATEKIT_REDIS_CLUSTER": cluster.seeds,
                             "RATEKIT_REDIS_TIMEOUT_MS": "300", "RATEKIT_THREADS": "1"})
        s.create_rule(id="once", algorithm="fixed_window", limit=1, window="1d",
                      match={"path": "/only-direct"})
        for rule in ("r1", "r2"):
            s.create_rule(id=rule, algorithm="fixed_window", limit=1, window="1d",
                          match={"path": "/p"}, key=["ip"])

        def owner(rule, key):
            return cluster.slot_owner(keyslot(_state_key(rule, key)))

        victim = owner("once", "k0")
        healthy = [k for k in (f"k{i}" for i in range(1, 20)) if owner("once", k) != victim][:3]
        ip = next(ip for ip in (f"10.0.0.{i}" for i in range(1, 255))
                  if owner("r1", f"ip:{ip}") == victim and owner("r2", f"ip:{ip}") != victim)
        assert all(s.check("once", k).json()["allowed"] for k in healthy)  # each at its limit
        context = {"request": {"method": "GET", "path": "/p", "ip": ip}}
        assert request("POST", s.data + "/v1/check", context).json()["allowed"]
        cluster.procs[victim].send_signal(signal.SIGSTOP)
        try:
            batch = _batch(s, "once", ["k0"] + healthy)
            answer = request("POST", s.data + "/v1/check", context).json()
        finally:
            cluster.procs[victim].send_signal(signal.SIGCONT)
        assert batch[0]["allowed"] and _fail_mode(batch[0]) == "local", batch[0]
        assert [(x["allowed"], _fail_mode(x)) for x in batch[1:]] == [(False, None)] * 3, batch
        by_rule = {r["rule"]: r for r in answer["results"]}
        assert not answer["allowed"], answer
        assert not by_rule["r2"]["allowed"] and by_rule["r2"].get("fail_mode") is None, answer
        assert by_rule["r1"].get("fail_mode") == "local", answer
    finally:
        cluster.stop()


def test_a_password_protected_cluster_takes_its_password_from_a_seed_and_never_shows_it(
        make_server, workdir):
    password = "Zq7-cluster-pw"
    cluster = RedisCluster(masters=2, password=password)
    try:
        p1, p2 = cluster.ports
        env = {"RATEKIT_REDIS_CLUSTER": f"redis://:{password}@127.0.0.1:{p1},127.0.0.1:{p2}",
               "RATEKIT_ENV": "production"}
        a = make_server(env=env, db_path=os.path.join(workdir, "a.db"))
        b = make_server(env=env, db_path=os.path.join(workdir, "b.db"))
        # checks, rules sync (PUBLISH, SUBSCRIBE) and statistics on every node
        a.create_rule(id="locked", algorithm="fixed_window", limit=2, window="1h")
        assert _wait_until(lambda: _knows(b, "locked"), timeout=2.0) is not None
        answers = [srv.check("locked", "k").json() for srv in (a, b, a)]
        assert [(x["allowed"], _fail_mode(x)) for x in answers] == \
            [(True, None), (True, None), (False, None)], answers
        assert _wait_until(lambda: _rule_counts(_stats(b), "locked")["allowed"] >= 2,
                           timeout=3.0) is not None, _stats(b)
        for seeds, says in ((f"redis://:wrong-{password}@127.0.0.1:{p1}", "WRONGPASS"),
                            (f"127.0.0.1:{p1}", "NOAUTH"),
                            (f":{password}@127.0.0.1:{p1}", "URL seed"),
                            (f"redis://:{password}%zz@127.0.0.1:{p1}", "percent-encoding"),
                            (f"redis://:{password}@127.0.0.1:{p1}/2", "database"),
                            (f"redis://:{password}@127.0.0.1:{p1},redis://u:x{password}@h:1",
                             "differ")):
            s = make_server(env={"RATEKIT_REDIS_CLUSTER": seeds, "RATEKIT_ENV": "production"},
                            start=False)
            s.start(wait=False)
            assert s.proc.wait(10) != 0
            out = s.output()
            lines = [line for line in out.splitlines() if line.startswith("ratekitd:")]
            assert len(lines) == 1 and "RATEKIT_REDIS_CLUSTER" in lines[0], out
            assert says in lines[0] and password not in out, out
    finally:
        cluster.stop()


def _owner_of(cluster):
    """slot -> port of its master, from one look at the slot map."""
    ranges = cluster._slot_ranges()
    return lambda slot: next((p for p, lo, hi in ranges if lo <= slot <= hi), None)


def _fill_master(cluster, port):
    """Fills one master (maxmemory 1mb, evicting nothing) with keys of its own
    slots until it refuses writes with OOM, then lowers maxmemory below what it
    uses, so that memory freed meanwhile never makes room again."""
    cluster.cli(port, "CONFIG", "SET", "maxmemory-policy", "noeviction")
    cluster.cli(port, "CONFIG", "SET", "maxmemory", "1mb")
    owner = _owner_of(cluster)
    mine = (t for t in (f"fill{i}" for i in range(100000)) if owner(keyslot(t)) == port)
    for i, tag in zip(range(1000), mine):
        if "OOM" in cluster.cli(port, "SET", f"{{{tag}}}:{i}", "x" * 65536):
            break
    else:
        raise AssertionError(f"master {port} never refused a write")
    used = next(int(line.split(":")[1]) for line in cluster.cli(port, "INFO", "memory").split()
                if line.startswith("used_memory:"))
    cluster.cli(port, "CONFIG", "SET", "maxmemory", str(used // 2))


def test_readyz_stays_503_while_a_master_refuses_writes_and_comes_back_once_it_takes_one(
        make_server):
    """A master at maxmemory (noeviction) answers PING but refuses every
    check's write: under a trickle of checks on its keys, /readyz stays 503
    (the store's probe writes, as a check does) rather than turning 200 on
    every probe, and is 200 again without a check once the master takes
    writes."""
    cluster = RedisCluster(masters=2, node_timeout_ms=15000)
    try:
        s = make_server(env={"RATEKIT_REDIS_CLUSTER": cluster.seeds,
                             "RATEKIT_REDIS_TIMEOUT_MS": "200"})
        s.create_rule(id="oom", algorithm="fixed_window", limit=100000, window="1h")
        owner = _owner_of(cluster)
        victim = owner(keyslot(_state_key("oom", "k0")))
        keys = [k for k in (f"k{i}" for i in range(200))
                if owner(keyslot(_state_key("oom", k))) == victim][:20]
        assert _fail_mode(s.check("oom", keys[0]).json()) is None
        assert request("GET", s.data + "/readyz").status == 200
        _fill_master(cluster, victim)
        stop = threading.Event()

        def trickle():
            i = 0
            while not stop.is_set():
                s.check("oom", keys[i % len(keys)], timeout=5)
                i += 1
                stop.wait(0.1)

        thread = threading.Thread(target=trickle)
        thread.start()
        seen = []
        try:
            time.sleep(0.5)  # the first refused checks
            until = time.monotonic() + 3
            while time.monotonic() < until:
                seen.append(request("GET", s.data + "/readyz").status)
                time.sleep(0.05)
        finally:
            stop.set()
            thread.join()
        assert len(seen) > 20 and set(seen) == {503}, seen
        assert _fail_mode(s.check("oom", keys[1]).json()) == "local"
        cluster.cli(victim, "CONFIG", "SET", "maxmemory", "0")
        took = _wait_until(lambda: request("GET", s.data + "/readyz").status == 200, 5.0)
        assert took is not None and took < 2.5, f"/readyz still 503 {took} s after maxmemory 0"
        assert _fail_mode(s.check("oom", keys[1]).json()) is None
    finally:
        cluster.stop()


def _cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_connections_the_masters_close_while_idle_neither_spin_nor_fail_a_check(
        make_server, redis_cluster, workdir):
    """The loop watches its connections to the masters between batches too:
    one a master closes is dropped at once (an idle ratekitd stays idle), and
    the next check opens a new one."""
    s = make_server(env=_env(redis_cluster, RATEKIT_THREADS="1"),
                    db_path=os.path.join(workdir, "idle.db"))
    s.create_rule(id="idle", algorithm="fixed_window", limit=1000, window="1h")
    keys = [f"i{i}" for i in range(12)]
    assert all(_fail_mode(x) is None for x in _batch(s, "idle", keys))
    for port in redis_cluster.masters():
        redis_cluster.cli(port, "CLIENT", "KILL", "TYPE", "normal")
    time.sleep(0.2)
    before = _cpu_seconds(s.proc.pid)
    time.sleep(1.0)
    assert _cpu_seconds(s.proc.pid) - before < 0.3
    answers = [s.check("idle", k).json() for k in keys]
    assert all(a["allowed"] and _fail_mode(a) is None for a in answers), answers


def _subscribers(cluster, port):
    return int(cluster.cli(port, "PUBSUB", "NUMSUB", "ratekit:ruleset").split()[1])


def test_checks_and_rules_sync_answer_through_a_master_failover_and_come_back(
        make_server, redis_cluster, workdir):
    s = make_server(env=_env(redis_cluster), db_path=os.path.join(workdir, "s.db"))
    other = make_server(env=_env(redis_cluster), db_path=os.path.join(workdir, "other.db"))
    s.create_rule(id="fo", algorithm="fixed_window", limit=100000, window="1d")
    keys = [f"fo-{i}" for i in range(30)]
    assert all(_fail_mode(x) is None for x in _batch(s, "fo", keys))
    # the victim serves the ruleset too: both instances listen there
    victim = redis_cluster.slot_owner(keyslot("ratekit:ruleset"))
    assert _wait_until(lambda: _subscribers(redis_cluster, victim) == 2, timeout=3) is not None
    on_victim = [k for k in keys
                 if redis_cluster.slot_owner(keyslot(_state_key("fo", k))) == victim]
    assert on_victim
    redis_cluster.kill(victim)
    t0 = time.monotonic()
    saw_fail_mode, back, rounds = False, False, 0
    while time.monotonic() - t0 < 10 and not back:
        # at once, so that checks of both kinds share the instance's rounds to the cluster
        with concurrent.futures.ThreadPoolExecutor(10) as pool:
            answers = dict(zip(keys, pool.map(lambda k: s.check("fo", k, timeout=5).json(), keys)))
        assert all(a["allowed"] for a in answers.values())
        failed = [k for k, a in answers.items() if _fail_mode(a) is not None]
        if rounds == 0:
            # until the cluster notices (node timeout 1 s) and goes CLUSTERDOWN
            # as a whole, the other masters keep deciding
            assert set(failed) == set(on_victim), failed
        saw_fail_mode |= bool(failed)
        back = saw_fail_mode and not failed
        rounds += 1
        time.sleep(0.05)
    assert saw_fail_mode, "the killed master's keys never used the fail mode"
    assert back, "checks did not return to the cluster within 10 s of the kill"
    assert victim not in redis_cluster.masters()
    assert request("GET", s.data + "/readyz").status == 200
    # the subscribers follow the ruleset to its new master, and hot reload works again
    heir = redis_cluster.slot_owner(keyslot("ratekit:ruleset"))
    assert _wait_until(lambda: _subscribers(redis_cluster, heir) == 2, timeout=4) is not None
    s.create_rule(id="after-failover", algorithm="fixed_window", limit=1, window="1m")
    assert _wait_until(lambda: _knows(other, "after-failover"), timeout=1.0) is not None
