"""ratekit in a Flask application: before_request checks, after_request
adds the rate-limit headers. Run: flask --app app run (with
ratekit_client.py importable).
"""

from flask import Flask, g, jsonify, request

import ratekit_client

app = Flask(__name__)


@app.before_request
def ratekit_check():
    decision = ratekit_client.check_request(request.method, request.full_path.rstrip("?"),
                                            request.host, request.remote_addr, request.headers)
    g.ratekit_headers = decision.headers
    if not decision.allowed:
        return jsonify(decision.body), decision.status, decision.headers
    return None  # go on to the view


@app.after_request
def ratekit_headers(response):
    for name, value in g.get("ratekit_headers", {}).items():
        response.headers.setdefault(name, value)
    return response


@app.get("/api/items")
def items():
    return {"items": ["a", "b"]}
