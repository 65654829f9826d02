"""A request several rules cover and one enforcing rule denies consumes
nothing: the rules that allowed it are given back what they counted, for
every algorithm, on the embedded store, Redis and a Redis Cluster. The
allowing rule is checked through the admin plane's counters and through
its own answers."""

import itertools
import time

import pytest

from cluster import RedisCluster
from conftest import Ratekitd, RedisServer, request

BACKENDS = ["memory", "redis", "cluster"]

ALLOWING = [
    {"algorithm": "fixed_window", "limit": 100, "window": "1h"},
    {"algorithm": "sliding_window", "limit": 100, "window": "1h"},
    {"algorithm": "sliding_log", "limit": 100, "window": "1h"},
    {"algorithm": "token_bucket", "limit": 100, "window": "1h"},
    {"algorithm": "gcra", "limit": 100, "window": "1h"},
    {"algorithm": "leaky_bucket", "limit": 100, "window": "1h"},
    {"algorithm": "leaky_bucket", "limit": 100, "window": "1h", "shape": True},
    {"algorithm": "concurrency", "limit": 100, "window": "1h"},
]

ALLOWED, SENT = 2, 7  # the tight rule lets 2 of the 7 requests through
_ids = itertools.count()


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request, tmp_path_factory):
    """One ratekitd per backend for the module (its store started first)."""
    workdir = str(tmp_path_factory.mktemp(request.param))
    store = env = None
    if request.param == "redis":
        store = RedisServer(workdir)
        env = {"RATEKIT_REDIS_URL": store.url}
    elif request.param == "cluster":
        store = RedisCluster(masters=3, replicas=0)
        env = {"RATEKIT_REDIS_CLUSTER": store.seeds}
    server = Ratekitd(workdir, env=env).start()
    server.store = request.param
    yield server
    rc = server.stop()
    if store:
        store.stop()
    assert rc == 0, f"ratekitd exited {rc}:\n{server.output()[-4000:]}"


def _rules(server, allowing, mode="enforce"):
    """A tight rule (2 a window, fixed) and the allowing one on a path of their own."""
    n = next(_ids)
    path = f"/refund/{n}"
    tight = server.create_rule(id=f"tight-{n}", match={"path": path}, key=["ip"],
                               algorithm="fixed_window", limit=ALLOWED, window="1h")
    wide = server.create_rule(id=f"wide-{n}", match={"path": path}, key=["ip"], mode=mode,
                              **allowing)
    return path, tight["id"], wide["id"], f"198.51.100.{n % 250 + 1}"


def _context_check(server, path, ip):
    r = request("POST", server.data + "/v1/check",
                {"request": {"method": "GET", "path": path, "ip": ip}})
    assert r.status == 200, r
    return r.json()


def _result(answer, rule):
    (res,) = [r for r in answer["results"] if r["rule"] == rule]
    return res


def _remaining(server, rule, key):
    r = server.admin("GET", f"/api/v1/counters?rule={rule}&key={key}")
    assert r.status == 200, r
    return r.json()["remaining"]


def _settles(server, rule, key, want, timeout=2.0):
    """The rule's remaining for key once it equals want (a refund on Redis goes
    out after the answer), or the last one seen."""
    deadline = time.monotonic() + timeout
    while True:
        got = _remaining(server, rule, key)
        if got == want or time.monotonic() >= deadline:
            return got
        time.sleep(0.02)


@pytest.mark.parametrize("allowing", ALLOWING,
                         ids=[a["algorithm"] + ("-shape" if a.get("shape") else "")
                              for a in ALLOWING])
