"""Hostile clients: oversized headers, slow clients, connection floods and
key floods hit a bound, and ratekitd goes on answering everyone else."""

import socket
import time

from conftest import request


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


def test_a_connection_flood_is_bounded_and_drained_by_the_idle_timeout(make_server):
    """120 idle connections against a bound of 50: the server holds at most 50
    (the rest wait in the kernel's backlog), drops idle ones after the idle
    timeout, and a real client is answered within a few seconds."""
    s = make_server(env={"RATEKIT_MAX_CONNECTIONS": "50", "RATEKIT_IDLE_TIMEOUT_S": "1"})
    held = [socket.create_connection(("127.0.0.1", s.data_port), timeout=2) for _ in range(120)]
    for c in held:
        c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finished
    t = time.monotonic()
    r = request("GET", s.data + "/healthz", timeout=10)
    waited = time.monotonic() - t
    assert r.status == 200 and waited < 6, waited
    closed = 0
    for c in held:
        c.settimeout(0.01)
        try:
            closed += c.recv(1) == b""
        except (socket.timeout, ConnectionResetError):
            pass
        c.close()
    assert closed >= 50  # at least the first 50 were dropped as idle
    assert request("GET", s.data + "/healthz").status == 200


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
