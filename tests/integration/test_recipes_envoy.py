"""INTEGRATION.md's Envoy recipe: examples/envoy/envoy.yaml checked against
the documented ext_authz (HTTP service) schema, and ratekitd answering
exactly what Envoy sends it: the original method, on path_prefix followed
by the original path."""

import os
import re

import yaml

from conftest import request
from recipes.helpers import (EXAMPLES, add_to_denylist,
                             assert_a_denylisted_client_gets_403_forbidden,
                             assert_a_limited_client_gets_the_one_error_shape)

CONFIG = os.path.join(EXAMPLES, "envoy", "envoy.yaml")
EXT_AUTHZ_TYPE = "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz"
ROUTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"

# Fields of the v3 messages (envoy/extensions/filters/http/ext_authz/v3/ext_authz.proto).
EXT_AUTHZ = {"@type": str, "grpc_service": dict, "http_service": dict,
             "transport_api_version": str, "failure_mode_allow": bool,
             "failure_mode_allow_header_add": bool, "with_request_body": dict,
             "clear_route_cache": bool, "status_on_error": dict, "metadata_context_namespaces": list,
             "filter_enabled": dict, "deny_at_disable": dict, "include_peer_certificate": bool,
             "stat_prefix": str, "allowed_headers": dict, "disallowed_headers": dict}
HTTP_SERVICE = {"server_uri": dict, "path_prefix": str, "authorization_request": dict,
                "authorization_response": dict, "retry_policy": dict}
HTTP_URI = {"uri": str, "cluster": str, "timeout": str}
AUTHZ_REQUEST = {"allowed_headers": dict, "headers_to_add": list}
AUTHZ_RESPONSE = {"allowed_upstream_headers": dict, "allowed_upstream_headers_to_append": dict,
                  "allowed_client_headers": dict, "allowed_client_headers_on_success": dict,
                  "dynamic_metadata_from_headers": dict}
STRING_MATCHER = {"exact", "prefix", "suffix", "contains", "safe_regex"}


def check_keys(obj, schema, where, required=()):
    assert isinstance(obj, dict), f"{where} must be a mapping"
    for k, v in obj.items():
        assert k in schema, f"{where}: unknown field {k!r}"
        assert isinstance(v, schema[k]), f"{where}.{k} must be {schema[k].__name__}"
    for k in required:
        assert k in obj, f"{where}: {k} is required"


def check_list_matcher(obj, where):
    assert set(obj) == {"patterns"} and obj["patterns"], f"{where}: needs patterns"
    for p in obj["patterns"]:
        kinds = set(p) - {"ignore_case"}
        assert len(kinds) == 1 and kinds <= STRING_MATCHER, f"{where}: bad matcher {p}"
        value = p[kinds.pop()]
        assert isinstance(value, str) and value == value.lower(), \
            f"{where}: header names are matched lower-case: {p}"


def load_filters():
    with open(CONFIG) as f:
        conf = yaml.safe_load(f)
    listener = conf["static_resources"]["listeners"][0]
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    return conf, hcm["http_filters"]


def test_envoy_config_follows_the_ext_authz_http_service_schema():
    conf, filters = load_filters()
    names = [f["name"] for f in filters]
    # ext_authz must run before the router, which must be last
    assert names == ["envoy.filters.http.ext_authz", "envoy.filters.http.router"]
    assert filters[1]["typed_config"]["@type"] == ROUTER_TYPE
    ea = filters[0]["typed_config"]
    check_keys(ea, EXT_AUTHZ, "ExtAuthz", required=("@type", "http_service"))
    assert ea["@type"] == EXT_AUTHZ_TYPE and ea["transport_api_version"] == "V3"
    assert "grpc_service" not in ea
    hs = ea["http_service"]
    check_keys(hs, HTTP_SERVICE, "http_service", required=("server_uri", "path_prefix"))
    check_keys(hs["server_uri"], HTTP_URI, "server_uri", required=("uri", "cluster", "timeout"))
    timeout = re.fullmatch(r"(\d+(?:\.\d+)?)s", hs["server_uri"]["timeout"])
    assert timeout and float(timeout.group(1)) <= 1.0, "a short timeout"
    assert hs["path_prefix"] == "/v1/auth"
    clusters = {c["name"] for c in conf["static_resources"]["clusters"]}
    assert hs["server_uri"]["cluster"] in clusters
    req = hs["authorization_request"]
    check_keys(req, AUTHZ_REQUEST, "authorization_request")
    check_list_matcher(req["allowed_headers"], "allowed_headers")
    assert {"exact": "x-forwarded-for"} in req["allowed_headers"]["patterns"]
    resp = hs["authorization_response"]
    check_keys(resp, AUTHZ_RESPONSE, "authorization_response")
    for k, v in resp.items():
        check_list_matcher(v, k)
    assert {"exact": "retry-after"} in resp["allowed_client_headers"]["patterns"]
    assert {"prefix": "ratelimit"} in resp["allowed_client_headers"]["patterns"]
    assert {"prefix": "ratelimit"} in resp["allowed_client_headers_on_success"]["patterns"]
    assert ea["status_on_error"]["code"] == "ServiceUnavailable"


