"""ratekit in a Flask application: before_request checks, after_request
adds the rate-limit headers and gives back, once the response is sent, the
slots of concurrency rules the check took. Run: flask --app app run (with
ratekit_client.py importable).
"""

import time

from flask import Flask, g, jsonify, request

import ratekit_client

app = Flask(__name__)


@app.before_request
def ratekit_check():
    decision = ratekit_client.check_request(request.method, request.full_path.rstrip("?"),
                                            request.host, request.remote_addr, request.headers)
    g.ratekit_headers = decision.headers
    g.ratekit_leases = decision.leases
    if not decision.allowed:
        return jsonify(decision.body), decision.status, decision.headers
    return None  # go on to the view


@app.after_request
def ratekit_headers(response):
    for name, value in g.get("ratekit_headers", {}).items():
        response.headers.setdefault(name, value)
    # given back when the server closes the response: sent, or its client gone
    leases = g.pop("ratekit_leases", [])
    response.call_on_close(lambda: ratekit_client.release(leases))
    return response


@app.teardown_request
def ratekit_release(error):  # a request that ended without a response
    ratekit_client.release(g.pop("ratekit_leases", []))


@app.get("/api/items")
def items():
    return {"items": ["a", "b"]}


@app.post("/api/export")
def export():  # slow work, the kind a concurrency rule keeps few of at once
    time.sleep(0.5)
    return {"export": "done"}
