"""The admin plane's token, beyond the start of a request, black-box: an open
event stream ends once its token is revoked or expires (here, or on another
process sharing the tokens), and a request refused for its token is answered
before its body is read, so an anonymous client cannot make the server hold
megabytes."""

import datetime
import http.client
import json
import os
import shutil
import socket
import subprocess
import time

import pytest

from conftest import ADMIN_TOKEN, request
from test_observability import EventStream
from test_tokens import iso_in, make_token

# ---- the event stream follows its token -------------------------------------------


def read_until_end(stream, timeout):
    """Reads events until the stream ends cleanly (the last chunk of a chunked
    answer, not a broken connection); answers (seconds taken, events seen
    meanwhile). Fails when it is still open after timeout seconds."""
    start = time.monotonic()
    events = []
    while time.monotonic() - start < timeout:
        try:
            events.append(stream.next_event(max(0.05, timeout - (time.monotonic() - start))))
        except EOFError:
            return time.monotonic() - start, events
        except (socket.timeout, TimeoutError):
            break
    raise AssertionError(f"the stream was still open after {timeout}s; it carried "
                         f"{[e['event'] for e in events]}")


def test_a_revoked_tokens_stream_ends_within_seconds_and_the_admins_goes_on(server):
    viewer = make_token(server, "sse", "viewer")
    theirs = EventStream(server, token=viewer["token"])
    ours = EventStream(server, token=ADMIN_TOKEN)
    assert theirs.status == 200 and ours.status == 200
    theirs.events_until(lambda e: e["event"] == "stats", timeout=3)
    ours.events_until(lambda e: e["event"] == "stats", timeout=3)

    assert server.admin("DELETE", "/api/v1/tokens/" + viewer["id"]).status == 204
    took, after = read_until_end(theirs, timeout=5)
    theirs.close()
    assert took <= 3.0, f"the revoked token's stream ended after {took:.2f}s"
    assert len([e for e in after if e["event"] == "stats"]) <= 2, after
    # EventSource reconnects by itself: the token no longer opens a stream
    again = EventStream(server, token=viewer["token"])
    assert again.status == 401
    again.close()

    # the bootstrap admin token always resolves: its stream carries on
    later = ours.events_until(lambda e: e["event"] == "stats", timeout=3)
    ours.events_until(lambda e: e["event"] == "stats", timeout=3)
    assert later
    ours.close()


def test_an_expired_tokens_stream_ends_and_a_live_tokens_stays_open(server):
    short = make_token(server, "brief", "viewer", expires_at=iso_in(3))
    lasting = make_token(server, "lasting", "viewer")
    theirs = EventStream(server, token=short["token"])
    other = EventStream(server, token=lasting["token"])
    assert theirs.status == 200 and other.status == 200
    theirs.events_until(lambda e: e["event"] == "stats", timeout=3)

    took, _ = read_until_end(theirs, timeout=8)
    theirs.close()
    expired_at = datetime.datetime.fromisoformat(short["expires_at"].replace("Z", "+00:00"))
    late = datetime.datetime.now(datetime.timezone.utc) - expired_at
    assert late.total_seconds() <= 3.0, f"the stream outlived its token by {late}"
    # the other viewer token was not revoked: its stream carries on
    other.events_until(lambda e: e["event"] == "stats", timeout=3)
    other.events_until(lambda e: e["event"] == "stats", timeout=3)
    other.close()


def test_a_revocation_on_another_instance_ends_the_stream_here(make_server, workdir):
    db = os.path.join(workdir, "shared.db")
    a = make_server(db_path=db)
    b = make_server(db_path=db)
    viewer = make_token(a, "dashboard", "viewer")
    deadline = time.monotonic() + 2  # b notices a's new token within RK_TOKENS_POLL_MS
    while b.admin("GET", "/api/v1/rules", token=viewer["token"]).status != 200:
        assert time.monotonic() < deadline, "b never took the token made on a"
        time.sleep(0.05)
    stream = EventStream(b, token=viewer["token"])
    assert stream.status == 200
    stream.events_until(lambda e: e["event"] == "stats", timeout=3)

    assert a.admin("DELETE", "/api/v1/tokens/" + viewer["id"]).status == 204
    took, _ = read_until_end(stream, timeout=6)
    stream.close()
    assert took <= 4.0, f"b's stream of a token revoked on a ended after {took:.2f}s"


# ---- a refused request's body is not read ----------------------------------------

BIG = 3_000_000  # announced; under the admin plane's 32 MiB bound


def send_partial_upload(server, path, token=None, method="POST", send=64 * 1024):
    """Sends the headers of a BIG-byte upload and only its first `send`
    bytes, then reads what comes back. Answers (status, headers, body, seconds
    to the answer, whether the server then closed the connection)."""
    sock = socket.create_connection(("127.0.0.1", server.admin_port), timeout=5)
    head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {BIG}\r\n")
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    start = time.monotonic()
    sock.sendall(head.encode() + b"\r\n" + b" " * send)
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (socket.timeout, TimeoutError):
        sock.close()
        raise AssertionError(f"no answer within 5s to {method} {path} with {send} of "
                             f"{BIG} bytes sent")
    took = time.monotonic() - start
    head_bytes, _, rest = data.partition(b"\r\n\r\n")
    lines = head_bytes.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    closed = False
    try:
        sock.settimeout(3)
        while len(rest) < int(headers.get("content-length", "0")):
            rest += sock.recv(65536)
        closed = sock.recv(65536) == b""
    except (ConnectionResetError, BrokenPipeError):
        closed = True
    except (socket.timeout, TimeoutError):
        closed = False
    sock.close()
    body = rest[:int(headers.get("content-length", "0"))]
    return status, headers, body, took, closed


