"""``manage.py bench_runworker``: djtasks' ``runworker`` with its control plane off (bench only).

``runworker`` always joins the control plane (worker registry heartbeats,
remote commands, revocations: ``Worker(control=True)``) and has no option to
leave it. The ``overhead`` workload needs a worker without it as its
baseline: this command is ``runworker``, same options, with
``Worker(control=False)``. The lease heartbeat of the supervisor stays on
(it cannot be turned off; with the default 60 s lease it runs every 20 s).
"""

from typing import Any

from djtasks.management.commands import runworker


class Command(runworker.Command):
    """``runworker`` that builds its worker with ``control=False``."""

    help = __doc__

    def handle(self, *args: Any, **options: Any) -> None:
        """Run ``runworker`` with the control plane off."""
        original = runworker.Worker

        def without_control(**kwargs: Any) -> Any:
            return original(**{**kwargs, "control": False})

        runworker.Worker = without_control  # type: ignore[misc,assignment]
        try:
            super().handle(*args, **options)
        finally:
            runworker.Worker = original  # type: ignore[misc]
