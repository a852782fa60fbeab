"""``python -m workers``: the Procfile's worker process, which rides out Redis outages."""

from __future__ import annotations

import logging

from app.config import load_settings
from workers.jobs import worker_options
from workers.resilient import Worker


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    if settings.redis_url is None:
        raise SystemExit("REDIS_URL is required: the worker schedules and publishes through Redis")
    Worker(**worker_options(settings)).run()


if __name__ == "__main__":
    main()
