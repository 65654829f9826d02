"""A real Redis Cluster on loopback for the black-box suites: redis-server
processes with --cluster-enabled, the slots split evenly over the masters,
replicas attached, stopped by PID. One cluster per test module."""

import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

SLOTS = 16384


def _crc16_table():
    table = []
    for i in range(256):
        c = i << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) if c & 0x8000 else (c << 1)
        table.append(c & 0xFFFF)
    return table


_TABLE = _crc16_table()


def crc16(data: bytes) -> int:
    """CRC16-XMODEM, as Redis Cluster computes it."""
    crc = 0
    for b in data:
        crc = ((crc << 8) & 0xFF00) ^ _TABLE[((crc >> 8) ^ b) & 0xFF]
    return crc


def keyslot(key: str) -> int:
    """The hash slot of a key: its first non-empty {hash tag} when it has one."""
    data = key.encode()
    start = data.find(b"{")
    if start >= 0:
        end = data.find(b"}", start + 1)
        if end > start + 1:
            data = data[start + 1:end]
    return crc16(data) & (SLOTS - 1)


def _port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _cluster_port(taken):
    """A port P with P and P + 10000 (the cluster bus) free."""
    for _ in range(1000):
        p = random.randint(20000, 45000)
        if p not in taken and _port_free(p) and _port_free(p + 10000):
            return p
    raise RuntimeError("no free port pair for a cluster node")


class RedisCluster:
    """masters + masters * replicas nodes; ports[:masters] own the slots at first;
    every node asks for `password` (requirepass) when one is given."""

    def __init__(self, masters=3, replicas=0, node_timeout_ms=1000, password=None):
        self.dir = tempfile.mkdtemp(prefix="ratekit-cluster-")
        self.ports = []
        self.procs = {}
        self.password = password
        auth = ["--requirepass", password, "--masterauth", password] if password else []
        total = masters + masters * replicas
        try:
            for _ in range(total):
                port = _cluster_port(self.ports)
                self.ports.append(port)
                d = os.path.join(self.dir, str(port))
                os.mkdir(d)
                self.procs[port] = subprocess.Popen(
                    ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                     "--appendonly", "no", "--dir", d, "--cluster-enabled", "yes",
                     "--cluster-config-file", "nodes.conf",
                     "--cluster-node-timeout", str(node_timeout_ms), "--loglevel", "warning",
                     "--repl-diskless-sync-delay", "0", *auth],
                    stdout=subprocess.DEVNULL)
            for port in self.ports:
                self._wait(lambda: self.cli(port, "PING") == "PONG", f"node {port} to start")
            self.ids = {port: self.cli(port, "CLUSTER", "MYID") for port in self.ports}
            for m in range(masters):
                self.cli(self.ports[m], "CLUSTER", "ADDSLOTSRANGE", str(m * SLOTS // masters),
                         str((m + 1) * SLOTS // masters - 1))
            for port in self.ports[1:]:
                self.cli(port, "CLUSTER", "MEET", "127.0.0.1", str(self.ports[0]))
            self._wait(lambda: all(f"cluster_known_nodes:{total}" in self.cli(p, "CLUSTER", "INFO")
                                   for p in self.ports), "the nodes to meet")
            for i, port in enumerate(self.ports[masters:]):
                self.cli(port, "CLUSTER", "REPLICATE", self.ids[self.ports[i % masters]])
            # a replica can take over only once it has synced: until then a lost
            # master is never failed over
            self._wait(lambda: all("cluster_state:ok" in self.cli(p, "CLUSTER", "INFO")
                                   for p in self.ports) and
                       all(f"connected_slaves:{replicas}" in self.cli(p, "INFO", "replication")
                           for p in self.ports[:masters]) and
                       all("master_link_status:up" in self.cli(p, "INFO", "replication")
                           for p in self.ports[masters:]), "cluster_state:ok, replicas synced")
        except BaseException:
            self.stop()
            raise

    @staticmethod
    def _wait(cond, what, timeout=15.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if cond():
                    return
            except subprocess.CalledProcessError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"timed out waiting for {what}")

    @property
    def seeds(self):
        return ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def cli(self, port, *args):
        """One command on one node (no redirection followed); its output, stripped."""
        auth = ["-a", self.password, "--no-auth-warning"] if self.password else []
        out = subprocess.run(["redis-cli", "-p", str(port), *auth, *args], check=True,
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip()

    def alive(self):
        return [p for p in self.ports if self.procs[p].poll() is None]

    def _slot_ranges(self, ask=None):
        """[(port, lo, hi)] of the live masters, as node `ask` (any live node) sees them."""
        ask = ask or self.alive()[0]
        ranges = []
        for line in self.cli(ask, "CLUSTER", "NODES").splitlines():
            f = line.split()
            if "master" not in f[2] or "fail" in f[2]:
                continue
            port = int(f[1].split("@")[0].rsplit(":", 1)[1])
            for r in f[8:]:
                if not r.startswith("["):
                    lo, _, hi = r.partition("-")
                    ranges.append((port, int(lo), int(hi or lo)))
        return ranges

    def slot_owner(self, slot, ask=None):
        """The port of the master serving slot, or None."""
        for port, lo, hi in self._slot_ranges(ask):
            if lo <= slot <= hi:
                return port
        return None

    def masters(self, ask=None):
        """Ports of the live masters that serve slots."""
        return sorted({port for port, _, _ in self._slot_ranges(ask)})

    def dbsize(self, port):
        return int(self.cli(port, "DBSIZE"))

    def kill(self, port):
        self.procs[port].kill()
        self.procs[port].wait()

    def stop(self):
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
                proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def redis_cluster():
    """3 masters, each with one replica, for the whole test module."""
    c = RedisCluster(masters=3, replicas=1)
    yield c
    c.stop()
