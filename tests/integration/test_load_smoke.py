"""build/ratekit-load keeps working: a short closed-loop and open-loop run
against a real ratekitd, and its exactness mode against two ratekitd
instances sharing one real redis-server. Small stub servers stand in for
a server that answers wrongly, late or never."""

import json
import os
import socket
import subprocess
import threading
import time

import pytest

from conftest import ROOT

LOAD = os.path.join(ROOT, "build", "ratekit-load")


@pytest.fixture(scope="module")
def load_bin():
    subprocess.run(["make", "-s", "-C", ROOT, "build/ratekit-load"], check=True)
    return LOAD


def run_load(load_bin, workdir, *args):
    out = os.path.join(workdir, "load.json")
    if os.path.exists(out):
        os.remove(out)
    p = subprocess.run([load_bin, "--quiet", "--json", out, *args], capture_output=True,
                       text=True, timeout=60)
    result = json.load(open(out)) if os.path.exists(out) else None
    return p, result


def answer(body, status="200 OK", headers=b""):
    """An HTTP/1.1 answer with a Content-Length; JSON written compact, as ratekitd does."""
    body = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
    return (b"HTTP/1.1 %s\r\nContent-Length: %d\r\n%s\r\n" % (status.encode(), len(body),
                                                              headers)) + body


class Stub:
    """An HTTP server on a free loopback port, a thread per connection.
    Request n (from 1, over every connection) gets reply(n, request), bytes
    written as they are; None leaves it unanswered, b"" closes the
    connection. An answer with "Connection: close", or of HTTP/1.0, is
    followed by the close."""

    def __init__(self, reply):
        self.reply = reply
        self.count = 0
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _request(self, conn, buf):
        """One request (head and body) from conn; (request, rest) or None at the end."""
        while b"\r\n\r\n" not in buf:
            data = conn.recv(65536)
            if not data:
                return None
            buf += data
        head, _, rest = buf.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            data = conn.recv(65536)
            if not data:
                return None
            rest += data
        return head + b"\r\n\r\n" + rest[:length], rest[length:]

    def _serve(self, conn):
        buf = b""
        with conn:
            try:
                while (got := self._request(conn, buf)) is not None:
                    request, buf = got
                    with self.lock:
                        self.count += 1
                        n = self.count
                    out = self.reply(n, request)
                    if out is None:
                        continue
                    if out == b"":
                        return
                    conn.sendall(out)
                    head = out.split(b"\r\n\r\n")[0].lower()
                    if head.startswith(b"http/1.0") or b"connection: close" in head:
                        return
            except OSError:
                return

    def close(self):
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


@pytest.fixture
def stub():
    """Factory: stub(reply) starts a Stub; all are closed after the test."""
    started = []

    def make(reply):
        started.append(Stub(reply))
        return started[-1]

    yield make
    for s in started:
        s.close()


def test_closed_loop_counts_every_answer_as_allowed(load_bin, server, workdir):
    server.create_rule(id="smoke", algorithm="fixed_window", limit=1000000, window="1h")
    p, r = run_load(load_bin, workdir, "--url", server.data, "--rule", "smoke",
                    "--connections", "8", "--duration", "1", "--warmup", "0.2")
    assert p.returncode == 0, p.stderr
    assert r["requests"] > 50
    assert r["status"]["2xx"] == r["requests"] and r["errors"] == 0
    assert r["allowed"] == r["requests"] and r["denied"] == 0
    assert 0 < r["latency_us"]["p50"] <= r["latency_us"]["p99"] <= r["latency_us"]["max"]
    assert "throughput" in p.stdout and "p99" in p.stdout


