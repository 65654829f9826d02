"""build/ratekit-load keeps working: a short closed-loop and open-loop run
against a real ratekitd, and its exactness mode against two ratekitd
instances sharing one real redis-server."""

import json
import os
import subprocess
import time

import pytest

from conftest import ROOT

LOAD = os.path.join(ROOT, "build", "ratekit-load")


@pytest.fixture(scope="module")
def load_bin():
    subprocess.run(["make", "-s", "-C", ROOT, "build/ratekit-load"], check=True)
    return LOAD


def run_load(load_bin, workdir, *args):
    out = os.path.join(workdir, "load.json")
    p = subprocess.run([load_bin, "--quiet", "--json", out, *args], capture_output=True,
                       text=True, timeout=60)
    result = json.load(open(out)) if os.path.exists(out) else None
    return p, result


def test_closed_loop_counts_every_answer_as_allowed(load_bin, server, workdir):
    server.create_rule(id="smoke", algorithm="fixed_window", limit=1000000, window="1h")
    p, r = run_load(load_bin, workdir, "--url", server.data, "--rule", "smoke",
                    "--connections", "8", "--duration", "1", "--warmup", "0.2")
    assert p.returncode == 0, p.stderr
    assert r["requests"] > 50
    assert r["status"]["2xx"] == r["requests"] and r["errors"] == 0
    assert r["allowed"] == r["requests"] and r["denied"] == 0
    assert 0 < r["latency_us"]["p50"] <= r["latency_us"]["p99"] <= r["latency_us"]["max"]
    assert "throughput" in p.stdout and "p99" in p.stdout


def test_cpu_of_reports_the_servers_cpu_per_answer_and_only_its(load_bin, server, workdir):
    server.create_rule(id="smoke-cpu", algorithm="token_bucket", limit=1000000, window="1h")
    idle = subprocess.Popen(["sleep", "30"])
    try:
        runs = {}
        for name, pid in (("server", server.proc.pid), ("idle", idle.pid)):
            p, runs[name] = run_load(load_bin, workdir, "--url", server.data, "--rule",
                                     "smoke-cpu", "--connections", "8", "--duration", "1",
                                     "--warmup", "0.2", "--cpu-of", str(pid))
            assert p.returncode == 0, p.stderr
            assert "server cpu" in p.stdout
    finally:
        idle.kill()
        idle.wait()
    # the sanitizer build answers in tens of microseconds of CPU each; a
    # process that did nothing used none of its time on them
    assert 1 < runs["server"]["server_cpu_us_per_answer"] < 5000, runs["server"]
    assert runs["idle"]["server_cpu_s"] < 0.05, runs["idle"]
    for refused in (["--cpu-of", "4194304"],  # no such process
                    ["--exact", "5", "--cpu-of", str(server.proc.pid)]):  # measures none
        p = subprocess.run([load_bin, "--url", server.data, "--rule", "x", *refused],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 2 and "--cpu-of" in p.stderr, (refused, p.stderr)


def test_open_loop_sends_at_the_scheduled_rate_and_sees_denials(load_bin, server, workdir):
    server.create_rule(id="smoke-hot", algorithm="token_bucket", limit=10, window="1h")
    p, r = run_load(load_bin, workdir, "--url", server.data, "--rule", "smoke-hot",
                    "--key", "one-hot-key", "--connections", "4", "--rate", "300",
                    "--duration", "1", "--warmup", "0")
    assert p.returncode == 0, p.stderr
    assert 240 <= r["requests"] <= 310, r
    assert r["allowed"] == 10 and r["denied"] == r["requests"] - 10


def test_lease_target_releases_every_lease_it_acquires(load_bin, server, workdir):
    # One slot and one connection: an acquire finds the slot free only
    # because the release before it ended the previous lease.
    server.create_rule(id="smoke-lease", algorithm="concurrency", limit=1, window="1h")
    p, r = run_load(load_bin, workdir, "--url", server.data, "--target", "lease",
                    "--rule", "smoke-lease", "--key", "one", "--connections", "1",
                    "--requests", "400")
    assert p.returncode == 0, p.stderr
    assert r["requests"] == 400 and r["errors"] == 0 and r["status"]["2xx"] == 400
    assert r["allowed"] == 200 and r["denied"] == 0 and r["released"] == 200
    assert "released 200" in p.stdout
    # the last request was a release: the slot is free, then taken
    assert server.check("smoke-lease", "one").json()["allowed"] is True
    assert server.check("smoke-lease", "one").json()["allowed"] is False


def test_lease_target_needs_one_request_in_flight(load_bin):
    p = subprocess.run([load_bin, "--url", "http://127.0.0.1:9", "--target", "lease",
                        "--rule", "x", "--pipeline", "4"], capture_output=True, text=True)
    assert p.returncode == 2 and "--pipeline" in p.stderr


def test_refuses_a_target_that_is_not_loopback(load_bin):
    p = subprocess.run([load_bin, "--url", "http://192.0.2.1:80", "--rule", "x"],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "loopback" in p.stderr


def test_exactness_two_processes_two_instances_allow_exactly_the_limit(load_bin, make_server,
                                                                        redis):
    env = {"RATEKIT_REDIS_URL": redis.url}
    a = make_server(env=env)
    b = make_server(env=env, db_path=a.db_path)
    a.create_rule(id="exact-tb", algorithm="token_bucket", limit=50, window="1h")
    a.create_rule(id="exact-fw", algorithm="fixed_window", limit=50, window="1h")
    deadline = time.time() + 3
    while time.time() < deadline and b.check("exact-fw", "probe").status != 200:
        time.sleep(0.05)
    for rule in ("exact-tb", "exact-fw"):
        p = subprocess.run([load_bin, "--url", a.data, "--url", b.data, "--rule", rule,
                            "--exact", "50", "--procs", "2", "--requests", "160",
                            "--connections", "4"],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "allowed 50 " in p.stdout and "-> exact" in p.stdout
    # the same key again: now everything is denied, so a claim of 50 must fail
    p = subprocess.run([load_bin, "--url", a.data, "--url", b.data, "--rule", "exact-fw",
                        "--exact", "50", "--procs", "2", "--requests", "20"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "allowed 0 " in p.stdout and "NOT EXACT" in p.stdout
