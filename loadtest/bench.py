#!/usr/bin/python3
"""make bench: one run, one table, on loopback.

Starts every server on free loopback ports (nginx `return 204`,
build/trivial-mhd, redis-server, a 3-master Redis Cluster, ratekitd on the
embedded store, on Redis and on the cluster, the nginx + Lua peer and the
Express + rate-limiter-flexible peer), measures each with build/ratekit-load
using the same loader settings, stops each by its PID, prints one table and
writes it, with the machine's description, to
loadtest/results/<date>-<host>.md and .json.

Each row: a closed-loop run (maximum throughput) after a warm-up, then a
separate open-loop run at a fixed rate whose latencies are counted from the
intended send times. The loader, the servers and Redis share the machine's
cores: compare rows by their ratios, not by absolute numbers.

Usage: bench.py [--duration S] [--repeat N] [--warmup S] [--rate R] [--quick] [--no-write]
"""

import argparse
import datetime
import hashlib
import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import http.client

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
LOAD = os.path.join(ROOT, "build", "ratekit-load")
RATEKITD = os.path.join(ROOT, "build", "ratekitd")
TRIVIAL_MHD = os.path.join(ROOT, "build", "trivial-mhd")
TRIVIAL_ROW = "trivial-mhd (POST check body, fixed answer)"
# The same, sending what ratekitd sends (its rate-limit headers and 283-byte
# body): ratekitd's cost over it is its own work, the answer being the API's.
TRIVIAL_SAME_ROW = "trivial-mhd (ratekitd's answer bytes, fixed)"
MEMORY_PER_KEY = os.path.join(ROOT, "build", "memory-per-key")
DEEP_KEYS = os.path.join(ROOT, "build", "deep-keys")
PEERS = os.path.join(ROOT, "loadtest", "peers")
RESULTS = os.path.join(ROOT, "loadtest", "results")
TOKEN_BUCKET_LUA = os.path.join(ROOT, "lua", "token_bucket.lua")
ADMIN_TOKEN = "bench-admin-token-0123456789abcdef"
DEBS = ["nginx", "libnginx-mod-http-lua", "lua-nginx-redis", "lua-cjson", "redis-server",
        "redis-tools"]

ALGORITHMS = ["fixed_window", "sliding_window", "sliding_log", "token_bucket", "gcra",
              "leaky_bucket", "concurrency"]
LIMIT = 1000000        # high enough that the load is mostly allowed
# ...within each algorithm's bound (a log entry or a lease per allowed request)
ALG_LIMIT = {"sliding_log": 100000, "concurrency": 10000}
WINDOW_MS = 3600000
FIXED_STATE = ["fixed_window", "sliding_window", "token_bucket", "gcra", "leaky_bucket"]
# The Redis memory probes' rule ids. Redis rounds a key's name up to an
# allocator size (a name of 32 to 44 characters takes 48 bytes, of 45 to 60
# takes 64): with ids this short, every probe's name is of one size, and the
# rows compare the algorithms' states alone.
MEMORY_RULES = {"fixed_window": "mem-fw", "sliding_window": "mem-sw", "sliding_log": "mem-sl",
                "token_bucket": "mem-tb", "gcra": "mem-gc", "leaky_bucket": "mem-lb",
                "concurrency": "mem-co"}
MEMORY_KEY = "user-0000001"
LEASE_ROW = "acquire, then release"  # what a concurrency row's requests are
HOT_LIMIT = 10         # the hot key: denied after its first 10 requests
KEYS = 10000
DEEP_KEYS_DEPTH = 300  # checks per key before deep-keys times them: deeper than the
                       # HTTP rows leave a key (145 sliding_log entries in run 7 of
                       # 2026-12-02: its requests over 3 rounds, warm-ups included, / KEYS)
BUSY_SHARE = 0.10      # a row is flagged when other processes used more of the CPU
BUSY_STARTS = 10       # ... or started more processes or threads in one of its runs
# The rows on the single Redis (the cluster's are spread over its nodes), whose
# Redis CPU per answer is measured.
REDIS_KINDS = ("redis", "hot", "peer-lua", "peer-express", "peer-express-pool")
BUSY_KEY_CHECKS = 3    # checks per key of the second memory measurement: more than a
                       # sliding_log or concurrency state packs into its table slot


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_busy_s():
    """CPU seconds the whole machine has spent busy since boot."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (sum(v) - v[3] - v[4]) / CLK_TCK


def steal_s():
    """CPU seconds a virtual machine's host gave to others while it wanted to run."""
    with open("/proc/stat") as f:
        return int(f.readline().split()[8]) / CLK_TCK


def tasks_started():
    """Processes and threads started on the machine since boot (/proc/stat)."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("processes "):
                return int(line.split()[1])
    return 0


def process_ticks():
    """Every process's CPU time so far in clock ticks, by pid: (parent, ticks)."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(d)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    return out


def process_cpu_s(pid):
    """The user and system seconds process pid used so far; None when gone."""
    entry = process_ticks().get(pid)
    return entry[1] / CLK_TCK if entry else None


def process_tree(pid):
    """pid and every process descending from it (nginx's and Express's workers)."""
    parents = process_ticks()
    tree, grew = {pid}, True
    while grew:
        grown = {p for p, (ppid, _) in parents.items() if ppid in tree} - tree
        tree |= grown
        grew = bool(grown)
    return tree


def signal_tree(pid, sig):
    """Sends sig to pid and to every process descending from it."""
    for p in process_tree(pid):
        try:
            os.kill(p, sig)
        except OSError:
            pass  # gone meanwhile


def others_cpu_s(before, after, ours):
    """CPU seconds that processes outside the bench used between two
    process_ticks() snapshots: all but ours, their direct children, this
    script and its children (the loader). Counted process by process, in
    the same clock ticks for every one: the machine's busy time less ours
    mixed tick samples with the loader's exact time, and a run at a low
    fixed rate made that difference look like someone else's work."""
    me = os.getpid()
    total = 0
    for pid, (ppid, ticks) in after.items():
        if pid in ours or ppid in ours or pid == me or ppid == me:
            continue
        total += ticks - before.get(pid, (ppid, 0))[1]  # one born meanwhile: all of it
    return max(0, total) / CLK_TCK


def wait_for_quiet(max_wait_s=90.0, share=0.15):
    """Waits, up to max_wait_s, until the machine is idle (less than `share`
    of the CPU busy over a second), so that the bench does not measure
    someone else's work. Returns the busy share last seen."""
    deadline = time.monotonic() + max_wait_s
    cores = os.cpu_count() or 1
    while True:
        b0 = cpu_busy_s()
        time.sleep(1.0)
        busy = (cpu_busy_s() - b0) / cores
        if busy < share or time.monotonic() >= deadline:
            return busy
        say(f"waiting for the machine to quiet down ({busy:.0%} of the CPU busy)")