def envoy_check(server, method, path, client="198.51.100.4", extra=None):
    """The check request Envoy's HTTP ext_authz sends ratekit."""
    headers = {
        "Host": "api.example.com", "Content-Length": "0", "x-forwarded-for": client,
        "x-envoy-expected-rq-timeout-ms": "250", "x-envoy-internal": "true",
        "x-request-id": "2d6a1c7e-8b7e-4c3e-9a57-1f0c3d1f0e42",
    }
    headers.update(extra or {})
    return request(method, server.data + "/v1/auth" + path, headers=headers, body=b"")


def test_ratekitd_decides_on_what_envoy_sends(server):
    server.create_rule(id="items", algorithm="fixed_window", limit=2, window="1m",
                       match={"methods": ["POST"], "path": "/api/*"})
    # the original method counts: GET is not covered
    r = envoy_check(server, "GET", "/api/items")
    assert r.status == 200 and "ratelimit" not in r.headers
    # the original query string belongs to the client: no ?deny_status= from it
    got = [envoy_check(server, "POST", "/api/items?deny_status=401") for _ in range(3)]
    assert [g.status for g in got] == [200, 200, 429]
    assert got[0].headers["ratelimit-policy"] == '"items";q=2;w=60'
    denied = got[2]
    assert int(denied.headers["retry-after"]) >= 1
    assert denied.json()["error"]["rule"] == "items"
    assert envoy_check(server, "POST", "/api/items", client="198.51.100.5").status == 200


def test_ratekitd_answers_envoy_403_for_a_denylisted_client_and_429_for_a_limited_one(server):
    """ext_authz (HTTP) denies with the service's status and body, and the
    headers of allowed_client_headers: the denylist's 403 (no Retry-After),
    a limit's 429 with Retry-After and the whole error body."""
    server.create_rule(id="edge", algorithm="fixed_window", limit=1, window="1m",
                       match={"path": "/api/*"}, key=["user", "ip"])
    add_to_denylist(server, "user:mallory")
    for _ in range(2):
        r = envoy_check(server, "GET", "/api/items", extra={"x-user-id": "mallory"})
        assert_a_denylisted_client_gets_403_forbidden(server, r)
    got = [envoy_check(server, "GET", "/api/items", extra={"x-user-id": "alice"})
           for _ in range(2)]
    assert got[0].status == 200
    assert_a_limited_client_gets_the_one_error_shape(got[1], "edge", 1)
    # the recipe sends ratekit the header the denylist entry names, and hands
    # the client the denial's Content-Type
    hs = load_filters()[1][0]["typed_config"]["http_service"]
    assert {"exact": "x-user-id"} in hs["authorization_request"]["allowed_headers"]["patterns"]
    assert {"exact": "content-type"} in \
        hs["authorization_response"]["allowed_client_headers"]["patterns"]


def test_envoy_check_takes_any_method_and_the_root_path(server):
    server.create_rule(id="all", algorithm="fixed_window", limit=1, window="1m")
    assert envoy_check(server, "DELETE", "/").status == 200
    assert envoy_check(server, "PATCH", "/").status == 429
    for method in ("PUT", "OPTIONS", "HEAD", "PROPFIND"):
        assert envoy_check(server, method, "/deep/" + "x" * 1500).status == 429, method


def test_envoy_check_counts_a_path_however_it_is_spelled(server):
    server.create_rule(id="login", algorithm="fixed_window", limit=1, window="1m",
                       match={"path": "/login"})
    assert envoy_check(server, "POST", "/login").status == 200
    assert envoy_check(server, "POST", "/./x/../login").status == 429
    assert envoy_check(server, "POST", "/elsewhere").status == 200


def test_ratekitd_answers_400_to_a_request_it_refuses_which_envoy_denies(server):
    """ext_authz (HTTP) denies with the service's own status anything but a
    200 or a 5xx: a path ratekit will not judge gets its 400, not
    failure_mode_allow, which only a 5xx or no answer reaches."""
    server.create_rule(id="all", algorithm="fixed_window", limit=100, window="1m")
    r = envoy_check(server, "GET", "/api/" + "a" * 3000)
    assert r.status == 400 and r.json()["error"]["code"] == "invalid_request"
    assert envoy_check(server, "GET", "/api/items").status == 200
