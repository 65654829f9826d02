"""API tokens, black-box: roles, the secret shown once and stored hashed,
revocation (here at once, on another process sharing the file within a
second), expiry, and the data plane's check token."""

import datetime
import glob
import time

from conftest import request

RULE = {"id": "login", "algorithm": "fixed_window", "limit": 3, "window": "1m"}


def make_token(server, name="ci", role="viewer", **extra):
    r = server.admin("POST", "/api/v1/tokens", {"name": name, "role": role, **extra})
    assert r.status == 201, r
    return r.json()


def iso_in(seconds):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def wait_until(predicate, timeout=1.0):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.02)
    return None


def test_created_token_is_answered_once_with_its_role(server):
    t = make_token(server, name="deploy-bot", role="editor")
    assert t["name"] == "deploy-bot" and t["role"] == "editor"
    assert t["token"].startswith("rk_" + t["id"] + "_")
    assert t["expires_at"] is None and t["created_at"].endswith("Z")

    listing = server.admin("GET", "/api/v1/tokens").json()["tokens"]
    assert [x["id"] for x in listing] == [t["id"]]
    assert "token" not in listing[0]
    assert t["token"] not in server.admin("GET", "/api/v1/tokens").body.decode()
    assert listing[0]["role"] == "editor" and listing[0]["name"] == "deploy-bot"


def test_roles_are_enforced(server):
    viewer = make_token(server, "reader", "viewer")["token"]
    editor = make_token(server, "writer", "editor")["token"]
    admin = make_token(server, "boss", "admin")["token"]

    assert server.admin("GET", "/api/v1/rules", token=viewer).status == 200
    r = server.admin("POST", "/api/v1/rules", RULE, token=viewer)
    assert r.status == 403 and r.json()["error"]["code"] == "forbidden"
    assert server.admin("GET", "/api/v1/rules/login", token=viewer).status == 404

    assert server.admin("POST", "/api/v1/rules", RULE, token=editor).status == 201
    assert server.admin("GET", "/api/v1/tokens", token=editor).status == 403
    # A try counts against the key it names: a read-only token cannot spend a
    # client's limit through it; an editor can.
    try_it = {"rule": "login", "key": "victim"}
    assert server.admin("POST", "/api/v1/check", try_it, token=viewer).status == 403
    assert server.admin("GET", "/api/v1/counters?rule=login&key=victim",
                        token=viewer).json()["remaining"] == RULE["limit"]
    assert server.admin("POST", "/api/v1/check", try_it, token=editor).status == 200
    r = server.admin("POST", "/api/v1/tokens", {"name": "x", "role": "admin"}, token=editor)
    assert r.status == 403

    assert server.admin("GET", "/api/v1/tokens", token=admin).status == 200
    assert server.admin("POST", "/api/v1/tokens", {"name": "y", "role": "viewer"},
                        token=admin).status == 201
    assert server.admin("DELETE", "/api/v1/rules/login", token=admin).status == 204


def test_history_names_the_token_that_made_the_change(server):
    editor = make_token(server, "deploy-bot", "editor")["token"]
    assert server.admin("POST", "/api/v1/rules", RULE, token=editor).status == 201
    history = server.admin("GET", "/api/v1/rules/login/history").json()["history"]
    assert history[0]["actor"] == "deploy-bot"


def test_a_token_cannot_take_the_name_ratekit_gives_the_bootstrap_token(server):
    for name in ("admin", "Admin", " admin ", "sync"):
        r = server.admin("POST", "/api/v1/tokens", {"name": name, "role": "viewer"})
        assert r.status == 400, (name, r)
        error = r.json()["error"]
        assert error["code"] == "invalid_token"
        assert [e["field"] for e in error["errors"]] == ["name"], (name, error)
        assert "reserved" in error["errors"][0]["message"]
    assert server.admin("GET", "/api/v1/tokens").json()["tokens"] == []
    # What the name guards: the history tells the bootstrap token from any other.
    bot = make_token(server, "admin-bot", "editor")
    assert [t["created_by"] for t in server.admin("GET", "/api/v1/tokens").json()["tokens"]] == \
        ["admin"]
    assert server.admin("POST", "/api/v1/rules", RULE, token=bot["token"]).status == 201
    assert server.admin("DELETE", "/api/v1/rules/login").status == 204
    history = server.admin("GET", "/api/v1/rules/login/history").json()["history"]
    assert sorted(h["actor"] for h in history) == ["admin", "admin-bot"]


def test_unknown_or_forged_tokens_are_refused(server):
    t = make_token(server)["token"]
    forged = t[:-1] + ("0" if t[-1] != "0" else "1")
    for bad in (forged, "rk_000000000000_" + "0" * 64, "nonsense", ""):
        r = server.admin("GET", "/api/v1/rules", token=bad or " ")
        assert r.status == 401, (bad, r)
        assert r.json()["error"]["code"] == "unauthorized"
    assert server.admin("GET", "/api/v1/rules", token=t).status == 200