def say(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


class Processes:
    """Every process the bench starts, stopped by PID at the end (or on error)."""

    def __init__(self):
        self.procs = []

    def start(self, args, log_path, env=None, cwd=None):
        log = open(log_path, "ab")
        p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        log.close()
        self.procs.append(p)
        return p

    def stop(self, p, sig=signal.SIGTERM, timeout=10):
        if p.poll() is None:
            signal_tree(p.pid, signal.SIGCONT)  # a paused server acts on sig only once running
            p.send_signal(sig)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p in self.procs:
            self.procs.remove(p)

    def stop_all(self):
        for p in list(reversed(self.procs)):
            self.stop(p)


# ---- the machine ---------------------------------------------------------------

def command_output(args):
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=10)
        return (out.stdout + out.stderr).strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def system_call_ns():
    """What one system call costs here, in ns: a loop of getppid() less the
    same loop calling a builtin that makes none, best of 3. Every check costs
    the server two (its recv and send) and the loader two more, so this
    figure sets how much of an HTTP row's time the kernel takes."""
    def per_call(f, n=200000):
        t0 = time.perf_counter()
        for _ in range(n):
            f()
        return (time.perf_counter() - t0) / n
    call = min(per_call(os.getppid) for _ in range(3))
    empty = min(per_call(int) for _ in range(3))
    return max(0, round((call - empty) * 1e9))


def meltdown_mitigation():
    """The kernel's word on Meltdown: "Mitigation: PTI" when it isolates its
    page tables, which makes every system call dearer."""
    try:
        with open("/sys/devices/system/cpu/vulnerabilities/meltdown") as f:
            return f.read().strip()
    except OSError:
        return ""