def test_cpu_of_reports_the_servers_cpu_per_answer_and_only_its(load_bin, server, workdir):
    """--cpu-of and --store-cpu-of each report their own processes' CPU per
    answer: the server's, given as either, and none of an idle process's."""
    server.create_rule(id="smoke-cpu", algorithm="token_bucket", limit=1000000, window="1h")
    idle = subprocess.Popen(["sleep", "30"])
    try:
        runs = {}
        for name, pid, other in (("server", server.proc.pid, idle.pid),
                                 ("idle", idle.pid, server.proc.pid)):
            p, runs[name] = run_load(load_bin, workdir, "--url", server.data, "--rule",
                                     "smoke-cpu", "--connections", "8", "--duration", "1",
                                     "--warmup", "0.2", "--cpu-of", str(pid),
                                     "--store-cpu-of", str(other))
            assert p.returncode == 0, p.stderr
            assert "server cpu" in p.stdout and "store cpu" in p.stdout
    finally:
        idle.kill()
        idle.wait()
    # the sanitizer build answers in tens of microseconds of CPU each; a
    # process that did nothing used none of its time on them
    assert 1 < runs["server"]["server_cpu_us_per_answer"] < 5000, runs["server"]
    assert runs["server"]["store_cpu_s"] < 0.05, runs["server"]
    assert runs["idle"]["server_cpu_s"] < 0.05, runs["idle"]
    assert 1 < runs["idle"]["store_cpu_us_per_answer"] < 5000, runs["idle"]
    for refused, named in ((["--cpu-of", "4194304"], "--cpu-of"),  # no such process
                           (["--store-cpu-of", "4194304"], "--store-cpu-of"),
                           (["--exact", "5", "--cpu-of", str(server.proc.pid)], "--cpu-of"),
                           (["--exact", "5", "--store-cpu-of", str(server.proc.pid)],
                            "--store-cpu-of")):  # measures none
        p = subprocess.run([load_bin, "--url", server.data, "--rule", "x", *refused],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 2 and named in p.stderr, (refused, p.stderr)


def test_open_loop_sends_at_the_scheduled_rate_and_sees_denials(load_bin, server, workdir):
    server.create_rule(id="smoke-hot", algorithm="token_bucket", limit=10, window="1h")
    p, r = run_load(load_bin, workdir, "--url", server.data, "--rule", "smoke-hot",
                    "--key", "one-hot-key", "--connections", "4", "--rate", "300",
                    "--duration", "1", "--warmup", "0")
    assert p.returncode == 0, p.stderr
    assert 240 <= r["requests"] <= 310, r
    assert r["allowed"] == 10 and r["denied"] == r["requests"] - 10


def test_lease_target_releases_every_lease_it_acquires(load_bin, server, workdir):
    # One slot and one connection: an acquire finds the slot free only
    # because the release before it ended the previous lease.
    server.create_rule(id="smoke-lease", algorithm="concurrency", limit=1, window="1h")
    p, r = run_load(load_bin, workdir, "--url", server.data, "--target", "lease",
                    "--rule", "smoke-lease", "--key", "one", "--connections", "1",
                    "--requests", "400")
    assert p.returncode == 0, p.stderr
    assert r["requests"] == 400 and r["errors"] == 0 and r["status"]["2xx"] == 400
    assert r["allowed"] == 200 and r["denied"] == 0 and r["released"] == 200
    assert "released 200" in p.stdout
    # the last request was a release: the slot is free, then taken
    assert server.check("smoke-lease", "one").json()["allowed"] is True
    assert server.check("smoke-lease", "one").json()["allowed"] is False


def test_lease_target_needs_one_request_in_flight(load_bin):
    p = subprocess.run([load_bin, "--url", "http://127.0.0.1:9", "--target", "lease",
                        "--rule", "x", "--pipeline", "4"], capture_output=True, text=True)
    assert p.returncode == 2 and "--pipeline" in p.stderr


def test_says_at_once_when_nothing_listens_at_the_url(load_bin):
    """A server that is not there is said at once, naming the URL, whatever
    bounds the run (it retried until the time limit, 60 s with --requests)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    for bound in (["--requests", "100"], ["--duration", "30"], ["--exact", "5"]):
        start = time.monotonic()
        p = subprocess.run([load_bin, "--url", f"http://127.0.0.1:{port}", "--rule", "x",
                            *bound], capture_output=True, text=True, timeout=60)
        assert p.returncode == 1, (bound, p.stderr)
        assert f"cannot connect to http://127.0.0.1:{port}: Connection refused" in p.stderr
        assert time.monotonic() - start < 5, bound


def test_refuses_a_target_that_is_not_loopback(load_bin):
    p = subprocess.run([load_bin, "--url", "http://192.0.2.1:80", "--rule", "x"],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "loopback" in p.stderr


def test_exactness_two_processes_two_instances_allow_exactly_the_limit(load_bin, make_server,
                                                                        redis):
    env = {"RATEKIT_REDIS_URL": redis.url}
    a = make_server(env=env)
    b = make_server(env=env, db_path=a.db_path)
    a.create_rule(id="exact-tb", algorithm="token_bucket", limit=50, window="1h")
    a.create_rule(id="exact-fw", algorithm="fixed_window", limit=50, window="1h")
    deadline = time.time() + 3
    while time.time() < deadline and b.check("exact-fw", "probe").status != 200:
        time.sleep(0.05)
    assert b.check("exact-tb", "probe").status == 200, "instance b never learned the rules"
    for rule in ("exact-tb", "exact-fw"):
        p = subprocess.run([load_bin, "--url", a.data, "--url", b.data, "--rule", rule,
                            "--exact", "50", "--procs", "2", "--requests", "160",
                            "--connections", "4"],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "allowed 50 " in p.stdout and "-> exact" in p.stdout
    # the same key again: now everything is denied, so a claim of 50 must fail
    p = subprocess.run([load_bin, "--url", a.data, "--url", b.data, "--rule", "exact-fw",
                        "--exact", "50", "--procs", "2", "--requests", "20"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "allowed 0 " in p.stdout and "NOT EXACT" in p.stdout


def test_context_target_counts_a_request_one_rule_denies_as_denied(load_bin, server, workdir):
    # Two rules cover the path: from the second request on, the tight one
    # denies while the loose one allows, so the answer is "allowed":false
    # with an "allowed":true among its results.
    for rule_id, limit in (("ctx-tight", 1), ("ctx-loose", 1000000)):
        server.create_rule(id=rule_id, algorithm="fixed_window", limit=limit, window="1h",
                           key=["ip"], match={"path": "/api/items"})
    p, r = run_load(load_bin, workdir, "--url", server.data, "--target", "context",
                    "--keys", "1", "--connections", "1", "--requests", "10")
    assert p.returncode == 0, p.stderr
    assert r["requests"] == 10 and r["status"]["2xx"] == 10, r
    assert r["allowed"] == 1 and r["denied"] == 9, r


@pytest.mark.parametrize("reply", [
    answer(b'{ "results": [{"rule": "a", "allowed": true}], "allowed" : false }'),
    answer(b'{"rule":"a","note":"\\"allowed\\":true","allowed":false}'),
    b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'
    b'4\r\n{"al\r\nf\r\nlowed":false,"r\r\n1b\r\nesults":[{"allowed":true}]}\r\n0\r\n\r\n',
], ids=["members in any order", "in a string", "chunked"])
def test_allowed_is_the_answers_own_member(load_bin, stub, workdir, reply):
    s = stub(lambda n, _: reply)
    p, r = run_load(load_bin, workdir, "--url", s.url, "--rule", "r", "--connections", "1",
                    "--requests", "3")
    assert p.returncode == 0, p.stderr
    assert r["requests"] == 3 and r["denied"] == 3 and r["allowed"] == 0, r


def exact_against(load_bin, stub, reply, limit=50, requests=100):
    s = stub(reply)
    return subprocess.run([load_bin, "--url", s.url, "--rule", "r", "--exact", str(limit),
                           "--procs", "2", "--requests", str(requests), "--connections", "2"],
                          capture_output=True, text=True, timeout=60)


def test_exactness_fails_when_answers_are_errors_or_undecided(load_bin, stub):
    allowed = answer({"allowed": True})
    # exactly the limit allowed, then server errors: not a verdict of the limiter
    p = exact_against(load_bin, stub, lambda n, _: allowed if n <= 50 else
                      answer({"error": "x"}, "500 Internal Server Error"))
    assert p.returncode == 1 and "NOT EXACT" in p.stdout, p.stdout
    assert "50 answers were not 2xx" in p.stdout, p.stdout
    # the rest answered 200 but neither allowed nor denied
    p = exact_against(load_bin, stub, lambda n, _: allowed if n <= 50 else answer({}))
    assert p.returncode == 1 and "NOT EXACT" in p.stdout, p.stdout
    assert "50 answers said neither allowed nor denied" in p.stdout, p.stdout
    # the same limit with every other answer a denial passes
    p = exact_against(load_bin, stub, lambda n, _: allowed if n <= 50 else
                      answer({"allowed": False}))
    assert p.returncode == 0 and "-> exact" in p.stdout, p.stdout


def test_lease_target_leaves_no_lease_held_after_the_run(load_bin, server, workdir):
    # An odd budget ends on an acquire; its lease is released after it.
    server.create_rule(id="lease-odd", algorithm="concurrency", limit=1, window="1h")
    p, r = run_load(load_bin, workdir, "--url", server.data, "--target", "lease",
                    "--rule", "lease-odd", "--key", "one", "--connections", "1",
                    "--requests", "41")
    assert p.returncode == 0, p.stderr
    assert r["requests"] == 41 and r["allowed"] == 21 and r["released"] == 20, r
    assert r["released_at_end"] == 1 and r["leases_left"] == 0, r
    assert "released at end 1" in p.stdout, p.stdout
    assert server.check("lease-odd", "one").json()["allowed"] is True
    # A timed run ends with acquires in flight: each is released when answered.
    server.create_rule(id="lease-timed", algorithm="concurrency", limit=8, window="1h")
    p, r = run_load(load_bin, workdir, "--url", server.data, "--target", "lease",
                    "--rule", "lease-timed", "--key", "one", "--connections", "8",
                    "--duration", "0.5", "--warmup", "0")
    assert p.returncode == 0, p.stderr
    assert r["leases_left"] == 0 and r["errors"] == 0, r
    assert [server.check("lease-timed", "one").json()["allowed"] for _ in range(9)] == \
        [True] * 8 + [False]


def test_lease_target_says_when_a_lease_could_not_be_released(load_bin, stub, workdir):
    # Acquires are answered, releases never: the last lease stays held.
    s = stub(lambda n, req: answer({"allowed": True, "lease": "r.1-1.one"})
             if b"/v1/acquire" in req else None)
    p, r = run_load(load_bin, workdir, "--url", s.url, "--target", "lease", "--rule", "r",
                    "--connections", "1", "--requests", "2", "--duration", "0.3")
    assert r["allowed"] == 1 and r["leases_left"] == 1, r
    assert "1 may still be held" in p.stdout, p.stdout


def test_requests_run_measures_up_to_its_last_answer(load_bin, stub, workdir):
    s = stub(lambda n, _: answer(b"ok"))
    elapsed = []
    for _ in range(3):
        p, r = run_load(load_bin, workdir, "--url", s.url, "--target", "get",
                        "--connections", "1", "--requests", "1")
        assert p.returncode == 0 and r["requests"] == 1, p.stderr
        assert r["throughput_rps"] == pytest.approx(1 / r["elapsed_s"], rel=0.02), r
        elapsed.append(r["elapsed_s"])
    # one loopback round trip, not the progress loop's 20 ms poll
    assert min(elapsed) < 0.010, elapsed


def test_open_loop_counts_requests_left_waiting_at_the_end(load_bin, stub, workdir):
    # 200/s on one connection, answered at once until 0.6 s, never after:
    # the 80 or so requests due in the last 0.4 s waited up to 0.4 s.
    s = stub(lambda n, _: answer(b"ok") if n <= 120 else None)
    p, r = run_load(load_bin, workdir, "--url", s.url, "--target", "get",
                    "--connections", "1", "--rate", "200", "--duration", "1", "--warmup", "0")
    assert p.returncode == 0, p.stderr
    assert 115 <= r["requests"] <= 120, r
    assert 70 <= r["waiting_at_end"] <= 90, r
    assert r["latency_us"]["p90"] >= 150000 and r["latency_us"]["max"] >= 350000, r
    assert "waiting at the end" in p.stdout, p.stdout
    assert r["unanswered"] == 1 and r["errors"] == 1, r


HUNG = {
    "silent": None,
    "endless chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"ffffffffffffffff\r\nab\r\n0\r\n\r\n",
    "huge length": b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n{}",
    "LF-only head": b"HTTP/1.1 200 OK\nContent-Length: 2\n\n{}",
}


@pytest.mark.parametrize("kind", HUNG)
def test_requests_never_answered_are_errors(load_bin, stub, workdir, kind):
    s = stub(lambda n, _: HUNG[kind])
    t0 = time.monotonic()
    p, r = run_load(load_bin, workdir, "--url", s.url, "--target", "get",
                    "--connections", "1", "--requests", "3", "--duration", "0.3")
    assert time.monotonic() - t0 < 5
    assert p.returncode == 1 and r["requests"] == 0, r
    if kind == "silent":  # one request out, never answered
        assert r["errors"] == 1 and r["unanswered"] == 1, r
        assert "unanswered 1" in p.stdout, p.stdout
    else:  # each answer refused at once, its connection reopened
        assert r["errors"] == 3 and r["unanswered"] == 0, r


def test_reconnects_are_counted_in_the_measured_window_only(load_bin, stub, workdir):
    s = stub(lambda n, _: answer(b"ok", headers=b"Connection: close\r\n"))
    p, r = run_load(load_bin, workdir, "--url", s.url, "--target", "get",
                    "--connections", "2", "--duration", "0.5", "--warmup", "0.5")
    assert p.returncode == 0, p.stderr
    assert r["requests"] > 20 and r["errors"] == 0, r
    # every answer closes its connection: one reopening per measured answer
    assert r["reconnects"] == r["requests"], r


def test_json_escapes_the_url(load_bin, stub, workdir):
    s = stub(lambda n, _: answer(b"ok"))
    url = s.url + '/a"b\\c'
    p, r = run_load(load_bin, workdir, "--url", url, "--target", "get", "--requests", "2")
    assert p.returncode == 0, p.stderr
    assert r is not None and r["urls"] == [url], r


def test_reads_an_http10_answer_to_the_close(load_bin, stub, workdir):
    s = stub(lambda n, _: b'HTTP/1.0 200 OK\r\n\r\n{"allowed":true}')
    p, r = run_load(load_bin, workdir, "--url", s.url, "--rule", "r", "--connections", "1",
                    "--requests", "5")
    assert p.returncode == 0, p.stderr
    assert r["requests"] == 5 and r["errors"] == 0 and r["allowed"] == 5, r
    assert r["reconnects"] == 5, r


def test_refuses_more_client_addresses_than_are_distinct(load_bin, stub, workdir):
    for target in ("context", "auth"):
        p = subprocess.run([load_bin, "--url", "http://127.0.0.1:9", "--target", target,
                            "--keys", "16777216"], capture_output=True, text=True)
        assert p.returncode == 2 and "10.0.0.0/8" in p.stderr, p.stderr
    s = stub(lambda n, req: answer({"allowed": True}))
    p, r = run_load(load_bin, workdir, "--url", s.url, "--target", "auth", "--keys",
                    "16777215", "--requests", "2")
    assert p.returncode == 0 and r["requests"] == 2, p.stderr


def test_refuses_a_warmup_that_would_spend_the_requests(load_bin):
    p = subprocess.run([load_bin, "--url", "http://127.0.0.1:9", "--rule", "x",
                        "--requests", "5", "--warmup", "1"], capture_output=True, text=True)
    assert p.returncode == 2 and "--warmup" in p.stderr and "--requests" in p.stderr, p.stderr
