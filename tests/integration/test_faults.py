"""The faults suite: ratekitd keeps answering when its parts fail, and loses
nothing it acknowledged."""

import concurrent.futures
import os
import signal
import sqlite3
import subprocess
import threading
import time

from conftest import request


def test_kill_9_during_rule_writes_loses_no_acknowledged_write(make_server):
    a = make_server()
    acknowledged = []
    stop = threading.Event()

    def writer():
        i = 0
        while not stop.is_set():
            try:
                r = a.admin("POST", "/api/v1/rules", {"id": f"w{i}", "algorithm": "fixed_window",
                                                      "limit": 10, "window": "1m"}, timeout=10)
            except OSError:
                return
            if r.status == 201:
                acknowledged.append(f"w{i}")
            i += 1

    threads = [threading.Thread(target=writer) for _ in range(1)]
    for t in threads:
        t.start()
    # Killed once writes are flowing (a busy machine, or the sanitizer build,
    # can make the first ones slow), while one is likely in flight.
    deadline = time.time() + 20
    while len(acknowledged) < 20 and time.time() < deadline:
        time.sleep(0.02)
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait()
    stop.set()
    for t in threads:
        t.join()
    assert len(acknowledged) >= 20
    with sqlite3.connect(a.db_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    b = make_server(db_path=a.db_path)
    ids = {r["id"] for r in b.admin("GET", "/api/v1/rules").json()["rules"]}
    missing = [i for i in acknowledged if i not in ids]
    assert missing == []


def test_sigterm_under_load_on_redis_answers_everything_in_flight(make_server, redis):
    s = make_server(env={"RATEKIT_REDIS_URL": redis.url})
    s.create_rule(id="t", algorithm="token_bucket", limit=10 ** 6, window="1m")
    results = {"ok": 0, "bad": 0}
    lock = threading.Lock()

    def hammer():
        while True:
            try:
                r = s.check("t", "k", timeout=5)
            except OSError:
                return  # refused after the listener closed: never answered half
            with lock:
                results["ok" if r.status == 200 else "bad"] += 1

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        for _ in range(8):
            pool.submit(hammer)
        time.sleep(0.5)
        t0 = time.monotonic()
        rc = s.stop(signal.SIGTERM)
        elapsed = time.monotonic() - t0
    assert rc == 0 and elapsed < 5
    assert results["ok"] > 50 and results["bad"] == 0


class Tmpfs:
    """A small filesystem of its own, to fill up or make read-only."""

    def __init__(self, path, size="2m"):
        self.path = path
        os.makedirs(path, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path], check=True)

    def fill(self):
        fd = os.open(os.path.join(self.path, "filler"), os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass
        finally:
            os.close(fd)

    def close(self):
        subprocess.run(["umount", "-l", self.path], check=False)


def _writes_fail_clearly_and_checks_go_on(make_server, workdir, spoil):
    fs = Tmpfs(os.path.join(workdir, "fs"))
    try:
        s = make_server(db_path=os.path.join(fs.path, "ratekit.db"))
        s.create_rule(id="before", algorithm="fixed_window", limit=100, window="1m")
        spoil(fs)
        r = s.admin("POST", "/api/v1/rules", {"id": "after" + "x" * 50, "algorithm": "gcra",
                                              "limit": 5, "window": "1m",
                                              "description": "y" * 1000})
        assert r.status == 503, r
        assert r.json()["error"]["message"]
        # a list entry or a ban the disk could not take is not acknowledged either
        r = s.admin("POST", "/api/v1/lists", {"list": "denylist", "value": "198.51.100.7",
                                              "note": "z" * 200})
        assert r.status == 503 and r.json()["error"]["code"] == "lists_unavailable", r
        r = s.admin("POST", "/api/v1/bans", {"value": "198.51.100.8", "duration": "10m"})
        assert r.status == 503, r
        assert s.admin("GET", "/api/v1/lists").json()["entries"] == []
        for _ in range(5):
            c = s.check("before", "k")
            assert c.status == 200 and c.json()["allowed"] is True
        assert request("GET", s.data + "/healthz").status == 200
        s.stop()
    finally:
        fs.close()


def test_a_full_disk_fails_rule_writes_clearly_and_checks_go_on(make_server, workdir):
    _writes_fail_clearly_and_checks_go_on(make_server, workdir, Tmpfs.fill)


def test_a_read_only_database_stops_startup_with_one_clear_line(make_server, workdir):
    fs = Tmpfs(os.path.join(workdir, "ro"))
    try:
        first = make_server(db_path=os.path.join(fs.path, "ratekit.db"))
        first.stop()
        subprocess.run(["mount", "-o", "remount,ro", fs.path], check=True)
        s = make_server(db_path=os.path.join(fs.path, "ratekit.db"), start=False)
        s.start(wait=False)
        assert s.proc.wait(10) != 0
        lines = [l for l in s.output().splitlines() if l.startswith("ratekitd:")]
        assert len(lines) == 1 and "RATEKIT_DB" in lines[0], s.output()
    finally:
        fs.close()


def test_redis_killed_and_restarted_under_load(make_server, make_redis, workdir):
    r = make_redis()
    s = make_server(env={"RATEKIT_REDIS_URL": r.url, "RATEKIT_REDIS_TIMEOUT_MS": "100"})
    s.create_rule(id="k", algorithm="fixed_window", limit=10 ** 6, window="1m")
    stop = threading.Event()
    stats = {"answered": 0, "failed": 0, "slow": 0}

    def load():
        while not stop.is_set():
            t = time.monotonic()
            try:
                ok = s.check("k", "key", timeout=3).status == 200
            except OSError:
                ok = False
            stats["answered" if ok else "failed"] += 1
            stats["slow"] += time.monotonic() - t > 0.6

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    port = r.port
    r.stop()
    time.sleep(0.5)
    d = os.path.join(workdir, "redis2")
    os.makedirs(d)
    again = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                              "--save", "", "--dir", d], stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 2.5
        back = False
        while time.monotonic() < deadline and not back:
            back = s.check("k", "probe").json()["results"][0].get("fail_mode") is None
            time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join()
        assert back
        assert stats["failed"] == 0 and stats["slow"] == 0 and stats["answered"] > 50
    finally:
        again.kill()
        again.wait()


