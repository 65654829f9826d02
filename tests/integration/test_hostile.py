"""Hostile clients: oversized headers, slow clients, connection floods and
key floods hit a bound, and ratekitd goes on answering everyone else."""

import http.client
import json
import socket
import time

import pytest

from conftest import connections_per_epoll, request


def raw(port, data, timeout=5):
    """Sends raw bytes and returns what comes back until the server closes or times out."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
                if b"\r\n\r\n" in out and b"Content-Length" in out:
                    head, _, body = out.partition(b"\r\n\r\n")
                    length = int(head.split(b"Content-Length:")[1].split(b"\r\n")[0])
                    if len(body) >= length:
                        break
        except (socket.timeout, ConnectionResetError):
            pass
        return out


def test_oversized_headers_are_refused_and_the_server_lives_on(server):
    big = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n"
    reply = raw(server.data_port, big)
    assert reply.startswith(b"HTTP/1.1 431") or reply.startswith(b"HTTP/1.1 413"), reply[:80]
    many = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"X-H%d: v\r\n" % i for i in range(5000)) + b"\r\n"
    reply = raw(server.data_port, many)
    assert not reply.startswith(b"HTTP/1.1 200")
    assert request("GET", server.data + "/healthz").status == 200


def test_a_slow_client_is_dropped_after_the_idle_timeout(make_server):
    s = make_server(env={"RATEKIT_IDLE_TIMEOUT_S": "1"})
    with socket.create_connection(("127.0.0.1", s.data_port), timeout=10) as c:
        c.sendall(b"POST /v1/check HTTP/1.1\r\nHost: x\r\n")  # and then nothing
        t = time.monotonic()
        assert c.recv(100) == b""  # closed by the server
        assert time.monotonic() - t < 5
    assert request("GET", s.data + "/healthz").status == 200


def trickle_until_closed(port, head, piece, every_s=0.4, give_up_s=8):
    """Sends head, then piece every every_s seconds, until the server closes
    the connection; the seconds that took (give_up_s when it never did)."""
    with socket.create_connection(("127.0.0.1", port), timeout=give_up_s) as c:
        t = time.monotonic()
        c.sendall(head)
        while time.monotonic() - t < give_up_s:
            c.settimeout(every_s)
            try:
                if c.recv(4096) == b"":
                    return time.monotonic() - t
            except socket.timeout:
                pass
            except ConnectionResetError:
                return time.monotonic() - t
            try:
                c.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                return time.monotonic() - t
        return give_up_s


def timed_out_total(s, plane):
    metrics = request("GET", s.admin_url + "/metrics").body.decode().splitlines()
    name = f'ratekit_http_connections_timed_out_total{{plane="{plane}"}} '
    return int(next(l for l in metrics if l.startswith(name)).split()[1])


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_a_client_trickling_its_request_is_closed_at_the_deadline(make_server, make_redis, store):
    """A byte within each idle timeout does not keep a connection: each request
    must be whole within RATEKIT_IDLE_TIMEOUT_S, headers and (on the data
    plane) body, or the connection is closed and counted. On Redis the data
    plane runs on event loops rather than libmicrohttpd's threads."""
    env = {"RATEKIT_IDLE_TIMEOUT_S": "2"}
    if store == "redis":
        env["RATEKIT_REDIS_URL"] = make_redis().url
    s = make_server(env=env)
    headers = trickle_until_closed(s.data_port, b"POST /v1/check HTTP/1.1\r\nHost: x\r\n",
                                   b"X-Slow: a\r\n")
    assert 1.9 <= headers < 4, headers
    body = trickle_until_closed(
        s.data_port, b"POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{", b" ")
    assert 1.9 <= body < 4, body
    admin_headers = trickle_until_closed(s.admin_port, b"GET /api/v1/rules HTTP/1.1\r\n",
                                         b"X-Slow: a\r\n")
    assert 1.9 <= admin_headers < 4, admin_headers
    assert timed_out_total(s, "data") == 2
    assert timed_out_total(s, "admin") == 1
    assert request("GET", s.data + "/healthz").status == 200


