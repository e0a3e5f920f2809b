"""App config of :mod:`benchapp`."""

from django.apps import AppConfig


class BenchAppConfig(AppConfig):
    """Imports the contestant's task module when Django starts."""

    name = "benchapp"

    def ready(self) -> None:
        """Import the task module so every worker knows the task."""
        from .contestant import tasks_module

        tasks_module()
