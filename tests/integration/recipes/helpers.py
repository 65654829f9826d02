"""Helpers of the recipe suites: a stand-in application to protect, and
gateway or framework processes started on free loopback ports and stopped
by PID."""

import calendar
import http.server
import os
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from conftest import request, wait_for_port

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
EXAMPLES = os.path.join(ROOT, "examples")
PYTHON = "/usr/bin/python3"


class _App(http.server.BaseHTTPRequestHandler):
    def _answer(self):
        body = f"app saw {self.command} {self.path}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_HEAD = _answer

    def log_message(self, *args):
        pass


class StandInApp:
    """The application behind a gateway: answers 200 "app saw GET /path"."""

    def __init__(self):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _App)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class _Failing(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = b'{"error":{"code":"unavailable","message":"failing on purpose"}}'
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class FailingRatekit:
    """A stand-in for a ratekit that answers every request with one status."""

    def __init__(self, status):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
        self.httpd.status = status
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Process:
    """A gateway or application process listening on port."""

    def __init__(self, argv, port, env=None, cwd=None, log_path=None, timeout=15.0):
        self.log_path = log_path
        self.log = open(log_path, "ab") if log_path else subprocess.DEVNULL
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = subprocess.Popen(argv, env=full_env, cwd=cwd, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        try:
            wait_for_port(port, self.proc, timeout=timeout)
        except RuntimeError as e:
            self.stop()
            raise RuntimeError(f"{argv[0]} did not start: {e}\n{self.output()}") from e

    def output(self):
        if not self.log_path:
            return ""
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")[-4000:]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log is not subprocess.DEVNULL:
            self.log.close()


# More headers than ratekit reads (64), fewer than http.server's 100 (Django, Flask).
PADS = {f"X-Pad-{i}": "x" for i in range(70)}


def assert_limits_a_client_sending_many_headers(server, app):
    """A middleware in front of ratekit still limits a client that pads its
    requests past the headers ratekit reads (app: a started recipe app)."""
    server.create_rule(id="app", algorithm="fixed_window", limit=2, window="1m",
                       match={"path": "/api/*"})
    got = [request("GET", app.url + "/api/items", headers=PADS).status for _ in range(3)]
    got.append(request("GET", app.url + "/api/items").status)
    assert got == [200, 200, 429, 429], app.output()


def assert_refused_requests_get_400(server, app):
    """A request ratekit refuses to judge gets 400 from the middleware, never
    the fail-open pass."""
    server.create_rule(id="app", algorithm="fixed_window", limit=100, window="1m",
                       match={"path": "/api/*"})
    for path in ("/api/" + "a" * 3000, "/api/items%00"):
        for _ in range(2):
            r = request("GET", app.url + path)
            assert r.status == 400, (path[:20], r, app.output())
            assert r.headers["content-type"].startswith("application/json")
            err = r.json()["error"]
            assert err["code"] == "invalid_request" and err["message"], err
    assert request("GET", app.url + "/api/items").status == 200


def assert_config_errors_are_logged_and_follow_the_switch(make_server, make_app):
    """A wrong check token (401) or URL (404) is the operator's error: the
    middleware logs it and RATEKIT_FAIL_OPEN decides (make_app(url, **env)
    starts a recipe app)."""
    s = make_server(env={"RATEKIT_CHECK_TOKEN": "right-check-token-0123"})
    s.create_rule(id="app", algorithm="fixed_window", limit=1, window="1m",
                  match={"path": "/api/*"})
    wrong = make_app(s.data, RATEKIT_CHECK_TOKEN="wrong-check-token-0123")
    assert [request("GET", wrong.url + "/api/items").status for _ in range(2)] == [200, 200]
    assert "ratekit answered 401" in wrong.output() and "RATEKIT_CHECK_TOKEN" in wrong.output()
    closed = make_app(s.data, RATEKIT_CHECK_TOKEN="wrong-check-token-0123",
                      RATEKIT_FAIL_OPEN="0")
    assert request("GET", closed.url + "/api/items").status == 503
    lost = make_app(s.data + "/nowhere", RATEKIT_CHECK_TOKEN="right-check-token-0123")
    assert request("GET", lost.url + "/api/items").status == 200
    assert "ratekit answered 404" in lost.output()
    right = make_app(s.data, RATEKIT_CHECK_TOKEN="right-check-token-0123")
    assert [request("GET", right.url + "/api/items").status for _ in range(2)] == [200, 429]


def add_to_denylist(server, value):
    r = server.admin("POST", "/api/v1/lists", {"list": "denylist", "value": value})
    assert r.status == 201, r


def assert_a_denylisted_client_gets_403_forbidden(server, r, output=""):
    """r, a denylisted client's answer through a recipe: 403 and ratekit's
    own forward-auth answer to that client, without Retry-After."""
    assert r.status == 403, (r, output)
    assert r.headers["content-type"].startswith("application/json")
    assert "retry-after" not in r.headers, r.headers
    own = request("GET", server.data + "/v1/auth",
                  headers={"X-Original-URI": "/api/items", "X-User-Id": "mallory"})
    assert own.status == 403 and own.json()["error"]["code"] == "forbidden", own
    assert r.json() == own.json()


def assert_a_limited_client_gets_the_one_error_shape(r, rule, limit, fields=None):
    """r, a limited client's answer through a recipe: 429, Retry-After and
    the error body of DESIGN §4, its reset_at the instant of X-RateLimit-Reset
    (fields: the members a recipe that cannot know them all sends)."""
    assert r.status == 429, r
    assert r.headers["content-type"].startswith("application/json")
    retry_after = int(r.headers["retry-after"])
    assert retry_after >= 1
    err = r.json()["error"]
    every = {"code", "message", "rule", "limit", "remaining", "reset_at", "retry_after_ms"}
    assert set(err) == (fields or every), err
    assert err["code"] == "rate_limited" and err["rule"] == rule, err
    assert err["message"] == f"Rate limit exceeded for rule '{rule}'", err
    assert err["limit"] == limit and err["remaining"] == 0, err
    if "reset_at" in err:
        reset = calendar.timegm(time.strptime(err["reset_at"], "%Y-%m-%dT%H:%M:%SZ"))
        assert reset == int(r.headers["x-ratelimit-reset"]), (err, r.headers)
    if "retry_after_ms" in err:
        assert 0 < err["retry_after_ms"] <= retry_after * 1000, (err, r.headers)


def assert_denylisted_clients_get_403(server, app):
    """Through a middleware (app: a started recipe app), a denylisted client
    is refused with 403 forbidden; another one passes."""
    server.create_rule(id="app", algorithm="fixed_window", limit=5, window="1m",
                       match={"path": "/api/*"}, key=["user", "ip"])
    add_to_denylist(server, "user:mallory")
    for _ in range(2):
        r = request("GET", app.url + "/api/items", headers={"X-User-Id": "mallory"})
        assert_a_denylisted_client_gets_403_forbidden(server, r, app.output())
    r = request("GET", app.url + "/api/items", headers={"X-User-Id": "alice"})
    assert r.status == 200, (r, app.output())


def assert_limited_clients_get_the_one_error_shape(server, app):
    """Through a middleware (app: a started recipe app), a limited client
    gets 429 and every member of the one error shape."""
    server.create_rule(id="app", algorithm="fixed_window", limit=1, window="1m",
                       match={"path": "/api/*"})
    got = [request("GET", app.url + "/api/items") for _ in range(2)]
    assert got[0].status == 200, (got[0], app.output())
    assert_a_limited_client_gets_the_one_error_shape(got[1], "app", 1)


# Each recipe app's POST /api/export takes half a second: the kind of work a
# concurrency rule keeps few of in flight. The rules' windows are an hour,
# so that no slot comes back by its lease expiring during a test.
EXPORTS = {"id": "exports", "algorithm": "concurrency", "limit": 2, "window": "1h",
           "match": {"path": "/api/export"}, "key": ["ip"]}


def exports_in_flight(server):
    c = server.admin("GET", "/api/v1/counters?rule=exports&key=ip:127.0.0.1").json()
    return c["limit"] - c["remaining"]


def wait_until(predicate, timeout=3.0):
    """Polls predicate until it holds or timeout seconds pass; says which."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def assert_two_exports_in_flight_and_a_third_refused(server, app):
    """Two exports held in flight at once (ratekit counts both), then a third
    refused by the concurrency rule; the two end with 200."""
    with ThreadPoolExecutor(2) as pool:
        first = [pool.submit(request, "POST", app.url + "/api/export") for _ in range(2)]
        assert wait_until(lambda: exports_in_flight(server) == 2), app.output()
        third = request("POST", app.url + "/api/export")
        assert third.status == 429 and third.json()["error"]["rule"] == "exports", third
        assert [f.result().status for f in first] == [200, 200], app.output()


def assert_concurrency_slots_come_back_when_requests_end(server, app):
    """A concurrency rule through a middleware limits the requests in flight:
    each slot comes back when its request ends, or its client leaves."""
    server.create_rule(**EXPORTS)
    assert_two_exports_in_flight_and_a_third_refused(server, app)
    # a client that leaves before its export is done
    assert wait_until(lambda: exports_in_flight(server) == 0), app.output()
    with socket.create_connection(("127.0.0.1", app.port)) as s:
        s.sendall(b"POST /api/export HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n")
        assert wait_until(lambda: exports_in_flight(server) > 0), app.output()
    assert wait_until(lambda: exports_in_flight(server) == 0), app.output()
    # every slot is back: two exports pass again, and still no more than two
    # (held at once, as a loaded machine may not start three at the same instant)
    assert_two_exports_in_flight_and_a_third_refused(server, app)


def assert_a_request_another_rule_denies_keeps_no_slot(server, app):
    """A request one rule denies while the concurrency rule let it in gives
    its slot back at once."""
    server.create_rule(**EXPORTS)
    server.create_rule(id="per-key", algorithm="fixed_window", limit=1, window="1h",
                       match={"path": "/api/*"}, key=["api_key"])
    k1 = {"X-API-Key": "k1"}
    assert request("GET", app.url + "/api/items", headers=k1).status == 200  # k1's one
    denied = [request("POST", app.url + "/api/export", headers=k1) for _ in range(3)]
    assert [r.status for r in denied] == [429] * 3
    assert denied[0].json()["error"]["rule"] == "per-key"
    wait_until(lambda: exports_in_flight(server) == 0)
    with ThreadPoolExecutor(2) as pool:
        got = [pool.submit(request, "POST", app.url + "/api/export", headers={"X-API-Key": k})
               for k in ("k2", "k3")]
        assert [f.result().status for f in got] == [200, 200], app.output()


def assert_a_failed_release_is_logged_and_holds_no_response_up(server, app):
    """ratekit hanging when a request ends: the client has its answer at once,
    and the application's log says the slot could not be given back (app:
    started with RATEKIT_TIMEOUT_MS=1500)."""
    server.create_rule(**EXPORTS)
    with ThreadPoolExecutor(1) as pool:
        start = time.monotonic()
        export = pool.submit(request, "POST", app.url + "/api/export")
        assert wait_until(lambda: exports_in_flight(server) == 1), app.output()
        server.proc.send_signal(signal.SIGSTOP)
        try:
            assert export.result().status == 200
            assert time.monotonic() - start < 1.5  # 0.5 s of work, not 1.5 s more
            assert wait_until(lambda: "could not release" in app.output(), 5.0), app.output()
        finally:
            server.proc.send_signal(signal.SIGCONT)
