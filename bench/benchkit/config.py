"""What is measured: the contestants, their worker commands, the workload sizes."""

from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent.parent
PROJECT_DIR = BENCH_DIR / "benchproject"
WORK_DIR = BENCH_DIR / ".work"
RESULTS_DIR = BENCH_DIR / "results"

#: Redis database numbers of this suite (spare ones on the shared server).
REDIS_DB_DJTASKS_BROKER = 11
REDIS_DB_CELERY_BROKER = 12
REDIS_DB_BOOKKEEPING = 13
REDIS_DB_DRAMATIQ_BROKER = 14
REDIS_DB_HUEY_BROKER = 15

#: Seconds between polls of an idle database worker, the same for djtasks
#: (OPTIONS["POLL_INTERVAL"], default 0.5) and django-tasks-db
#: (db_worker --interval, default 1).
POLL_INTERVAL = "0.1"

WORKLOADS = ("drain", "enqueue", "latency", "drain-nores")
#: The worker-engine workloads (``benchkit.engine``): only run when named in ``--workloads``.
ENGINE_WORKLOADS = ("io", "cpu", "memory", "overhead")
#: What a contestant runs unless it says otherwise (``drain-nores`` is opt-in).
DEFAULT_WORKLOADS = ("drain", "enqueue", "latency")


@dataclass(frozen=True)
class ResultTable:
    """Where a contestant stores its results, and its final states (read with plain SQL)."""

    table: str
    finished_states: tuple[str, ...]


#: Result tables by contestant family (the models' default table names).
RESULT_TABLES = {
    "djtasks": ResultTable("djtasks_taskrecord", ("SUCCESSFUL", "FAILED")),
    "dtdb": ResultTable("django_tasks_database_dbtaskresult", ("SUCCESSFUL", "FAILED")),
    "celery": ResultTable("django_celery_results_taskresult", ("SUCCESS", "FAILURE")),
}
#: Families that keep no results here: no result table, no result to wait for.
NO_RESULT_FAMILIES = ("dramatiq", "huey")


@dataclass(frozen=True)
class Sizes:
    """How many tasks each workload uses."""

    drain: int = 3000
    enqueue_one: int = 2000
    enqueue_many: int = 10000
    enqueue_many_batch: int = 1000
    latency: int = 500
    latency_interval: float = 0.02
    #: Tasks at random times, exponential gaps of mean ``latency_interval`` (a Poisson stream, as from users).
    latency_random: bool = False
    warmup: int = 50
    #: Fire-and-forget tasks of the ``drain-nores`` workload (and of ``overhead``, which runs it).
    drain_nores: int = 10000
    #: ``io``: tasks, and the seconds each one sleeps.
    io: int = 2000
    io_seconds: float = 0.05
    #: ``cpu``: tasks, and the seconds of pure-Python work each (a loop count calibrated once per run).
    cpu: int = 200
    cpu_seconds: float = 0.05
    #: ``memory``: no-op tasks run before the first and before the second reading, and the ``enqueue_many`` batch.
    memory_first: int = 1000
    memory_total: int = 100000
    memory_batch: int = 1000


FULL = Sizes()
QUICK = Sizes(
    drain=300, enqueue_one=300, enqueue_many=1000, enqueue_many_batch=500, latency=100, warmup=20, drain_nores=1000,
    io=200, cpu=20, memory_first=1000, memory_total=5000,
)


@dataclass(frozen=True)
class Contestant:
    """One system under test: a settings module, a database and a worker setup.

    ``workers`` holds one command per worker process; a command starting with
    ``manage.py`` runs through the bench project's ``manage.py``, one starting
    with ``celery`` or ``dramatiq`` through the venv's script of that name.
    """

    name: str
    family: str  # "djtasks" | "dtdb" | "celery": the settings module
    db: str  # "postgres" | "sqlite"
    pg_name: str
    workers: tuple[tuple[str, ...], ...]
    worker_desc: str
    redis_broker_db: int | None = None
    bulk: bool = False
    #: djtasks contestants this peer is compared with (ratio djtasks / peer).
    compare_with: tuple[str, ...] = field(default=())
    #: Modules that must import (after ``django.setup()``) for this contestant to run;
    #: while one does not, the contestant is reported as "pending".
    requires: tuple[str, ...] = field(default=())
    #: The workloads this contestant runs (the others are skipped for it).
    workloads: tuple[str, ...] = DEFAULT_WORKLOADS
    #: Extra environment variables of its processes (``(name, value)`` pairs).
    env: tuple[tuple[str, str], ...] = field(default=())

    @property
    def is_djtasks(self) -> bool:
        """Whether this contestant is djtasks itself."""
        return self.family == "djtasks"


def _djtasks_worker(
    pool: str = "threads", concurrency: int = 4, *extra: str, command: str = "runworker"
) -> tuple[tuple[str, ...], ...]:
    return (("manage.py", command, "--pool", pool, "-c", str(concurrency), "-Q", "default", "-l", "warning", *extra),)


