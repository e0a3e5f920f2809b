"""Redis servers that a test starts for itself: plain (with AOF), a Redis Cluster, a Sentinel set-up.

Each server is a real ``redis-server`` process on a free loopback port, with
its files in the test's temporary directory. :class:`RedisServers` starts
them and kills every one that still runs when the test ends; a test run that
is itself killed takes them down too (the parent-death signal of the e2e
workers). Waits are on conditions with deadlines, never bare sleeps.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import missing
from tests.e2e.helpers import _die_with_the_test_process, wait_until

#: Seconds a redis-server may take to answer PING after its start (AOF replay included).
START_TIMEOUT_SECONDS = 20.0
#: Seconds a Redis Cluster or a Sentinel fail-over may take to settle.
SETTLE_TIMEOUT_SECONDS = 30.0


def require_redis_binaries() -> tuple[str, str]:
    """Paths of ``redis-server`` and ``redis-cli``; skip when missing, but fail in CI."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        missing("redis-server and redis-cli must be on PATH to start test Redis servers")
    return server, cli


def _port_free(port: int) -> bool:
    """Whether nothing listens on ``port`` (connections of a killed server in TIME_WAIT do not count)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as redis-server binds
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(*, with_cluster_bus: bool = False, taken: Sequence[int] = ()) -> int:
    """A free loopback port (and, for a cluster node, its bus port ``port + 10000`` too)."""
    for _ in range(200):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port in taken or (with_cluster_bus and (port > 55535 or not _port_free(port + 10000))):
            continue
        return port
    raise AssertionError("found no free loopback port")


def client(port: int, **options: object):  # noqa: ANN201 - a redis.Redis
    """A plain client of the server on ``port`` (never a cluster or sentinel client)."""
    import redis

    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=2, socket_connect_timeout=2,
                       retry=None, **options)


def answers(port: int) -> bool:
    """Whether the server on ``port`` answers PING (a server still loading its AOF does not)."""
    import redis

    conn = client(port)
    try:
        return bool(conn.ping())
    except redis.RedisError:
        return False
    finally:
        conn.close()


@dataclass
class RedisServer:
    """One ``redis-server`` process; :meth:`start` may be called again after :meth:`kill` (same port, same files)."""

    port: int
    directory: Path
    args: list[str]
    binary: str
    name: str = ""
    #: A config file to start from (Sentinel needs one it can rewrite).
    config: Path | None = None
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.directory / f"redis-{self.name or self.port}.log"

    def start(self, *, wait: bool = True) -> RedisServer:
        assert self.popen is None or self.popen.poll() is not None, "already running"
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [self.binary, *([str(self.config)] if self.config else []), "--port", str(self.port),
                   "--bind", "127.0.0.1", "--dir", str(self.directory), *self.args]
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(command, cwd=self.directory, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL,
                                          preexec_fn=_die_with_the_test_process())  # noqa: PLW1509
        if wait:
            self.wait_answering()
        return self

    def wait_answering(self) -> None:
        def up() -> bool:
            if self.popen is not None and self.popen.poll() is not None:
                raise AssertionError(f"redis-server on port {self.port} exited with code {self.popen.returncode}:"
                                     f"\n{self.log_tail()}")
            return answers(self.port)

        wait_until(up, timeout=START_TIMEOUT_SECONDS, what=f"redis-server on port {self.port} to answer PING")

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def send(self, signum: signal.Signals) -> None:
        assert self.popen is not None
        self.popen.send_signal(signum)

    def kill(self, signum: signal.Signals = signal.SIGKILL) -> None:
        """Stop the server with ``signum`` (SIGKILL by default) and reap it; its port is closed afterwards."""
        if self.popen is None or self.popen.poll() is not None:
            return
        if signum != signal.SIGKILL:
            self.popen.send_signal(signal.SIGCONT)  # a paused server could not handle SIGTERM
        self.popen.send_signal(signum)
        try:
            self.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)
        wait_until(lambda: _port_free(self.port), timeout=10, what=f"port {self.port} to be closed")

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class RedisServers:
    """Starts Redis servers for one test; :meth:`kill_all` ends whichever still run."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.server_binary, self.cli_binary = require_redis_binaries()
        self.started: list[RedisServer] = []

    def _ports(self) -> list[int]:
        return [server.port for server in self.started]

    def server(self, name: str, *args: str, port: int | None = None, cluster: bool = False,
               start: bool = True) -> RedisServer:
        """A ``redis-server`` on a free port, RDB snapshots off; extra ``args`` are its options."""
        port = port or free_port(with_cluster_bus=cluster, taken=self._ports())
        server = RedisServer(port=port, directory=self.directory / name, binary=self.server_binary, name=name,
                             args=["--save", "", *args])
        self.started.append(server)
        return server.start() if start else server

    def durable(self, name: str, *args: str) -> RedisServer:
        """A server that fsyncs every write to its AOF before answering (survives SIGKILL)."""
        return self.server(name, "--appendonly", "yes", "--appendfsync", "always", *args)

    def cluster(self, masters: int = 3) -> list[RedisServer]:
        """A Redis Cluster of ``masters`` masters without replicas, every slot covered."""
        nodes = [self.server(f"cluster-{n}", "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                             "--cluster-node-timeout", "2000", "--appendonly", "no", cluster=True)
                 for n in range(masters)]
        done = subprocess.run([self.cli_binary, "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in nodes),
                               "--cluster-yes"], capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise AssertionError(f"redis-cli --cluster create failed:\n{done.stdout}\n{done.stderr}")
        self.wait_cluster_ok(nodes)
        return nodes

    @staticmethod
    def wait_cluster_ok(nodes: Sequence[RedisServer]) -> None:
        """Wait until every node reports ``cluster_state:ok`` and knows all the others."""

        def settled() -> bool:
            for node in nodes:
                info = client(node.port, decode_responses=True).execute_command("CLUSTER INFO")  # parsed: a dict
                if info.get("cluster_state") != "ok" or int(info.get("cluster_known_nodes", 0)) != len(nodes):
                    return False
            return True

        wait_until(settled, timeout=SETTLE_TIMEOUT_SECONDS, what="the Redis Cluster to report cluster_state:ok")

    def sentinel(self, name: str, master: RedisServer, *, service: str = "mymaster",
                 down_after_ms: int = 500, failover_timeout_ms: int = 3000) -> RedisServer:
        """A Sentinel (quorum 1) that watches ``master`` as ``service``."""
        port = free_port(taken=self._ports())
        directory = self.directory / name
        directory.mkdir(parents=True, exist_ok=True)
        config = directory / "sentinel.conf"  # Sentinel rewrites its own config file
        config.write_text(f"sentinel monitor {service} 127.0.0.1 {master.port} 1\n"
                          f"sentinel down-after-milliseconds {service} {down_after_ms}\n"
                          f"sentinel failover-timeout {service} {failover_timeout_ms}\n"
                          f"sentinel parallel-syncs {service} 1\n")
        server = RedisServer(port=port, directory=directory, binary=self.server_binary, name=name, config=config,
                             args=["--sentinel"])
        self.started.append(server)
        return server.start()

    def kill_all(self) -> None:
        for server in self.started:
            server.kill()


@pytest.fixture
def redis_servers(tmp_path: Path) -> Iterator[RedisServers]:
    """Start Redis servers with ``redis_servers.durable(name)``, ``.cluster()``, ``.sentinel(...)``.

    All are SIGKILLed when the test ends; their logs are printed (pytest shows them on failure).
    """
    servers = RedisServers(tmp_path / "redis")
    try:
        yield servers
    finally:
        servers.kill_all()
        for server in servers.started:
            print(f"--- log of redis {server.name} (port {server.port}) ---\n{server.log_tail()}")