def test_a_redis_that_refuses_the_password_is_named_in_the_log(make_server, make_redis):
    """Redis comes back with another password: the log says why checks fail
    over, not only that they do (once, not on every probe)."""
    redis = make_redis(args=("--requirepass", "first-secret"))
    s = make_server(env={"RATEKIT_REDIS_URL": f"redis://:first-secret@127.0.0.1:{redis.port}",
                         "RATEKIT_ENV": "production"})
    s.create_rule(id="pw", algorithm="token_bucket", limit=100, window="1m")
    assert s.check("pw", "k").json()["allowed"] is True
    redis.cli("-a", "first-secret", "--no-auth-warning", "CONFIG", "SET", "requirepass",
              "second-secret")
    redis.cli("-a", "second-secret", "--no-auth-warning", "CLIENT", "KILL", "TYPE", "normal")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "WRONGPASS" not in s.output():
        s.check("pw", "k")
        time.sleep(0.1)
    named = [l for l in s.output().splitlines() if "WRONGPASS" in l and "reconnecting" in l]
    assert len(named) == 1, s.output()[-2000:]


def _database_lines(server):
    return [l for l in server.output().splitlines() if "rules: the database file" in l]


def _wait_for(predicate, seconds=3):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.05)
    return predicate()


def test_changes_are_refused_while_the_database_file_is_deleted(make_server, workdir):
    """SQLite goes on writing to the file it opened: every change from then
    on would be lost at the next start. ratekit says so in the log and
    answers each change 503, while reads and checks go on."""
    s = make_server(db_path=os.path.join(workdir, "gone.db"))
    s.create_rule(id="kept", algorithm="fixed_window", limit=5, window="1m")
    os.unlink(s.db_path)
    r = s.admin("POST", "/api/v1/rules", {"id": "lost", "algorithm": "fixed_window",
                                           "limit": 5, "window": "1m"})
    assert r.status == 503 and r.json()["error"]["code"] == "database_moved", r.body
    for method, path, body in [("PATCH", "/api/v1/rules/kept", {"limit": 6}),
                               ("DELETE", "/api/v1/rules/kept", None),
                               ("POST", "/api/v1/lists", {"list": "deny", "kind": "ip",
                                                          "value": "203.0.113.9"}),
                               ("POST", "/api/v1/tokens", {"name": "ci", "role": "viewer"}),
                               ("PUT", "/api/v1/rules/kept/overrides/user:7", {"limit": 9})]:
        r = s.admin(method, path, body)
        assert r.status == 503 and r.json()["error"]["code"] == "database_moved", (path, r.body)
    assert s.admin("GET", "/api/v1/rules/kept").json()["limit"] == 5  # nothing changed
    assert s.check("kept", "k").json()["allowed"] is True  # checks go on
    assert _wait_for(lambda: _database_lines(s)), s.output()[-2000:]
    lines = _database_lines(s)
    assert len(lines) == 1 and "gone.db" in lines[0] and "refused" in lines[0], lines