def test_an_anonymous_upload_gets_401_before_its_body_is_sent(server):
    # without a token, and with one that resolves to nothing
    for token in (None, "rk_000000000000_" + "0" * 64):
        status, headers, body, took, closed = send_partial_upload(
            server, "/api/v1/rules/import", token)
        assert status == 401, (status, body)
        assert json.loads(body) == {"error": {"code": "unauthorized",
                                              "message": "A valid bearer token is required"}}
        assert headers["content-type"] == "application/json"
        assert took < 2.0, f"the 401 came after {took:.2f}s"
        assert closed, "the server kept the connection to read the rest of the body"


def test_every_method_with_a_body_is_refused_early_as_a_bodyless_request_is(server):
    bodyless = request("GET", server.admin_url + "/api/v1/rules")
    assert bodyless.status == 401
    for method, path in (("POST", "/api/v1/rules"), ("PUT", "/api/v1/rules/r1"),
                         ("PATCH", "/api/v1/rules/r1"), ("POST", "/api/v1/lists")):
        status, headers, body, took, _ = send_partial_upload(server, path, method=method)
        assert status == 401, (method, path, status)
        assert body == bodyless.body
        for name in ("content-type", "cache-control", "x-content-type-options",
                     "x-frame-options", "content-security-policy"):
            assert headers.get(name) == bodyless.headers.get(name), name
        assert took < 2.0, f"{method} {path}: the 401 came after {took:.2f}s"


def test_a_role_short_of_the_route_gets_403_before_its_body_is_sent(server):
    viewer = make_token(server, "reader", "viewer")["token"]
    status, _, body, took, _ = send_partial_upload(server, "/api/v1/rules/import", viewer)
    assert status == 403 and json.loads(body)["error"]["code"] == "forbidden"
    assert took < 2.0, f"the 403 came after {took:.2f}s"


def test_curl_uploading_a_large_body_without_a_token_reads_the_401(server):
    """curl as a person runs it: for a body this large it asks for
    100 Continue, which never comes; the 401 does, and no body is sent.
    (A client that writes a large body whole before it reads may instead see
    the connection reset: the server reads no more of it, as with the 413.)"""
    if not shutil.which("curl"):
        pytest.skip("curl is not installed")
    path = os.path.join(server.workdir, "big.json")
    with open(path, "wb") as f:
        f.write(b'{"rules": [' + b" " * (BIG - 20) + b"]}")
    start = time.monotonic()
    out = subprocess.run(
        ["curl", "-sS", "-o", "-", "-w", "\n%{http_code} %{size_upload}", "-X", "POST",
         "-H", "Expect: 100-continue", "-H", "Content-Type: application/json",
         "--data-binary", "@" + path, server.admin_url + "/api/v1/rules/import"],
        capture_output=True, text=True, timeout=20)
    took = time.monotonic() - start
    body, _, tail = out.stdout.rpartition("\n")
    code, _, uploaded = tail.partition(" ")
    assert code == "401", (out.stdout[-300:], out.stderr)
    assert json.loads(body)["error"]["code"] == "unauthorized"
    assert float(uploaded) == 0, f"curl sent {uploaded} bytes of the body"
    assert took < 2.0, f"the 401 came after {took:.2f}s"


def test_unrouted_uploads_keep_their_404_and_405(server):
    r = request("POST", server.admin_url + "/api/v1/no-such-thing", body=b" " * 200_000)
    assert r.status == 404 and r.json()["error"]["code"] == "not_found"
    r = request("POST", server.admin_url + "/api/v1/stats", body=b" " * 200_000)
    assert r.status == 405 and r.headers["allow"] == "GET"


def test_an_authorised_import_of_three_megabytes_still_works(server):
    rules = [{"id": f"big-{i}", "algorithm": "fixed_window", "limit": 10, "window": "1m"}
             for i in range(3)]
    doc = json.dumps({"rules": rules}).encode()
    body = doc[:-1] + b" " * (BIG - len(doc)) + b"}"
    assert len(body) == BIG
    r = request("POST", server.admin_url + "/api/v1/rules/import", body=body,
                headers={"Authorization": "Bearer " + server.token,
                         "Content-Type": "application/json"}, timeout=30)
    assert r.status == 200 and r.json()["created"] == 3, r
    # and on one keep-alive connection, the next request is answered too
    conn = http.client.HTTPConnection("127.0.0.1", server.admin_port, timeout=30)
    auth = {"Authorization": "Bearer " + server.token, "Content-Type": "application/json"}
    conn.request("POST", "/api/v1/rules/import", body=body, headers=auth)
    first = conn.getresponse()
    assert first.status == 200 and json.loads(first.read())["deleted"] == 0
    conn.request("GET", "/api/v1/rules", headers=auth)
    second = conn.getresponse()
    assert second.status == 200
    assert sorted(x["id"] for x in json.loads(second.read())["rules"]) == \
        ["big-0", "big-1", "big-2"]
    conn.close()
