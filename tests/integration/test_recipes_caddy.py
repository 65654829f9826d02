"""INTEGRATION.md's Caddy recipe: examples/caddy/Caddyfile, unchanged, in a
real caddy on loopback ports, in front of a stand-in application."""

import os
import shutil

import pytest

from conftest import free_port, request
from recipes.helpers import (EXAMPLES, Process, StandInApp, add_to_denylist,
                             assert_a_denylisted_client_gets_403_forbidden,
                             assert_a_limited_client_gets_the_one_error_shape)

pytestmark = pytest.mark.skipif(shutil.which("caddy") is None, reason="caddy is not installed")


@pytest.fixture
def app():
    a = StandInApp()
    yield a
    a.stop()


@pytest.fixture
def make_caddy(workdir):
    started = []

    def make(ratekit_port, app_port, fail_mode=None):
        port, allow_port = free_port(), free_port()
        home = os.path.join(workdir, f"caddy-{port}")
        os.makedirs(home)
        env = {
            "HOME": home, "XDG_DATA_HOME": home, "XDG_CONFIG_HOME": home,
            "CADDY_ADMIN": f"127.0.0.1:{free_port()}",
            "SITE_ADDRESS": f"http://127.0.0.1:{port}",
            "RATEKIT_ADDRESS": f"127.0.0.1:{ratekit_port}",
            "APP_ADDRESS": f"127.0.0.1:{app_port}",
            "RATEKIT_ALLOW_ADDRESS": f"127.0.0.1:{allow_port}",
        }
        if fail_mode:
            env["RATEKIT_FAIL_MODE"] = fail_mode
        p = Process(["caddy", "run", "--adapter", "caddyfile", "--config",
                     os.path.join(EXAMPLES, "caddy", "Caddyfile")], port, env=env,
                    log_path=os.path.join(home, "caddy.log"))
        started.append(p)
        return p

    yield make
    for p in started:
        p.stop()


def test_caddy_forward_auth_passes_headers_then_answers_429_with_retry_after(
        server, app, make_caddy):
    server.create_rule(id="edge", algorithm="fixed_window", limit=3, window="1m",
                       match={"path": "/api/*"})
    caddy = make_caddy(server.data_port, app.port)
    got = [request("GET", caddy.url + "/api/items?page=2") for _ in range(5)]
    assert [r.status for r in got] == [200, 200, 200, 429, 429], caddy.output()
    assert got[0].body == b"app saw GET /api/items?page=2\n"
    assert got[0].headers["ratelimit-policy"] == '"edge";q=3;w=60'
    assert got[2].headers["ratelimit"] == '"edge";r=0;t=60' or \
        got[2].headers["ratelimit"].startswith('"edge";r=0;')
    denied = got[3]
    assert int(denied.headers["retry-after"]) >= 1
    assert denied.headers["ratelimit-policy"] == '"edge";q=3;w=60'
    assert denied.json()["error"]["code"] == "rate_limited"
    # a client's own X-Forwarded-For buys no fresh limit
    spoof = request("GET", caddy.url + "/api/items", headers={"X-Forwarded-For": "9.9.9.9"})
    assert spoof.status == 429
    spoof = request("GET", caddy.url + "/api/items", headers={"Forwarded": "for=9.9.9.9"})
    assert spoof.status == 429
    # nor does naming another request than its own, which ratekit would read first
    spoof = request("GET", caddy.url + "/api/items",
                    headers={"X-Original-URI": "/elsewhere", "X-Original-Method": "OPTIONS"})
    assert spoof.status == 429, spoof.body
    # outside the route, nothing is checked
    assert request("GET", caddy.url + "/elsewhere").status == 200


def test_caddy_hands_a_denylisted_client_ratekits_403_and_a_limited_one_its_429(
        server, app, make_caddy):
    server.create_rule(id="edge", algorithm="fixed_window", limit=1, window="1m",
                       match={"path": "/api/*"}, key=["user", "ip"])
    add_to_denylist(server, "user:mallory")
    caddy = make_caddy(server.data_port, app.port)
    for _ in range(2):
        r = request("GET", caddy.url + "/api/items", headers={"X-User-Id": "mallory"})
        assert_a_denylisted_client_gets_403_forbidden(server, r, caddy.output())
        assert b"app saw" not in r.body
    alice = [request("GET", caddy.url + "/api/items", headers={"X-User-Id": "alice"})
             for _ in range(2)]
    assert alice[0].status == 200 and alice[0].body == b"app saw GET /api/items\n"
    assert_a_limited_client_gets_the_one_error_shape(alice[1], "edge", 1)


def test_caddy_forward_auth_checks_the_original_method(server, app, make_caddy):
    server.create_rule(id="writes", algorithm="fixed_window", limit=1, window="1m",
                       match={"methods": ["POST"], "path": "/api/*"})
    caddy = make_caddy(server.data_port, app.port)
    gets = [request("GET", caddy.url + "/api/x") for _ in range(3)]
    assert [r.status for r in gets] == [200] * 3
    # no rule covered them: no rate-limit headers at all
    assert not any(h.startswith("ratelimit") for h in gets[0].headers)
    assert [request("POST", caddy.url + "/api/x", body=b"{}").status
            for _ in range(2)] == [200, 429]


def test_caddy_fails_open_by_default_and_closed_with_the_switch(app, make_caddy):
    dead = free_port()  # nothing listens there: ratekit is down
    closed = make_caddy(dead, app.port, fail_mode="closed")
    r = request("GET", closed.url + "/api/items")
    assert r.status in (502, 504) and b"app saw" not in r.body
    opened = make_caddy(dead, app.port)
    r = request("GET", opened.url + "/api/items")
    assert r.status == 200 and r.body == b"app saw GET /api/items\n"
    assert "ratelimit" not in r.headers and "ratelimit-policy" not in r.headers


def test_caddy_hands_the_client_ratekits_400_for_a_request_it_refuses(server, app, make_caddy):
    """A path ratekit will not judge (over 2048 bytes) is not a pass, even
    failing open: Caddy gives the client ratekit's own 400."""
    server.create_rule(id="edge", algorithm="fixed_window", limit=100, window="1m",
                       match={"path": "/api/*"})
    caddy = make_caddy(server.data_port, app.port)
    r = request("GET", caddy.url + "/api/" + "a" * 3000)
    assert r.status == 400 and b"app saw" not in r.body, (r, caddy.output())
    assert r.json()["error"]["code"] == "invalid_request"
    assert request("GET", caddy.url + "/api/items").status == 200