def test_changes_are_accepted_again_once_the_database_file_is_back(make_server, workdir):
    """A file moved away and back is the one SQLite writes to: changes made
    after its return are kept across a restart."""
    s = make_server(db_path=os.path.join(workdir, "moved.db"), env={"RATEKIT_LOG_LEVEL": "info"})
    aside = s.db_path + ".aside"
    os.rename(s.db_path, aside)
    r = s.admin("POST", "/api/v1/rules", {"id": "early", "algorithm": "fixed_window",
                                           "limit": 5, "window": "1m"})
    assert r.status == 503, r.body
    assert _wait_for(lambda: len(_database_lines(s)) == 1), s.output()[-2000:]
    os.rename(aside, s.db_path)
    r = s.admin("POST", "/api/v1/rules", {"id": "late", "algorithm": "fixed_window",
                                           "limit": 5, "window": "1m"})
    assert r.status == 201, r.body
    assert _wait_for(lambda: "back in place" in s.output()), s.output()[-2000:]
    rows = sqlite3.connect(s.db_path).execute("SELECT id FROM rules").fetchall()
    assert rows == [("late",)]


def _fill_up(redis):
    """Fills redis (maxmemory 1mb, evicting nothing) until it refuses writes
    with OOM, then lowers maxmemory below what it uses, so that memory
    freed meanwhile (a client's buffers) never makes room again."""
    redis.cli("CONFIG", "SET", "maxmemory-policy", "noeviction")
    redis.cli("CONFIG", "SET", "maxmemory", "1mb")
    for i in range(1000):
        out = subprocess.run(["redis-cli", "-p", str(redis.port), "SET", f"fill:{i}", "x" * 65536],
                             capture_output=True, text=True).stdout
        if "OOM" in out:
            break
    else:
        raise AssertionError("redis never refused a write")
    used = next(int(line.split(":")[1]) for line in redis.cli("INFO", "memory").splitlines()
                if line.startswith("used_memory:"))
    redis.cli("CONFIG", "SET", "maxmemory", str(used // 2))


def _stats_lines(server):
    return [l for l in server.output().splitlines() if "stats: Redis" in l]


def test_a_redis_that_refuses_writes_is_logged_once_not_every_second(make_server, make_redis):
    """maxmemory reached: Redis refuses the statistics' writes and answers
    their reads. The log says so once, with Redis's reason, and once when a
    write goes through again, never "paused" and "again" each second."""
    redis = make_redis()
    s = make_server(env={"RATEKIT_REDIS_URL": redis.url, "RATEKIT_LOG_LEVEL": "info"})
    time.sleep(1.2)  # a publication went through
    assert _stats_lines(s) == []
    _fill_up(redis)
    time.sleep(4)  # four publications refused, four reads answered
    lines = _stats_lines(s)
    assert len(lines) == 1, "\n".join(lines)
    assert "refuses writes" in lines[0] and "OOM command not allowed" in lines[0], lines
    redis.cli("CONFIG", "SET", "maxmemory", "0")
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and len(_stats_lines(s)) < 2:
        time.sleep(0.1)
    time.sleep(1.5)  # and nothing more once it is over
    lines = _stats_lines(s)
    assert len(lines) == 2 and "accepts writes again" in lines[1], "\n".join(lines)


def test_checks_take_their_fail_mode_while_redis_refuses_writes(make_server, make_redis):
    """A check's script writes: refused (OOM), the check takes its fail mode
    like any store failure, and /readyz stays 503 (a PING would pass) until a
    write goes through again, without any check."""
    redis = make_redis()
    s = make_server(env={"RATEKIT_REDIS_URL": redis.url, "RATEKIT_LOG_LEVEL": "info"})
    s.create_rule(id="full", algorithm="fixed_window", limit=1000, window="1m")
    s.create_rule(id="shut", algorithm="fixed_window", limit=1000, window="1m",
                  fail_mode="closed")
    assert s.check("full", "k").json()["results"][0].get("fail_mode") is None
    _fill_up(redis)
    ready = []
    for i in range(8):  # checks on keys Redis has not seen, /readyz between them
        r = s.check("full", f"new-{i}").json()
        assert r["allowed"] is True and r["results"][0]["fail_mode"] == "local", r
        for _ in range(3):
            time.sleep(0.1)
            ready.append(request("GET", s.data + "/readyz").status)
    assert set(ready) == {503}, ready
    r = s.check("shut", "k").json()
    assert r["allowed"] is False and r["results"][0]["fail_mode"] == "closed"
    who = f"redis at 127.0.0.1:{redis.port}"
    assert s.output().count(who + " is failing") == 1, s.output()[-3000:]
    assert s.output().count(who + " answers again") == 0, s.output()[-3000:]
    redis.cli("CONFIG", "SET", "maxmemory", "0")
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline and request("GET", s.data + "/readyz").status != 200:
        time.sleep(0.05)
    assert request("GET", s.data + "/readyz").status == 200
    assert s.check("full", "k").json()["results"][0].get("fail_mode") is None


def _ruleset(redis):
    return redis.cli("GET", "ratekit:ruleset")


def _sync_lines(server):
    return [l for l in server.output().splitlines() if "rules sync:" in l]


def test_a_ruleset_redis_refuses_is_logged_once_and_published_once_it_takes_writes(
        make_server, make_redis):
    """maxmemory reached: Redis refuses the publication of a rule change. The
    log says so once, with Redis's reason, not on every retry; the retries go
    on, and the change reaches Redis once it takes writes, which is said
    once too."""
    redis = make_redis()
    s = make_server(env={"RATEKIT_REDIS_URL": redis.url, "RATEKIT_LOG_LEVEL": "info"})
    s.create_rule(id="first", algorithm="fixed_window", limit=10, window="1m")
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and '"first"' not in _ruleset(redis):
        time.sleep(0.05)
    assert '"first"' in _ruleset(redis)
    before = len(_sync_lines(s))
    _fill_up(redis)
    s.create_rule(id="refused", algorithm="fixed_window", limit=10, window="1m")
    time.sleep(3.5)  # retries after 0.1, 0.3, 0.7, 1.5 and 3.1 s
    lines = _sync_lines(s)[before:]
    assert len(lines) == 1, "\n".join(lines)
    assert "refuses writes" in lines[0] and "OOM command not allowed" in lines[0], lines
    assert '"refused"' not in _ruleset(redis)
    redis.cli("CONFIG", "SET", "maxmemory", "0")
    deadline = time.monotonic() + 4  # the next retry, 2 s at most
    while time.monotonic() < deadline and '"refused"' not in _ruleset(redis):
        time.sleep(0.05)
    assert '"refused"' in _ruleset(redis)
    time.sleep(1)  # and nothing more once it is over
    lines = _sync_lines(s)[before:]
    assert len(lines) == 2 and "accepts writes again" in lines[1], "\n".join(lines)
