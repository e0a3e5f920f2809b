"""The worker: supervisor, executor and pools."""

from .supervisor import Worker, make_worker_id

__all__ = ["Worker", "make_worker_id"]