def test_invalid_token_requests_are_refused(server):
    for body in ({"name": "x", "role": "root"}, {"role": "viewer"},
                 {"name": "x", "role": "viewer", "expires_at": "tomorrow"},
                 {"name": "x", "role": "viewer", "expires_at": "2001-01-01T00:00:00Z"},
                 # dates that do not exist, not moved to the next day or minute
                 {"name": "x", "role": "viewer", "expires_at": "2031-02-29T00:00:00Z"},
                 {"name": "x", "role": "viewer", "expires_at": "2030-04-31T12:00:00Z"},
                 {"name": "x", "role": "viewer", "expires_at": "2030-01-01T00:00:60Z"},
                 {"name": "x", "role": "viewer", "scope": "all"}):
        r = server.admin("POST", "/api/v1/tokens", body)
        assert r.status == 400, (body, r)
    assert server.admin("GET", "/api/v1/tokens").json()["tokens"] == []
    assert server.admin("DELETE", "/api/v1/tokens/abcdefabcdef").status == 404


def test_secret_is_stored_hashed(server):
    t = make_token(server, "ci", "admin")
    secret = t["token"].split("_", 2)[2]
    assert server.admin("GET", "/api/v1/rules", token=t["token"]).status == 200
    found_id = False
    for path in glob.glob(server.db_path + "*"):  # the file, its WAL and shared memory
        with open(path, "rb") as f:
            data = f.read()
        assert secret.encode() not in data, path
        assert t["token"].encode() not in data, path
        found_id = found_id or t["id"].encode() in data
    assert found_id, "the token's row is in the database"
    assert secret not in server.output()


def test_revocation_is_effective_at_once(server):
    t = make_token(server, "ci", "viewer")
    assert server.admin("GET", "/api/v1/rules", token=t["token"]).status == 200
    assert server.admin("DELETE", "/api/v1/tokens/" + t["id"]).status == 204
    assert server.admin("GET", "/api/v1/rules", token=t["token"]).status == 401
    assert server.admin("GET", "/api/v1/tokens").json()["tokens"] == []


def test_expired_token_is_refused(server):
    t = make_token(server, "temp", "viewer", expires_at=iso_in(1.5))
    assert t["expires_at"] is not None
    assert server.admin("GET", "/api/v1/rules", token=t["token"]).status == 200
    assert wait_until(lambda: server.admin("GET", "/api/v1/rules", token=t["token"]).status == 401,
                      timeout=4.0) is not None
    listing = server.admin("GET", "/api/v1/tokens").json()["tokens"]
    assert listing[0]["expired"] is True


def test_last_used_is_recorded(server):
    t = make_token(server)
    assert server.admin("GET", "/api/v1/tokens").json()["tokens"][0]["last_used_at"] is None
    server.admin("GET", "/api/v1/rules", token=t["token"])
    assert server.admin("GET", "/api/v1/tokens").json()["tokens"][0]["last_used_at"] is not None


def test_revocation_reaches_another_process_within_a_second(make_server):
    a = make_server()
    b = make_server(db_path=a.db_path)
    t = make_token(a, "ci", "editor")
    assert wait_until(lambda: b.admin("GET", "/api/v1/rules", token=t["token"]).status == 200,
                      timeout=2.0) is not None
    assert a.admin("DELETE", "/api/v1/tokens/" + t["id"]).status == 204
    took = wait_until(lambda: b.admin("GET", "/api/v1/rules", token=t["token"]).status == 401,
                      timeout=1.0)
    assert took is not None, "the other process still accepts a revoked token"


def test_bootstrap_admin_token_keeps_working(server):
    make_token(server, "x", "viewer")
    assert server.admin("GET", "/api/v1/tokens").status == 200
    r = server.admin("GET", "/api/v1/tokens", token=server.token + "x")
    assert r.status == 401


CHECK_TOKEN = "check-token-0123456789abcdef"


def test_check_token_guards_the_data_plane_when_set(make_server):
    s = make_server(env={"RATEKIT_CHECK_TOKEN": CHECK_TOKEN})
    s.create_rule(**RULE)
    body = {"rule": "login", "key": "203.0.113.7"}

    r = request("POST", s.data + "/v1/check", body)
    assert r.status == 401 and r.json()["error"]["code"] == "unauthorized"
    r = request("POST", s.data + "/v1/check", body, headers={"Authorization": "Bearer wrong"})
    assert r.status == 401
    r = request("POST", s.data + "/v1/check", body,
                headers={"Authorization": "Bearer " + CHECK_TOKEN})
    assert r.status == 200 and r.json()["allowed"] is True
    r = request("POST", s.data + "/v1/check/batch", {"checks": [body]},
                headers={"X-Ratekit-Token": CHECK_TOKEN})
    assert r.status == 200
    assert request("POST", s.data + "/v1/check/batch", {"checks": [body]}).status == 401

    # forward-auth: the client's own Authorization is forwarded, the token rides beside it
    r = request("GET", s.data + "/v1/auth", headers={
        "X-Forwarded-Uri": "/x", "Authorization": "Bearer client-jwt",
        "X-Ratekit-Token": CHECK_TOKEN})
    assert r.status == 200, r
    assert request("GET", s.data + "/v1/auth", headers={"X-Forwarded-Uri": "/x"}).status == 401
    assert request("POST", s.data + "/v1/acquire", {"rule": "login", "key": "k"}).status == 401
    assert request("POST", s.data + "/v1/release", {"lease": "x"}).status == 401

    assert request("GET", s.data + "/healthz").status == 200
    assert request("GET", s.data + "/readyz").status == 200


def test_data_plane_is_open_without_check_token(server):
    server.create_rule(**RULE)
    assert server.check("login", "203.0.113.7").status == 200
