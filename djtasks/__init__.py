"""djtasks: background tasks for Django, built on ``django.tasks``."""

from .task import DjTask, djtask
from .taskresult import DjTaskContext, DjTaskResult

__version__ = "0.1.0"

__all__ = ["DjTask", "DjTaskContext", "DjTaskResult", "djtask"]
