"""ratekit_client.py — ask ratekit whether a request may pass.

Standard library only (Python 3.8+). Used by the FastAPI, Django and Flask
middlewares and the bot throttle beside it; copy it into your project.

Settings, from the environment:
  RATEKIT_URL          ratekit's data plane (default http://127.0.0.1:8080)
  RATEKIT_TIMEOUT_MS   how long to wait for an answer (default 200)
  RATEKIT_FAIL_OPEN    1 (default): when ratekit cannot answer (unreachable,
                       too slow, a 5xx), let the request through; 0: refuse
                       it with 503
  RATEKIT_CHECK_TOKEN  the data plane's token, when ratekitd requires one

What each answer of ratekit leads to:
  200              its decision: allowed, 429 when limited, or 403 when the
                   client is on the denylist
  401, 403, 404    a wrong RATEKIT_CHECK_TOKEN, RATEKIT_URL or rule name: the
                   operator's error, logged (logger "ratekit") and handled as
                   unavailability, so that RATEKIT_FAIL_OPEN decides
  any other 4xx    ratekit refuses to judge this request (too long a path,
                   too large, malformed): 400, never a pass, so that no
                   client can pick the fail-open path by shaping its request
  no answer, 5xx   unavailable: RATEKIT_FAIL_OPEN decides

A request a concurrency rule covers holds one of its slots from the check on:
release(decision.leases) gives them back once the request is over (a denied
request's answer names none: ratekit ends them itself). Unreleased, a slot
stays held until the rule's window ends.
"""

import json
import logging
import os
import time
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
# ratekit's answers that mean the application is set up wrong, not the request.
CONFIG_ERRORS = {401: "RATEKIT_CHECK_TOKEN", 403: "RATEKIT_CHECK_TOKEN",
                 404: "RATEKIT_URL or the rule's name"}

log = logging.getLogger("ratekit")


class Decision:
    """What to do with one request.

    allowed  -- let it through
    status   -- 200 when allowed; 429 when limited; 403 when the client is on
                the denylist; 400 when ratekit refuses to judge the request;
                503 when ratekit could not answer and RATEKIT_FAIL_OPEN=0
    headers  -- rate-limit headers to add to the response (dict)
    body     -- the JSON error body to answer when not allowed (dict)
    leases   -- the slots of concurrency rules the check took, to release()
                once the request is over (list, often empty)
    """

    def __init__(self, allowed, status, headers, body=None, leases=()):
        self.allowed = allowed
        self.status = status
        self.headers = headers
        self.body = body
        self.leases = list(leases)


def _unavailable(reason):
    if FAIL_OPEN:
        return Decision(True, 200, {})
    return Decision(False, 503, {"Retry-After": "1"},
                    {"error": {"code": "unavailable",
                               "message": "Rate limiting is unavailable, try again: " + reason}})


def _refused(message):
    """ratekit will not judge this request: neither does the application let it pass."""
    return Decision(False, 400, {}, {"error": {
        "code": "invalid_request",
        "message": "The request cannot be checked against the rate limits: " + message}})


