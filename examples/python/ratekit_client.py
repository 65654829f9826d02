"""ratekit_client.py — ask ratekit whether a request may pass.

Standard library only (Python 3.8+). Used by the FastAPI, Django and Flask
middlewares and the bot throttle beside it; copy it into your project.

Settings, from the environment:
  RATEKIT_URL          ratekit's data plane (default http://127.0.0.1:8080)
  RATEKIT_TIMEOUT_MS   how long to wait for an answer (default 200)
  RATEKIT_FAIL_OPEN    1 (default): when ratekit cannot answer in time, let
                       the request through; 0: refuse it with 503
  RATEKIT_CHECK_TOKEN  the data plane's token, when ratekitd requires one
"""

import json
import os
import urllib.error
import urllib.request

RATEKIT_URL = os.environ.get("RATEKIT_URL", "http://127.0.0.1:8080").rstrip("/")
TIMEOUT_S = int(os.environ.get("RATEKIT_TIMEOUT_MS", "200")) / 1000.0
FAIL_OPEN = os.environ.get("RATEKIT_FAIL_OPEN", "1") != "0"
CHECK_TOKEN = os.environ.get("RATEKIT_CHECK_TOKEN", "")

# The headers of ratekit's answer that the client should see.
RATE_LIMIT_HEADERS = ("RateLimit-Policy", "RateLimit", "X-RateLimit-Limit",
                      "X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After")
# Request headers never sent to ratekit.
PRIVATE_HEADERS = {"cookie", "content-length", "content-type", "connection"}


class Decision:
    """What to do with one request.

    allowed  -- let it through
    status   -- 200 when allowed; 429 when limited; 503 when ratekit could
                not answer and RATEKIT_FAIL_OPEN=0
    headers  -- rate-limit headers to add to the response (dict)
    body     -- the JSON error body to answer when not allowed (dict)
    """

    def __init__(self, allowed, status, headers, body=None):
        self.allowed = allowed
        self.status = status
        self.headers = headers
        self.body = body


def _unavailable(reason):
    if FAIL_OPEN:
        return Decision(True, 200, {})
    return Decision(False, 503, {"Retry-After": "1"},
                    {"error": {"code": "unavailable",
                               "message": "Rate limiting is unavailable, try again: " + reason}})


def check(payload):
    """POSTs payload to /v1/check and returns a Decision. Never raises:
    a slow, unreachable or failing ratekit is handled by RATEKIT_FAIL_OPEN."""
    req = urllib.request.Request(RATEKIT_URL + "/v1/check", data=json.dumps(payload).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    if CHECK_TOKEN:
        req.add_header("X-Ratekit-Token", CHECK_TOKEN)
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as resp:
            answer = json.loads(resp.read())
            headers = {h: resp.headers[h] for h in RATE_LIMIT_HEADERS if resp.headers.get(h)}
    except (OSError, ValueError) as e:  # timeouts, refused, HTTP errors, bad JSON
        return _unavailable(type(e).__name__)
    if answer.get("allowed", True):
        headers.pop("Retry-After", None)
        return Decision(True, 200, headers)
    retry_after_ms = int(answer.get("retry_after_ms", 0))
    headers.setdefault("Retry-After", str(max(1, -(-retry_after_ms // 1000))))
    body = {"error": {"code": "rate_limited",
                      "message": "Rate limit exceeded for rule '%s'" % answer.get("rule"),
                      "rule": answer.get("rule"), "limit": answer.get("limit"),
                      "remaining": answer.get("remaining", 0),
                      "retry_after_ms": retry_after_ms}}
    return Decision(False, 429, headers, body)


def check_request(method, path, host, ip, headers):
    """Checks an HTTP request against every rule that covers it (ratekit
    matches the rules and finds the client's key). path may carry the query
    string; headers is any mapping of the request's headers."""
    sent = {k: v for k, v in headers.items() if k.lower() not in PRIVATE_HEADERS}
    return check({"request": {"method": method, "path": path, "host": host or "",
                              "ip": ip or "", "headers": sent}})


def check_key(rule, key, cost=1):
    """Checks one named rule for one key (a user id, a tenant, ...)."""
    return check({"rule": rule, "key": str(key), "cost": cost})
