"""App config of :mod:`benchapp`."""

from django.apps import AppConfig


class BenchAppConfig(AppConfig):
    """Imports the contestant's task module when Django starts."""

    name = "benchapp"

    def ready(self) -> None:
        """Import the task modules so every worker knows the tasks."""
        from .contestant import engine_module, tasks_module

        tasks_module()
        engine_module()