def machine_description():
    cpu, flags = "", []
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name") and not cpu:
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = line.split(":", 1)[1].split()
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    nginx = command_output(["nginx", "-v"]).replace("nginx version: ", "")
    redis = re.search(r"v=(\S+)", command_output(["redis-server", "--version"]))
    git = command_output(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    dirty = command_output(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"])
    with open(os.path.join(PEERS, "express", "package-lock.json")) as f:
        lock = json.load(f)["packages"]
    return {
        "host": socket.gethostname(),
        "cpu": cpu or platform.processor(),
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "meltdown_mitigation": meltdown_mitigation(),
        "system_call_ns": system_call_ns(),
        # A host that reports no steal time hides its other guests from the
        # rows' mark: say so rather than let the mark look like a clean bill.
        "virtual_machine": "hypervisor" in flags,
        "steal_since_boot_s": round(steal_s(), 1),
        "os": command_output(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "nginx": nginx,
        "redis": redis.group(1) if redis else "",
        "node": command_output(["node", "--version"]),
        "express": lock.get("node_modules/express", {}).get("version", ""),
        "rate_limiter_flexible": lock.get("node_modules/rate-limiter-flexible", {}).get(
            "version", ""),
        "ioredis": lock.get("node_modules/ioredis", {}).get("version", ""),
        "libmicrohttpd": command_output(["pkg-config", "--modversion", "libmicrohttpd"]),
        "cc": command_output(["cc", "--version"]).splitlines()[0],
        "ratekit": (open(os.path.join(ROOT, "VERSION")).read().strip() + " " + git +
                    ("+changes" if dirty else "")),
        "load_average": open("/proc/loadavg").read().split()[:3],
    }


# ---- setup ---------------------------------------------------------------------

def install_dependencies():
    subprocess.run(["bash", os.path.join(ROOT, "tools", "deps.sh"), *DEBS], check=True)
    express = os.path.join(PEERS, "express")
    stamp = os.path.join(express, "node_modules", ".package-lock.json")
    lock = os.path.join(express, "package-lock.json")
    if not os.path.exists(stamp) or os.path.getmtime(stamp) < os.path.getmtime(lock):
        say("npm ci in loadtest/peers/express")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=express,
                       check=True, stdout=subprocess.DEVNULL)
    for path in (LOAD, RATEKITD, TRIVIAL_MHD, MEMORY_PER_KEY, DEEP_KEYS):
        if not os.access(path, os.X_OK):
            raise SystemExit(f"bench: {path} is missing: run `make bench`")


def fill_template(src, dst, values):
    with open(src) as f:
        text = f.read()
    for k, v in values.items():
        text = text.replace(f"@{k}@", str(v))
    leftover = re.search(r"@[A-Z_]+@", text)
    if leftover:
        raise RuntimeError(f"{src}: {leftover.group(0)} not filled in")
    with open(dst, "w") as f:
        f.write(text)


def http_call(port, method, path, body=None, token=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None,
                     headers=headers)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


# ---- servers -------------------------------------------------------------------

class Server:
    """A server under test. start() -> (process, port). When the process is
    found dead after a run, the death is noted and the server started again,
    so that one crash costs one row, not the rest of the bench."""

    def __init__(self, procs, name, start):
        self.procs = procs
        self.name = name
        self._start = start
        self.proc, self.port = start()
        self.paused = False

    def pause(self, paused):
        """Stops (SIGSTOP) or continues the server and its workers. A server
        idle while others are measured still works in the background (Node's
        threads in Express, ratekitd's timers): paused, it cannot
        take the CPU from the row being measured."""
        if paused != self.paused:
            signal_tree(self.proc.pid, signal.SIGSTOP if paused else signal.SIGCONT)
            self.paused = paused

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def check_alive(self):
        rc = self.proc.poll()
        if rc is None:
            return None
        self.procs.stop(self.proc)
        how = f"signal {-rc}" if rc < 0 else f"status {rc}"
        self.proc, self.port = self._start()
        return f"{self.name} died ({how})"

    def stop(self, sig=signal.SIGTERM):
        self.procs.stop(self.proc, sig)


def start_nginx(procs, work, name, template, values):
    d = os.path.join(work, name)
    os.makedirs(d, exist_ok=True)
    port = free_port()
    values = dict(values, DIR=d, PORT=port)
    conf = os.path.join(d, "nginx.conf")
    fill_template(os.path.join(PEERS, "nginx", template), conf, values)
    p = procs.start(["nginx", "-p", d, "-c", conf, "-g", "daemon off;"],
                    os.path.join(d, "stdout.log"))
    wait_for_port(port, p)
    return p, port


def start_redis(procs, work):
    d = os.path.join(work, "redis")
    os.makedirs(d, exist_ok=True)
    port = free_port()
    p = procs.start(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                     "--appendonly", "no", "--dir", d, "--loglevel", "warning"],
                    os.path.join(d, "redis.log"))
    wait_for_port(port, p)
    return p, port


def pin_to_last_cpu(p):
    """Keeps Redis on the machine's last CPU (taskset), as a Redis on its own
    core would run: without it, the scheduler moves Redis between the two
    cores it shares with the loader and the servers. The others still use
    that core too."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return
    subprocess.run(["taskset", "-a", "-p", "-c", str(cpus[-1]), str(p.pid)], check=True,
                   stdout=subprocess.DEVNULL)


CLUSTER_MASTERS = 3


def start_cluster(procs, work):
    """A Redis Cluster of CLUSTER_MASTERS masters (no replicas), slots split
    evenly; its seed list. Each node needs its port and port + 10000 (the
    cluster bus) free."""
    ports = []
    while len(ports) < CLUSTER_MASTERS:
        port = free_port()
        if port + 10000 > 65535 or port in ports:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        d = os.path.join(work, f"cluster-{port}")
        os.makedirs(d, exist_ok=True)
        p = procs.start(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                         "--appendonly", "no", "--dir", d, "--cluster-enabled", "yes",
                         "--cluster-config-file", "nodes.conf", "--loglevel", "warning"],
                        os.path.join(d, "redis.log"))
        wait_for_port(port, p)
        ports.append(port)
    slots = 16384
    for i, port in enumerate(ports):
        redis_cli(port, "CLUSTER", "ADDSLOTSRANGE", str(i * slots // len(ports)),
                  str((i + 1) * slots // len(ports) - 1))
    for port in ports[1:]:
        redis_cli(port, "CLUSTER", "MEET", "127.0.0.1", str(ports[0]))
    deadline = time.monotonic() + 30
    while not all("cluster_state:ok" in redis_cli(p, "CLUSTER", "INFO") for p in ports):
        if time.monotonic() > deadline:
            raise RuntimeError("the Redis Cluster did not reach cluster_state:ok")
        time.sleep(0.1)
    return ",".join(f"127.0.0.1:{p}" for p in ports)


def redis_cli(port, *args):
    out = subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True,
                         check=True)
    return out.stdout.strip()


def evalsha_calls(port):
    """EVALSHA commands the Redis on port has run since it started."""
    for line in redis_cli(port, "INFO", "commandstats").splitlines():
        if line.startswith("cmdstat_evalsha:"):
            return int(line.split("calls=", 1)[1].split(",", 1)[0])
    return 0


def rule_id(alg):
    return "bench-" + alg.replace("_", "-")


def start_ratekitd(procs, work, name, redis_port=None, cluster=None):
    d = os.path.join(work, name)
    os.makedirs(d, exist_ok=True)
    data, admin = free_port(), free_port()
    env = dict(os.environ)
    env.update({
        "RATEKIT_LISTEN": f"127.0.0.1:{data}",
        "RATEKIT_ADMIN_LISTEN": f"127.0.0.1:{admin}",
        "RATEKIT_DB": os.path.join(d, "ratekit.db"),
        "RATEKIT_ADMIN_TOKEN": ADMIN_TOKEN,
        "RATEKIT_LOG_LEVEL": "warn",
    })
    if redis_port:
        env["RATEKIT_REDIS_URL"] = f"redis://127.0.0.1:{redis_port}"
        env["RATEKIT_ENV"] = "production"
    if cluster:
        env["RATEKIT_REDIS_CLUSTER"] = cluster
        env["RATEKIT_ENV"] = "production"
    p = procs.start([RATEKITD], os.path.join(d, "ratekitd.log"), env=env, cwd=d)
    wait_for_port(data, p)
    wait_for_port(admin, p)
    rules = [{"id": rule_id(a), "algorithm": a, "limit": ALG_LIMIT.get(a, LIMIT),
              "window_ms": WINDOW_MS,
              "match": {"path": "/bench/direct"}} for a in ALGORITHMS]
    # The memory probes: the rule memory_per_key.c uses (100 a minute), so that
    # one check leaves state that lives (with a million an hour, a bucket is
    # full again, and its key gone, within milliseconds).
    rules += [{"id": MEMORY_RULES[a], "algorithm": a, "limit": 100,
               "window_ms": 60000, "match": {"path": "/bench/memory"}} for a in ALGORITHMS]
    rules.append({"id": "bench-auth", "algorithm": "token_bucket", "limit": LIMIT,
                  "window_ms": WINDOW_MS, "match": {"path": "/api/*"}, "key": ["ip"]})
    rules.append({"id": "bench-hot", "algorithm": "token_bucket", "limit": HOT_LIMIT,
                  "window_ms": WINDOW_MS, "match": {"path": "/bench/hot"}})
    for rule in rules:
        status, body = http_call(admin, "POST", "/api/v1/rules", rule, ADMIN_TOKEN)
        if status not in (201, 409):  # 409: started again on the same database
            raise RuntimeError(f"creating rule {rule['id']}: {status} {body[:300]!r}")
    return p, data


def express_label(workers):
    return "1 process" if workers == 1 else f"{workers} worker processes"


def start_express(procs, work, redis_port, workers):
    d = os.path.join(work, f"express-{workers}")
    os.makedirs(d, exist_ok=True)
    port = free_port()
    env = dict(os.environ, PORT=str(port), REDIS_PORT=str(redis_port), LIMIT=str(LIMIT),
               WINDOW_S=str(WINDOW_MS // 1000), NODE_ENV="production", WORKERS=str(workers))
    p = procs.start(["node", "server.js"], os.path.join(d, "express.log"), env=env,
                    cwd=os.path.join(PEERS, "express"))
    wait_for_port(port, p)
    # wait until every worker answers (the primary listens as soon as one does)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status, _ = http_call(port, "GET", "/healthz")
        if status == 200:
            break
        time.sleep(0.1)
    time.sleep(0.5)
    return p, port


# ---- measuring -----------------------------------------------------------------

def started_outside(closed, opened):
    """The most processes and threads started outside the bench in one of a
    row's runs (0 in results kept before the bench counted them)."""
    return max(closed.get("others_started", 0), opened.get("others_started", 0))


def median_run(runs, measure):
    """The run whose measure is the median, with every run's measure in "runs",
    the busiest share of the CPU other processes took in any of them, and the
    most processes and threads started outside the bench in any of them."""
    ordered = sorted(runs, key=measure)
    middle = dict(ordered[len(ordered) // 2])
    middle["runs"] = [measure(r) for r in ordered]
    middle["others_cpu_share"] = max(r["others_cpu_share"] for r in ordered)
    middle["others_started"] = max(r["others_started"] for r in ordered)
    return middle


class Bench:
    def __init__(self, args, work, procs):
        self.args = args
        self.procs = procs
        self.work = work
        self.rows = []       # dicts: name, kind, closed, open
        self.store_refs = []  # redis-benchmark rows
        self.memory = {}      # alg -> {"embedded": B/key, "redis": B/key}
        self.deep_keys = {}   # "keys", "depth", alg -> ns per check
        self.redis_port = None  # the Redis the ratekitd "Redis" rows use
        self.redis_pid = None   # its process, whose CPU per answer those rows report

    def load(self, label, url, extra, rate=None, warmup=None, cpu_of=(), store_cpu_of=()):
        """One ratekit-load run; returns its JSON result. cpu_of: the pids
        whose CPU time per answer the loader reports (the server's);
        store_cpu_of: the same, apart, for the store's (Redis)."""
        out = os.path.join(self.work, "runs", re.sub(r"[^a-z0-9]+", "-", label.lower()) +
                           ("-open" if rate else "-closed") + ".json")
        os.makedirs(os.path.dirname(out), exist_ok=True)
        args = [LOAD, "--url", url, "--threads", str(self.args.threads),
                "--connections", str(self.args.connections),
                "--duration", str(self.args.duration),
                "--warmup", str(self.args.warmup if warmup is None else warmup),
                "--quiet", "--json", out, "--label", label, *extra]
        if rate:
            args += ["--rate", str(rate)]
        for pid in sorted(cpu_of):
            args += ["--cpu-of", str(pid)]
        for pid in sorted(store_cpu_of):
            args += ["--store-cpu-of", str(pid)]
        # What the rest of the machine used meanwhile: other processes, and
        # the host's other guests (steal time). Others' work skews a row.
        pids = {p.pid for p in self.procs.procs}
        t0, steal0, ticks0 = time.monotonic(), steal_s(), process_ticks()
        started0 = tasks_started()
        loader0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        if os.path.exists(out):
            os.remove(out)  # a run that writes none must not read an earlier round's
        done = subprocess.run(args, check=False, stdout=subprocess.DEVNULL,
                              timeout=self.args.duration + 60)
        if not os.path.exists(out):
            raise RuntimeError(f"ratekit-load wrote no result for {label} (exit "
                               f"{done.returncode}; its error is above)")
        loader1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        # What started meanwhile, less the loader and its threads. Processes
        # that come and go within a run escape others_cpu_s(), which reads
        # the processes alive at its start and end: a shell loop starting
        # curl 20 times a second took 17% of the machine's CPU and put a
        # p99 from about 1 ms to about 5 ms, unseen (loadtest/README.md).
        started = tasks_started() - started0 - (1 + self.args.threads)
        loader = (loader1.ru_utime + loader1.ru_stime) - (loader0.ru_utime + loader0.ru_stime)
        others = others_cpu_s(ticks0, process_ticks(), pids) + (steal_s() - steal0)
        cores_s = (time.monotonic() - t0) * (os.cpu_count() or 1)
        with open(out) as f:
            result = json.load(f)
        result["loader_cpu_share"] = round(loader / cores_s, 3)
        result["others_cpu_share"] = round(max(0.0, others) / cores_s, 3)
        result["others_started"] = max(0, started)
        return result

    def measure(self, specs):
        """Runs every row of specs (name, kind, server, loader arguments) once
        per round, closed loop then open loop, for --repeat rounds; each row
        reports its median run. Taking turns spreads a burst of load from the
        machine's neighbours over every row, instead of over the few rows
        measured while it lasted: ratios within one run hold better. One run
        on a shared machine can be off by 15%; the median of three rarely is."""
        runs = {name: {"closed": [], "open": [], "deaths": [], "evalsha": 0, "span": [None, 0]}
                for name, _, _, _ in specs}
        servers = list({id(srv): srv for _, _, srv, _ in specs}.values())
        for rnd in range(1, self.args.repeat + 1):
            for name, kind, server, extra in specs:
                r = runs[name]
                for srv in servers:  # only the server measured runs (warm-up included)
                    srv.pause(self.args.pause_idle and srv is not server)
                # The hot key's runs count what they asked of Redis: after the
                # first denial, the deny cache should answer on its own.
                counted = kind == "hot" and self.redis_port
                if counted:
                    calls0 = evalsha_calls(self.redis_port)
                    r["span"][0] = r["span"][0] or time.monotonic()
                # The server's CPU per answer, beside its throughput: a ratio
                # of the two that a slow spell of the host moves far less. A
                # row on the single Redis reports Redis's too: what a check
                # costs the one process every instance shares.
                r["closed"].append(self.load(name, server.url, extra,
                                             cpu_of=process_tree(server.proc.pid),
                                             store_cpu_of=[self.redis_pid]
                                             if kind in REDIS_KINDS else ()))
                r["deaths"].append(server.check_alive())
                r["open"].append(self.load(name, server.url, extra, rate=self.args.rate,
                                           warmup=self.args.open_warmup))
                r["deaths"].append(server.check_alive())
                if counted:
                    r["evalsha"] += evalsha_calls(self.redis_port) - calls0
                    r["span"][1] = time.monotonic()
                say(f"round {rnd}/{self.args.repeat}: {name:<42} "
                    f"{r['closed'][-1]['throughput_rps']:>9,.0f} req/s, "
                    f"p99 {r['open'][-1]['latency_us']['p99']} us at {self.args.rate}/s")
        for srv in servers:
            srv.pause(False)
        say("medians:")
        for name, kind, _, _ in specs:
            r = runs[name]
            closed = median_run(r["closed"], lambda x: x["throughput_rps"])
            for who in ("server", "store"):  # the server's CPU, and Redis's on its rows
                cpu = sorted(x[f"{who}_cpu_us_per_answer"] for x in r["closed"]
                             if f"{who}_cpu_us_per_answer" in x)
                if cpu:  # its own median: the run of median throughput may not hold it
                    closed[f"{who}_cpu_us"] = cpu[len(cpu) // 2]
                    closed[f"{who}_cpu_us_runs"] = cpu
            opened = median_run(r["open"], lambda x: x["latency_us"]["p99"])
            self.add_row(name, kind, closed, opened, [d for d in r["deaths"] if d])
            if r["span"][0] is not None:  # its runs were counted
                answered = sum(x["requests"] for x in r["closed"] + r["open"])
                self.rows[-1]["redis_evalsha"] = {
                    "calls": r["evalsha"], "answered": answered,
                    "seconds": round(r["span"][1] - r["span"][0], 1)}

    def add_row(self, name, kind, closed, opened, deaths):
        self.rows.append({"name": name, "kind": kind, "closed": closed, "open": opened,
                          "server_died": deaths})
        lat = opened["latency_us"]
        errors = closed["errors"] + closed["status"]["5xx"]
        started = started_outside(closed, opened)
        say(f"{name:<42} {closed['throughput_rps']:>9,.0f} req/s   at {self.args.rate}/s: "
            f"p50 {lat['p50']} us, p99 {lat['p99']} us"
            + (f"   ({errors} errors/5xx)" if errors else "")
            + (f"   others used {closed['others_cpu_share']:.0%} CPU"
               if closed["others_cpu_share"] > BUSY_SHARE else "")
            + (f"   {started} processes started outside the bench"
               if started > BUSY_STARTS else "")
            + (f"   {'; '.join(deaths)}: started again" if deaths else ""))

    def redis_benchmark(self, redis_port, sha, pipeline):
        n = self.args.redis_requests * (4 if pipeline > 1 else 1)
        args = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(redis_port), "-c", "50",
                "-n", str(n), "-r", str(KEYS), "-P", str(pipeline), "--threads",
                str(self.args.threads), "--csv",
                "EVALSHA", sha, "1", "ratekit:{bench-redis-benchmark:k__rand_int__}:token_bucket",
                str(LIMIT), str(WINDOW_MS), str(LIMIT), "1", "-1", "0", "-", "decide"]
        cpu0 = process_cpu_s(self.redis_pid)
        out = subprocess.run(args, capture_output=True, text=True, check=True,
                             timeout=300).stdout
        cpu1 = process_cpu_s(self.redis_pid)
        lines = [l for l in out.splitlines() if l.startswith('"EVALSHA')]
        if not lines:
            raise RuntimeError(f"redis-benchmark printed no result:\n{out[-2000:]}")
        fields = [f.strip('"') for f in lines[-1].split('","')]
        # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",
        # "p99_latency_ms","max_latency_ms"
        name = "redis-benchmark EVALSHA token_bucket, 50 clients" + (
            f", pipeline {pipeline}" if pipeline > 1 else "")
        rps = float(fields[1])
        result = {"name": name, "requests": n, "throughput_rps": rps,
                  "p50_ms": float(fields[4]), "p99_ms": float(fields[6])}
        if cpu0 is not None and cpu1 is not None:  # Redis's CPU per EVALSHA, connections included
            result["store_cpu_us"] = round((cpu1 - cpu0) * 1e6 / n, 3)
        self.store_refs.append(result)
        say(f"{name:<42} {rps:>9,.0f} EVALSHA/s (p50 {fields[4]} ms, p99 {fields[6]} ms "
            f"closed loop)")

    def embedded_memory(self):
        # One check per key (what most keys of a large keyspace see), then
        # BUSY_KEY_CHECKS, which sliding_log and concurrency keep one entry each of.
        for checks, field in ((1, "embedded"), (BUSY_KEY_CHECKS, "embedded_busy")):
            out = subprocess.run([MEMORY_PER_KEY, str(self.args.memory_keys), str(checks)],
                                 capture_output=True, text=True, timeout=600)
            for line in out.stdout.splitlines():
                m = re.match(r"(\w+)\s+(\d+) keys\s+\d+ checks/key\s+([\d.]+) bytes/key", line)
                if m:
                    self.memory.setdefault(m.group(1), {})[field] = float(m.group(3))
            if out.returncode != 0:
                say(f"memory-per-key failed: {out.stderr.strip()[-300:]}")
            say("embedded bytes/key at %d keys of %d check%s: %s" % (
                self.args.memory_keys, checks, "s" if checks > 1 else "", ", ".join(
                    f"{a} {v.get(field, 0):.0f}" for a, v in self.memory.items())))

    def embedded_deep_keys(self):
        out = subprocess.run([DEEP_KEYS, str(DEEP_KEYS_DEPTH)], capture_output=True, text=True,
                             timeout=600)
        for line in out.stdout.splitlines():
            m = re.match(r"(\d+) keys, (\d+) allowed checks", line)
            if m:
                self.deep_keys.update(keys=int(m.group(1)), depth=int(m.group(2)))
            m = re.match(r"(\w+)\s+([\d.]+) ns/check", line)
            if m:
                self.deep_keys[m.group(1)] = float(m.group(2))
        if out.returncode != 0:
            say(f"deep-keys failed: {out.stderr.strip()[-300:]}")
        say("embedded store alone, deep keys: " + out.stdout.strip().replace("\n", "; "))

    def redis_memory(self, ratekitd_port, redis_port):
        for alg in ALGORITHMS:
            rule, key = MEMORY_RULES[alg], MEMORY_KEY
            status, body = http_call(ratekitd_port, "POST", "/v1/check",
                                     {"rule": rule, "key": key})
            if status != 200 or b'"allowed":true' not in body:
                raise RuntimeError(f"memory probe {alg}: {status} {body[:200]!r}")
            names = redis_cli(redis_port, "--scan", "--pattern",
                              f"ratekit:{{{rule}:{key}}}*").split()
            total = sum(int(redis_cli(redis_port, "MEMORY", "USAGE", n, "SAMPLES", "0") or 0)
                        for n in names)
            self.memory.setdefault(alg, {})["redis"] = total
            self.memory[alg]["redis_keys"] = len(names)
            self.memory[alg]["redis_name_chars"] = max(map(len, names), default=0)
        say("Redis MEMORY USAGE per client key: " + ", ".join(
            f"{a} {self.memory[a]['redis']}" for a in ALGORITHMS))


def run_all(b, procs, work):
    check = lambda rule: ["--rule", rule, "--keys", str(KEYS), "--dist", "uniform"]

    def algorithm_row(store, alg):
        """A row of direct checks; a concurrency rule's as a client uses it: an
        acquire, then the release of its lease, each a request."""
        if alg == "concurrency":
            return f"ratekitd {store} {alg} ({LEASE_ROW})", check(rule_id(alg)) + [
                "--target", "lease"]
        return f"ratekitd {store} {alg}", check(rule_id(alg))

    rp, redis_port = start_redis(procs, work)
    b.redis_port, b.redis_pid = redis_port, rp.pid
    if b.args.pin_redis:
        pin_to_last_cpu(rp)
    sha = redis_cli(redis_port, "SCRIPT", "LOAD", open(TOKEN_BUCKET_LUA).read())
    if sha != hashlib.sha1(open(TOKEN_BUCKET_LUA, "rb").read()).hexdigest():
        raise RuntimeError("SCRIPT LOAD answered an unexpected sha")
    # The store references, on a Redis nothing else uses yet.
    b.redis_benchmark(redis_port, sha, 1)
    b.redis_benchmark(redis_port, sha, 16)

    def trivial_mhd(*flags):
        port = free_port()
        p = procs.start([TRIVIAL_MHD, str(port), *flags], os.path.join(work, "trivial-mhd.log"))
        wait_for_port(port, p)
        return p, port

    # Every server runs for the whole bench, paused while the others take their turn.
    nginx = Server(procs, "nginx", lambda: start_nginx(procs, work, "nginx-204",
                                                        "return204.conf.in", {}))
    trivial = Server(procs, "trivial-mhd", trivial_mhd)
    trivial_same = Server(procs, "trivial-mhd", lambda: trivial_mhd("--ratekit-answer"))
    embedded = Server(procs, "ratekitd",
                      lambda: start_ratekitd(procs, work, "ratekitd-memory"))
    on_redis = Server(procs, "ratekitd",
                      lambda: start_ratekitd(procs, work, "ratekitd-redis", redis_port))
    b.redis_memory(on_redis.port, redis_port)
    seeds = start_cluster(procs, work)
    on_cluster = Server(procs, "ratekitd",
                        lambda: start_ratekitd(procs, work, "ratekitd-cluster", cluster=seeds))
    lua = Server(procs, "nginx", lambda: start_nginx(procs, work, "nginx-lua",
                                                      "lua-check.conf.in", {
        "REDIS_PORT": redis_port, "SHA": sha, "SCRIPT": TOKEN_BUCKET_LUA, "LIMIT": LIMIT,
        "WINDOW_MS": WINDOW_MS, "LUA_DIR": os.path.join(PEERS, "nginx")}))
    # One process is how the targets' reference was measured; one worker per
    # core is how one would deploy it: both are shown.
    express = [(w, kind, Server(procs, "express",
                                lambda w=w: start_express(procs, work, redis_port, w)))
               for w, kind in ((1, "peer-express"), (os.cpu_count() or 2, "peer-express-pool"))]

    specs = [("nginx return 204", "http", nginx, ["--target", "get"]),
             (TRIVIAL_ROW, "http", trivial, check("bench")),
             (TRIVIAL_SAME_ROW, "http", trivial_same, check(rule_id("token_bucket")))]
    for store, kind, srv in (("embedded", "embedded", embedded), ("Redis", "redis", on_redis)):
        for alg in ALGORITHMS:
            name, args = algorithm_row(store, alg)
            specs.append((name, kind, srv, args))
    specs += [("ratekitd Redis forward-auth /v1/auth", "redis", on_redis,
               ["--target", "auth", "--path", "/api/items", "--keys", str(KEYS)]),
              ("ratekitd Redis hot key (all denied)", "hot", on_redis,
               ["--rule", "bench-hot", "--key", "hot-key"]),
              (f"ratekitd Redis Cluster ({CLUSTER_MASTERS} masters) token_bucket", "cluster",
               on_cluster, check(rule_id("token_bucket"))),
              ("peer nginx+Lua EVALSHA token_bucket", "peer-lua", lua, check("peer-lua"))]
    specs += [(f"peer Express + rate-limiter-flexible, {express_label(w)}", kind, srv,
               check("peer-express")) for w, kind, srv in express]
    b.measure(specs)

    for srv in (nginx, lua):
        srv.stop(signal.SIGQUIT)
    for srv in [trivial, trivial_same, embedded, on_redis, on_cluster] + \
            [srv for _, _, srv in express]:
        srv.stop()
    procs.stop_all()  # Redis and the cluster's nodes

    b.embedded_memory()
    b.embedded_deep_keys()


# ---- the table -----------------------------------------------------------------

def row_named(b, name):
    """The measured row of that name, or None."""
    return next((r for r in b.rows if r["name"] == name), None)


def ratio(x, ref):
    return f"{x / ref:.2f}x" if ref else "-"


def build_table(b):
    a = b.args
    by_kind = lambda k: [r for r in b.rows if r["kind"] == k]
    rps = lambda r: r["closed"]["throughput_rps"] if r else 0
    nginx = rps(next(iter(by_kind("http")), None))
    mhd = rps(row_named(b, TRIVIAL_ROW))
    same = rps(row_named(b, TRIVIAL_SAME_ROW))
    lua = rps(next(iter(by_kind("peer-lua")), None))
    express = rps(next(iter(by_kind("peer-express")), None))
    cpu = lambda r: r["closed"].get("server_cpu_us") if r else None
    store_cpu = lambda r: r["closed"].get("store_cpu_us") if r else None
    mhd_cpu, same_cpu = cpu(row_named(b, TRIVIAL_ROW)), cpu(row_named(b, TRIVIAL_SAME_ROW))
    # (results kept before the loader measured them have no CPU columns)
    with_cpu = any(cpu(r) is not None for r in b.rows)
    with_store = any(store_cpu(r) is not None for r in b.rows)
    head = ["row", "throughput"] + (["server CPU per answer"] if with_cpu else []) + (
        ["Redis CPU per answer"] if with_store else []) + [
        f"p50 at {a.rate:,}/s", f"p99 at {a.rate:,}/s", "vs nginx 204", "vs trivial-mhd",
        "vs nginx+Lua", "vs Express, 1 process"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]

    def line(*cells):
        cells = list(cells) + [""] * (len(head) - len(cells))
        lines.append("| " + " | ".join(cells) + " |")

    def cpu_cell(r):
        """The server's CPU per answer (closed loop, median of the runs); an
        embedded row's also as a ratio to the trivial handlers' own."""
        us = cpu(r)
        if us is None:
            return ""
        if r["kind"] != "embedded" or not mhd_cpu:
            return f"{us:.2f} us"
        return (f"{us:.2f} us ({us / mhd_cpu:.2f}x trivial-mhd's" +
                (f", {us / same_cpu:.2f}x the same bytes'" if same_cpu else "") + ")")

    for r in b.rows:
        c, o = r["closed"], r["open"]
        lat = o["latency_us"]
        behind = o["scheduled"] and o["requests"] < 0.95 * o["scheduled"]
        sat = " (saturated)" if behind else ""
        errs = c["errors"] + c["status"]["5xx"]
        note = f" ({errs} errors)" if errs else ""
        if r.get("server_died"):
            note += " (" + "; ".join(r["server_died"]) + ")"
        if r.get("redis_evalsha"):
            note += f" (Redis asked {r['redis_evalsha']['calls']:,} times in all its runs)"
        busy = max(c.get("others_cpu_share", 0), o.get("others_cpu_share", 0))
        if busy > BUSY_SHARE:
            note += f" (other processes used {busy:.0%} of the CPU)"
        started = started_outside(c, o)
        if started > BUSY_STARTS:
            note += f" ({started} processes or threads started outside the bench in a run)"
        k = r["kind"]
        cells = [r["name"], f"{c['throughput_rps']:,.0f} req/s{note}"] + (
            [cpu_cell(r)] if with_cpu else []) + (
            [f"{store_cpu(r):.2f} us" if store_cpu(r) is not None else ""]
            if with_store else []) + [
                 f"{lat['p50']:,} us{sat}", f"{lat['p99']:,} us{sat}",
                 ratio(rps(r), nginx),
                 ratio(rps(r), mhd) + (f" ({ratio(rps(r), same)} of the same bytes)"
                                       if same else "") if k == "embedded" else "",
                 ratio(rps(r), lua) if k in ("redis", "hot", "cluster") else "",
                 ratio(rps(r), express)
                 if k in ("redis", "hot", "cluster", "peer-lua", "peer-express-pool") else ""]
        line(*cells)
    for s in b.store_refs:
        per = [f"{s['store_cpu_us']:.2f} us per EVALSHA" if "store_cpu_us" in s else ""]
        line(s["name"], f"{s['throughput_rps']:,.0f} EVALSHA/s", *[""] * with_cpu,
             *(per if with_store else []), "", "", ratio(s["throughput_rps"], nginx))
    for alg in ALGORITHMS:
        m = b.memory.get(alg, {})
        if "embedded" in m:
            line(f"memory: embedded {alg}, {a.memory_keys:,} keys", f"{m['embedded']:.1f} B/key")
    for alg in ALGORITHMS:
        m = b.memory.get(alg, {})
        if alg not in FIXED_STATE and "embedded_busy" in m:
            line(f"memory: embedded {alg}, {a.memory_keys:,} keys of {BUSY_KEY_CHECKS} checks",
                 f"{m['embedded_busy']:.1f} B/key")
    deep, tb = b.deep_keys, b.deep_keys.get("token_bucket")
    for alg in ("token_bucket", "sliding_log", "concurrency"):
        if alg in deep:
            versus = f" ({deep[alg] / tb:.2f}x token_bucket)" if tb and alg != "token_bucket" else ""
            line(f"embedded store alone, {deep['keys']:,} keys after {deep['depth']} checks "
                 f"each: {alg}", f"{deep[alg]:,.0f} ns/check{versus}")
    for alg in ALGORITHMS:
        m = b.memory.get(alg, {})
        if "redis" in m:
            chars = m.get("redis_name_chars")  # not recorded before run 23
            named = f", a name of {chars} characters" if chars else ""
            line(f"memory: Redis {alg}, MEMORY USAGE after one check",
                 f"{m['redis']} B/key ({m['redis_keys']} Redis key"
                 f"{'s' if m['redis_keys'] != 1 else ''}{named})")
    return "\n".join(lines)


def targets(b):
    """The goals set for ratekitd, each with the measured value and met or missed."""
    a = b.args
    get = lambda name: row_named(b, name)
    rps = lambda r: r["closed"]["throughput_rps"] if r else 0
    nginx = rps(get("nginx return 204"))
    mhd = rps(get(TRIVIAL_ROW))
    same = rps(get(TRIVIAL_SAME_ROW))
    lua = rps(get("peer nginx+Lua EVALSHA token_bucket"))
    express = rps(next((r for r in b.rows if r["kind"] == "peer-express"), None))
    express_pool = next((r for r in b.rows if r["kind"] == "peer-express-pool"), None)
    emb = [r for r in b.rows if r["kind"] == "embedded"]
    red = [r for r in b.rows if r["kind"] == "redis" and "auth" not in r["name"]]
    hot = get("ratekitd Redis hot key (all denied)")
    out = []

    def goal(text, ok, measured):
        out.append({"goal": text, "met": bool(ok), "measured": measured})

    cpu = lambda r: r["closed"].get("server_cpu_us") if r else None
    if emb and mhd and nginx:
        worst = min(emb, key=rps)
        costs = [cpu(r) for r in emb if cpu(r)]
        cost = (f"; server CPU per answer {min(costs) / cpu(get(TRIVIAL_ROW)):.2f}x to "
                f"{max(costs) / cpu(get(TRIVIAL_ROW)):.2f}x trivial-mhd's"
                if costs and cpu(get(TRIVIAL_ROW)) else "")
        goal("embedded >= 0.9x trivial-mhd", rps(worst) >= 0.9 * mhd,
             f"lowest {rps(worst) / mhd:.2f}x ({worst['name']}){cost}")
        if same:
            # What the limiter itself costs (under 10% of the HTTP work), measured
            # apart: against the same answer bytes, what is left is ratekitd's work.
            same_cpu = cpu(get(TRIVIAL_SAME_ROW))
            cost = (f"; server CPU per answer {min(costs) / same_cpu:.2f}x to "
                    f"{max(costs) / same_cpu:.2f}x its own" if costs and same_cpu else "")
            goal("embedded >= 0.9x trivial-mhd sending ratekitd's answer bytes",
                 rps(worst) >= 0.9 * same,
                 f"lowest {rps(worst) / same:.2f}x ({worst['name']}){cost}")
        goal("embedded >= 0.5x nginx 204", rps(worst) >= 0.5 * nginx,
             f"lowest {rps(worst) / nginx:.2f}x")
    # The peers run the token bucket: compared with ratekitd's token_bucket row
    # (the same work), and with the slowest algorithm (sliding_log and
    # concurrency keep a sorted set per key, more work than the peers do).
    same = next((r for r in red if r["name"].endswith("token_bucket")), None)
    worst = min(red, key=rps) if red else None
    for label, row in (("token_bucket", same), ("every algorithm", worst)):
        if not row:
            continue
        who = f"{rps(row):,.0f}/s ({row['name'].replace('ratekitd Redis ', '')})"
        if lua:
            goal(f"Redis >= 1.5x nginx+Lua peer, {label}", rps(row) >= 1.5 * lua,
                 f"{rps(row) / lua:.2f}x: {who}")
        if nginx:
            goal(f"Redis >= 0.4x nginx 204, {label}", rps(row) >= 0.4 * nginx,
                 f"{rps(row) / nginx:.2f}x")
        if express:
            goal(f"Redis >= 8x Express (1 process), {label}", rps(row) >= 8 * express,
                 f"{rps(row) / express:.2f}x")
        if express_pool:
            goal(f"Redis >= 8x Express ({express_pool['name'].rsplit(', ', 1)[1]}), {label}",
                 rps(row) >= 8 * rps(express_pool), f"{rps(row) / rps(express_pool):.2f}x")
    if emb:
        p99 = max(r["open"]["latency_us"]["p99"] for r in emb)
        goal(f"embedded p99 at {a.rate:,}/s < 1 ms", p99 < 1000, f"highest {p99} us")
    if red:
        p99 = max(r["open"]["latency_us"]["p99"] for r in red)
        goal(f"Redis p99 at {a.rate:,}/s < 2 ms", p99 < 2000, f"highest {p99} us")
    if hot and emb and rps(next((r for r in emb if r["name"].endswith("token_bucket")),
                                 emb[0])):
        tb = next((r for r in emb if r["name"].endswith("token_bucket")), emb[0])
        denied = hot["closed"]["denied"]
        goal("hot key all denied >= embedded throughput", rps(hot) >= rps(tb),
             f"{rps(hot) / rps(tb):.2f}x embedded token_bucket; "
             f"{denied:,} of {hot['closed']['requests']:,} denied")
    asked = hot and hot.get("redis_evalsha")
    if asked:
        # Redis decides the key's first HOT_LIMIT requests and its first denial;
        # then the deny cache answers until the denial ends (a token comes back
        # every WINDOW_MS / HOT_LIMIT), when one allowed request and the next
        # denial go to Redis again. Each of those moments may also send the
        # requests already in flight on every connection.
        periods = 1 + math.ceil(asked["seconds"] * 1000 / (WINDOW_MS / HOT_LIMIT))
        bound = periods * (HOT_LIMIT + 2 * a.connections)
        goal("hot key: Redis untouched after the first denial", asked["calls"] <= bound,
             f"{asked['calls']:,} EVALSHA in {asked['seconds']:.0f} s of hot-key runs "
             f"({asked['answered']:,} answers measured); at most {bound:,} expected")
    mem = b.memory
    if mem:
        # Five algorithms keep a fixed-size state per key; sliding_log keeps an
        # entry per request and concurrency a lease per request: reported apart.
        for algs in (FIXED_STATE, [x for x in ALGORITHMS if x not in FIXED_STATE]):
            worst = max(algs, key=lambda x: mem.get(x, {}).get("embedded", 0))
            busy = [f"{x} {mem[x]['embedded_busy']:.1f}" for x in algs
                    if x not in FIXED_STATE and "embedded_busy" in mem.get(x, {})]
            goal(f"embedded <= 96 B/key ({', '.join(algs)})",
                 mem.get(worst, {}).get("embedded", 1e9) <= 96,
                 f"highest {mem.get(worst, {}).get('embedded', 0):.1f} ({worst})" +
                 (f"; at {BUSY_KEY_CHECKS} checks per key: {', '.join(busy)}" if busy else ""))
        fixed = {x: mem.get(x, {}).get("redis", 1e9)
                 for x in ("fixed_window", "token_bucket", "gcra")}
        chars = [str(mem[x]["redis_name_chars"]) for x in fixed if "redis_name_chars" in mem.get(x, {})]
        goal("Redis <= 100 B/key for fixed_window, token_bucket, gcra",
             max(fixed.values()) <= 100, ", ".join(f"{k} {v}" for k, v in fixed.items()) +
             (f" (key names of {', '.join(chars)} characters)" if len(chars) == len(fixed) else ""))
    return out


STARTS_MARK = (f", or when more than {BUSY_STARTS} processes or threads started outside "
               f"the bench during one of its runs")


def counted_starts(b):
    """Whether the runs counted processes started beside them (results kept
    before the bench did render without that mark)."""
    return any("others_started" in r["closed"] for r in b.rows)


HIDDEN_STEAL = (" This virtual machine's host reports no steal time (none since boot), so "
                "the host's other guests escape that mark: a slow spell on the host shows "
                "only as every row measured during it falling together.")


def hides_steal(machine):
    """A virtual machine whose host has reported no steal time since boot."""
    return machine.get("virtual_machine") and machine.get("steal_since_boot_s") == 0


def results_base(day, host):
    """results/<day>-<host>, or -2, -3, ... when runs of that day are kept already."""
    base = os.path.join(RESULTS, f"{day}-{host}")
    n = 1
    while os.path.exists((base if n == 1 else f"{base}-{n}") + ".json"):
        n += 1
    return base if n == 1 else f"{base}-{n}"


def write_results(b, machine, table, goals, elapsed, day=None, base=None):
    """Writes <base>.md and .json (base: a new results_base() unless given)."""
    a = b.args
    os.makedirs(RESULTS, exist_ok=True)
    day = day or datetime.date.today().isoformat()
    host = re.sub(r"[^A-Za-z0-9_.-]+", "-", machine["host"])[:40] or "host"
    base = base or results_base(day, host)
    settings = (f"ratekit-load {a.threads} threads, {a.connections} connections, HTTP/1.1 "
                f"keep-alive: closed loop for {a.duration:g} s after a {a.warmup:g} s warm-up "
                f"(throughput), then open loop at {a.rate:,} req/s for {a.duration:g} s "
                f"(latency from intended send times); the rows take turns for "
                f"{getattr(a, 'repeat', 1)} rounds, each reporting its median run (throughput; "
                f"p99). Direct checks draw from {KEYS:,} keys "
                f"uniformly; rules allow {LIMIT:,} per hour (sliding_log {ALG_LIMIT['sliding_log']:,}, "
                f"concurrency {ALG_LIMIT['concurrency']:,} leases; the hot key: {HOT_LIMIT}). "
                f"A concurrency row sends an acquire, then the release of the lease it "
                f"got, each a request of its own. "
                f"{'The Redis server (not the cluster) is pinned to the last CPU. ' if getattr(a, 'pin_redis', False) else ''}"
                f"{'Only the server measured runs: the others are paused (SIGSTOP) meanwhile, Redis and the cluster nodes excepted. ' if getattr(a, 'pause_idle', False) else ''}"
                f"A row is marked when processes outside the bench (or, on a virtual "
                f"machine, the host's other guests) used more than "
                f"{BUSY_SHARE:.0%} of the CPU while it ran"
                f"{STARTS_MARK if counted_starts(b) else ''}."
                f"{HIDDEN_STEAL if hides_steal(machine) else ''}")
    md = [f"# ratekit benchmark, {day}, {machine['host']}", "",
          "Produced by `make bench` (loadtest/bench.py). The loader, the servers and Redis "
          f"share this machine's {machine['cores']} cores: compare rows by their ratios.", "",
          "## Machine", ""]
    for k in ("cpu", "cores", "memory_gib", "kernel", "meltdown_mitigation", "system_call_ns",
              "virtual_machine", "steal_since_boot_s", "os", "nginx", "redis", "node",
              "express", "rate_limiter_flexible", "ioredis", "libmicrohttpd", "cc", "ratekit",
              "load_average", "busy_at_start"):
        if k not in machine:  # a result kept before the bench recorded it
            continue
        v = machine[k]
        if isinstance(v, bool):
            v = "yes" if v else "no"
        md.append(f"- {k.replace('_', ' ')}: {' '.join(v) if isinstance(v, list) else v}")
    md += ["", "## Settings", "", settings, "", "## Results", "", table, "", "## Targets", ""]
    for g in goals:
        md.append(f"- {'met' if g['met'] else 'MISSED'}: {g['goal']} — {g['measured']}")
    md += ["", f"Whole run: {elapsed:.0f} s.", ""]
    with open(base + ".md", "w") as f:
        f.write("\n".join(md))
    with open(base + ".json", "w") as f:
        settings = {k: v for k, v in vars(a).items() if k != "render"}
        json.dump({"date": day, "machine": machine, "settings": settings, "rows": b.rows,
                   "store_references": b.store_refs, "memory_bytes_per_key": b.memory,
                   "deep_keys_ns_per_check": b.deep_keys,
                   "targets": goals, "elapsed_s": round(elapsed, 1)}, f, indent=1)
    return base


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=3.0, help="seconds measured per run")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs per row and loop; the median is reported")
    ap.add_argument("--warmup", type=float, default=1.0, help="closed-loop warm-up seconds")
    ap.add_argument("--open-warmup", type=float, default=0.5, help="open-loop warm-up seconds")
    ap.add_argument("--rate", type=int, default=10000, help="open-loop rate, req/s")
    ap.add_argument("--threads", type=int, default=2, help="loader threads")
    ap.add_argument("--connections", type=int, default=64, help="loader connections")
    ap.add_argument("--memory-keys", type=int, default=1000000, help="keys for bytes/key")
    ap.add_argument("--redis-requests", type=int, default=300000,
                    help="EVALSHA per redis-benchmark run (x4 pipelined)")
    ap.add_argument("--no-pin-redis", dest="pin_redis", action="store_false",
                    help="let the Redis server run on any CPU (default: the last one)")
    ap.add_argument("--no-pause-idle", dest="pause_idle", action="store_false",
                    help="let the servers not being measured run (default: paused by SIGSTOP)")
    ap.add_argument("--quick", action="store_true", help="1 s runs, for trying the bench out")
    ap.add_argument("--no-write", action="store_true", help="do not write loadtest/results")
    ap.add_argument("--keep", action="store_true", help="keep build/bench-* (logs, configs)")
    ap.add_argument("--render", metavar="JSON", help="rewrite the .md of a results .json")
    args = ap.parse_args()
    if args.render:
        # Rewrites the table, the targets and the .md of an earlier run's .json.
        with open(args.render) as f:
            saved = json.load(f)
        # Settings a run's JSON lacks were not in use then.
        args.pin_redis = args.pause_idle = False
        for k, v in saved["settings"].items():
            setattr(args, k, v)
        b = Bench(args, None, None)
        b.rows, b.store_refs, b.memory = (saved["rows"], saved["store_references"],
                                          saved["memory_bytes_per_key"])
        b.deep_keys = saved.get("deep_keys_ns_per_check", {})
        table, goals = build_table(b), targets(b)
        base = write_results(b, saved["machine"], table, goals, saved["elapsed_s"],
                             day=saved["date"], base=os.path.splitext(args.render)[0])
        print(table)
        print(f"\nwritten: {os.path.relpath(base, ROOT)}.md and .json")
        return
    if args.quick:
        args.duration, args.warmup, args.open_warmup, args.repeat = 1.0, 0.3, 0.2, 1
        args.memory_keys, args.redis_requests = 100000, 50000

    started = time.monotonic()
    install_dependencies()
    busy = wait_for_quiet(0 if args.quick else 90)
    if busy >= 0.15:
        say(f"the machine is busy ({busy:.0%} of the CPU): rows will be marked")
    machine = machine_description()
    machine["busy_at_start"] = round(busy, 3)
    if hides_steal(machine):
        say("this virtual machine's host reports no steal time: rows cannot be marked "
            "for the host's other guests")
    work = tempfile.mkdtemp(prefix="bench-", dir=os.path.join(ROOT, "build"))
    procs = Processes()
    b = Bench(args, work, procs)
    try:
        run_all(b, procs, work)
    finally:
        procs.stop_all()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    elapsed = time.monotonic() - started
    table = build_table(b)
    goals = targets(b)
    print(table)
    print()
    for g in goals:
        print(f"{'met   ' if g['met'] else 'MISSED'}  {g['goal']}: {g['measured']}")
    if not args.no_write:
        base = write_results(b, machine, table, goals, elapsed)
        print(f"\nwritten: {os.path.relpath(base, ROOT)}.md and .json ({elapsed:.0f} s)")


if __name__ == "__main__":
    main()
