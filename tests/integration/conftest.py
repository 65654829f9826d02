"""Black-box fixtures: real ratekitd and redis-server processes on free
loopback ports, started by the tests and stopped by PID."""

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.join(ROOT, os.environ.get("RATEKIT_BIN", "build/ratekitd"))
ADMIN_TOKEN = "test-admin-token-0123456789"


_HANDED_OUT = set()


def free_port():
    """A free loopback port, never one handed out before in this session: a
    port is only taken when its server binds it, and two servers given the
    same one would race for it."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def wait_for_port(port, proc=None, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listening on {port}")


def connections_per_epoll(pid, port):
    """How many of the connections to port each epoll instance of pid
    watches: libmicrohttpd registers a connection in the epoll of the
    daemon that accepted it, one daemon per thread."""
    inodes = set()
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(path) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                    inodes.add(fields[9])  # an established socket on the server's side
    counts = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:[eventpoll]":
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                watched = [line.split()[1] for line in f if line.startswith("tfd:")]
        except OSError:
            continue
        n = 0
        for tfd in watched:
            try:
                n += os.readlink(f"/proc/{pid}/fd/{tfd}")[8:-1] in inodes
            except OSError:
                pass
        if n:
            counts.append(n)
    return sorted(counts)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-case names
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Response {self.status} {self.body[:300]!r}>"


def request(method, url, json_body=None, headers=None, body=None, timeout=10):
    """One HTTP request on a fresh connection; never raises on 4xx/5xx."""
    assert url.startswith("http://")
    hostport, _, path = url[len("http://"):].partition("/")
    host, _, port = hostport.partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    hdrs = dict(headers or {})
    if json_body is not None:
        body = json.dumps(json_body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    try:
        conn.request(method, "/" + path, body=body, headers=hdrs)
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()


class Ratekitd:
    """A running ratekitd. data/admin are base URLs ("http://127.0.0.1:P")."""

    def __init__(self, workdir, env=None, db_path=None, args=()):
        self.workdir = workdir
        self.data_port = free_port()
        self.admin_port = free_port()
        self.data = f"http://127.0.0.1:{self.data_port}"
        self.admin_url = f"http://127.0.0.1:{self.admin_port}"
        self.token = ADMIN_TOKEN
        self.db_path = db_path or os.path.join(workdir, "ratekit.db")
        self.env = dict(os.environ)
        self.env.update({
            "RATEKIT_LISTEN": f"127.0.0.1:{self.data_port}",
            "RATEKIT_ADMIN_LISTEN": f"127.0.0.1:{self.admin_port}",
            "RATEKIT_DB": self.db_path,
            "RATEKIT_ADMIN_TOKEN": ADMIN_TOKEN,
            "RATEKIT_LOG_LEVEL": "warn",
            "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=66",
        })
        self.env.update(env or {})
        self.args = list(args)
        self.log_path = os.path.join(workdir, f"ratekitd-{self.data_port}.log")
        self.proc = None

    def start(self, wait=True):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([BIN, *self.args], env=self.env, cwd=self.workdir,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        if wait:
            wait_for_port(self.data_port, self.proc)
            wait_for_port(self.admin_port, self.proc)
        return self

    def output(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Stops the process; returns its exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.log.close()
        return rc

    # --- HTTP helpers -------------------------------------------------------
    def check(self, rule, key, cost=None, **kw):
        body = {"rule": rule, "key": key}
        if cost is not None:
            body["cost"] = cost
        return request("POST", self.data + "/v1/check", body, **kw)

    def admin(self, method, path, json_body=None, token=None, **kw):
        headers = dict(kw.pop("headers", {}) or {})
        headers["Authorization"] = "Bearer " + (token or self.token)
        r = request(method, self.admin_url + path, json_body, headers=headers, **kw)
        if method in ("POST", "PUT") and path.startswith("/api/v1/rules") and \
                r.status in (200, 201) and r.body[:1] == b"{":
            clear_of_window_edge(r.json())  # the rule as stored: its window_ms
        return r

    def create_rule(self, **fields):
        r = self.admin("POST", "/api/v1/rules", fields)
        assert r.status == 201, r
        return r.json()


EDGE_MARGIN_S = 3.0


def clear_of_window_edge(rule):
    """A fixed window turns over on the clock (floor(now/window)*window): a
    test whose few checks straddle that edge would see a fresh count. For a
    fixed window of a minute to an hour, waits until at least EDGE_MARGIN_S
    are left in the current window. (Shorter windows are chosen by tests
    that wait for them on purpose.)"""
    if not isinstance(rule, dict) or rule.get("algorithm") != "fixed_window":
        return
    window_ms = rule.get("window_ms")
    if not isinstance(window_ms, int) or not 60000 <= window_ms <= 3600000:
        return
    left_s = (window_ms - time.time() * 1000 % window_ms) / 1000
    if left_s < EDGE_MARGIN_S:
        time.sleep(left_s + 0.05)


class RedisServer:
    """A redis-server on loopback; port and dir given: one started again
    where an earlier one ran, with what it persisted there."""

    def __init__(self, workdir, args=(), port=None, dir=None):
        self.port = port or free_port()
        self.dir = dir or tempfile.mkdtemp(dir=workdir, prefix="redis-")
        self.url = f"redis://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--loglevel", "warning", *args],
            stdout=subprocess.DEVNULL)
        wait_for_port(self.port, self.proc)

    def cli(self, *args):
        out = subprocess.run(["redis-cli", "-p", str(self.port), *args], check=True,
                             capture_output=True, text=True)
        return out.stdout.strip()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def workdir():
    d = tempfile.mkdtemp(prefix="ratekit-test-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def make_server(workdir):
    """Factory: make_server(env={...}) starts another ratekitd. All are
    stopped at the end of the test, and each must exit 0 (a sanitizer report
    or a crash fails the test)."""
    started = []

    def make(env=None, db_path=None, args=(), start=True):
        s = Ratekitd(workdir, env=env, db_path=db_path, args=args)
        started.append(s)
        return s.start() if start else s

    yield make
    for s in started:
        if s.proc is None:
            continue
        was_running = s.proc.poll() is None
        rc = s.stop()
        if was_running:
            assert rc == 0, f"ratekitd exited {rc}:\n{s.output()[-4000:]}"


@pytest.fixture
def server(make_server):
    return make_server()


@pytest.fixture
def make_redis(workdir):
    started = []

    def make(args=(), port=None, dir=None):
        r = RedisServer(workdir, args, port=port, dir=dir)
        started.append(r)
        return r

    yield make
    for r in started:
        r.stop()


@pytest.fixture
def redis(make_redis):
    return make_redis()
