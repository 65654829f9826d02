"""INTEGRATION.md's Python recipes, each run for real: the FastAPI
middleware under uvicorn, the Django middleware under runserver, the Flask
hooks under werkzeug, and the chat-bot throttle, all with
examples/python/ratekit_client.py, against a real ratekitd."""

import importlib
import logging
import os
import socket
import sys
import time

import pytest

from conftest import free_port, request
from recipes.helpers import (EXAMPLES, PADS, PYTHON, FailingRatekit, Process,
                             assert_a_failed_release_is_logged_and_holds_no_response_up,
                             assert_a_request_another_rule_denies_keeps_no_slot,
                             assert_concurrency_slots_come_back_when_requests_end,
                             assert_config_errors_are_logged_and_follow_the_switch,
                             assert_denylisted_clients_get_403,
                             assert_limited_clients_get_the_one_error_shape,
                             assert_limits_a_client_sending_many_headers,
                             assert_refused_requests_get_400, add_to_denylist)

CLIENT_DIR = os.path.join(EXAMPLES, "python")


def run_fastapi(port):
    return ["-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "warning"], os.path.join(EXAMPLES, "fastapi"), {}


def run_django(port):
    return (["-m", "django", "runserver", "--noreload", f"127.0.0.1:{port}"],
            os.path.join(EXAMPLES, "django"), {"DJANGO_SETTINGS_MODULE": "demo.settings"})


def run_flask(port):
    return (["-m", "flask", "--app", "app", "run", "--host", "127.0.0.1", "--port", str(port)],
            os.path.join(EXAMPLES, "flask"), {})


FRAMEWORKS = {"fastapi": run_fastapi, "django": run_django, "flask": run_flask}


def has_module(name):
    return importlib.util.find_spec(name) is not None


@pytest.fixture(params=list(FRAMEWORKS))
def make_app(request, workdir):
    name = request.param
    module = {"fastapi": "uvicorn"}.get(name, name)
    if not has_module(module) or not has_module(name):
        pytest.skip(f"{name} is not installed")
    started = []

    def make(ratekit_url, **env):
        port = free_port()
        args, cwd, extra = FRAMEWORKS[name](port)
        # a loaded test machine is slower than ratekit's 200 ms default: tests
        # of the timeout itself set their own
        full = {"PYTHONPATH": os.pathsep.join([cwd, CLIENT_DIR]), "RATEKIT_URL": ratekit_url,
                "PYTHONDONTWRITEBYTECODE": "1", "RATEKIT_TIMEOUT_MS": "2000"}
        full.update(extra)
        full.update(env)
        p = Process([PYTHON, *args], port, env=full, cwd=cwd,
                    log_path=os.path.join(workdir, f"{name}-{port}.log"))
        started.append(p)
        return p

    yield make
    for p in started:
        p.stop()


@pytest.fixture
def silent_ratekit():
    """An address that accepts connections and never answers."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    yield f"http://127.0.0.1:{s.getsockname()[1]}"
    s.close()


def test_middleware_copies_headers_and_answers_429_json_with_retry_after(server, make_app):
    server.create_rule(id="app", algorithm="fixed_window", limit=3, window="1m",
                       match={"path": "/api/*"})
    app = make_app(server.data)
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
    # the application's own 404 is still counted and still carries the headers
    other = make_app(server.data)
    server.create_rule(id="keyed", algorithm="fixed_window", limit=1, window="1m",
                       key=["api_key"], match={"path": "/keyed"})
    k1 = [request("GET", other.url + "/keyed", headers={"X-API-Key": "k1"}) for _ in range(2)]
    k2 = request("GET", other.url + "/keyed", headers={"X-API-Key": "k2"})
    assert [r.status for r in k1] == [404, 429] and k2.status == 404
    assert k1[0].headers["ratelimit-policy"] == '"keyed";q=1;w=60'


def test_middleware_refuses_a_denylisted_client_with_403(server, make_app):
    assert_denylisted_clients_get_403(server, make_app(server.data))


def test_middleware_answers_429_with_every_member_of_the_one_error_shape(server, make_app):
    assert_limited_clients_get_the_one_error_shape(server, make_app(server.data))


def test_middleware_fails_open_by_default_within_the_timeout(silent_ratekit, make_app):
    app = make_app(silent_ratekit, RATEKIT_TIMEOUT_MS="300")
    start = time.monotonic()
    r = request("GET", app.url + "/api/items")
    assert r.status == 200 and r.json() == {"items": ["a", "b"]}
    assert time.monotonic() - start < 2.0


def test_middleware_fails_closed_with_503_when_switched(silent_ratekit, make_app):
    app = make_app(silent_ratekit, RATEKIT_TIMEOUT_MS="300", RATEKIT_FAIL_OPEN="0")
    start = time.monotonic()
    r = request("GET", app.url + "/api/items")
    assert time.monotonic() - start < 2.0
    assert r.status == 503 and r.headers["retry-after"] == "1"
    assert r.json()["error"]["code"] == "unavailable"


def test_middleware_still_limits_a_client_sending_many_headers(server, make_app):
    assert_limits_a_client_sending_many_headers(server, make_app(server.data))


def test_middleware_answers_400_to_a_request_ratekit_refuses_to_judge(server, make_app):
    assert_refused_requests_get_400(server, make_app(server.data))


@pytest.mark.parametrize("down", ["refused", "500"])
def test_middleware_fail_switch_decides_when_ratekit_is_down_or_fails(down, make_app):
    failing = FailingRatekit(500) if down == "500" else None
    url = failing.url if failing else f"http://127.0.0.1:{free_port()}"
    try:
        opened = make_app(url)
        closed = make_app(url, RATEKIT_FAIL_OPEN="0")
        r = request("GET", opened.url + "/api/items", headers=PADS)
        assert r.status == 200 and r.json() == {"items": ["a", "b"]}
        r = request("GET", closed.url + "/api/items")
        assert r.status == 503 and r.headers["retry-after"] == "1"
        assert r.json()["error"]["code"] == "unavailable"
    finally:
        if failing:
            failing.stop()


def test_middleware_logs_a_wrong_check_token_and_lets_the_switch_decide(make_server, make_app):
    assert_config_errors_are_logged_and_follow_the_switch(make_server, make_app)


def test_middleware_gives_a_concurrency_slot_back_when_its_request_ends(server, make_app):
    assert_concurrency_slots_come_back_when_requests_end(server, make_app(server.data))


def test_middleware_gives_a_slot_back_at_once_when_another_rule_denies(server, make_app):
    assert_a_request_another_rule_denies_keeps_no_slot(server, make_app(server.data))


def test_middleware_logs_a_failed_release_and_answers_without_waiting_for_it(server, make_app):
    app = make_app(server.data, RATEKIT_TIMEOUT_MS="1500")
    assert_a_failed_release_is_logged_and_holds_no_response_up(server, app)


@pytest.fixture
def throttle(server, monkeypatch):
    monkeypatch.syspath_prepend(CLIENT_DIR)
    monkeypatch.syspath_prepend(os.path.join(EXAMPLES, "telegram"))
    for name in ("ratekit_client", "throttle"):
        sys.modules.pop(name, None)
    mod = importlib.import_module("throttle")
    monkeypatch.setattr(mod.ratekit_client, "RATEKIT_URL", server.data)
    monkeypatch.setattr(mod.ratekit_client, "TIMEOUT_S", 2.0)  # a loaded test machine
    yield mod
    for name in ("ratekit_client", "throttle"):
        sys.modules.pop(name, None)


def test_bot_throttle_limits_each_user_on_their_own(server, throttle):
    server.create_rule(id="bot-per-user", algorithm="token_bucket", limit=3, window="1m",
                       match={"hosts": ["direct.invalid"]})
    updates = [{"from": {"id": 42}, "text": f"m{i}"} for i in range(5)]
    updates.insert(2, {"from": {"id": 7}, "text": "hello"})
    replies = throttle.simulate(updates)
    assert [r for u, r in replies if u == 7] == ["You said: hello"]
    mine = [r for u, r in replies if u == 42]
    assert mine[:3] == ["You said: m0", "You said: m1", "You said: m2"]
    assert all(r.startswith("Slow down: try again in ") for r in mine[3:]) and len(mine) == 5
    assert throttle.allow(42)[0] is False and throttle.allow(42)[1] >= 1
    assert throttle.allow(8)[0] is True
    # the rule is for the bot alone: a request through a middleware or forward-auth is not counted
    r = request("POST", server.data + "/v1/check",
                {"request": {"method": "GET", "path": "/api/items", "ip": "192.0.2.9"}})
    assert r.json() == {"allowed": True, "results": []}, r.json()


def test_bot_throttle_refuses_a_denylisted_user_without_a_wait(server, throttle):
    server.create_rule(id="bot-per-user", algorithm="token_bucket", limit=3, window="1m",
                       match={"hosts": ["direct.invalid"]})
    add_to_denylist(server, "666")
    replies = throttle.simulate([{"from": {"id": 666}, "text": "spam"},
                                 {"from": {"id": 42}, "text": "hi"}])
    assert replies == [(666, "Sorry, this bot does not answer you."), (42, "You said: hi")]
    assert throttle.allow(666) == (False, None)
    d = throttle.ratekit_client.check_key("bot-per-user", "666")
    assert not d.allowed and d.status == 403 and d.headers == {}, (d.status, d.body)
    assert d.body == {"error": {"code": "forbidden", "message": "This client is on the denylist"}}


def test_direct_check_of_an_unknown_rule_is_logged_and_the_switch_decides(server, throttle,
                                                                         monkeypatch, caplog):
    client = throttle.ratekit_client
    with caplog.at_level(logging.ERROR, logger="ratekit"):
        d = client.check_key("no-such-rule", "42")
    assert d.allowed and d.status == 200
    assert "404 unknown_rule" in caplog.text
    monkeypatch.setattr(client, "FAIL_OPEN", False)
    d = client.check_key("no-such-rule", "42")
    assert not d.allowed and d.status == 503 and d.body["error"]["code"] == "unavailable"


def test_direct_check_of_a_key_ratekit_refuses_is_not_a_pass(server, throttle):
    server.create_rule(id="bot-per-user", algorithm="token_bucket", limit=3, window="1m",
                       match={"hosts": ["direct.invalid"]})
    client = throttle.ratekit_client
    for key in ("", "a\x00b"):
        d = client.check_key("bot-per-user", key)
        assert not d.allowed and d.status == 400, (key, d.body)
        assert d.body["error"]["code"] == "invalid_request"
