"""INTEGRATION.md's nginx recipe when ratekit cannot answer: the files of
examples/nginx/ in a real nginx, failing open by default and closed with
the switch. (Limiting behind nginx: test_forward_auth.py.)"""

import os
import subprocess

import pytest

from conftest import free_port, request, wait_for_port
from recipes.helpers import (add_to_denylist, assert_a_denylisted_client_gets_403_forbidden,
                             assert_a_limited_client_gets_the_one_error_shape)
from test_forward_auth import NGINX_CONF, recipe


@pytest.fixture
def make_nginx(workdir):
    started = []

    def make(ratekit_port, after_include=""):
        port = free_port()
        d = os.path.join(workdir, f"nginx-{port}")
        os.makedirs(os.path.join(d, "www", "api"))
        os.makedirs(os.path.join(d, "tmp"))
        with open(os.path.join(d, "www", "api", "items"), "w") as f:
            f.write("items\n")
        os.chmod(workdir, 0o755)
        for root, dirs, _ in os.walk(d):
            for x in dirs:
                os.chmod(os.path.join(root, x), 0o755)
        block = recipe().replace("try_files", after_include + "\n            try_files")
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(dir=d, port=port, ratekit_port=ratekit_port, recipe=block))
        proc = subprocess.Popen(["nginx", "-c", conf, "-p", d], stderr=subprocess.DEVNULL)
        started.append(proc)
        wait_for_port(port, proc)
        return f"http://127.0.0.1:{port}"

    yield make
    for p in started:
        p.terminate()
        p.wait(10)


def test_nginx_fails_open_by_default_when_ratekit_is_down(make_nginx):
    nginx = make_nginx(free_port())
    r = request("GET", nginx + "/api/items")
    assert r.status == 200 and r.body == b"items\n"


def test_nginx_fails_closed_with_503_when_switched(make_nginx):
    nginx = make_nginx(free_port(), after_include="set $ratekit_fail_mode closed;")
    r = request("GET", nginx + "/api/items")
    assert r.status == 503 and r.headers["retry-after"] == "1"
    assert r.json()["error"]["code"] == "unavailable"


def test_nginx_closed_mode_still_limits_and_allows_when_ratekit_is_up(server, make_nginx):
    server.create_rule(id="edge", algorithm="fixed_window", limit=1, window="1m",
                       match={"path": "/api/*"})
    nginx = make_nginx(server.data_port, after_include="set $ratekit_fail_mode closed;")
    got = [request("GET", nginx + "/api/items") for _ in range(2)]
    assert [r.status for r in got] == [200, 429]
    assert got[0].body == b"items\n" and int(got[1].headers["retry-after"]) >= 1


def test_nginx_does_not_let_a_client_choose_its_own_plan(server, make_nginx):
    server.create_rule(id="edge", algorithm="fixed_window", limit=1, window="1m",
                       match={"path": "/api/*"}, plans={"pro": {"limit": 5}})
    # ratekit itself honours X-Plan (here sent straight to it, as a gateway that set it would)
    direct = [request("GET", server.data + "/v1/auth", headers={
        "X-Original-URI": "/api/items", "X-Forwarded-For": "198.51.100.9",
        "X-Plan": "pro"}).status for _ in range(2)]
    assert direct == [200, 200]
    # the recipe removes the client's own X-Plan: the default limit applies
    nginx = make_nginx(server.data_port)
    got = [request("GET", nginx + "/api/items", headers={"X-Plan": "pro"}) for _ in range(2)]
    assert [r.status for r in got] == [200, 429]


def test_nginx_refuses_a_request_ratekit_will_not_judge_even_failing_open(server, make_nginx):
    server.create_rule(id="edge", algorithm="fixed_window", limit=100, window="1m",
                       match={"path": "/api/*"})
    nginx = make_nginx(server.data_port)
    r = request("GET", nginx + "/api/" + "a" * 3000)  # ratekit's 400, a 500 to auth_request
    assert r.status == 503 and r.json()["error"]["code"] == "unavailable"
    assert request("GET", nginx + "/api/items").status == 200


def test_nginx_refuses_a_denylisted_client_with_403_and_a_limited_one_with_429(
        server, make_nginx):
    """Both reach auth_request as ratekit's 403: the denylist's stays a 403
    (no Retry-After), a limit's becomes a 429 with Retry-After."""
    server.create_rule(id="edge", algorithm="fixed_window", limit=1, window="1m",
                       match={"path": "/api/*"}, key=["user", "ip"])
    add_to_denylist(server, "user:mallory")
    nginx = make_nginx(server.data_port)
    for _ in range(2):
        r = request("GET", nginx + "/api/items", headers={"X-User-Id": "mallory"})
        assert_a_denylisted_client_gets_403_forbidden(server, r)
        assert not any(h.startswith(("ratelimit", "x-ratelimit")) for h in r.headers), r.headers
    alice = [request("GET", nginx + "/api/items", headers={"X-User-Id": "alice"})
             for _ in range(2)]
    assert alice[0].status == 200 and alice[0].body == b"items\n"
    assert alice[1].status == 429 and int(alice[1].headers["retry-after"]) >= 1
    assert alice[1].json()["error"]["code"] == "rate_limited"


def test_nginx_answers_429_with_what_the_auth_answer_tells_of_the_one_error_shape(
        server, make_nginx):
    """The rule, its limit and what remains (not reset_at nor retry_after_ms:
    nginx reads no body of the auth answer and formats no time), with the
    headers that tell the rest to the second."""
    server.create_rule(id="edge", algorithm="fixed_window", limit=1, window="1m",
                       match={"path": "/api/*"})
    nginx = make_nginx(server.data_port)
    got = [request("GET", nginx + "/api/items") for _ in range(2)]
    assert got[0].status == 200
    limited = got[1]
    assert_a_limited_client_gets_the_one_error_shape(
        limited, "edge", 1, fields={"code", "message", "rule", "limit", "remaining"})
    assert limited.headers["ratelimit-policy"] == '"edge";q=1;w=60'
    assert limited.headers["x-ratelimit-limit"] == "1"
    assert limited.headers["x-ratelimit-remaining"] == "0"
    assert int(limited.headers["x-ratelimit-reset"]) > 0
