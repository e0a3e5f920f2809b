"""The fork server: a single-threaded process that forks the prefork pool's children.

SQLite (and other C libraries) keep per-process state: a global mutex, a
table of open files and the locks their connections hold. ``fork`` copies
it as it is at that instant, so a child forked while another thread of the
supervisor is inside SQLite or holds a transaction inherits a mutex no one
will release, or a lock no one will drop: it hangs or finds the database
locked. The supervisor therefore forks once, before its other threads start
and with its database connections closed: the fork server. The server never
opens a database connection and runs one thread, so every child it forks
starts from the supervisor's state at that moment, clean.

Protocol, over a socket pair: the supervisor asks for a child by passing the
child's end of its pipe (``SCM_RIGHTS``); the server forks, the child runs
``child_main(connection)`` and the server replies with its pid. The server
reaps its children and reports each ``(pid, exit code)``, the exit code as
:mod:`multiprocessing` gives it (negative: killed by that signal). A kill
goes through the server, which signals only a child it has not reaped yet:
a pid the system gave to another process is never hit.

The server dies with the supervisor, and its children die with it (Linux,
``PR_SET_PDEATHSIG``). If it dies on its own (the OOM killer), its children
are reported dead and the next spawn starts a new server, forked from the
running supervisor: that one is as exposed as a direct fork.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import itertools
import logging
import multiprocessing
import os
import queue
import select
import signal
import socket
import struct
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import NoReturn

logger = logging.getLogger("djtasks.worker")

#: prctl(2) option: the signal a process gets when its parent dies.
PR_SET_PDEATHSIG = 1

ChildMain = Callable[[Connection], object]

#: One message either way: a kind and two numbers.
_MESSAGE = struct.Struct("=cii")
#: Supervisor to server: fork a child (its number, 0; its pipe end passed along); signal a child (pid, signal).
_SPAWN, _KILL = b"s", b"k"
#: Server to supervisor: a child was forked (its number, its pid or -errno); a child ended (pid, exit code).
_SPAWNED, _EXITED = b"p", b"x"


class ForkedChild:
    """A child of the fork server, with what the pool uses of multiprocessing's ``Process``."""

    def __init__(self, pid: int | None, server: _Server | None) -> None:
        self.pid = pid
        #: As multiprocessing says it: None while it runs, negative when a signal killed it.
        self.exitcode: int | None = None
        self._server = server
        self._ended = threading.Event()

    def is_alive(self) -> bool:
        return not self._ended.is_set()

    def join(self, timeout: float | None = None) -> None:
        """Wait until the child ended (at most ``timeout`` seconds)."""
        self._ended.wait(timeout)

    def kill(self) -> None:
        """SIGKILL the child, unless it ended already."""
        if self.is_alive() and self._server is not None and self.pid is not None:
            self._server.kill(self.pid, signal.SIGKILL)

    def _end(self, exitcode: int) -> None:
        """Record how the child ended (the server's report)."""
        self.exitcode = exitcode
        self._ended.set()


