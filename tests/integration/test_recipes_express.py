"""INTEGRATION.md's Express recipe, run for real: examples/express/app.js
(with ratekit.js) under node, against a real ratekitd."""

import os
import shutil
import socket
import subprocess
import time

import pytest

from conftest import free_port, request
from recipes.helpers import (EXAMPLES, PADS, FailingRatekit, Process,
                             assert_a_failed_release_is_logged_and_holds_no_response_up,
                             assert_a_request_another_rule_denies_keeps_no_slot,
                             assert_concurrency_slots_come_back_when_requests_end,
                             assert_config_errors_are_logged_and_follow_the_switch,
                             assert_denylisted_clients_get_403,
                             assert_limited_clients_get_the_one_error_shape,
                             assert_limits_a_client_sending_many_headers,
                             assert_refused_requests_get_400)

EXPRESS = os.path.join(EXAMPLES, "express")

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


def installed():
    """npm ci, unless node_modules already matches package-lock.json."""
    lock = os.path.join(EXPRESS, "package-lock.json")
    stamp = os.path.join(EXPRESS, "node_modules", ".package-lock.json")
    if os.path.exists(stamp) and os.path.getmtime(stamp) >= os.path.getmtime(lock):
        return True
    if shutil.which("npm") is None:
        return False
    r = subprocess.run(["npm", "ci", "--prefix", EXPRESS, "--no-audit", "--no-fund"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return True


@pytest.fixture
def make_express(workdir):
    if not installed():
        pytest.skip("npm is not installed")
    started = []

    def make(ratekit_url, **env):
        port = free_port()
        # a loaded test machine is slower than ratekit's 200 ms default: tests
        # of the timeout itself set their own
        full = {"PORT": str(port), "HOST": "127.0.0.1", "RATEKIT_URL": ratekit_url,
                "RATEKIT_TIMEOUT_MS": "2000"}
        full.update(env)
        p = Process(["node", "app.js"], port, env=full, cwd=EXPRESS,
                    log_path=os.path.join(workdir, f"express-{port}.log"))
        started.append(p)
        return p

    yield make
    for p in started:
        p.stop()


def test_express_copies_headers_and_answers_429_json_with_retry_after(server, make_express):
    server.create_rule(id="app", algorithm="fixed_window", limit=3, window="1m",
                       match={"path": "/api/*"})
    app = make_express(server.data)
    got = [request("GET", app.url + "/api/items?page=1") for _ in range(5)]
    assert [r.status for r in got] == [200, 200, 200, 429, 429], app.output()
    assert got[0].json() == {"items": ["a", "b"]}
    assert got[0].headers["ratelimit-policy"] == '"app";q=3;w=60'
    assert got[0].headers["ratelimit"].startswith('"app";r=2;')
    assert "retry-after" not in got[0].headers
    denied = got[3]
    assert denied.headers["content-type"].startswith("application/json")
    assert int(denied.headers["retry-after"]) >= 1
    err = denied.json()["error"]
    assert err["code"] == "rate_limited" and err["rule"] == "app" and err["retry_after_ms"] > 0
    # keyed by the client's API key, which the middleware passes on
    server.create_rule(id="keyed", algorithm="fixed_window", limit=1, window="1m",
                       key=["api_key"], match={"path": "/keyed"})
    k1 = [request("GET", app.url + "/keyed", headers={"X-API-Key": "k1"}).status
          for _ in range(2)]
    assert k1 == [404, 429]
    assert request("GET", app.url + "/keyed", headers={"X-API-Key": "k2"}).status == 404


def test_express_refuses_a_denylisted_client_with_403(server, make_express):
    assert_denylisted_clients_get_403(server, make_express(server.data))


def test_express_answers_429_with_every_member_of_the_one_error_shape(server, make_express):
    assert_limited_clients_get_the_one_error_shape(server, make_express(server.data))


@pytest.fixture
def silent_ratekit():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    yield f"http://127.0.0.1:{s.getsockname()[1]}"
    s.close()


def test_express_fails_open_by_default_and_closed_with_the_switch(silent_ratekit, make_express):
    opened = make_express(silent_ratekit, RATEKIT_TIMEOUT_MS="300")
    closed = make_express(silent_ratekit, RATEKIT_TIMEOUT_MS="300", RATEKIT_FAIL_OPEN="0")
    start = time.monotonic()
    r = request("GET", opened.url + "/api/items")
    assert r.status == 200 and r.json() == {"items": ["a", "b"]}
    r = request("GET", closed.url + "/api/items")
    assert r.status == 503 and r.headers["retry-after"] == "1"
    assert r.json()["error"]["code"] == "unavailable"
    assert time.monotonic() - start < 3.0


def test_express_still_limits_a_client_sending_many_headers(server, make_express):
    assert_limits_a_client_sending_many_headers(server, make_express(server.data))


def test_express_answers_400_to_a_request_ratekit_refuses_to_judge(server, make_express):
    assert_refused_requests_get_400(server, make_express(server.data))


def test_express_fail_switch_decides_when_ratekit_is_down_or_fails(make_express):
    failing = FailingRatekit(500)
    try:
        for url in (failing.url, f"http://127.0.0.1:{free_port()}"):
            opened = make_express(url)
            closed = make_express(url, RATEKIT_FAIL_OPEN="0")
            r = request("GET", opened.url + "/api/items", headers=PADS)
            assert r.status == 200 and r.json() == {"items": ["a", "b"]}, (url, r)
            r = request("GET", closed.url + "/api/items")
            assert r.status == 503 and r.headers["retry-after"] == "1", (url, r)
            assert r.json()["error"]["code"] == "unavailable"
    finally:
        failing.stop()


def test_express_logs_a_wrong_check_token_and_lets_the_switch_decide(make_server, make_express):
    assert_config_errors_are_logged_and_follow_the_switch(make_server, make_express)


def test_express_gives_a_concurrency_slot_back_when_its_request_ends(server, make_express):
    assert_concurrency_slots_come_back_when_requests_end(server, make_express(server.data))


def test_express_gives_a_slot_back_at_once_when_another_rule_denies(server, make_express):
    assert_a_request_another_rule_denies_keeps_no_slot(server, make_express(server.data))


def test_express_logs_a_failed_release_and_answers_without_waiting_for_it(server, make_express):
    app = make_express(server.data, RATEKIT_TIMEOUT_MS="1500")
    assert_a_failed_release_is_logged_and_holds_no_response_up(server, app)