def _dtdb_workers(count: int) -> tuple[tuple[str, ...], ...]:
    return tuple(
        (
            "manage.py", "db_worker", "--queue-name", "default", "--interval", POLL_INTERVAL,
            "--no-startup-delay", "--no-reload", "--worker-id", f"bench-{index}", "-v", "0",
        )
        for index in range(count)
    )


def _celery_worker(pool: str, concurrency: int) -> tuple[tuple[str, ...], ...]:
    return (
        (
            "celery", "-A", "benchproject.celery_app", "worker", "-P", pool, "-c", str(concurrency),
            "-Q", "default", "-l", "warning", "--without-gossip", "--without-mingle", "--without-heartbeat",
        ),
    )


def _dramatiq_worker(processes: int, threads: int) -> tuple[tuple[str, ...], ...]:
    return (
        (
            "dramatiq", "benchapp.tasks_dramatiq", "--path", ".", "--processes", str(processes),
            "--threads", str(threads), "--queues", "default",
        ),
    )


DJTASKS_WORKER_DESC = "1 process, runworker --pool threads -c 4"
DJTASKS_REQUIRES = ("djtasks.backend", "benchapp.tasks_djtasks")

CONTESTANTS: tuple[Contestant, ...] = (
    Contestant(
        "djtasks-pg", "djtasks", "postgres", "bench_djtasks", _djtasks_worker(), DJTASKS_WORKER_DESC,
        bulk=True, requires=DJTASKS_REQUIRES,
    ),
    Contestant(
        "djtasks-sqlite", "djtasks", "sqlite", "", _djtasks_worker(), DJTASKS_WORKER_DESC,
        bulk=True, requires=DJTASKS_REQUIRES,
    ),
    Contestant(
        "djtasks-pg-prefork", "djtasks", "postgres", "bench_djtasks", _djtasks_worker("prefork", 2),
        "runworker --pool prefork -c 2 (3 processes)", bulk=True, requires=DJTASKS_REQUIRES,
    ),
    Contestant(
        "djtasks-redis", "djtasks", "postgres", "bench_djtasks_redis", _djtasks_worker(),
        DJTASKS_WORKER_DESC + ", Redis broker",
        redis_broker_db=REDIS_DB_DJTASKS_BROKER, bulk=True, requires=(*DJTASKS_REQUIRES, "djtasks.brokers.redis"),
        workloads=(*DEFAULT_WORKLOADS, "drain-nores"),
    ),
    Contestant(
        "djtasks-redis-prefork", "djtasks", "postgres", "bench_djtasks_redis", _djtasks_worker("prefork", 2),
        "runworker --pool prefork -c 2 (3 processes), Redis broker",
        redis_broker_db=REDIS_DB_DJTASKS_BROKER, bulk=True, requires=(*DJTASKS_REQUIRES, "djtasks.brokers.redis"),
        workloads=("drain-nores",),
    ),
    Contestant(
        "dtdb-pg", "dtdb", "postgres", "bench_dtdb", _dtdb_workers(2),
        f"2 processes, db_worker --interval {POLL_INTERVAL}", compare_with=("djtasks-pg",),
    ),
    Contestant(
        "dtdb-sqlite", "dtdb", "sqlite", "", _dtdb_workers(2),
        f"2 processes, db_worker --interval {POLL_INTERVAL}", compare_with=("djtasks-sqlite",),
    ),
    Contestant(
        "celery-prefork", "celery", "postgres", "bench_celery", _celery_worker("prefork", 2),
        "celery worker -P prefork -c 2 (3 processes)", redis_broker_db=REDIS_DB_CELERY_BROKER,
        compare_with=("djtasks-pg", "djtasks-pg-prefork", "djtasks-redis", "djtasks-redis-prefork"),
        workloads=(*DEFAULT_WORKLOADS, "drain-nores"),
    ),
    Contestant(
        "celery-threads", "celery", "postgres", "bench_celery", _celery_worker("threads", 4),
        "celery worker -P threads -c 4 (1 process)", redis_broker_db=REDIS_DB_CELERY_BROKER,
        compare_with=("djtasks-pg", "djtasks-redis"),
    ),
    Contestant(
        "dramatiq", "dramatiq", "postgres", "bench_dramatiq", _dramatiq_worker(2, 8),
        "dramatiq --processes 2 --threads 8 (3 processes), no results", redis_broker_db=REDIS_DB_DRAMATIQ_BROKER,
        compare_with=("djtasks-redis", "djtasks-redis-prefork"), requires=("dramatiq", "benchapp.tasks_dramatiq"),
        workloads=("drain-nores",),
    ),
    Contestant(
        "huey", "huey", "postgres", "bench_huey",
        (("manage.py", "run_huey", "--workers", "4", "--worker-type", "thread", "--quiet"),),
        "manage.py run_huey -w 4 -k thread (1 process), no results", redis_broker_db=REDIS_DB_HUEY_BROKER,
        compare_with=("djtasks-redis",), requires=("huey", "benchapp.tasks_huey"), workloads=("latency",),
    ),
)


DJTASKS_REDIS_REQUIRES = (*DJTASKS_REQUIRES, "djtasks.brokers.redis", "benchapp.engine_djtasks")