def test_a_denied_request_gives_back_what_the_rules_that_allowed_it_counted(backend, allowing):
    path, tight, wide, ip = _rules(backend, allowing)
    answers = [_context_check(backend, path, ip) for _ in range(SENT)]
    assert [a["allowed"] for a in answers] == [True] * ALLOWED + [False] * (SENT - ALLOWED)
    key = next(r["key"] for r in answers[0]["results"] if r["rule"] == wide)
    for a in answers[ALLOWED:]:
        res = _result(a, wide)
        assert res["allowed"] is True  # it allowed the request another rule denied
        # each denied request took one and gave it back, and its answer says
        # what remains with it back. On Redis the refund goes out just after
        # the answer (the previous one may be in flight), and once the tight
        # rule's denial is remembered the wide rule is only looked at
        if backend.store == "memory":
            assert res["remaining"] == 100 - ALLOWED, a
        else:
            assert 100 - ALLOWED - 1 <= res["remaining"] <= 100 - ALLOWED, a
        # a denied answer carries no lease: ratekit ended the ones it took
        assert "lease" not in a and all("lease" not in r for r in a["results"]), a
    for a in answers[:ALLOWED]:
        if allowing["algorithm"] == "concurrency":
            assert any("lease" in r for r in a["results"])
    assert _settles(backend, wide, key, 100 - ALLOWED) == 100 - ALLOWED
    # the denying rule itself consumed nothing either
    assert _remaining(backend, tight, key) == 0


def test_a_shadow_rule_that_allowed_a_denied_request_is_refunded_too(backend):
    path, _, wide, ip = _rules(backend, ALLOWING[0], mode="shadow")
    answers = [_context_check(backend, path, ip) for _ in range(SENT)]
    assert sum(a["allowed"] for a in answers) == ALLOWED
    key = next(r["key"] for r in answers[0]["results"] if r["rule"] == wide)
    assert _settles(backend, wide, key, 100 - ALLOWED) == 100 - ALLOWED


def test_forward_auth_refunds_as_the_context_check_does(backend):
    path, _, wide, ip = _rules(backend, {"algorithm": "gcra", "limit": 100, "window": "1h"})
    statuses = [request("GET", backend.data + "/v1/auth",
                        headers={"X-Original-URI": path, "X-Original-Method": "GET",
                                 "X-Real-IP": ip}).status
                for _ in range(SENT)]
    assert statuses == [200] * ALLOWED + [429] * (SENT - ALLOWED)
    # the allowing rule's next answer shows only the allowed requests counted
    key = _context_check(backend, path, ip)["results"][1]["key"]
    assert _settles(backend, wide, key, 100 - ALLOWED) == 100 - ALLOWED


def _refunds(server):
    metrics = request("GET", server.admin_url + "/metrics").body.decode().splitlines()
    return int(next(l for l in metrics if l.startswith("ratekit_check_refunds_total ")).split()[1])


def test_once_a_denial_is_remembered_the_other_rules_are_only_looked_at(backend):
    """On Redis a rule's denial is remembered until it ends (the deny cache):
    the requests it then denies have the other rules only looked at, so a
    client hammering past one rule costs the others neither a count nor a
    refund. The embedded store has no deny cache: each denial is refunded."""
    path, _, wide, ip = _rules(backend, ALLOWING[4])
    before = _refunds(backend)
    answers = [_context_check(backend, path, ip) for _ in range(SENT)]
    assert sum(a["allowed"] for a in answers) == ALLOWED
    key = next(r["key"] for r in answers[0]["results"] if r["rule"] == wide)
    assert _settles(backend, wide, key, 100 - ALLOWED) == 100 - ALLOWED
    refunded = _refunds(backend) - before
    assert refunded == (SENT - ALLOWED if backend.store == "memory" else 1), refunded
    # the rule looked at still says where it stands (on the embedded store,
    # with the refund given back)
    last = _result(answers[-1], wide)["remaining"]
    assert last == 100 - ALLOWED, last