def _error_answer(e):
    """The Decision for an error status of ratekit (an HTTPError, closed here)."""
    try:
        error = json.loads(e.read())["error"]
        code, message = str(error["code"]), str(error["message"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):  # not ratekit's shape
        code, message = "", "ratekit answered %d" % e.code
    finally:
        e.close()
    if e.code in CONFIG_ERRORS:
        log.error("ratekit answered %d %s (%s): check %s; handled as if ratekit were "
                  "unavailable (RATEKIT_FAIL_OPEN=%s)", e.code, code, message,
                  CONFIG_ERRORS[e.code], "1" if FAIL_OPEN else "0")
        return _unavailable("HTTP %d" % e.code)
    if 400 <= e.code < 500:
        return _refused(message[:200])
    return _unavailable("HTTP %d" % e.code)  # a 5xx (or an unfollowed redirect)


def _reset_at(headers, reset_ms):
    """When the client's state is back to full (ISO 8601, UTC): the instant
    of X-RateLimit-Reset, as ratekit's forward-auth answers it."""
    reset_s = headers.get("X-RateLimit-Reset") or -(-(time.time() * 1000 + reset_ms) // 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(reset_s)))


def _post(path, payload):
    """An open answer of ratekit to payload (JSON) POSTed to path; raises
    what urlopen raises."""
    req = urllib.request.Request(RATEKIT_URL + path, data=json.dumps(payload).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    if CHECK_TOKEN:
        req.add_header("X-Ratekit-Token", CHECK_TOKEN)
    return urllib.request.urlopen(req, timeout=TIMEOUT_S)


def check(payload):
    """POSTs payload to /v1/check and returns a Decision. Never raises:
    a slow, unreachable or failing ratekit is handled by RATEKIT_FAIL_OPEN,
    a request ratekit refuses to judge gets 400 (see the top of this file)."""
    try:
        with _post("/v1/check", payload) as resp:
            answer = json.loads(resp.read())
            headers = {h: resp.headers[h] for h in RATE_LIMIT_HEADERS if resp.headers.get(h)}
    except urllib.error.HTTPError as e:  # ratekit answered, with an error status
        return _error_answer(e)
    except (OSError, ValueError) as e:  # timeouts, refused connections, bad JSON
        return _unavailable(type(e).__name__)
    if not isinstance(answer, dict) or not isinstance(answer.get("allowed"), bool):
        log.error("ratekit's answer is not a decision: check RATEKIT_URL")
        return _unavailable("not a decision")
    leases = [r["lease"] for r in answer.get("results") or [] if "lease" in r]
    if answer["allowed"]:
        headers.pop("Retry-After", None)
        return Decision(True, 200, headers, leases=leases)
    if answer.get("reason") == "denylist":  # refused for good: no rule, nothing to wait for
        return Decision(False, 403, {}, {"error": {
            "code": "forbidden", "message": "This client is on the denylist"}})
    retry_after_ms = int(answer.get("retry_after_ms", 0))
    headers.setdefault("Retry-After", str(max(1, -(-retry_after_ms // 1000))))
    body = {"error": {"code": "rate_limited",
                      "message": "Rate limit exceeded for rule '%s'" % answer.get("rule"),
                      "rule": answer.get("rule"), "limit": answer.get("limit"),
                      "remaining": answer.get("remaining", 0),
                      "reset_at": _reset_at(headers, int(answer.get("reset_ms", 0))),
                      "retry_after_ms": retry_after_ms}}
    return Decision(False, 429, headers, body, leases)


def release(leases):
    """Gives back the slots a check took (Decision.leases): call it once the
    request is over, a denied one's too. Never raises: a release that fails
    (no answer within RATEKIT_TIMEOUT_MS, an error) is logged, and its slot
    may stay held until the rule's window ends."""
    for lease in leases:
        try:
            with _post("/v1/release", {"lease": lease}):
                pass
        except (OSError, ValueError) as e:
            log.error("ratekit could not release a slot of rule '%s' (%s): it may stay held "
                      "until the rule's window ends", lease.split(".", 1)[0], e)


def check_request(method, path, host, ip, headers):
    """Checks an HTTP request against every rule that covers it (ratekit
    matches the rules and finds the client's key). path may carry the query
    string; headers is any mapping of the request's headers."""
    sent = {k: v for k, v in headers.items() if k.lower() not in PRIVATE_HEADERS}
    return check({"request": {"method": method, "path": path, "host": host or "",
                              "ip": ip or "", "headers": sent}})


def check_key(rule, key, cost=1):
    """Checks one named rule for one key (a user id, a tenant, ...). A rule
    ratekit does not know (404) is logged and handled as unavailability; a
    key it refuses (empty, or with a NUL) gets a 400 Decision. For a
    concurrency rule, release(decision.leases) once the work is done."""
    return check({"rule": rule, "key": str(key), "cost": cost})
