"""Bodies: the admin plane takes a whole ruleset of a few MiB in one import;
the data plane keeps its small limit."""

import http.client
import json
import os
import time

from conftest import request


def many_rules(n):
    return [{"id": f"tenant-{i:05d}", "description": "per-tenant API limit " + "x" * 120,
             "match": {"methods": ["GET", "POST"], "path": f"/t/{i}/*"},
             "key": ["api_key", "ip"], "algorithm": "token_bucket",
             "limit": 100 + i, "window": "1m", "burst": 20}
            for i in range(n)]


def test_import_of_two_thousand_rules(server):
    doc = {"rules": many_rules(2000)}
    size = len(json.dumps(doc))
    assert 64 * 1024 < size < 4 * 1024 * 1024
    r = server.admin("POST", "/api/v1/rules/import", doc, timeout=60)
    assert r.status == 200, r
    assert r.json()["created"] == 2000
    exported = server.admin("GET", "/api/v1/rules/export", timeout=60).json()
    assert len(exported["rules"]) == 2000
    r = server.check("tenant-01999", "k")
    assert r.status == 200 and r.json()["limit"] == 2099


def test_the_synced_ruleset_of_two_thousand_rules_reaches_another_instance(
        make_server, redis, workdir):
    env = {"RATEKIT_REDIS_URL": redis.url}
    a = make_server(env=env, db_path=os.path.join(workdir, "a.db"))
    b = make_server(env=env, db_path=os.path.join(workdir, "b.db"))
    r = a.admin("POST", "/api/v1/rules/import", {"rules": many_rules(2000)}, timeout=60)
    assert r.status == 200, r
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if b.check("tenant-01999", "k").status == 200:
            break
        time.sleep(0.1)
    assert len(b.admin("GET", "/api/v1/rules", timeout=60).json()["rules"]) == 2000


def test_an_export_over_four_mib_imports_again(make_server, workdir):
    """GitOps: what the export answers, the import takes back, however large
    (the export carries every default, so it is larger than what was sent)."""
    a = make_server(db_path=workdir + "/a.db")
    rules = many_rules(4500)
    for r in rules:
        r["description"] = r["description"] + "y" * 800
    assert a.admin("POST", "/api/v1/rules/import", {"rules": rules}, timeout=120).status == 200
    export = a.admin("GET", "/api/v1/rules/export", timeout=120)
    assert len(export.body) > 4 * 1024 * 1024, len(export.body)
    b = make_server(db_path=workdir + "/b.db")
    r = request("POST", b.admin_url + "/api/v1/rules/import", body=export.body, timeout=120,
                headers={"Authorization": "Bearer " + b.token})
    assert r.status == 200 and r.json()["created"] == 4500, r
    assert b.check("tenant-04499", "k").json()["limit"] == 100 + 4499


def test_admin_bodies_over_32_mib_are_refused(server):
    # announced too large: refused before the body is read
    conn = http.client.HTTPConnection("127.0.0.1", server.admin_port, timeout=10)
    conn.putrequest("POST", "/api/v1/rules/import")
    conn.putheader("Authorization", "Bearer " + server.token)
    conn.putheader("Content-Length", str(32 * 1024 * 1024 + 1))
    conn.endheaders()
    r = conn.getresponse()
    assert r.status == 413 and json.loads(r.read())["error"]["code"] == "body_too_large"
    conn.close()
    # just under the bound: read and imported (an empty ruleset)
    body = b'{"rules": [' + b" " * (32 * 1024 * 1024 - 100) + b"]}"
    r = request("POST", server.admin_url + "/api/v1/rules/import", body=body, timeout=60,
                headers={"Authorization": "Bearer " + server.token})
    assert r.status == 200 and r.json()["deleted"] == 0, r


def test_data_plane_keeps_its_64_kib_limit(server):
    body = b'{"rule": "x", "key": "' + b"k" * (70 * 1024) + b'"}'
    r = request("POST", server.data + "/v1/check", body=body)
    assert r.status == 413
