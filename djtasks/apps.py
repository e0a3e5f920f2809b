from django.apps import AppConfig


class DjTasksConfig(AppConfig):
    name = "djtasks"
    verbose_name = "Tasks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the system checks
        from .beat import checks as beat_checks  # noqa: F401 - and those of BEAT_SCHEDULE