def _engine_djtasks(
    name: str, workers: tuple[tuple[str, ...], ...], desc: str, workload: str, requires: tuple[str, ...] = ()
) -> Contestant:
    """A djtasks contestant of one worker-engine workload: Redis broker (db 11), results on PostgreSQL."""
    return Contestant(
        name, "djtasks", "postgres", "bench_engine_djtasks", workers, desc, redis_broker_db=REDIS_DB_DJTASKS_BROKER,
        bulk=True, requires=(*DJTASKS_REDIS_REQUIRES, *requires), workloads=(workload,),
    )


def _engine_celery(
    name: str, workers: tuple[tuple[str, ...], ...], desc: str, workload: str, *, redis_results: bool = False,
    requires: tuple[str, ...] = (),
) -> Contestant:
    """A Celery contestant of one worker-engine workload: Redis broker (db 12), results in django-celery-results
    on PostgreSQL, or with ``redis_results`` in Redis (the broker's database)."""
    return Contestant(
        name, "celery", "postgres", "bench_engine_celery", workers, desc, redis_broker_db=REDIS_DB_CELERY_BROKER,
        requires=requires, workloads=(workload,), env=(("BENCH_CELERY_RESULTS", "redis"),) if redis_results else (),
    )


#: The contestants of the worker-engine workloads (``benchkit.engine``); each runs one of them.
ENGINE_CONTESTANTS: tuple[Contestant, ...] = (
    _engine_djtasks(
        "djtasks-io-gevent", _djtasks_worker("gevent", 200), "runworker --pool gevent -c 200", "io", ("gevent",)
    ),
    _engine_djtasks("djtasks-io-threads", _djtasks_worker("threads", 100), "runworker --pool threads -c 100", "io"),
    _engine_djtasks(
        "djtasks-io-asyncio", _djtasks_worker("threads", 4),
        "runworker --pool threads -c 4, async def tasks (up to 1,000 at once on its event loop)", "io",
    ),
    _engine_djtasks(
        "djtasks-io-asyncio-200", _djtasks_worker("threads", 4, "--async-concurrency", "200"),
        "runworker --pool threads -c 4 --async-concurrency 200, async def tasks", "io",
    ),
    _engine_celery(
        "celery-io-gevent", _celery_worker("gevent", 200), "celery worker -P gevent -c 200, results in Redis", "io",
        redis_results=True, requires=("gevent",),
    ),
    _engine_celery(
        "celery-io-threads", _celery_worker("threads", 100), "celery worker -P threads -c 100, results in Redis", "io",
        redis_results=True,
    ),
    _engine_djtasks(
        "djtasks-cpu-prefork", _djtasks_worker("prefork", 2), "runworker --pool prefork -c 2 (3 processes)", "cpu"
    ),
    _engine_djtasks("djtasks-cpu-solo", _djtasks_worker("solo", 1), "runworker --pool solo (1 process)", "cpu"),
    _engine_celery(
        "celery-cpu-prefork", _celery_worker("prefork", 2), "celery worker -P prefork -c 2 (3 processes)", "cpu"
    ),
    _engine_celery("celery-cpu-solo", _celery_worker("solo", 1), "celery worker -P solo (1 process)", "cpu"),
    _engine_djtasks(
        "djtasks-mem-prefork", _djtasks_worker("prefork", 2), "runworker --pool prefork -c 2 (3 processes)", "memory"
    ),
    _engine_celery(
        "celery-mem-prefork", _celery_worker("prefork", 2), "celery worker -P prefork -c 2 (3 processes)", "memory"
    ),
    _engine_djtasks(
        "djtasks-ovh-bare", _djtasks_worker(command="bench_runworker"),
        "runworker --pool threads -c 4, control plane off (bench_runworker)", "overhead",
    ),
    _engine_djtasks(
        "djtasks-ovh-plain", _djtasks_worker(), "runworker --pool threads -c 4 (control plane on: the default)",
        "overhead",
    ),
    _engine_djtasks(
        "djtasks-ovh-limits", _djtasks_worker("threads", 4, "--time-limit", "60", "--soft-time-limit", "50"),
        "runworker --pool threads -c 4 --time-limit 60 --soft-time-limit 50", "overhead",
    ),
)
CONTESTANTS = (*CONTESTANTS, *ENGINE_CONTESTANTS)


def select_contestants(only: str | None) -> list[Contestant]:
    """Return the contestants named in ``only`` (comma-separated names or prefixes), all if None."""
    if not only:
        return list(CONTESTANTS)
    wanted = [part.strip() for part in only.split(",") if part.strip()]
    names = {c.name for c in CONTESTANTS}

    def matches(name: str, want: str) -> bool:
        # An exact name means that contestant only; anything else is a prefix.
        return name == want if want in names else name.startswith(want)

    chosen = [c for c in CONTESTANTS if any(matches(c.name, w) for w in wanted)]
    if not chosen:
        raise SystemExit(f"--only {only!r} matches no contestant (known: {', '.join(sorted(names))})")
    return chosen