class ForkServer:
    """The supervisor's side of the fork server: start it, spawn children through it, stop it."""

    def __init__(self, child_main: ChildMain) -> None:
        #: What each child runs with its end of the pipe; the server holds it as it was at :meth:`start`.
        self.child_main = child_main
        self._server: _Server | None = None
        self._lock = threading.Lock()
        self._numbers = itertools.count(1)

    def start(self) -> None:
        """Fork the server, from the thread that lives as long as it should (the server dies with it)."""
        with self._lock:
            self._server = _Server.fork(self.child_main)

    @property
    def pid(self) -> int | None:
        """The pid of the current server."""
        return None if self._server is None else self._server.pid

    def spawn(self, conn: Connection) -> ForkedChild:
        """Fork a child that runs ``child_main`` with ``conn`` (the caller closes its own copy).

        A server found dead is replaced first. A child whose server died
        before it answered is returned dead: its pipe closes, as a crashed
        child's does.
        """
        with self._lock:
            if self._server is None or self._server.gone:
                self._server = _Server.fork(self.child_main)
            server = self._server
        child = server.spawn(conn.fileno(), next(self._numbers))
        if child is None:
            child = ForkedChild(None, None)
            child._end(-signal.SIGKILL)
        return child

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server; a child still running dies with it."""
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            server.stop(timeout)


class _Server:
    """One fork server process, seen from the supervisor: requests out, a reader thread for its reports."""

    def __init__(self, pid: int, sock: socket.socket) -> None:
        self.pid = pid
        #: The server ended; its children with it.
        self.gone = False
        self._sock = sock
        self._stopping = False
        self._children: dict[int, ForkedChild] = {}
        self._lock = threading.Lock()  # guards _children and gone
        self._writing = threading.Lock()  # guards the socket's writes and its close
        self._spawning = threading.Lock()  # one spawn at a time: the next reply is its own
        self._replies: queue.SimpleQueue[ForkedChild | OSError | None] = queue.SimpleQueue()
        self._reader = threading.Thread(target=self._read, name="djtasks-forkserver", daemon=True)
        self._reader.start()

    @classmethod
    def fork(cls, child_main: ChildMain) -> _Server:
        ours, theirs = socket.socketpair()
        _flush_std_streams()  # nothing buffered now is written again by the server or its children
        supervisor = os.getpid()
        pid = os.fork()
        if pid == 0:
            ours.close()
            _exit_after(lambda: _serve(supervisor, theirs, child_main), flush=False)
        theirs.close()
        return cls(pid, ours)

    def spawn(self, fd: int, number: int) -> ForkedChild | None:
        """A new child running on the pipe end ``fd``; None if the server died first."""
        with self._spawning:
            if not self._send(_SPAWN, number, 0, fds=[fd]):
                return None
            reply = self._replies.get()
        if isinstance(reply, OSError):
            raise reply
        return reply

    def kill(self, pid: int, signum: int) -> None:
        self._send(_KILL, pid, signum)

    def stop(self, timeout: float) -> None:
        """Close the socket (the server leaves at once); SIGKILL it if it does not."""
        self._stopping = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # gone already
        self._reader.join(timeout)
        if self._reader.is_alive():
            os.kill(self.pid, signal.SIGKILL)
            self._reader.join()

    def _send(self, kind: bytes, a: int, b: int, fds: Sequence[int] = ()) -> bool:
        with self._writing:
            try:
                socket.send_fds(self._sock, [_MESSAGE.pack(kind, a, b)], fds)
            except OSError:
                return False  # the server is gone: the reader reports its children dead
        return True

    def _read(self) -> None:
        """Dispatch the server's replies and exit reports until it is gone."""
        try:
            while (message := _receive(self._sock)) is not None:
                kind, a, b, _ = message
                if kind == _SPAWNED:
                    self._replies.put(self._spawned(b))
                elif kind == _EXITED:
                    with self._lock:
                        child = self._children.pop(a, None)
                    if child is not None:
                        child._end(b)
        finally:
            self._died()

    def _spawned(self, pid: int) -> ForkedChild | OSError:
        if pid <= 0:
            return OSError(-pid, f"the fork server could not fork a child: {os.strerror(-pid)}")
        child = ForkedChild(pid, self)
        with self._lock:
            self._children[pid] = child
        return child

    def _died(self) -> None:
        """The server is gone: so are its children (``PR_SET_PDEATHSIG``). Reap it; end their handles."""
        try:
            _, status = os.waitpid(self.pid, 0)
            how = _describe(os.waitstatus_to_exitcode(status))
        except ChildProcessError:
            how = "reaped elsewhere"
        with self._lock:
            self.gone = True
            children, self._children = list(self._children.values()), {}
        with self._writing:
            self._sock.close()
        if not self._stopping:
            logger.error("fork server %s died (%s); its %d worker process(es) died with it; a new fork server "
                         "forks the next ones", self.pid, how, len(children))
        for child in children:
            child._end(-signal.SIGKILL)
        self._replies.put(None)  # a spawn waiting for its reply gets none


# -- the server process ---------------------------------------------------------


def _serve(supervisor: int, sock: socket.socket, child_main: ChildMain) -> None:
    """The server's loop: fork children on request, reap them, report how they ended; until the socket closes."""
    _become_server(supervisor)
    wakeup_r, wakeup_w = socket.socketpair()
    wakeup_r.setblocking(False)
    wakeup_w.setblocking(False)
    signal.signal(signal.SIGCHLD, _on_sigchld)
    signal.set_wakeup_fd(wakeup_w.fileno(), warn_on_full_buffer=False)  # a child's end wakes the poll below
    own = (sock, wakeup_r, wakeup_w)
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    poller.register(wakeup_r, select.POLLIN)
    running: set[int] = set()
    while True:
        ready = {fd for fd, _ in poller.poll()}
        if wakeup_r.fileno() in ready:
            _drain(wakeup_r)
        for pid, code in _reap():
            running.discard(pid)
            if not _reply(sock, _EXITED, pid, code):
                return
        if sock.fileno() not in ready:
            continue
        request = _receive(sock)
        if request is None:
            return  # the supervisor closed its end, or died
        kind, a, b, fds = request
        if kind == _SPAWN:
            pid = _fork_child(fds[0], a, child_main, own) if fds else -errno.EBADF
            if pid > 0:
                running.add(pid)
            if not _reply(sock, _SPAWNED, a, pid):
                return
        elif kind == _KILL and a in running:
            os.kill(a, b)  # not reaped yet: the pid is still this child's