def test_a_remembered_denial_spares_every_other_rule_of_a_request_with_many(backend):
    """A request of more rules than go to the store together (4) is decided
    in several parts: a remembered denial in the last part spares the rules
    of the first ones too, neither counted nor refunded."""
    n = next(_ids)
    path, ip = f"/many/{n}", f"192.0.2.{n % 250 + 1}"
    wides = [backend.create_rule(id=f"many-{n}-{i}", match={"path": path}, key=["ip"],
                                 priority=i, **ALLOWING[i])["id"] for i in range(6)]
    # checked last (priority order, lowest first): in the last part
    backend.create_rule(id=f"many-{n}-tight", match={"path": path}, key=["ip"], priority=100,
                        algorithm="fixed_window", limit=ALLOWED, window="1h")
    before = _refunds(backend)
    answers = [_context_check(backend, path, ip) for _ in range(SENT)]
    assert sum(a["allowed"] for a in answers) == ALLOWED
    assert [r["rule"] for r in answers[0]["results"]][-1] == f"many-{n}-tight"
    for wide in wides:
        key = _result(answers[0], wide)["key"]
        assert _settles(backend, wide, key, 100 - ALLOWED) == 100 - ALLOWED, wide
    refunded = _refunds(backend) - before
    denials = SENT - ALLOWED
    # the embedded store has no deny cache: each denial is refunded to the 6
    assert refunded == (denials * len(wides) if backend.store == "memory" else len(wides)), refunded


def test_a_batch_check_is_counted_whatever_a_remembered_denial_of_another_says(backend):
    """A batch's checks are independent requests: one whose denial is
    remembered must not turn the others into looks that count nothing."""
    n = next(_ids)
    path = {"path": f"/batch/{n}"}  # named directly: covering no other test's requests
    tight = backend.create_rule(id=f"batch-tight-{n}", match=path, algorithm="fixed_window",
                                limit=1, window="1h")["id"]
    wide = backend.create_rule(id=f"batch-wide-{n}", match=path, algorithm="fixed_window",
                               limit=100, window="1h")["id"]
    checks = {"checks": [{"rule": tight, "key": "k"}, {"rule": wide, "key": "k"}]}
    for i in range(4):
        r = request("POST", backend.data + "/v1/check/batch", checks)
        assert r.status == 200, r
        first, second = r.json()["results"]
        assert first["allowed"] == (i == 0)
        assert second["allowed"] and second["remaining"] == 100 - (i + 1), (i, second)
    assert _remaining(backend, wide, "k") == 100 - 4


def test_an_allowed_request_and_a_single_rule_keep_what_they_counted(backend):
    n = next(_ids)
    path, ip = f"/single/{n}", f"203.0.113.{n % 250 + 1}"
    backend.create_rule(id=f"only-{n}", match={"path": path}, key=["ip"], algorithm="gcra",
                        limit=ALLOWED, window="1h")
    answers = [_context_check(backend, path, ip) for _ in range(SENT)]
    assert sum(a["allowed"] for a in answers) == ALLOWED
    key = answers[0]["results"][0]["key"]
    assert _remaining(backend, f"only-{n}", key) == 0
    # two rules, every request allowed: both keep every count
    path2, _, wide, ip2 = _rules(backend, ALLOWING[3])
    for _ in range(ALLOWED):
        assert _context_check(backend, path2, ip2)["allowed"]
    time.sleep(0.1)
    assert _remaining(backend, wide, key.replace(ip, ip2)) == 100 - ALLOWED


def test_a_refund_goes_where_the_fail_mode_counted(make_server, make_redis):
    """Redis down, fail mode local: the in-memory store decided, and is refunded."""
    redis = make_redis()
    server = make_server(env={"RATEKIT_REDIS_URL": redis.url, "RATEKIT_FAIL_MODE": "local"})
    path, _, wide, ip = _rules(server, ALLOWING[4])
    redis.stop()
    answers = [_context_check(server, path, ip) for _ in range(SENT)]
    assert [a["allowed"] for a in answers] == [True] * ALLOWED + [False] * (SENT - ALLOWED)
    assert all(_result(a, wide).get("fail_mode") == "local" for a in answers)
    assert [_result(a, wide)["remaining"] for a in answers[ALLOWED:]] == \
        [100 - ALLOWED] * (SENT - ALLOWED)
