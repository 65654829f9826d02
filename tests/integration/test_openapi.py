"""The OpenAPI description of both planes (schema/openapi.yaml), held to the
server: it is well-formed OpenAPI 3.1; it documents exactly the routes of
the C route tables, with their methods, planes and roles; its bounds and
error codes are the server's; and real answers of a running ratekitd,
through every documented operation, fit the documented statuses, headers
and schemas."""

import functools
import glob
import json
import os
import re
import time
import urllib.parse

import yaml

from conftest import ADMIN_TOKEN, ROOT, request

SPEC_PATH = os.path.join(ROOT, "schema", "openapi.yaml")
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# What a route of method "*" is documented with.
ANY_METHOD = ("get", "head", "post", "put", "patch", "delete", "options")
ROLES = ("none", "viewer", "editor", "admin")
PLANE_URLS = {"data": "http://localhost:8080", "admin": "http://localhost:8081"}
DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


class StrictLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key given twice in one mapping (which
    would silently drop the first)."""


def construct_unique_mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        assert key not in seen, f"{SPEC_PATH}:{key_node.start_mark.line + 1}: {key!r} twice"
        seen.add(key)
    return loader.construct_mapping(node, deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                             construct_unique_mapping)


@functools.lru_cache(maxsize=None)
def spec():
    with open(SPEC_PATH, encoding="utf-8") as f:
        return yaml.load(f, Loader=StrictLoader)


def operations():
    """Every documented operation: (method, path, path item, operation)."""
    for path, item in spec()["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield method, path, item, item[method]


def resolve(node):
    """Follows $ref (local JSON pointers) until a node without one."""
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), f"only local references are used: {ref}"
        target = spec()
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            assert isinstance(target, dict) and part in target, f"unresolved $ref {ref}"
            target = target[part]
        node = target
    return node


# ---- a validator for the subset of JSON Schema 2020-12 the document uses ---------------

VALIDATED = {"type", "enum", "const", "required", "properties", "additionalProperties", "items",
             "minItems", "maxItems", "maxProperties", "minimum", "maximum", "minLength",
             "maxLength", "pattern", "oneOf", "anyOf", "allOf", "not", "$ref", "format"}
ANNOTATIONS = {"description", "default", "examples", "title"}
# JSON Schema's maxLength counts characters; where the server bounds a UTF-8
# string in bytes, the document says so with this extension instead.
MAX_BYTES = "x-max-bytes"
TYPES = {"null", "boolean", "integer", "number", "string", "array", "object"}


def is_type(value, t):
    if t == "null":
        return value is None
    if t == "boolean":
        return isinstance(value, bool)
    if t == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer())
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if t == "string":
        return isinstance(value, str)
    if t == "array":
        return isinstance(value, list)
    if t == "object":
        return isinstance(value, dict)
    raise AssertionError(f"unknown type {t!r}")


def same(a, b):
    """JSON equality (true is not 1)."""
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a is b or (a == b and type(a) is type(b))
    return a == b


def schema_errors(value, schema, where="$"):
    """Every way value fails schema, as readable lines (empty: valid)."""
    errors = []
    for key in schema:
        assert key in VALIDATED or key in ANNOTATIONS or key.startswith("x-"), (
            f"the validator does not know the keyword {key!r}")
    if "$ref" in schema:
        errors += schema_errors(value, resolve({"$ref": schema["$ref"]}), where)
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(is_type(value, t) for t in types):
            return errors + [f"{where}: {json.dumps(value)[:80]} is not {'/'.join(types)}"]
    if "enum" in schema and not any(same(value, e) for e in schema["enum"]):
        errors.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if "const" in schema and not same(value, schema["const"]):
        errors.append(f"{where}: {value!r} is not {schema['const']!r}")
    if is_type(value, "number"):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{where}: {value} < minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{where}: {value} > maximum {schema['maximum']}")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            errors.append(f"{where}: shorter than {schema['minLength']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{where}: longer than {schema['maxLength']}")
        if MAX_BYTES in schema and len(value.encode()) > schema[MAX_BYTES]:
            errors.append(f"{where}: longer than {schema[MAX_BYTES]} bytes")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{where}: {value!r} does not match {schema['pattern']}")
        if schema.get("format") == "date-time" and not DATE_TIME.match(value):
            errors.append(f"{where}: {value!r} is not an RFC 3339 date-time")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            errors.append(f"{where}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(f"{where}: more than {schema['maxItems']} items")
        if "items" in schema:
            for i, item in enumerate(value):
                errors += schema_errors(item, schema["items"], f"{where}[{i}]")
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                errors.append(f"{where}: missing {name!r}")
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            errors.append(f"{where}: more than {schema['maxProperties']} members")
        props = schema.get("properties", {})
        for name, sub in props.items():
            if name in value:
                errors += schema_errors(value[name], sub, f"{where}.{name}")
        extra = [k for k in value if k not in props]
        more = schema.get("additionalProperties", True)
        if more is False and extra:
            errors.append(f"{where}: undocumented members {extra}")
        elif isinstance(more, dict):
            for name in extra:
                errors += schema_errors(value[name], more, f"{where}.{name}")
    for sub in schema.get("allOf", []):
        errors += schema_errors(value, sub, where)
    if "anyOf" in schema and not any(not schema_errors(value, s, where) for s in schema["anyOf"]):
        errors.append(f"{where}: matches none of anyOf "
                      f"({[schema_errors(value, s, where)[:2] for s in schema['anyOf']]})")
    if "oneOf" in schema:
        fits = [s for s in schema["oneOf"] if not schema_errors(value, s, where)]
        if len(fits) != 1:
            detail = [schema_errors(value, s, where)[:2] for s in schema["oneOf"]]
            errors.append(f"{where}: matches {len(fits)} of oneOf, not 1 ({detail})")
    if "not" in schema and not schema_errors(value, schema["not"], where):
        errors.append(f"{where}: matches a schema it must not")
    return errors


def assert_fits(value, schema, what):
    errors = schema_errors(value, schema)
    assert not errors, f"{what} does not fit its schema:\n  " + "\n  ".join(errors[:20])


# ---- the C route tables ------------------------------------------------------------------

ROUTE_TABLE = re.compile(r"const\s+rk_route_t\s+(rk_\w+_routes)\s*\[\]\s*=\s*\{(.*?)\n\};", re.S)
ROUTE_ROW = re.compile(r'\{\s*"([A-Z]+|\*)"\s*,\s*"([^"]+)"\s*,\s*\w+\s*,\s*RK_ROLE_([A-Z]+)\s*,\s*(true|false)\s*\}')


def c_sources():
    for path in sorted(glob.glob(os.path.join(ROOT, "server", "src", "**", "*.c"), recursive=True)):
        with open(path, encoding="utf-8") as f:
            yield path, f.read()


@functools.lru_cache(maxsize=None)
def c_routes():
    """{(method, openapi path): (role, plane, any_method, writes_database)} from the C
    route tables."""
    tables = {}
    for _, text in c_sources():
        for m in ROUTE_TABLE.finditer(text):
            tables[m.group(1)] = ROUTE_ROW.findall(m.group(2))
    with open(os.path.join(ROOT, "server", "src", "main.c"), encoding="utf-8") as f:
        main = f.read()
    planes = {}
    for plane in ("data", "admin"):
        block = re.search(plane + r"_tables\[\]\s*=\s*\{(.*?)\};", main, re.S)
        assert block, f"main.c has no {plane}_tables"
        for name in re.findall(r"\{\s*(rk_\w+_routes)\s*,", block.group(1)):
            assert name not in planes, f"{name} is on both planes"
            planes[name] = plane
    assert set(planes) == set(tables), (
        f"route tables defined {sorted(tables)} and listened {sorted(planes)} differ")
    routes = {}
    for name, rows in tables.items():
        assert rows, f"{name}: no row parsed"
        for method, pattern, role, writes in rows:
            path = re.sub(r"\{(\w+)\*\}", r"{\1}", pattern)
            if path.endswith("/*"):
                path = path[:-2] + "/{path}"
            for m in (ANY_METHOD if method == "*" else (method.lower(),)):
                key = (m, path)
                assert key not in routes, f"{m.upper()} {path} is routed twice"
                routes[key] = (role.lower(), planes[name], method == "*", writes == "true")
    return routes


def c_define(header, name):
    """The value of `#define NAME <integer expression>` in a header under server/src."""
    with open(os.path.join(ROOT, "server", "src", header), encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"^#define\s+" + name + r"\s+(.+?)\s*(/\*.*)?$", text, re.M)
    assert m, f"{header} defines no {name}"
    expr = re.sub(r"(\d+)LL\b", r"\1", m.group(1))
    expr = re.sub(r"\b(RK_[A-Z_]+)\b", lambda r: str(c_define(header, r.group(1))), expr)
    assert re.fullmatch(r"[\d\s()*+\-]+", expr), f"{name} = {expr!r}"
    return eval(expr)  # digits and arithmetic only, checked above


# ---- the document ---------------------------------------------------------------------------

def test_document_is_structurally_valid_openapi_3_1():
    doc = spec()
    assert str(doc["openapi"]).startswith("3.1."), doc["openapi"]
    for key in ("title", "version", "description"):
        assert doc["info"].get(key), f"info.{key} is missing"
    with open(os.path.join(ROOT, "VERSION"), encoding="utf-8") as f:
        assert doc["info"]["version"] == f.read().strip(), "info.version is not VERSION"
    assert [s["url"] for s in doc["servers"]] == [PLANE_URLS["data"], PLANE_URLS["admin"]]
    schemes = doc["components"]["securitySchemes"]
    tags = {t["name"] for t in doc["tags"]}
    ids = set()
    for method, path, item, op in operations():
        where = f"{method.upper()} {path}"
        assert op.get("operationId") and op["operationId"] not in ids, f"{where}: operationId"
        ids.add(op["operationId"])
        assert op.get("summary"), f"{where}: no summary"
        assert set(op.get("tags", [])) <= tags and op.get("tags"), f"{where}: undeclared tags"
        assert op.get("responses"), f"{where}: no responses"
        for status, response in op["responses"].items():
            assert re.fullmatch(r"[1-5](\d\d|XX)|default", str(status)), f"{where}: {status}"
            assert resolve(response).get("description"), f"{where} {status}: no description"
        assert "security" in op, f"{where}: no security (use [] for none)"
        for requirement in op["security"]:
            assert set(requirement) <= set(schemes), f"{where}: unknown scheme {requirement}"
        params = [resolve(p) for p in item.get("parameters", []) + op.get("parameters", [])]
        for p in params:
            assert p["in"] in ("path", "query", "header", "cookie") and "schema" in p, p
        declared = {p["name"] for p in params if p["in"] == "path"}
        assert declared == set(re.findall(r"\{(\w+)\}", path)), f"{where}: path parameters"
        assert all(p.get("required") for p in params if p["in"] == "path"), where
        if "requestBody" in op:
            assert resolve(op["requestBody"])["content"], f"{where}: empty requestBody"


def test_every_ref_resolves():
    count = 0

    def walk(node, where):
        nonlocal count
        if isinstance(node, dict):
            if "$ref" in node:
                count += 1
                resolve({"$ref": node["$ref"]})
            for k, v in node.items():
                walk(v, f"{where}/{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{where}[{i}]")

    walk(spec(), "#")
    assert count > 100, "the document's references were not walked"


def all_schemas():
    """Every schema of the document with where it is: components, parameters,
    headers, media types."""
    doc = spec()
    for name, schema in doc["components"]["schemas"].items():
        yield f"components.schemas.{name}", schema
    for kind in ("parameters", "headers"):
        for name, node in doc["components"][kind].items():
            yield f"components.{kind}.{name}", node["schema"]
    for method, path, item, op in operations():
        for p in item.get("parameters", []) + op.get("parameters", []):
            if "schema" in p:
                yield f"{method} {path} parameter {p['name']}", p["schema"]
        media = dict(op.get("requestBody", {}).get("content", {}))
        for status, response in op["responses"].items():
            for ct, m in response.get("content", {}).items():
                media[f"{status} {ct}"] = m
        for name, m in media.items():
            yield f"{method} {path} {name}", m["schema"]


def test_schemas_use_only_validated_keywords_and_their_examples_fit():
    def lint(schema, where):
        assert isinstance(schema, dict), f"{where}: a schema must be an object"
        for key, value in schema.items():
            assert key in VALIDATED or key in ANNOTATIONS or key.startswith("x-"), (
                f"{where}: keyword {key!r} (a typo, or one the test's validator ignores)")
            if key == "type":
                assert set(value if isinstance(value, list) else [value]) <= TYPES, where
            if key == "pattern":
                re.compile(value)
        if "properties" in schema:
            missing = set(schema.get("required", [])) - set(schema["properties"])
            assert not missing, f"{where}: required {missing} are not properties"
            for name, sub in schema["properties"].items():
                lint(sub, f"{where}.{name}")
        for key in ("items", "not"):
            if key in schema:
                lint(schema[key], f"{where}/{key}")
        if isinstance(schema.get("additionalProperties"), dict):
            lint(schema["additionalProperties"], f"{where}/additionalProperties")
        for key in ("allOf", "anyOf", "oneOf"):
            for i, sub in enumerate(schema.get(key, [])):
                lint(sub, f"{where}/{key}[{i}]")
        for i, example in enumerate(schema.get("examples", [])):
            assert_fits(example, schema, f"{where} examples[{i}]")
        if "default" in schema and "$ref" not in schema:
            assert_fits(schema["default"], schema, f"{where} default")

    n = 0
    for where, schema in all_schemas():
        lint(schema, where)
        n += 1
    assert n > 100

    # Examples of parameters, headers and media types are real answers: they fit too.
    checked = 0
    doc = spec()
    for kind in ("parameters", "headers"):
        for name, node in doc["components"][kind].items():
            if "example" in node:
                assert_fits(node["example"], node["schema"], f"components.{kind}.{name} example")
                checked += 1
    for method, path, item, op in operations():
        media = dict(op.get("requestBody", {}).get("content", {}))
        for status, response in op["responses"].items():
            for ct, m in resolve(response).get("content", {}).items():
                media[f"{status} {ct}"] = m
        for name, m in media.items():
            examples = [m["example"]] if "example" in m else []
            examples += [e["value"] for e in m.get("examples", {}).values()]
            for example in examples:
                assert_fits(example, m["schema"], f"{method.upper()} {path} {name} example")
                checked += 1
    assert checked > 40, checked


def test_every_c_route_is_documented_and_every_documented_operation_is_routed():
    routed = c_routes()
    assert len(routed) > 40 and ("post", "/v1/check") in routed, "the route tables were not read"
    documented = {(m, p) for m, p, _, _ in operations()}
    undocumented = sorted(set(routed) - documented)
    unrouted = sorted(documented - set(routed))
    assert not undocumented, f"routes of the C tables missing from openapi.yaml: {undocumented}"
    assert not unrouted, f"operations of openapi.yaml no C table routes: {unrouted}"
    for method, path, item, op in operations():
        any_method = routed[(method, path)][2]
        assert bool(item.get("x-ratekit-any-method")) == any_method, (
            f"{path}: x-ratekit-any-method must say whether the C route takes any method")


def test_documented_roles_are_the_routes_min_role():
    routed = c_routes()
    for method, path, _, op in operations():
        assert op.get("x-ratekit-role") in ROLES, f"{method.upper()} {path}: x-ratekit-role"
        assert op["x-ratekit-role"] == routed[(method, path)][0], (
            f"{method.upper()} {path}: documented role {op['x-ratekit-role']}, "
            f"the route's min_role {routed[(method, path)][0]}")


def test_each_path_names_the_plane_that_serves_it():
    routed = c_routes()
    for method, path, item, op in operations():
        servers = op.get("servers", item.get("servers"))
        assert servers and len(servers) == 1, f"{path}: one server, the plane's"
        assert servers[0]["url"] == PLANE_URLS[routed[(method, path)][1]], (
            f"{method.upper()} {path} is served by the {routed[(method, path)][1]} plane")


def test_security_and_auth_answers_follow_the_role():
    routed = c_routes()
    for method, path, _, op in operations():
        where = f"{method.upper()} {path}"
        role, plane, _, writes = routed[(method, path)]
        schemes = {name for req in op["security"] for name in req}
        statuses = set(map(str, op["responses"]))
        if role != "none":
            assert "adminBearer" in schemes and {} not in op["security"], where
            assert "401" in statuses, f"{where}: a token is needed, 401 is answered"
        else:
            assert "adminBearer" not in schemes, where
        if role in ("editor", "admin"):
            assert "403" in statuses, f"{where}: a viewer token is answered 403"
        if role == "viewer" and plane == "admin":
            assert "403" not in statuses, f"{where}: every valid token may do this: no 403"
        if plane == "data" and path.startswith("/v1/"):
            assert {} in op["security"] and {"checkBearer", "checkTokenHeader"} <= schemes, where
            assert "401" in statuses, f"{where}: RATEKIT_CHECK_TOKEN answers 401"
        if plane == "data" and not path.startswith("/v1/"):
            assert op["security"] == [], where
        if "streamAccessToken" in schemes:
            assert path == "/api/v1/stream", f"{where}: ?access_token= is the stream's alone"
        if "requestBody" in op:
            assert "413" in statuses, f"{where}: a body too large is answered 413"
        if writes:
            answer = resolve(op["responses"].get("503", {}))
            assert "database_moved" in answer.get("description", ""), (
                f"{where} writes the database: its 503 names database_moved")


def test_error_codes_are_the_servers():
    patterns = [r'rk_reply_error\(\s*[^,;]+,\s*[^,;]+,\s*"([a-z_]+)"',
                r'rk_reply_invalid\(\s*[^,;]+,\s*"([a-z_]+)"',
                r'\bfail\(\s*[^,;]+,\s*\d+,\s*"([a-z_]+)"',
                r'\\"code\\":\\"([a-z_]+)\\"']
    used = set()
    for _, text in c_sources():
        for p in patterns:
            used |= set(re.findall(p, text))
    assert {"invalid_json", "rate_limited", "method_not_allowed"} <= used, "codes not read"
    documented = set(spec()["components"]["schemas"]["Error"]["x-ratekit-error-codes"])
    assert used - documented == set(), "error codes the server answers, undocumented"
    assert documented - used == set(), "documented error codes the server never answers"


def test_rule_bounds_are_the_servers():
    s = spec()["components"]["schemas"]
    props = s["Rule"]["properties"]
    assert s["Limit"]["maximum"] == c_define("limiter/limiter.h", "RK_LIMIT_MAX")
    assert s["Burst"]["maximum"] == c_define("limiter/limiter.h", "RK_BURST_MAX")
    assert props["burst"]["maximum"] == c_define("limiter/limiter.h", "RK_BURST_MAX")
    assert s["WindowMs"]["maximum"] == c_define("limiter/limiter.h", "RK_WINDOW_MS_MAX")
    assert s["Cost"]["maximum"] == c_define("limiter/limiter.h", "RK_COST_MAX")
    for word, name in (("100,000", "RK_SLIDING_LOG_LIMIT_MAX"),
                       ("10,000", "RK_CONCURRENCY_LIMIT_MAX")):
        assert int(word.replace(",", "")) == c_define("limiter/limiter.h", name)
        assert word in s["Limit"]["description"], f"Limit must state {name}"
    assert s["RuleId"]["maxLength"] == c_define("rules/rules.h", "RK_RULE_ID_MAX")
    assert "{0,%d}" % (c_define("rules/rules.h", "RK_RULE_ID_MAX") - 1) in s["RuleId"]["pattern"]
    assert props["key"]["maxItems"] == c_define("rules/rules.h", "RK_KEY_CHAIN_MAX")
    assert s["Plans"]["maxProperties"] == c_define("rules/rules.h", "RK_PLANS_MAX")
    assert props["description"][MAX_BYTES] == c_define("rules/rule.h", "RK_RULE_DESCRIPTION_MAX")
    assert s["RuleInput"]["properties"]["description"][MAX_BYTES] == c_define(
        "rules/rule.h", "RK_RULE_DESCRIPTION_MAX")
    assert props["priority"]["minimum"] == c_define("rules/rule.h", "RK_RULE_PRIORITY_MIN")
    assert props["priority"]["maximum"] == c_define("rules/rule.h", "RK_RULE_PRIORITY_MAX")
    match = s["Match"]["properties"]
    assert match["methods"]["maxItems"] == c_define("rules/rule.h", "RK_RULE_METHODS_MAX")
    assert match["hosts"]["maxItems"] == c_define("rules/rule.h", "RK_RULE_HOSTS_MAX")
    assert match["hosts"]["items"]["maxLength"] == c_define("rules/rule.h", "RK_RULE_HOST_LEN_MAX")
    assert match["headers"]["maxProperties"] == c_define("rules/rule.h", "RK_RULE_HEADERS_MAX")
    assert match["headers"]["additionalProperties"][MAX_BYTES] == c_define(
        "rules/rule.h", "RK_RULE_HEADER_VALUE_MAX")
    assert match["path"][MAX_BYTES] == c_define("check/match.h", "RK_MATCH_PATTERN_MAX")
    for schema, field, source in (("OverrideInput", "note", "http/overrides_api.c"),
                                  ("Override", "note", "http/overrides_api.c"),
                                  ("ListEntryInput", "note", "http/lists_api.c"),
                                  ("BanInput", "reason", "http/lists_api.c")):
        assert s[schema]["properties"][field][MAX_BYTES] == c_define(source, "NOTE_MAX"), schema
    assert s["ListEntryInput"]["properties"]["value"]["maxLength"] == c_define(
        "lists/list_value.h", "RK_LIST_VALUE_MAX")
    assert s["Override"]["properties"]["key"]["maxLength"] == c_define(
        "store/store.h", "RK_STORE_KEY_MAX")
    assert s["TokenInput"]["properties"]["name"]["maxLength"] == c_define(
        "auth/tokens.h", "RK_TOKEN_NAME_MAX")


def test_a_length_in_characters_bounds_only_ascii_strings():
    """maxLength counts characters, the server bytes: the two agree only
    where a pattern keeps the string to ASCII; elsewhere x-max-bytes."""
    def walk(schema, where):
        if not isinstance(schema, dict):
            return
        if "maxLength" in schema:
            pattern = resolve(schema).get("pattern") or schema.get("pattern")
            assert pattern, f"{where}: maxLength without a pattern keeping it to ASCII"
            assert not re.search(pattern, "\u00e9") and not re.search(pattern, "a\u00e9"), (
                f"{where}: maxLength on a pattern that lets non-ASCII in: {pattern}")
        for key, sub in schema.items():
            if key in ("properties", "$defs"):
                for name, s in sub.items():
                    walk(s, f"{where}.{name}")
            elif key in ("items", "not", "additionalProperties"):
                walk(sub, f"{where}/{key}")
            elif key in ("allOf", "anyOf", "oneOf"):
                for i, s in enumerate(sub):
                    walk(s, f"{where}/{key}[{i}]")
    for where, schema in all_schemas():
        walk(schema, where)


def test_string_bounds_count_bytes_as_the_server_does(server):
    """A string of two-byte characters past the byte bound (but within as
    many characters) is refused by the server and by the document alike; one
    at the bound is taken by both."""
    s = spec()["components"]["schemas"]
    server.create_rule(id="tb", algorithm="token_bucket", limit=5, window="1m")

    def rule_with(field, value):
        body = {"id": "utf8", "algorithm": "token_bucket", "limit": 5, "window": "1m"}
        if field == "description":
            body["description"] = value
        elif field == "path":
            body["match"] = {"path": value}
        else:
            body["match"] = {"headers": {"X-Env": value}}
        return server.admin("POST", "/api/v1/rules?dry_run=1", body).status

    cases = [
        (s["RuleInput"]["properties"]["description"], "", lambda v: rule_with("description", v)),
        (s["Match"]["properties"]["path"], "/", lambda v: rule_with("path", v)),
        (s["Match"]["properties"]["headers"]["additionalProperties"], "",
         lambda v: rule_with("header", v)),
        (s["OverrideInput"]["properties"]["note"], "", lambda v: server.admin(
            "PUT", "/api/v1/rules/tb/overrides/user:1", {"limit": 2, "note": v}).status),
        (s["ListEntryInput"]["properties"]["note"], "", lambda v: server.admin(
            "POST", "/api/v1/lists", {"list": "denylist", "value": "user:utf8-list", "note": v}).status),
        (s["BanInput"]["properties"]["reason"], "", lambda v: server.admin(
            "POST", "/api/v1/bans", {"value": "user:utf8-ban", "duration": "1m", "reason": v}).status),
    ]
    for schema, prefix, send in cases:
        bound = schema.get(MAX_BYTES, schema.get("maxLength"))
        assert isinstance(bound, int), schema
        at = prefix + "\u00e9" * ((bound - len(prefix)) // 2)
        over = at + "\u00e9"
        for value in (at, over):
            documented = not schema_errors(value, schema)
            status = send(value)
            assert status in (200, 201, 400), (schema, status)
            assert documented == (status in (200, 201)), (
                f"{len(value)} characters, {len(value.encode())} bytes: the document says "
                f"{'valid' if documented else 'invalid'}, the server answered {status}")
    assert s["BatchRequest"]["properties"]["checks"]["maxItems"] == c_define(
        "http/check_api.c", "BATCH_MAX")
    assert s["Decision"]["properties"]["results"]["maxItems"] == c_define(
        "check/check.h", "RK_CHECK_MAX_ITEMS")
    assert s["Algorithm"]["enum"] == ["fixed_window", "sliding_window", "sliding_log",
                                      "token_bucket", "gcra", "leaky_bucket", "concurrency"]


def test_the_validator_refuses_answers_that_do_not_fit():
    s = spec()["components"]["schemas"]
    rule = {"id": "login", "description": "", "key": ["ip"], "algorithm": "token_bucket",
            "limit": 3, "window_ms": 60000, "burst": None, "mode": "enforce", "priority": 100,
            "fail_mode": None, "plans": {}, "version": 1, "created_at": "2026-11-23T02:04:21Z",
            "updated_at": "2026-11-23T02:04:21Z",
            "match": {"methods": [], "path": None, "hosts": [], "headers": {}}}
    assert schema_errors(rule, s["Rule"]) == []
    assert schema_errors(dict(rule, limit=0), s["Rule"])
    assert schema_errors(dict(rule, limit=True), s["Rule"])
    assert schema_errors(dict(rule, mode="loud"), s["Rule"])
    assert schema_errors(dict(rule, extra=1), s["Rule"])
    assert schema_errors(dict(rule, key=["ip+nope"]), s["Rule"])
    assert schema_errors(dict(rule, created_at="yesterday"), s["Rule"])
    assert schema_errors({k: v for k, v in rule.items() if k != "plans"}, s["Rule"])
    assert schema_errors({"allowed": True, "reason": "safelist", "results": [1]},
                         {"$ref": "#/components/schemas/CheckAnswer"})
    assert schema_errors({"error": {"code": "x"}}, s["Error"])


# ---- live answers -----------------------------------------------------------------------

class Api:
    """Calls a running ratekitd by documented operation and checks each answer
    against the document: status documented, content type, body schema,
    documented headers."""

    NO_TOKEN = object()

    def __init__(self, server):
        self.server = server
        self.answered = {}  # (method, path) -> statuses seen

    def call(self, method, path, url=None, body=None, token=None, headers=None, expect=None):
        item = spec()["paths"][path]
        op = item[method.lower()]
        url = url or path
        template = re.escape(path)
        template = re.sub(r"\\\{\w+\\\}$", ".+", template)
        template = re.sub(r"\\\{\w+\\\}", "[^/]+", template)
        assert re.fullmatch(template, url.split("?")[0]), f"{url} is not {path}"
        plane = "data" if item["servers"][0]["url"] == PLANE_URLS["data"] else "admin"
        base = self.server.data if plane == "data" else self.server.admin_url
        hdrs = dict(headers or {})
        if op["x-ratekit-role"] != "none" and token is not self.NO_TOKEN:
            hdrs["Authorization"] = "Bearer " + (token or self.server.token)
        r = request(method, base + url, body, headers=hdrs)
        where = f"{method} {url} -> {r.status} {r.body[:200]!r}"
        if expect is not None:
            assert r.status == expect, where
        self.answered.setdefault((method.lower(), path), set()).add(r.status)
        responses = op["responses"]
        key = next((k for k in (str(r.status), f"{r.status // 100}XX", "default")
                    if k in responses), None)
        assert key, f"{where}: status {r.status} is not documented"
        response = resolve(responses[key])
        content = response.get("content", {})
        if method == "HEAD" or r.status == 204:
            assert r.body == b"", where
        if r.body == b"" and method != "HEAD":
            assert not content, f"{where}: documented with a body"
        parsed = None
        if r.body:
            ct = r.headers.get("content-type", "").split(";")[0].strip()
            assert ct in content, f"{where}: content type {ct!r} not documented ({list(content)})"
            if ct == "application/json":
                parsed = json.loads(r.body)
                assert_fits(parsed, content[ct]["schema"], where)
        for name, h in response.get("headers", {}).items():
            h = resolve(h)
            value = r.headers.get(name.lower())
            assert value is not None or not h.get("required"), f"{where}: no {name}"
            if value is not None:
                schema = resolve(h["schema"])
                if schema.get("type") == "integer":
                    assert re.fullmatch(r"-?\d+", value), f"{where}: {name}: {value!r}"
                    value = int(value)
                assert_fits(value, h["schema"], f"{where} header {name}")
        return r, parsed


def rl_headers(r):
    return {k: v for k, v in r.headers.items() if "ratelimit" in k or k == "retry-after"}


def test_every_operation_answers_as_documented(server):
    api = Api(server)
    # Before any rule: nothing covers the request.
    _, a = api.call("POST", "/v1/check", body={"request": {"path": "/x", "ip": "203.0.113.9"}},
                    expect=200)
    assert a == {"allowed": True, "results": []}

    # Rules.
    login = {"id": "login", "description": "sign-in attempts per client",
             "algorithm": "token_bucket", "limit": 3, "window": "1m",
             "match": {"methods": ["POST"], "path": "/login"}, "key": ["user", "ip"]}
    api.call("POST", "/api/v1/rules", body=login, expect=201)
    api.call("POST", "/api/v1/rules", url="/api/v1/rules?dry_run=1",
             body=dict(login, id="dry"), expect=200)
    api.call("POST", "/api/v1/rules", body={"id": "exports", "algorithm": "concurrency",
                                            "limit": 2, "window": "5m", "key": "user",
                                            "match": {"path": "/exports/*"}}, expect=201)
    _, smooth = api.call("POST", "/api/v1/rules", body={
        "id": "smooth", "algorithm": "leaky_bucket", "limit": 10, "window_ms": 1000,
        "burst": 5, "shape": True, "match": {"path": "/slow/*", "hosts": ["*.Example.com"]},
        "plans": {"pro": {"limit": 20, "window": "2s"}}, "mode": "shadow",
        "fail_mode": "open", "priority": -5}, expect=201)
    assert smooth["shape"] is True and smooth["match"]["hosts"] == ["*.example.com"]
    _, e = api.call("POST", "/api/v1/rules", body=login, expect=409)
    assert e["error"]["code"] == "conflict"
    _, e = api.call("POST", "/api/v1/rules", body={"id": "Bad", "limit": 0}, expect=400)
    assert e["error"]["code"] == "invalid_rule" and len(e["error"]["errors"]) >= 3
    _, e = api.call("POST", "/api/v1/rules", body=None, expect=400)
    assert e["error"]["code"] == "invalid_json"
    _, rules = api.call("GET", "/api/v1/rules", expect=200)
    assert [x["id"] for x in rules["rules"]] == ["exports", "login", "smooth"]
    api.call("GET", "/api/v1/rules/{id}", url="/api/v1/rules/login", expect=200)
    api.call("GET", "/api/v1/rules/{id}", url="/api/v1/rules/nope", expect=404)
    api.call("PUT", "/api/v1/rules/{id}", url="/api/v1/rules/login",
             body=dict({k: v for k, v in login.items() if k != "id"}, description="replaced"),
             expect=200)
    api.call("PUT", "/api/v1/rules/{id}", url="/api/v1/rules/nope", body=login, expect=400)
    api.call("PATCH", "/api/v1/rules/{id}", url="/api/v1/rules/login", body={"limit": 5},
             expect=200)
    _, history = api.call("GET", "/api/v1/rules/{id}/history",
                          url="/api/v1/rules/login/history", expect=200)
    assert [h["action"] for h in history["history"]] == ["update", "update", "create"]
    api.call("POST", "/api/v1/rules/{id}/restore/{version}",
             url="/api/v1/rules/login/restore/1", expect=200)
    api.call("POST", "/api/v1/rules/{id}/restore/{version}",
             url="/api/v1/rules/login/restore/99", expect=404)
    _, export = api.call("GET", "/api/v1/rules/export", expect=200)
    _, imported = api.call("POST", "/api/v1/rules/import",
                           url="/api/v1/rules/import?dry_run=1", body=export, expect=200)
    assert imported["dry_run"] is True and imported["created"] == 0

    # The data plane.
    for i in range(4):
        r, a = api.call("POST", "/v1/check", body={"rule": "login", "key": "203.0.113.7"},
                        expect=200)
        assert a["allowed"] == (i < 3) and set(rl_headers(r)) >= {
            "ratelimit-policy", "ratelimit", "x-ratelimit-limit", "x-ratelimit-remaining",
            "x-ratelimit-reset"}
        assert ("retry-after" in r.headers) == (i == 3)
    _, a = api.call("POST", "/v1/check", body={"request": {
        "method": "POST", "path": "/login", "host": "api.example.com", "ip": "203.0.113.9",
        "headers": {"X-User-Id": "42"}}}, expect=200)
    assert a["results"][0]["key"] == "user:42"
    _, e = api.call("POST", "/v1/check", body={"rule": "nope", "key": "k"}, expect=404)
    assert e["error"]["code"] == "unknown_rule"
    api.call("POST", "/v1/check", body=None, headers={"Content-Type": "application/json"},
             expect=400)
    _, b = api.call("POST", "/v1/check/batch", body={"checks": [
        {"rule": "login", "key": "198.51.100.1"}, {"rule": "nope", "key": "x"}]}, expect=200)
    assert "error" in b["results"][1]
    api.call("POST", "/v1/check/batch", body={"checks": []}, expect=400)
    _, a = api.call("POST", "/v1/acquire", body={"rule": "exports", "key": "user:42"},
                    expect=200)
    lease = a["lease"]
    api.call("POST", "/v1/acquire", body={"rule": "login", "key": "user:42"}, expect=400)
    _, rel = api.call("POST", "/v1/release", body={"lease": lease}, expect=200)
    assert rel == {"released": True}
    _, rel = api.call("POST", "/v1/release", body={"lease": lease}, expect=200)
    assert rel == {"released": False}
    api.call("POST", "/v1/release", body={"lease": "nope"}, expect=400)
    api.call("GET", "/healthz", expect=200)
    api.call("GET", "/readyz", expect=200)

    # Forward-auth.
    original = {"X-Original-URI": "/login", "X-Original-Method": "POST", "X-User-Id": "7"}
    r, a = api.call("GET", "/v1/auth", headers=original, expect=200)
    assert a == {"allowed": True} and "ratelimit" in r.headers
    api.call("POST", "/v1/auth", headers=original, expect=200)
    api.call("GET", "/v1/auth", headers=original, expect=200)
    r, e = api.call("GET", "/v1/auth", headers=original, expect=429)
    assert e["error"]["code"] == "rate_limited" and int(r.headers["retry-after"]) >= 1
    api.call("GET", "/v1/auth", url="/v1/auth?deny_status=403", headers=original, expect=403)
    api.call("GET", "/v1/auth", url="/v1/auth?deny_status=418", headers=original, expect=418)
    api.call("GET", "/v1/auth", headers={"X-Original-URI": "login"}, expect=400)
    for method in ANY_METHOD:
        api.call(method.upper(), "/v1/auth/{path}", url="/v1/auth/api/items?page=2", expect=200)
    r, _ = api.call("POST", "/v1/auth/{path}", url="/v1/auth/login",
                    headers={"X-User-Id": "7"}, expect=429)

    # Try it, counters.
    _, t = api.call("POST", "/api/v1/check", body={"rule": "login", "key": "user:9"}, expect=200)
    assert t["headers"]["RateLimit-Policy"] == '"login";q=3;w=60'
    api.call("POST", "/api/v1/check", body={"rule": "nope", "key": "k"}, expect=404)
    api.call("GET", "/api/v1/counters", url="/api/v1/counters?rule=login&key=203.0.113.7",
             expect=200)
    api.call("GET", "/api/v1/counters", url="/api/v1/counters?rule=login", expect=400)
    api.call("DELETE", "/api/v1/counters", url="/api/v1/counters?rule=login&key=203.0.113.7",
             expect=204)
    api.call("DELETE", "/api/v1/counters", url="/api/v1/counters?rule=nope&key=k", expect=404)

    # Overrides.
    key = "/api/v1/rules/login/overrides/" + urllib.parse.quote("user:42", safe="")
    api.call("PUT", "/api/v1/rules/{id}/overrides/{key}", url=key,
             body={"limit": 100, "window": "2m", "expires_at": "2099-01-01T00:00:00Z",
                   "note": "partner"}, expect=200)
    _, e = api.call("PUT", "/api/v1/rules/{id}/overrides/{key}", url=key,
                    body={"limit": 0, "colour": "red"}, expect=400)
    assert e["error"]["code"] == "invalid_override"
    api.call("GET", "/api/v1/rules/{id}/overrides", url="/api/v1/rules/login/overrides",
             expect=200)
    api.call("GET", "/api/v1/rules/{id}/overrides/{key}", url=key, expect=200)
    _, export = api.call("GET", "/api/v1/rules/export", expect=200)
    assert [o["key"] for o in export["overrides"]] == ["user:42"]
    _, imported = api.call("POST", "/api/v1/rules/import",
                           url="/api/v1/rules/import?dry_run=1",
                           body=dict(export, overrides=export["overrides"] + [
                               {"rule": "login", "key": "user:7", "limit": 9}]), expect=200)
    assert imported["overrides"] == {"created": 1, "updated": 0, "deleted": 0, "expired": 0}
    api.call("DELETE", "/api/v1/rules/{id}/overrides/{key}", url=key, expect=204)
    api.call("GET", "/api/v1/rules/{id}/overrides/{key}", url=key, expect=404)

    # Lists and bans.
    _, deny = api.call("POST", "/api/v1/lists",
                       body={"list": "denylist", "value": "192.0.2.0/24", "note": "scanner"},
                       expect=201)
    api.call("POST", "/api/v1/lists", body={"list": "safelist", "value": "user:1",
                                            "expires_at": "2099-01-01T00:00:00Z"}, expect=201)
    api.call("POST", "/api/v1/lists", body={"list": "denylist", "value": "192.0.2.0/24"},
             expect=409)
    api.call("POST", "/api/v1/lists", body={"list": "greylist", "value": "a b"}, expect=400)
    api.call("GET", "/api/v1/lists", expect=200)
    api.call("GET", "/api/v1/lists", url="/api/v1/lists?list=safelist", expect=200)
    _, a = api.call("POST", "/v1/check", body={"rule": "login", "key": "192.0.2.5"}, expect=200)
    assert a == {"allowed": False, "reason": "denylist", "results": []}
    _, a = api.call("POST", "/v1/check/batch", body={"checks": [
        {"rule": "login", "key": "user:1"}]}, expect=200)
    assert a["results"][0]["reason"] == "safelist"
    api.call("GET", "/v1/auth", headers={"X-Original-URI": "/", "X-Forwarded-For": "192.0.2.5"},
             expect=403)
    api.call("DELETE", "/api/v1/lists/{id}", url=f"/api/v1/lists/{deny['id']}", expect=204)
    api.call("DELETE", "/api/v1/lists/{id}", url=f"/api/v1/lists/{deny['id']}", expect=404)
    _, ban = api.call("POST", "/api/v1/bans", body={"value": "203.0.113.50", "duration": "10m",
                                                    "reason": "credential stuffing"}, expect=201)
    api.call("POST", "/api/v1/bans", body={"value": "203.0.113.51"}, expect=400)
    api.call("GET", "/api/v1/bans", expect=200)
    api.call("DELETE", "/api/v1/bans/{id}", url=f"/api/v1/bans/{ban['id']}", expect=204)
    api.call("POST", "/api/v1/bans", body={"value": "user:66", "duration": "1h"}, expect=201)
    api.call("DELETE", "/api/v1/bans", url="/api/v1/bans?value=user%3A66", expect=204)
    api.call("DELETE", "/api/v1/bans", url="/api/v1/bans?value=user%3A66", expect=404)
    api.call("DELETE", "/api/v1/bans", expect=400)

    # Tokens and roles.
    _, viewer = api.call("POST", "/api/v1/tokens", body={"name": "dashboard", "role": "viewer"},
                         expect=201)
    api.call("POST", "/api/v1/tokens", body={"name": "", "role": "king"}, expect=400)
    api.call("GET", "/api/v1/tokens", expect=200)
    _, info = api.call("GET", "/api/v1/info", token=viewer["token"], expect=200)
    assert info["role"] == "viewer", "a client learns what its token may do"
    _, e = api.call("DELETE", "/api/v1/counters", url="/api/v1/counters?rule=login&key=k",
                    token=viewer["token"], expect=403)
    assert e["error"]["code"] == "forbidden"
    api.call("GET", "/api/v1/tokens", token=viewer["token"], expect=403)
    api.call("GET", "/api/v1/info", token=Api.NO_TOKEN, expect=401)
    api.call("DELETE", "/api/v1/tokens/{id}", url=f"/api/v1/tokens/{viewer['id']}", expect=204)
    api.call("DELETE", "/api/v1/tokens/{id}", url=f"/api/v1/tokens/{viewer['id']}", expect=404)
    api.call("GET", "/api/v1/info", token=viewer["token"], expect=401)

    # Statistics and the denial log (counted once a second).
    deadline = time.monotonic() + 5
    while True:
        _, stats = api.call("GET", "/api/v1/stats", expect=200)
        if stats["totals"]["denied"] >= 1 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert stats["totals"]["denied"] >= 1 and stats["rules"], "the denials are counted"
    api.call("GET", "/api/v1/stats", url="/api/v1/stats?window=0", expect=400)
    now = int(time.time())
    api.call("GET", "/api/v1/stats/timeseries",
             url=f"/api/v1/stats/timeseries?from={now - 10}&to={now - 1}&step=2", expect=200)
    api.call("GET", "/api/v1/stats/timeseries",
             url=f"/api/v1/stats/timeseries?from={now}&to={now - 5}", expect=400)
    api.call("GET", "/api/v1/stats/top", url="/api/v1/stats/top?rule=login&limit=5", expect=200)
    deadline = time.monotonic() + 5
    while True:
        _, v = api.call("GET", "/api/v1/violations", url="/api/v1/violations?limit=1",
                        expect=200)
        if v["next_cursor"] or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert v["violations"] and v["next_cursor"], "the denial log holds the denials"
    r, _ = api.call("GET", "/api/v1/violations", url="/api/v1/violations?format=csv&limit=1",
                    expect=200)
    assert r.body.startswith(b"id,at,rule,key,mode,limit,cost,count\r\n") and "x-next-cursor" in r.headers
    api.call("GET", "/api/v1/violations", url="/api/v1/violations?format=xml", expect=400)
    r, _ = api.call("GET", "/metrics", token=Api.NO_TOKEN, expect=200)
    assert b"ratekit_decisions_total" in r.body

    # Deletion last.
    api.call("DELETE", "/api/v1/rules/{id}", url="/api/v1/rules/smooth", expect=204)
    api.call("DELETE", "/api/v1/rules/{id}", url="/api/v1/rules/smooth", expect=404)

    # Every documented operation was called and answered a success at least once
    # (the stream, which never ends, has its own test).
    documented = {(m, p) for m, p, _, _ in operations()} - {("get", "/api/v1/stream")}
    assert documented - set(api.answered) == set(), "operations never called"
    unsuccessful = [k for k, s in api.answered.items() if not any(200 <= x < 300 for x in s)]
    assert not unsuccessful, f"operations never answered a 2xx: {unsuccessful}"


def test_check_token_answers_as_documented(make_server):
    s = make_server(env={"RATEKIT_CHECK_TOKEN": "check-token-0123456789"})
    s.create_rule(id="login", algorithm="fixed_window", limit=5, window="1m")
    api = Api(s)
    _, e = api.call("POST", "/v1/check", body={"rule": "login", "key": "k"}, expect=401)
    assert e["error"]["code"] == "unauthorized"
    api.call("GET", "/v1/auth", expect=401)
    api.call("POST", "/v1/check", body={"rule": "login", "key": "k"},
             headers={"X-Ratekit-Token": "check-token-0123456789"}, expect=200)
    api.call("POST", "/v1/check", body={"rule": "login", "key": "k"},
             headers={"Authorization": "Bearer check-token-0123456789"}, expect=200)
    api.call("GET", "/healthz", expect=200)
    api.call("GET", "/readyz", expect=200)


def test_answers_while_the_store_fails_are_documented(make_server, make_redis):
    redis = make_redis()
    s = make_server(env={"RATEKIT_REDIS_URL": redis.url})
    s.create_rule(id="open", algorithm="fixed_window", limit=5, window="1m", fail_mode="open")
    api = Api(s)
    api.call("GET", "/readyz", expect=200)
    redis.stop()
    _, a = api.call("POST", "/v1/check", body={"rule": "open", "key": "k"}, expect=200)
    assert a["allowed"] is True and a["results"][0]["fail_mode"] == "open"
    _, ready = api.call("GET", "/readyz", expect=503)
    assert ready == {"status": "degraded", "store": "redis", "store_healthy": False}
    api.call("GET", "/api/v1/counters", url="/api/v1/counters?rule=open&key=k", expect=503)


def test_answers_outside_operations_have_the_documented_error_shape(server):
    error = spec()["components"]["schemas"]["Error"]
    r = request("GET", server.data + "/v1/check")
    assert r.status == 405 and r.headers["allow"] == "POST"
    assert_fits(r.json(), error, "405")
    assert r.json()["error"]["code"] == "method_not_allowed"
    r = server.admin("GET", "/api/v1/nothing")
    assert r.status == 404
    assert_fits(r.json(), error, "404")
    r = request("POST", server.data + "/v1/check", body=b"x" * (65 * 1024),
                headers={"Content-Type": "application/json"})
    assert r.status == 413
    assert_fits(r.json(), error, "413")
    assert r.json()["error"]["code"] == "body_too_large"


def test_metrics_families_are_documented(server):
    server.create_rule(id="login", algorithm="fixed_window", limit=5, window="1m")
    server.check("login", "k")
    r = request("GET", server.admin_url + "/metrics")
    assert r.status == 200 and r.headers["content-type"].startswith("text/plain")
    families = set(re.findall(r"^# TYPE (\w+) ", r.body.decode(), re.M))
    assert len(families) >= 10, families
    described = spec()["paths"]["/metrics"]["get"]["description"]
    missing = sorted(f for f in families if f"`{f}" not in described)
    assert not missing, f"metric families /metrics serves that its description omits: {missing}"


def read_events(resp, want, deadline):
    """Reads SSE lines from resp until an event of each name in want was seen;
    returns {name: [data, ...]} and the preamble lines."""
    events, lines, fields = {}, [], {}
    while not want <= set(events):
        assert time.monotonic() < deadline, f"no {want - set(events)} event in time: {lines[-8:]}"
        line = resp.readline().decode().rstrip("\n")
        lines.append(line)
        if line == "":
            if "event" in fields:
                assert re.fullmatch(r"\d+", fields.get("id", "")), f"no event id: {fields}"
                events.setdefault(fields["event"], []).append(json.loads(fields["data"]))
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            fields[name] = value
    return events, lines


def test_stream_events_fit_the_documented_event_schemas(server):
    import http.client

    op = spec()["paths"]["/api/v1/stream"]["get"]
    media = op["responses"]["200"]["content"]["text/event-stream"]
    schemas = media["x-ratekit-events"]
    # The documented example is itself a well-formed stream of documented events.
    for block in media["example"].split("\n\n"):
        fields = dict(l.split(": ", 1) for l in block.splitlines() if ": " in l and l[0] != ":")
        if "event" in fields:
            assert_fits(json.loads(fields["data"]), schemas[fields["event"]], "stream example")

    conn = http.client.HTTPConnection("127.0.0.1", server.admin_port, timeout=5)
    try:
        conn.request("GET", "/api/v1/stream?access_token=" + urllib.parse.quote(ADMIN_TOKEN))
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.getheader("Content-Type") in op["responses"]["200"]["content"]
        assert resp.getheader("Cache-Control") == "no-cache"
        assert resp.readline() == b"retry: 2000\n"
        server.create_rule(id="login", algorithm="fixed_window", limit=5, window="1m")
        server.check("login", "k")
        events, _ = read_events(resp, {"stats", "rule"}, time.monotonic() + 8)
    finally:
        conn.close()
    assert set(events) <= set(schemas), f"undocumented events {set(events) - set(schemas)}"
    for name, datas in events.items():
        for i, data in enumerate(datas):
            assert_fits(data, schemas[name], f"event {name} #{i}")
    assert {"version": events["rule"][0]["version"], "rule": "login",
            "action": "create"} in events["rule"]

    # Without a token, the stream is refused as documented.
    r = request("GET", server.admin_url + "/api/v1/stream")
    assert r.status == 401 and "401" in op["responses"]
    assert_fits(r.json(), resolve(op["responses"]["401"])["content"]["application/json"]["schema"],
                "stream 401")