def _become_server(supervisor: int) -> None:
    """Set this process up as the fork server: the supervisor's signal handlers off, dies with it, no stdin."""
    for signum in signal.valid_signals():
        if callable(signal.getsignal(signum)):
            signal.signal(signum, signal.SIG_DFL)
    # The supervisor decides when children stop, and when the server does (even when a
    # SIGTERM reaches every process of the worker, as systemd sends it).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _die_with_parent(supervisor)
    multiprocessing.current_process().name = "ForkServer"
    _no_stdin()


def _fork_child(fd: int, number: int, child_main: ChildMain, own: Sequence[socket.socket]) -> int:
    """Fork a child that runs ``child_main`` on the pipe end ``fd``; its pid, or -errno."""
    server = os.getpid()
    try:
        pid = os.fork()
    except OSError as exc:
        os.close(fd)
        return -(exc.errno or 1)
    if pid == 0:
        _exit_after(lambda: _child(server, fd, number, child_main, own), flush=True)
    os.close(fd)  # its siblings never hold its pipe
    return pid


def _child(server: int, fd: int, number: int, child_main: ChildMain, own: Sequence[socket.socket]) -> None:
    """In a new child of the process ``server``: die with it, undo its own set-up, run ``child_main``."""
    _die_with_parent(server)
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    for server_socket in own:
        server_socket.close()
    multiprocessing.current_process().name = f"ForkProcess-{number}"
    child_main(Connection(fd))


def _reap() -> list[tuple[int, int]]:
    """The children that ended since the last call: (pid, exit code as multiprocessing gives it)."""
    ended = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return ended
        if pid == 0:
            return ended
        ended.append((pid, os.waitstatus_to_exitcode(status)))


def _reply(sock: socket.socket, kind: bytes, a: int, b: int) -> bool:
    """Send one message to the supervisor; False if it is gone."""
    try:
        sock.sendall(_MESSAGE.pack(kind, a, b))
    except OSError:
        return False
    return True


def _on_sigchld(signum: int, frame: object) -> None:
    """Nothing: the signal's byte on the wake-up socket wakes the server's poll."""


def _drain(sock: socket.socket) -> None:
    try:
        while sock.recv(512):
            pass
    except BlockingIOError:
        pass


# -- both sides -------------------------------------------------------------------


def _receive(sock: socket.socket) -> tuple[bytes, int, int, list[int]] | None:
    """The next message and the fds it carries; None once the peer is gone."""
    try:
        data, fds, _, _ = socket.recv_fds(sock, _MESSAGE.size, 1)
        while data and len(data) < _MESSAGE.size:
            more = sock.recv(_MESSAGE.size - len(data))
            data = data + more if more else b""
    except OSError:
        return None
    if not data:
        for fd in fds:
            os.close(fd)
        return None
    kind, a, b = _MESSAGE.unpack(data)
    return kind, a, b, fds


def _exit_after(work: Callable[[], object], *, flush: bool) -> NoReturn:
    """In a forked process: run ``work``, then ``os._exit`` (0, or 1 with the traceback if it raised).

    Never returns into the code of the process it was forked from, nor runs its atexit handlers.
    ``flush``: write what this process left in ``sys.stdout``/``sys.stderr`` (a child's own output).
    """
    code = 1
    try:
        work()
        code = 0
    except BaseException:  # noqa: BLE001 - whatever happens, this process leaves here
        traceback.print_exc()
        sys.stderr.flush()
    finally:
        if flush:
            _flush_std_streams()
        os._exit(code)


def _describe(exitcode: int) -> str:
    return f"signal {signal.Signals(-exitcode).name}" if exitcode < 0 else f"exit code {exitcode}"


def _flush_std_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (AttributeError, ValueError, OSError):
            pass


def _no_stdin() -> None:
    """Read nothing from the supervisor's stdin (as multiprocessing's children)."""
    if sys.stdin is None:
        return
    try:
        sys.stdin.close()
        sys.stdin = open(os.devnull)  # noqa: SIM115 - for the life of the process
    except (OSError, ValueError):
        pass


def _die_with_parent(parent: int) -> None:
    """Let the kernel kill this process when its parent ``parent`` dies (Linux), even a SIGKILLed one.

    The fork server dies with the supervisor, a child with the fork server.
    Without it, a child would run its task to the end for nothing: the task
    comes back through its lease.
    """
    try:
        _libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return  # not Linux: it ends when its pipe (a child) or socket (the server) closes
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


@functools.cache
def _libc() -> ctypes.CDLL:
    """The C library, looked up once: in the server, whose children inherit it."""
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
