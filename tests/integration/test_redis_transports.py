"""The Redis broker over TLS (``rediss://``) and over a Unix socket (``unix://``), with a real worker.

One ``redis-server`` of the test's own listens on a plain loopback port (for
the test's own checks), on a TLS port with a certificate signed by a CA made
for the test, and on a Unix socket. The worker and ``enqueue`` are given
only the ``rediss://`` or the ``unix://`` URL; Redis's ``CLIENT LIST`` then
shows that every connection of theirs came in that way.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import missing
from tests.e2e.conftest import Workers, sqlite_db, workers  # noqa: F401 - fixtures used by name
from tests.e2e.helpers import E2EDatabase, call, enqueue

from .redis_servers import RedisServer, RedisServers, client, free_port, redis_servers  # noqa: F401
from .test_redis_faults import (  # noqa: F401 - a fixture used by name
    assert_each_ran_exactly_once,
    assert_no_traceback,
    redis_env,
    start_workers,
    wait_all_finished,
)

pytestmark = [pytest.mark.redis, pytest.mark.e2e, pytest.mark.timeout(120)]

#: Tasks of each drain.
TASKS = 60


@dataclass
class Listeners:
    """A Redis server and the URLs that reach it over TLS and over its Unix socket."""

    server: RedisServer
    tls_port: int
    socket_path: Path
    ca_file: Path

    def url(self, transport: str) -> str:
        if transport == "rediss":
            return f"rediss://127.0.0.1:{self.tls_port}/0?ssl_ca_certs={self.ca_file}"
        return f"unix://{self.socket_path}?db=0"

    def local_address(self, transport: str) -> str:
        """Where Redis says a client of ``transport`` is connected to (``laddr`` of ``CLIENT LIST``)."""
        return f"127.0.0.1:{self.tls_port}" if transport == "rediss" else f"{self.socket_path}:0"


def _openssl(*args: str, cwd: Path) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise AssertionError(f"openssl {' '.join(args)} failed:\n{done.stderr}")


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA, and a certificate for ``127.0.0.1`` signed by it; return (CA, certificate, key) files."""
    if shutil.which("openssl") is None:
        missing("openssl must be on PATH to make the TLS test's certificates")
    directory.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
             "-subj", "/CN=djtasks test CA", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=127.0.0.1", cwd=directory)
    (directory / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1\nauthorityKeyIdentifier=keyid\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.crt", "-days", "2", "-extfile", "server.ext", cwd=directory)
    return directory / "ca.crt", directory / "server.crt", directory / "server.key"


@pytest.fixture
def listeners(redis_servers: RedisServers, tmp_path: Path) -> Listeners:  # noqa: F811
    ca, certificate, key = make_certificates(tmp_path / "tls")
    # A short path: a Unix socket's path may not be longer than about 100 bytes.
    socket_dir = Path(tempfile.mkdtemp(prefix="djtasks-redis-"))
    socket_path = socket_dir / "redis.sock"
    tls_port = free_port(taken=[server.port for server in redis_servers.started])
    server = redis_servers.server(
        "transports", "--tls-port", str(tls_port), "--tls-cert-file", str(certificate), "--tls-key-file", str(key),
        "--tls-ca-cert-file", str(ca), "--tls-auth-clients", "no",
        "--unixsocket", str(socket_path), "--unixsocketperm", "700")
    yield Listeners(server=server, tls_port=tls_port, socket_path=socket_path, ca_file=ca)
    server.kill()
    shutil.rmtree(socket_dir, ignore_errors=True)


@pytest.mark.parametrize("transport", ["rediss", "unix"])
def test_a_worker_drains_over_tls_and_over_a_unix_socket(
        listeners: Listeners, sqlite_db: E2EDatabase, workers: Workers, redis_env,  # noqa: ANN001, F811
        transport: str) -> None:
    prefix = redis_env(listeners.url(transport))
    running = start_workers(sqlite_db, workers, [])
    keys = [f"{transport}-{n}" for n in range(TASKS)]
    enqueue(sqlite_db, [call("record_run", key) for key in keys])

    wait_all_finished(sqlite_db, running, TASKS)
    assert_each_ran_exactly_once(sqlite_db, keys)
    assert_no_traceback(running)
    redis = client(listeners.server.port, decode_responses=True)
    assert redis.keys(f"{prefix}*"), "the tasks went through another Redis"
    connections = redis.client_list()
    plain = [c for c in connections if c["laddr"] == f"127.0.0.1:{listeners.server.port}"]
    others = [c for c in connections if c not in plain]
    assert len(plain) == 1, plain  # this check's own
    # The running worker's connections (the enqueue's are closed) all came in the given way.
    assert others and all(c["laddr"] == listeners.local_address(transport) for c in others), others
