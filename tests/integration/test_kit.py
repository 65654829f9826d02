"""The kit a customer gets: the compose file, the demo gateway (run here for
real with nginx), the Dockerfile, and the zip."""

import os
import re
import subprocess
import zipfile

from conftest import ROOT, free_port, request, wait_for_port


def compose(*args, env_file=None):
    cmd = ["docker-compose", "-f", os.path.join(ROOT, "docker-compose.yml")]
    if env_file:
        cmd += ["--env-file", env_file]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, cwd=ROOT)


def test_compose_file_is_valid_and_demands_an_admin_token(workdir):
    r = compose("config", "-q", env_file=os.path.join(ROOT, ".env.example"))
    assert r.returncode == 0, r.stderr
    empty = os.path.join(workdir, "empty.env")
    open(empty, "w").close()
    r = compose("config", "-q", env_file=empty)
    assert r.returncode != 0 and "RATEKIT_ADMIN_TOKEN" in r.stderr
    r = compose("config", env_file=os.path.join(ROOT, ".env.example"))
    cfg = r.stdout
    for service in ("redis:", "ratekit:", "gateway:", "demo-api:", "demo-rules:"):
        assert service in cfg
    assert "condition: service_healthy" in cfg and "appendonly" in cfg
    assert "published: 8000" in cfg and "127.0.0.1:8081:8081" in cfg


def test_dockerfile_copies_what_exists_and_runs_as_a_user():
    text = open(os.path.join(ROOT, "Dockerfile")).read()
    stages = re.findall(r"^FROM (\S+)(?: AS (\S+))?", text, re.M)
    assert len(stages) == 3 and stages[-1][1] == ""
    for src in re.findall(r"^COPY (?!--from)(\S+)", text, re.M):
        assert os.path.exists(os.path.join(ROOT, src.rstrip("/"))), src
    assert re.search(r"^USER ratekit$", text, re.M)
    assert "HEALTHCHECK" in text and "VOLUME" in text
    # the runtime stage installs only shared libraries, no compiler
    runtime = text.split("FROM debian:bookworm-slim\n")[-1]
    assert "gcc" not in runtime and "-dev" not in runtime


def test_demo_gateway_config_limits_for_real(workdir, server):
    """examples/compose/gateway.conf, with the compose host names pointed at
    loopback: a real nginx in front of the demo API, ratekit deciding."""
    import json
    with open(os.path.join(ROOT, "examples", "rules", "demo.json")) as f:
        r = server.admin("POST", "/api/v1/rules", json.load(f))
    assert r.status == 201, r
    gw_port, api_port = free_port(), free_port()
    d = os.path.join(workdir, "gw")
    os.makedirs(os.path.join(d, "tmp"))
    os.chmod(workdir, 0o755)
    gateway = open(os.path.join(ROOT, "examples", "compose", "gateway.conf")).read()
    gateway = (gateway.replace("ratekit:8080", f"127.0.0.1:{server.data_port}")
               .replace("demo-api:80", f"127.0.0.1:{api_port}")
               .replace("listen 8000", f"listen 127.0.0.1:{gw_port}")
               .replace("/etc/nginx/ratekit/", os.path.join(ROOT, "examples", "nginx") + "/"))
    demo = (open(os.path.join(ROOT, "examples", "compose", "demo-api.conf")).read()
            .replace("listen 80", f"listen 127.0.0.1:{api_port}"))
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""worker_processes 1; daemon off; pid {d}/nginx.pid; error_log {d}/error.log;
events {{ worker_connections 64; }}
http {{ access_log off; client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp;
fastcgi_temp_path {d}/tmp; uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;
{demo}
{gateway}
}}""")
    proc = subprocess.Popen(["nginx", "-c", conf, "-p", d], stderr=subprocess.PIPE)
    try:
        wait_for_port(gw_port, proc)
        got = [request("GET", f"http://127.0.0.1:{gw_port}/api/items") for _ in range(7)]
        assert [g.status for g in got] == [200] * 5 + [429] * 2
        assert b'"ok":true' in got[0].body
        assert got[0].headers["ratelimit-policy"] == '"demo-api";q=5;w=60'
        assert int(got[5].headers["retry-after"]) >= 1
    finally:
        proc.terminate()
        proc.wait(10)


def test_dist_zip_holds_the_kit_and_nothing_else():
    """Nor the .env the README has one write, with the admin token in it."""
    env_file = os.path.join(ROOT, ".env")
    made_env = not os.path.exists(env_file)
    if made_env:
        with open(env_file, "w") as f:
            f.write("RATEKIT_ADMIN_TOKEN=a-secret-that-must-not-ship-0123\n")
    try:
        r = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "tools", "dist.py")],
                           capture_output=True, text=True, cwd=ROOT)
    finally:
        if made_env:
            os.unlink(env_file)
    assert r.returncode == 0, r.stderr
    version = open(os.path.join(ROOT, "VERSION")).read().strip()
    path = os.path.join(ROOT, "dist", f"ratekit-kit-{version}.zip")
    names = zipfile.ZipFile(path).namelist()
    prefix = f"ratekit-kit-{version}/"
    assert all(n.startswith(prefix) for n in names)
    rel = {n[len(prefix):] for n in names}
    for needed in ("Makefile", "README.md", "docker-compose.yml", ".env.example", "Dockerfile",
                   "lua/token_bucket.lua", "schema/001_init.sql", "dashboard/dist/index.html",
                   "server/src/main.c", "examples/rules/demo.json"):
        assert needed in rel, needed
    for n in rel:
        assert "node_modules/" not in n and not n.startswith("build/") and ".git/" not in n
        assert not n.endswith(".db")
    assert ".env" not in rel


def test_the_readme_settings_table_names_every_setting_with_its_default():
    """Every setting config.c reads is in the README's table, with the
    default it starts with (a row may name several, `A` / `B`, with their
    defaults in the same order), and the table names no other."""
    with open(os.path.join(ROOT, "server", "src", "config.c"), encoding="utf-8") as f:
        code = f.read()
    settings = dict(re.findall(r'\{"(RATEKIT_[A-Z0-9_]+)", T_\w+, F\(\w+\), "([^"]*)"', code))
    assert len(settings) > 20, "config.c's table was not read"
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    table = readme[readme.index("| variable | default | meaning |"):]
    table = table[:table.index("\n\n")]
    documented = {}
    for line in table.splitlines()[2:]:
        names, defaults = (cell.strip() for cell in line.split("|")[1:3])
        names = re.findall(r"`(RATEKIT_[A-Z0-9_]+)`", names)
        values = [v.strip() for v in defaults.split(" / ")]
        for i, name in enumerate(names):
            documented[name] = values[i] if len(values) == len(names) else values[0]
    assert set(documented) == set(settings), (sorted(set(settings) - set(documented)),
                                              sorted(set(documented) - set(settings)))
    for name, default in settings.items():
        shown = documented[name]
        if default in ("", "0") and not shown.startswith("`"):
            continue  # unset, generated, cores: said in words
        assert shown == f"`{default}`", (name, default, shown)
