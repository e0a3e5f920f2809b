"""Worker processes: start, watch, measure memory, stop cleanly."""

import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil


class BenchError(RuntimeError):
    """A workload could not complete (timeout, dead worker, failed command)."""


def log_tail(path: Path, lines: int = 15) -> str:
    """Return the last ``lines`` lines of a log file, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@dataclass
class WorkerGroup:
    """The worker processes of one contestant, each in its own session."""

    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    started_at: float = 0.0

    @classmethod
    def start(cls, commands: Sequence[Sequence[str]], cwd: Path, env: dict[str, str], log_stem: Path) -> "WorkerGroup":
        """Start one process per command, logging to ``<log_stem>-<i>.log``."""
        group = cls(started_at=time.time())
        for index, argv in enumerate(commands):
            log = Path(f"{log_stem}-{index}.log")
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    list(argv), cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                )
            group.procs.append(proc)
            group.logs.append(log)
        return group

    def check_alive(self) -> None:
        """Raise :class:`BenchError` with the log tail if a worker exited."""
        for proc, log in zip(self.procs, self.logs, strict=True):
            code = proc.poll()
            if code is not None:
                raise BenchError(f"worker {proc.args!r} exited with {code}; log {log}:\n{log_tail(log)}")

    def memory(self) -> dict[str, float]:
        """Return RSS and PSS (MiB) summed over every worker process and its children."""
        rss = pss = 0
        count = 0
        for proc in self.procs:
            root = psutil.Process(proc.pid)
            for member in [root, *root.children(recursive=True)]:
                try:
                    info = member.memory_full_info()
                except psutil.NoSuchProcess:
                    continue
                rss += info.rss
                pss += getattr(info, "pss", info.rss)
                count += 1
        mib = 1024 * 1024
        return {"rss_mib": rss / mib, "pss_mib": pss / mib, "processes": count}

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM each worker's main process; SIGKILL its whole session after ``grace`` seconds."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            self._kill_session(proc)

    @staticmethod
    def _kill_session(proc: subprocess.Popen[bytes]) -> None:
        """Kill whatever is left in the worker's session (its pool children included)."""
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if proc.poll() is None:
            proc.wait(timeout=10)


def wait_until(
    condition: Callable[[], bool], timeout: float, what: str, workers: WorkerGroup | None = None, poll: float = 0.02
) -> float:
    """Poll ``condition`` until it is true; return when it became true (``time.time()``).

    Raises :class:`BenchError` after ``timeout`` seconds, or as soon as a
    worker of ``workers`` has exited.
    """
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return time.time()
        if workers is not None:
            workers.check_alive()
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)
