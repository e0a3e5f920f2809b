"""The fork server's contract: its children, how their ends are reported, kills, and its own death."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterator
from multiprocessing import Pipe
from multiprocessing.connection import Connection

import pytest

from djtasks.worker.pools.forkserver import ForkedChild, ForkServer
from tests.e2e.helpers import wait_until

pytestmark = pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")

#: Seconds a child may take to answer, or to end once it should.
DEADLINE_SECONDS = 10.0


def answer_until_told_to_stop(conn: Connection) -> None:
    """What the children of these tests do: answer each message with their pid and parent's pid, until None."""
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        conn.send((message, os.getpid(), os.getppid()))


@pytest.fixture
def forks() -> Iterator[ForkServer]:
    server = ForkServer(answer_until_told_to_stop)
    server.start()
    yield server
    server.stop()


def spawn(forks: ForkServer) -> tuple[ForkedChild, Connection]:
    """A new child of ``forks`` and the supervisor's end of its pipe."""
    ours, theirs = Pipe()
    child = forks.spawn(theirs)
    theirs.close()
    return child, ours


def ask(conn: Connection, message: object) -> tuple[object, int, int]:
    """The child's answer to ``message``: (message, its pid, its parent's pid)."""
    conn.send(message)
    assert conn.poll(DEADLINE_SECONDS), f"no answer to {message!r} within {DEADLINE_SECONDS:g}s"
    return conn.recv()


def exit_code(child: ForkedChild) -> int | None:
    """How ``child`` ended, once it did (within the deadline)."""
    child.join(DEADLINE_SECONDS)
    assert not child.is_alive(), f"child {child.pid} still runs {DEADLINE_SECONDS:g}s later"
    return child.exitcode


def gone(pid: int) -> bool:
    """The process ``pid`` no longer runs (a zombie waiting for its reaper counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] == "Z"


def test_a_child_is_forked_by_the_server_and_its_end_reported(forks: ForkServer) -> None:
    child, conn = spawn(forks)
    assert ask(conn, "hello") == ("hello", child.pid, forks.pid)
    assert child.is_alive()
    assert child.exitcode is None
    conn.send(None)
    assert exit_code(child) == 0


@pytest.mark.parametrize("how", ["kill", "SIGTERM from another process"])
def test_a_killed_child_ends_with_the_negative_signal_number(how: str, forks: ForkServer) -> None:
    child, conn = spawn(forks)
    ask(conn, "running")
    if how == "kill":
        child.kill()
        assert exit_code(child) == -signal.SIGKILL
    else:
        os.kill(child.pid, signal.SIGTERM)
        assert exit_code(child) == -signal.SIGTERM


def test_the_server_ignores_sigint_and_sigterm(forks: ForkServer) -> None:
    child, conn = spawn(forks)
    ask(conn, "running")
    server = forks.pid
    os.kill(server, signal.SIGINT)
    os.kill(server, signal.SIGTERM)

    sibling, sibling_conn = spawn(forks)  # the server handles this request after both signals
    assert forks.pid == server
    assert ask(sibling_conn, "hello") == ("hello", sibling.pid, server)
    assert ask(conn, "still here") == ("still here", child.pid, server)


def test_killing_a_child_that_ended_does_nothing(forks: ForkServer) -> None:
    ended, ended_conn = spawn(forks)
    ended_conn.send(None)
    assert exit_code(ended) == 0
    sibling, sibling_conn = spawn(forks)
    ended.kill()
    assert ended.exitcode == 0
    assert ask(sibling_conn, "still here") == ("still here", sibling.pid, forks.pid)
    assert sibling.is_alive()


def test_children_die_with_the_server_and_a_new_server_forks_the_next(
        forks: ForkServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="djtasks.worker")
    children = [spawn(forks) for _ in range(2)]
    for child, conn in children:
        ask(conn, "running")
    first_server = forks.pid
    os.kill(first_server, signal.SIGKILL)

    for child, conn in children:
        assert exit_code(child) == -signal.SIGKILL
        wait_until(lambda pid=child.pid: gone(pid), timeout=DEADLINE_SECONDS, what=f"child {child.pid} to die")
        assert conn.poll(DEADLINE_SECONDS)
        with pytest.raises(EOFError):
            conn.recv()
    [error] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert f"fork server {first_server} died (signal SIGKILL)" in error

    child, conn = spawn(forks)
    assert forks.pid != first_server
    assert ask(conn, "hello") == ("hello", child.pid, forks.pid)


def test_stop_ends_the_server_and_its_children(forks: ForkServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="djtasks.worker")
    child, conn = spawn(forks)
    ask(conn, "running")
    server = forks.pid
    forks.stop()

    assert exit_code(child) == -signal.SIGKILL
    wait_until(lambda: gone(child.pid), timeout=DEADLINE_SECONDS, what="the child to die")
    with pytest.raises(ChildProcessError):  # the server is reaped: no zombie left behind
        os.waitpid(server, os.WNOHANG)
    assert caplog.records == []
