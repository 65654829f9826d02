"""Helpers of the recipe suites: a stand-in application to protect, and
gateway or framework processes started on free loopback ports and stopped
by PID."""

import http.server
import os
import signal
import subprocess
import threading

from conftest import wait_for_port

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
