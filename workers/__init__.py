"""The arq worker process (``arq workers.WorkerSettings``): transition broadcasts and close-out."""

from workers.jobs import WorkerSettings

__all__ = ["WorkerSettings"]
