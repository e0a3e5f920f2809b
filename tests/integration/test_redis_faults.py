"""Redis faults and topologies, with real ``runworker`` subprocesses and Redis servers of the test's own.

- a Redis restart (SIGKILL or SIGTERM, same port, same append-only file) in
  the middle of a drain: every task runs, none runs twice, each worker logs
  the outage once and reconnects;
- ``enqueue`` while Redis is down or hung: a clear ``BrokerError`` within
  ``BROKER_TIMEOUT``, no result row left behind;
- a 3-master Redis Cluster: four queues spread over the masters, drained;
  then a master restarts and the workers live through it;
- Sentinel: the master is SIGKILLed (or ``SENTINEL FAILOVER``) mid-drain, the
  replica takes over, no task is lost;
- remote control while Redis is down: workers poll for commands until their
  subscription to control signals is back.

Results go to a temporary SQLite database (the demo project's, through
``testproject.settings``); ``record_run`` and ``sleep_then_record`` insert
one ``demo_taskrun`` row per call under a UNIQUE key, so a second run of a
call fails loudly instead of passing unseen.
"""

from __future__ import annotations

import datetime as dt
import re
import signal
import time
import uuid
from collections.abc import Sequence

import pytest

from djtasks.control.wakeup import FALLBACK_POLL_ENV
from tests.e2e.conftest import Workers, sqlite_db, workers  # noqa: F401 - fixtures used by name
from tests.e2e.helpers import (
    E2EDatabase,
    WorkerProcess,
    call,
    enqueue,
    run_manage,
    wait_until,
)

from .redis_servers import RedisServers, client, redis_servers  # noqa: F401 - a fixture used by name

pytestmark = [pytest.mark.redis, pytest.mark.e2e, pytest.mark.timeout(120)]

#: Tasks of each drain.
TASKS = 400
#: Seconds each task of the restart and fail-over drains sleeps, so that they last long enough to be interrupted.
TASK_SECONDS = 0.01
#: Lease of the workers: long enough that a healthy task's lease outlives the outage (and that no
#: heartbeat falls in it), short enough that a lease orphaned all the same would come back within
#: the drain's deadline.
LEASE_SECONDS = 30
#: Seconds Redis stays down once every worker noticed: long enough for several reconnect attempts to fail.
OUTAGE_SECONDS = 2.5
#: Seconds a drain may take, outage included.
DRAIN_TIMEOUT_SECONDS = 60
#: The worker loop's report of an outage (once), and of its end (once).
OUTAGE = r"ERROR/.*\(retrying with backoff until it works again\)"
RECOVERED = r"the worker loop works again after \d+ failed attempt"