def test_the_deadline_restarts_with_each_request_and_spares_a_slow_admin_upload(make_server):
    s = make_server(env={"RATEKIT_IDLE_TIMEOUT_S": "2"})
    # One keep-alive connection, a request every 0.5 s for 4 s: never closed.
    c = http.client.HTTPConnection("127.0.0.1", s.data_port, timeout=5)
    t = time.monotonic()
    c.request("GET", "/healthz")
    first = c.getresponse()
    first.read()
    assert first.status == 200
    sock = c.sock
    while time.monotonic() - t < 4:
        time.sleep(0.5)
        c.request("GET", "/healthz")
        r = c.getresponse()
        r.read()
        assert r.status == 200 and c.sock is sock  # the same connection
    c.close()
    # An admin upload whose body takes 3 s: its headers were whole in time.
    rule = json.dumps({"id": "slow-upload", "algorithm": "fixed_window", "limit": 5,
                       "window": "1m", "key": ["ip"]}).encode()
    with socket.create_connection(("127.0.0.1", s.admin_port), timeout=10) as a:
        a.sendall(b"POST /api/v1/rules HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                  s.token.encode() + b"\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(rule))
        for i in range(0, len(rule), len(rule) // 6 + 1):
            time.sleep(0.5)
            a.sendall(rule[i:i + len(rule) // 6 + 1])
        assert a.recv(100).startswith(b"HTTP/1.1 201"), "the slow upload was cut"
    assert timed_out_total(s, "data") == 0 and timed_out_total(s, "admin") == 0


def test_a_connection_flood_is_bounded_and_drained_by_the_idle_timeout(make_server):
    """120 idle connections against a bound of 50 on 4 threads: the server
    holds at most 50 (the rest are closed at once), drops idle ones after the
    idle timeout, and a real client is answered within a few seconds."""
    threads = 4
    idle_s = 2  # none of the 50 is dropped before the 120 are in
    s = make_server(env={"RATEKIT_MAX_CONNECTIONS": "50", "RATEKIT_IDLE_TIMEOUT_S": str(idle_s),
                         "RATEKIT_THREADS": str(threads)})
    held = [socket.create_connection(("127.0.0.1", s.data_port), timeout=2) for _ in range(120)]
    for c in held:
        try:
            c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finished
        except OSError:
            pass  # already closed by the server
    time.sleep(0.3)
    # Threads accepting at the same instant may each let one more in.
    assert 40 <= sum(connections_per_epoll(s.proc.pid, s.data_port)) <= 50 + threads - 1
    t = time.monotonic()
    while True:
        try:
            r = request("GET", s.data + "/healthz", timeout=2)
            break
        except (ConnectionError, http.client.HTTPException, socket.timeout):
            assert time.monotonic() - t < 8, "no room for a client after the idle timeout"
            time.sleep(0.1)
    assert r.status == 200
    # Each ends refused at once or dropped as idle, those the kernel queued
    # until a place freed up included.
    closed = 0
    deadline = time.monotonic() + 3 * idle_s
    for c in held:
        c.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            closed += c.recv(1) == b""
        except ConnectionResetError:
            closed += 1
        except socket.timeout:
            pass  # still open
        c.close()
    assert closed == 120
    assert request("GET", s.data + "/healthz").status == 200
    metrics = request("GET", s.admin_url + "/metrics").body.decode().splitlines()
    refused = [l for l in metrics if l.startswith('ratekit_http_connections_refused_total{plane="data"} ')]
    # About 70 refused: fewer when the kernel held some until a place freed up.
    assert refused and int(refused[0].split()[1]) >= 50, refused
    assert s.output().count("connections open, the bound (RATEKIT_MAX_CONNECTIONS)") == 1


def test_connections_up_to_the_bound_are_served_whichever_thread_takes_them(make_server):
    """The kernel spreads connections over the threads unevenly: with 4
    threads and a bound of 32, some thread gets more than 8 of 31 keep-alive
    connections opened together (98 times in 100 under a random spread).
    Each is answered: the bound is the listener's, not a quarter of it per
    thread. (31: the fixture's readiness probe counts until the server has
    seen it close.)"""
    s = make_server(env={"RATEKIT_MAX_CONNECTIONS": "32", "RATEKIT_THREADS": "4"})
    conns = [socket.create_connection(("127.0.0.1", s.data_port), timeout=5) for _ in range(31)]
    try:
        for c in conns:
            c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        for c in conns:
            assert c.recv(65536).startswith(b"HTTP/1.1 200"), "every connection is answered"
        counts = connections_per_epoll(s.proc.pid, s.data_port)
        assert sum(counts) == 31, counts
        metrics = request("GET", s.admin_url + "/metrics").body.decode().splitlines()
        assert any(l in metrics for l in ('ratekit_http_connections{plane="data"} 31',
                                          'ratekit_http_connections{plane="data"} 32')), metrics
    finally:
        for c in conns:
            c.close()


def test_a_flood_of_random_keys_stays_within_the_store_bound(make_server):
    s = make_server(env={"RATEKIT_MEMORY_MAX_KEYS": "1000"})
    s.create_rule(id="flood", algorithm="token_bucket", limit=5, window="1h")
    batch = [{"rule": "flood", "key": f"k{i}"} for i in range(100)]
    for start in range(0, 5000, 100):
        body = {"checks": [{"rule": "flood", "key": f"k{start + i}"} for i in range(100)]}
        r = request("POST", s.data + "/v1/check/batch", body)
        assert r.status == 200
    metrics = request("GET", s.admin_url + "/metrics").body.decode()
    keys = [l for l in metrics.splitlines() if l.startswith("ratekit_memory_keys ")]
    evictions = [l for l in metrics.splitlines()
                 if l.startswith("ratekit_memory_evictions_total ")]
    assert keys and float(keys[0].split()[1]) <= 1000
    assert evictions and float(evictions[0].split()[1]) >= 4000
    assert batch  # the store answered every check of the flood
    assert request("GET", s.data + "/healthz").status == 200


def test_a_nul_in_an_admin_string_is_refused_not_cut_short(server):
    """cJSON keeps a \\u0000 inside a string, where every C string reader would
    cut it short: "v\\u0000x" would be stored as rule "v", and a denylist
    entry "user:1\\u0000zz" would deny client "user:1". Each is refused with
    400, and nothing is stored."""
    rule = {"id": "nul-rule", "algorithm": "fixed_window", "limit": 5, "window": "1m"}
    attempts = [
        ("POST", "/api/v1/rules", dict(rule, id="v\x00x")),
        ("POST", "/api/v1/rules", dict(rule, description="ab\x00cd")),
        ("POST", "/api/v1/rules", dict(rule, match={"path": "/p\x00q"})),
        ("POST", "/api/v1/lists", {"list": "denylist", "value": "user:1\x00zz"}),
        ("POST", "/api/v1/tokens", {"name": "a\x00b", "role": "viewer"}),
    ]
    for method, path, body in attempts:
        r = server.admin(method, path, body)
        assert r.status == 400, (path, body, r.status, r.body)
        error = r.json()["error"]
        assert error["code"] == "invalid_json" and "\\u0000" in error["message"], error
    assert server.admin("GET", "/api/v1/rules").json()["rules"] == []
    assert server.admin("GET", "/api/v1/lists").json()["entries"] == []
    assert [t["name"] for t in server.admin("GET", "/api/v1/tokens").json()["tokens"]
            if t["name"].startswith("a")] == []
    # A backslash written out before "u0000" is text, and stored as it is.
    r = server.admin("POST", "/api/v1/rules", dict(rule, description="ab\\u0000cd"))
    assert r.status == 201 and r.json()["description"] == "ab\\u0000cd", r.body
