"""Helpers of the recipe suites: a stand-in application to protect, and
gateway or framework processes started on free loopback ports and stopped
by PID."""

import http.server
import os
import signal
import subprocess
import threading

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