@pytest.fixture
def redis_env(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """Point the demo project (workers and ``enqueue``) at a broker URL, with a key prefix of this test."""

    def point(url: str, prefix: str | None = None) -> str:
        prefix = prefix or f"djtasks-faults-{uuid.uuid4().hex[:8]}"
        monkeypatch.setenv("DJTASKS_BROKER_URL", url)
        monkeypatch.setenv("DJTASKS_KEY_PREFIX", prefix)
        monkeypatch.setenv("DJTASKS_LEASE_SECONDS", str(LEASE_SECONDS))
        return prefix

    return point


def start_workers(db: E2EDatabase, launcher: Workers, *extra: Sequence[str], concurrency: int = 4
                  ) -> list[WorkerProcess]:
    """Start one worker per item of ``extra`` (its extra runworker arguments); return once all serve."""
    started = [launcher.start(db, f"w{n}", "--pool", "threads", "-c", str(concurrency), *args, wait_serving=False)
               for n, args in enumerate(extra)]
    for worker in started:
        worker.wait_serving()
    return started


def successful(db: E2EDatabase) -> int:
    return db.status_counts().get("SUCCESSFUL", 0)


def wait_all_finished(db: E2EDatabase, running: list[WorkerProcess], total: int = TASKS) -> None:
    def finished() -> bool:
        counts = db.status_counts()
        return counts.get("SUCCESSFUL", 0) + counts.get("FAILED", 0) == total

    wait_until(finished, timeout=DRAIN_TIMEOUT_SECONDS, what=f"{total} tasks to finish", alive=running,
               state=db.status_counts)


def assert_each_ran_exactly_once(db: E2EDatabase, keys: list[str]) -> None:
    assert db.status_counts() == {"SUCCESSFUL": len(keys)}
    # One delivery each reached a worker (attempts counts them), and each call inserted its UNIQUE row once.
    assert db.query("SELECT attempts, COUNT(*) FROM djtasks_taskrecord GROUP BY attempts") == [(1, len(keys))]
    assert sorted(key for key, _ in db.runs()) == sorted(keys)


def assert_no_traceback(running: list[WorkerProcess]) -> None:
    for worker in running:
        assert "Traceback" not in worker.log(), worker.log_tail(80)


# -- a restart in the middle of a drain ---------------------------------------

@pytest.mark.parametrize("stop_signal", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_a_redis_restart_mid_drain_loses_no_task_and_runs_none_twice(
        redis_servers: RedisServers, sqlite_db: E2EDatabase, workers: Workers, redis_env,  # noqa: ANN001, F811
        stop_signal: signal.Signals) -> None:
    server = redis_servers.durable("aof")  # appendfsync always: what Redis acknowledged survives a SIGKILL
    redis_env(server.url)
    running = start_workers(sqlite_db, workers, [], [])
    keys = [f"restart-{n}" for n in range(TASKS)]
    enqueue(sqlite_db, [call("sleep_then_record", key, TASK_SECONDS) for key in keys])
    wait_until(lambda: successful(sqlite_db) >= TASKS // 4, timeout=DRAIN_TIMEOUT_SECONDS,
               what="a quarter of the drain", alive=running, state=sqlite_db.status_counts)

    server.kill(stop_signal)
    done_before = successful(sqlite_db)
    assert done_before < TASKS, "the drain ended before Redis stopped: make the tasks slower"
    for worker in running:  # both notice while Redis is down, and say so
        worker.wait_for_log(OUTAGE, timeout=30)
    # The length of the outage, not a synchronisation: the workers retry with backoff meanwhile.
    time.sleep(OUTAGE_SECONDS)
    stalled = successful(sqlite_db)
    # Tasks held by the workers ran meanwhile (their outcomes are stored) but could not be acknowledged;
    # the rest waits in Redis.
    assert done_before < stalled < TASKS
    server.start()  # same port, same append-only file

    wait_all_finished(sqlite_db, running)
    assert_each_ran_exactly_once(sqlite_db, keys)
    for worker in running:
        worker.wait_for_log(RECOVERED, timeout=10)
        log = worker.log()
        # One report of the outage and one of its end, however many attempts failed in between.
        assert _matches(OUTAGE, log) == 1 and _matches(RECOVERED, log) == 1, worker.log_tail(80)
        assert int(re.search(r"works again after (\d+) failed", log).group(1)) >= 2, "no reconnect backoff seen"
        assert _problems(log) == 2, "other warnings or errors than the outage's two lines:\n" + worker.log_tail(80)
    assert_no_traceback(running)
    # Nothing is left in Redis: every message was acknowledged and removed.
    redis = client(server.port)
    assert not [k for k in redis.scan_iter(match="*:leases") if redis.zcard(k)]
    assert sum(redis.xlen(k) for k in redis.scan_iter(match="*:s:*")) == 0


def _matches(pattern: str, text: str) -> int:
    return len(re.findall(pattern, text))


def _problems(log: str) -> int:
    """How many WARNING or ERROR lines a worker logged."""
    return _matches(r"(?m)^\[[^]]*: (WARNING|ERROR)/", log)


# -- enqueue while Redis is down or hung --------------------------------------

#: BROKER_TIMEOUT of the enqueue test, in seconds.
BROKER_TIMEOUT_SECONDS = 1.0
#: Seconds an enqueue may take beyond BROKER_TIMEOUT (scheduling, the failed attempt itself).
TIMEOUT_SLACK_SECONDS = 0.5


@pytest.mark.django_db(transaction=True)
def test_enqueue_while_redis_is_down_or_hung_fails_clearly_within_the_timeout_and_leaves_no_row(
        redis_servers: RedisServers) -> None:  # noqa: F811
    from django.tasks import task_backends
    from django.test import override_settings

    from djtasks.exceptions import BrokerError
    from djtasks.models import TaskRecord
    from tests.taskapp import tasks

    server = redis_servers.durable("enqueue")
    backend = {"BACKEND": "djtasks.backend.DjTasksBackend", "QUEUES": [],
               "OPTIONS": {"BROKER_URL": server.url, "KEY_PREFIX": "faults", "BROKER_TIMEOUT": BROKER_TIMEOUT_SECONDS}}
    enqueues = {"enqueue": lambda: tasks.add.enqueue(2, 2),
                "enqueue_many": lambda: tasks.add.enqueue_many([(3, 3), (4, 4)])}

    def fails_in_time(state: str) -> None:
        for name, enqueue_call in enqueues.items():
            started = time.monotonic()
            with pytest.raises(BrokerError, match=r"Redis broker \(redis://127\.0\.0\.1:\d+/0\) could not enqueue"):
                enqueue_call()
            elapsed = time.monotonic() - started
            assert elapsed < BROKER_TIMEOUT_SECONDS + TIMEOUT_SLACK_SECONDS, f"{name} on a {state} Redis: {elapsed:.2f}s"

    with override_settings(TASKS={"default": backend}):
        first = tasks.add.enqueue(1, 1)  # the client now holds a live pooled connection

        server.send(signal.SIGSTOP)  # hung: connections are accepted by the kernel, nothing answers
        fails_in_time("hung")
        # Killed while hung, the server never runs what it received. (Had it resumed, it would have
        # run the last enqueue it had read: a timeout cannot tell whether the command was applied.)
        server.kill()
        fails_in_time("stopped")  # down: connections are refused
        assert [str(row.id) for row in TaskRecord.objects.all()] == [first.id]  # no READY row for a failed enqueue

        server.start()  # same port, same append-only file: the same client reconnects by itself
        second = tasks.add.enqueue(5, 5)
        assert sorted(str(row.id) for row in TaskRecord.objects.all()) == sorted([first.id, second.id])
        # In Redis too, only the two enqueues that succeeded.
        [depth] = task_backends["default"].broker.depths(dt.datetime.now(dt.UTC))
        assert (depth.queue, depth.ready, depth.scheduled, depth.reserved) == ("default", 2, 0, 0)


# -- Redis Cluster ------------------------------------------------------------

#: Queues of the cluster drain.
CLUSTER_QUEUES = 4


def queues_over_masters(prefix: str, masters: dict[int, tuple[int, int]], count: int) -> dict[str, int]:
    """``count`` queue names whose hash tags ``{prefix:queue}`` fall on every master; name -> master port."""
    from redis.crc import key_slot

    def owner(queue: str) -> int:
        slot = key_slot(f"{{{prefix}:{queue}}}".encode())
        return next(port for port, (first, last) in masters.items() if first <= slot <= last)

    chosen: dict[str, int] = {}
    for number in range(1000):
        queue = f"q{number}"
        port = owner(queue)
        if port not in chosen.values() or len(set(chosen.values())) == len(masters):
            chosen[queue] = port
        if len(chosen) == count:
            return chosen
    raise AssertionError("no queue names spread over the masters")


def test_a_redis_cluster_drains_four_queues_spread_over_its_masters_and_outlives_a_master_restart(
        redis_servers: RedisServers, sqlite_db: E2EDatabase, workers: Workers, redis_env) -> None:  # noqa: ANN001, F811
    nodes = redis_servers.cluster(3)
    slots = client(nodes[0].port).execute_command("CLUSTER SLOTS")
    masters = {int(owner[1]): (int(first), int(last)) for first, last, owner, *_ in slots}
    assert sorted(masters) == sorted(node.port for node in nodes)
    prefix = redis_env(f"redis+cluster://127.0.0.1:{nodes[0].port},127.0.0.1:{nodes[1].port}")
    queues = queues_over_masters(prefix, masters, CLUSTER_QUEUES)
    per_queue = TASKS // CLUSTER_QUEUES
    keys = {queue: [f"cluster-{queue}-{n}" for n in range(per_queue)] for queue in queues}
    enqueue(sqlite_db, [{**call("record_run", key), "queue": queue} for queue in queues for key in keys[queue]])

    # Each queue's keys live on one master, the one its hash tag names; the queues use every master.
    holders: dict[str, set[int]] = {queue: set() for queue in queues}
    for node in nodes:
        for key in client(node.port).scan_iter(match=f"{{{prefix}:*", count=1000):
            holders[key.decode().split(":")[1].rstrip("}")].add(node.port)
    assert holders == {queue: {port} for queue, port in queues.items()}
    assert len(set(queues.values())) == len(nodes)
    for queue, port in queues.items():
        assert client(port).xlen(f"{{{prefix}:{queue}}}:s:0") == per_queue

    # One worker names the queues, the other serves every queue (found in the queue set).
    running = start_workers(sqlite_db, workers, ["-Q", ",".join(queues)], [])
    wait_all_finished(sqlite_db, running)
    assert_each_ran_exactly_once(sqlite_db, [key for queue in queues for key in keys[queue]])
    assert {pid for _, pid in sqlite_db.runs()} == {worker.pid for worker in running}
    assert_no_traceback(running)
    for queue, port in queues.items():
        node = client(port)
        assert node.xlen(f"{{{prefix}:{queue}}}:s:0") == 0
        assert node.zcard(f"{{{prefix}:{queue}}}:leases") == 0

    # A master restarts (the queues are empty: nothing to lose without persistence). The workers
    # live through it (a cluster client raises errors that are not RedisErrors), log it once, and
    # serve the next batch.
    victim = next(node for node in nodes if node.port == queues[next(iter(queues))])
    victim.kill()
    for worker in running:
        worker.wait_for_log(OUTAGE, timeout=30)
    victim.start()
    redis_servers.wait_cluster_ok(nodes)
    more = [f"cluster-after-{queue}-{n}" for queue in queues for n in range(10)]
    enqueue(sqlite_db, [{**call("record_run", key), "queue": key.split("-")[2]} for key in more])
    wait_all_finished(sqlite_db, running, total=TASKS + len(more))
    assert_each_ran_exactly_once(sqlite_db, [key for queue in queues for key in keys[queue]] + more)
    for worker in running:
        worker.wait_for_log(RECOVERED, timeout=10)
        assert _matches(OUTAGE, worker.log()) == 1 and _matches(RECOVERED, worker.log()) == 1, worker.log_tail(80)
    assert_no_traceback(running)


# -- Sentinel -----------------------------------------------------------------

SERVICE = "mymaster"


@pytest.mark.parametrize("fail_over", ["sigkill-master", "sentinel-failover"])
def test_a_sentinel_fail_over_mid_drain_loses_no_task(
        redis_servers: RedisServers, sqlite_db: E2EDatabase, workers: Workers, redis_env,  # noqa: ANN001, F811
        fail_over: str) -> None:
    master = redis_servers.durable("master")
    replica = redis_servers.durable("replica", "--replicaof", "127.0.0.1", str(master.port))
    wait_until(lambda: client(replica.port, decode_responses=True).info("replication")["master_link_status"] == "up",
               timeout=30, what="the replica to sync with the master")
    sentinel = redis_servers.sentinel("sentinel", master, service=SERVICE)
    watcher = client(sentinel.port, decode_responses=True)

    def replica_known() -> bool:
        replicas = watcher.sentinel_slaves(SERVICE)
        return any(r["port"] == replica.port and r["is_slave"] and not r["is_sdown"] for r in replicas)

    wait_until(replica_known, timeout=30, what="the sentinel to discover the replica")
    redis_env(f"redis+sentinel://127.0.0.1:{sentinel.port}/{SERVICE}")
    keys = [f"failover-{n}" for n in range(TASKS)]
    enqueue(sqlite_db, [call("sleep_then_record", key, TASK_SECONDS) for key in keys])
    # Replication is asynchronous: make sure the replica has every message before the fail-over.
    writer = client(master.port)
    writer.set("test:replicated", 1)
    assert writer.wait(1, 10_000) == 1

    running = start_workers(sqlite_db, workers, [], [])
    wait_until(lambda: successful(sqlite_db) >= TASKS // 4, timeout=DRAIN_TIMEOUT_SECONDS,
               what="a quarter of the drain", alive=running, state=sqlite_db.status_counts)
    started = time.time()
    if fail_over == "sigkill-master":
        master.kill()
    else:  # the old master lives on and becomes a replica of the new one
        assert watcher.execute_command("SENTINEL FAILOVER", SERVICE)
    assert successful(sqlite_db) < TASKS, "the drain ended before the fail-over: make the tasks slower"

    def promoted() -> bool:
        return watcher.sentinel_get_master_addr_by_name(SERVICE) == ("127.0.0.1", replica.port)

    wait_until(promoted, timeout=30, what="the sentinel to promote the replica")
    promoted_at = time.time()
    wait_all_finished(sqlite_db, running)

    # No task is lost: each call ran (its UNIQUE row exists).
    assert sorted(key for key, _ in sqlite_db.runs()) == sorted(keys)
    rows = sqlite_db.query("SELECT id, attempts, status, errors FROM djtasks_taskrecord")
    twice = {row[0]: row for row in rows if row[1] > 1}
    print(f"{fail_over}: replica promoted {promoted_at - started:.2f}s after the fail-over began; "
          f"{len(twice)} task(s) delivered twice: {sorted(twice.values())}")
    # A second delivery is allowed only for a task that ran around the fail-over, when the write
    # that leased or acknowledged it may not have reached the replica; its second run fails on the
    # UNIQUE key. No more than the workers held (2 workers x 4 threads x prefetch 4).
    assert len(twice) <= 2 * 4 * 4
    failed = {row[0]: row for row in rows if row[2] == "FAILED"}
    assert set(failed) <= set(twice)
    assert all("IntegrityError" in (row[3] or "") for row in failed.values())
    for worker in running:
        if _matches(OUTAGE, worker.log()):  # a worker may miss a short fail-over altogether
            worker.wait_for_log(RECOVERED, timeout=10)
        assert _matches(OUTAGE, worker.log()) <= 1, worker.log_tail(80)
    assert_no_traceback(running)


# -- remote control while Redis is down ---------------------------------------

#: The control subscription's report of an outage (once), and of its end (once).
SUBSCRIPTION_LOST = r"INFO/.*SUBSCRIBE to Redis channel .* lost \("
SUBSCRIPTION_BACK = r"INFO/.*SUBSCRIBE to Redis channel .* works again after"


def test_remote_control_polls_while_redis_is_down_and_is_pushed_again_once_it_is_back(
        redis_servers: RedisServers, sqlite_db: E2EDatabase, workers: Workers, redis_env,  # noqa: ANN001, F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FALLBACK_POLL_ENV, "3600")  # while subscribed, only a signal can bring a command
    server = redis_servers.server("control")
    prefix = redis_env(server.url)
    [worker] = start_workers(sqlite_db, workers, [], concurrency=1)

    def subscribed() -> bool:
        return client(server.port).pubsub_numsub(f"{prefix}:control") == [(f"{prefix}:control".encode(), 1)]

    def ping() -> str:
        return run_manage(sqlite_db, "djtasks", "ping", "--timeout", "60").stdout

    wait_until(subscribed, timeout=30, what="the worker to subscribe to control signals")
    assert f"{worker.worker_id}: pong" in ping()
    server.kill()
    worker.wait_for_log(SUBSCRIPTION_LOST, timeout=30)
    # No signal can be sent or received now: the worker answers because it polls meanwhile.
    assert f"{worker.worker_id}: pong" in ping()
    server.start()
    wait_until(subscribed, timeout=30, what="the worker to subscribe again")
    worker.wait_for_log(SUBSCRIPTION_BACK, timeout=30)
    assert f"{worker.worker_id}: pong" in ping()
    log = worker.log()
    assert _matches(SUBSCRIPTION_LOST, log) == 1 and _matches(SUBSCRIPTION_BACK, log) == 1, worker.log_tail(80)
    assert_no_traceback([worker])
