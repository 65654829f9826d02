"""INTEGRATION.md's Traefik recipe: examples/traefik/dynamic.yml checked
against the documented ForwardAuth schema (Traefik v2.11 / v3 reference),
and ratekitd answering exactly what Traefik sends it."""

import os

import yaml

from conftest import request
from recipes.helpers import (EXAMPLES, add_to_denylist,
                             assert_a_denylisted_client_gets_403_forbidden,
                             assert_a_limited_client_gets_the_one_error_shape)

CONFIG = os.path.join(EXAMPLES, "traefik", "dynamic.yml")

# ForwardAuth options of the Traefik reference: name -> type.
FORWARD_AUTH = {
    "address": str, "tls": dict, "trustForwardHeader": bool, "authResponseHeaders": list,
    "authResponseHeadersRegex": str, "authRequestHeaders": list,
    "addAuthCookiesToResponse": list, "headerField": str, "forwardBody": bool,
    "maxBodySize": int, "preserveLocationHeader": bool, "preserveRequestMethod": bool,
}
ROUTER = {"rule": str, "entryPoints": list, "middlewares": list, "service": str,
          "priority": int, "tls": dict, "ruleSyntax": str, "observability": dict}


def check_keys(obj, schema, where):
    assert isinstance(obj, dict), f"{where} must be a mapping"
    for k, v in obj.items():
        assert k in schema, f"{where}: unknown option {k!r}"
        assert isinstance(v, schema[k]), f"{where}.{k} must be {schema[k].__name__}"


def test_traefik_dynamic_config_follows_the_forward_auth_schema():
    with open(CONFIG) as f:
        conf = yaml.safe_load(f)
    assert set(conf) == {"http"}
    http = conf["http"]
    fa = http["middlewares"]["ratekit"]["forwardAuth"]
    check_keys(fa, FORWARD_AUTH, "forwardAuth")
    assert fa["address"].startswith("http://") and fa["address"].endswith("/v1/auth")
    # a client must not choose its own X-Forwarded-For at the edge
    assert fa["trustForwardHeader"] is False
    assert all(isinstance(h, str) for h in fa["authResponseHeaders"])
    assert {"RateLimit", "RateLimit-Policy"} <= set(fa["authResponseHeaders"])
    for name, router in http["routers"].items():
        check_keys(router, ROUTER, f"routers.{name}")
        assert router["service"] in http["services"], f"router {name}: unknown service"
        for m in router.get("middlewares", []):
            assert m in http["middlewares"], f"router {name}: unknown middleware {m}"
    chain = http["routers"]["api"]["middlewares"]
    assert "ratekit" in chain
    # before it, the client's own X-Original-* are blanked (Traefik removes a
    # header set to ""): ratekit reads them before Traefik's X-Forwarded-*
    cleaners = [m for m in chain[:chain.index("ratekit")]
                if http["middlewares"][m].get("headers", {}).get("customRequestHeaders", {}).get(
                    "X-Original-URI") == ""]
    assert cleaners, chain
    blanked = http["middlewares"][cleaners[0]]["headers"]["customRequestHeaders"]
    assert blanked == {"X-Original-URI": "", "X-Original-Method": ""}
    for name, svc in http["services"].items():
        servers = svc["loadBalancer"]["servers"]
        assert servers and all(s["url"].startswith("http") for s in servers), name


def traefik_auth(server, method="GET", uri="/api/items", host="api.example.com",
                 client="198.51.100.4", extra=None):
    """The request Traefik's ForwardAuth sends: GET to the address, the
    original request in X-Forwarded-*, the client's own headers copied."""
    headers = {
        "X-Forwarded-Method": method, "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": host, "X-Forwarded-Uri": uri, "X-Forwarded-For": client,
        "User-Agent": "curl/8.0", "Accept": "*/*",
    }
    headers.update(extra or {})
    return request("GET", server.data + "/v1/auth", headers=headers)


def test_ratekitd_decides_on_what_traefik_sends(server):
    server.create_rule(id="writes", algorithm="fixed_window", limit=2, window="1m",
                       match={"methods": ["POST"], "path": "/api/*",
                              "hosts": ["api.example.com"]})
    # GETs, other hosts and other paths are not covered
    r = traefik_auth(server, method="GET")
    assert r.status == 200 and "ratelimit" not in r.headers
    assert traefik_auth(server, method="POST", host="www.example.com").status == 200
    got = [traefik_auth(server, method="POST", uri="/api/items?x=1") for _ in range(3)]
    assert [g.status for g in got] == [200, 200, 429]
    assert got[0].headers["ratelimit-policy"] == '"writes";q=2;w=60'
    assert got[1].headers["ratelimit"].startswith('"writes";r=0;')
    denied = got[2]
    assert int(denied.headers["retry-after"]) >= 1
    assert denied.json()["error"]["code"] == "rate_limited"
    # counted per client address (X-Forwarded-For from Traefik, a trusted peer)
    assert traefik_auth(server, method="POST", client="198.51.100.5").status == 200


def test_ratekitd_answers_traefik_403_for_a_denylisted_client_and_429_for_a_limited_one(server):
    """Traefik's ForwardAuth hands the client any answer that is not a 2xx as
    it is: the denylist's 403, a limit's 429 with the whole error body."""
    server.create_rule(id="edge", algorithm="fixed_window", limit=1, window="1m",
                       match={"path": "/api/*"}, key=["user", "ip"])
    add_to_denylist(server, "user:mallory")
    for _ in range(2):
        r = traefik_auth(server, extra={"X-User-Id": "mallory"})
        assert_a_denylisted_client_gets_403_forbidden(server, r)
    got = [traefik_auth(server, extra={"X-User-Id": "alice"}) for _ in range(2)]
    assert got[0].status == 200
    assert_a_limited_client_gets_the_one_error_shape(got[1], "edge", 1)


def test_traefik_copies_the_clients_api_key_which_ratekit_can_count_by(server):
    server.create_rule(id="per-key", algorithm="fixed_window", limit=1, window="1m",
                       key=["api_key", "ip"])
    a = [traefik_auth(server, extra={"X-API-Key": "k1"}).status for _ in range(2)]
    b = traefik_auth(server, extra={"X-API-Key": "k2"}).status
    assert a == [200, 429] and b == 200


def test_ratekitd_answers_400_to_a_request_it_refuses_which_traefik_hands_the_client(server):
    """Traefik's ForwardAuth gives the client any answer that is not a 2xx as
    it is: a path ratekit will not judge gets its 400, not a pass."""
    server.create_rule(id="all", algorithm="fixed_window", limit=100, window="1m")
    r = traefik_auth(server, uri="/api/" + "a" * 3000)
    assert r.status == 400 and r.json()["error"]["code"] == "invalid_request"
    assert traefik_auth(server, uri="/api/items").status == 200


def test_an_empty_x_original_header_leaves_traefiks_own_to_decide(server):
    """What the recipe's blanking leaves, should a Traefik pass the header on
    empty: ratekit then reads X-Forwarded-Uri and -Method, as sent by Traefik."""
    server.create_rule(id="blank", algorithm="fixed_window", limit=1, window="1m",
                       match={"methods": ["POST"], "path": "/api/*"}, key=["ip"])
    extra = {"X-Original-URI": "", "X-Original-Method": ""}
    got = [traefik_auth(server, method="POST", extra=extra).status for _ in range(2)]
    assert got == [200, 429]
